//! The one HTTP client for calls this server makes to other servers whose addresses the
//! operator configured or an upstream named: identity providers, upstreams' authorization
//! servers. Built on first use and shared: building a client loads the system's trust
//! anchors (145 certificates, about 4 ms on the development machine), and building one per
//! caller at startup cost `serve` about 10 ms before its first answer.

use std::sync::OnceLock;
use std::time::Duration;

/// Redirects are never followed: an OAuth endpoint must not redirect (RFC 6749 §3.2),
/// and following one could send credentials elsewhere. Every call ends within 10 s.
pub fn client() -> &'static reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT.get_or_init(|| {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()
            .expect("a client with no custom TLS builds")
    })
}
