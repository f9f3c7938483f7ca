//! The HTTP client for calls this server makes to other servers whose addresses the
//! operator configured or an upstream named: identity providers, upstreams'
//! authorization servers. Built on first use: building a client loads the system's
//! trust anchors (145 certificates, about 4 ms on the development machine), and
//! building each at startup cost `serve` about 10 ms before its first answer, for
//! calls most deployments never make.
//!
//! One per owner rather than one per process: a client's pooled connections belong to
//! the runtime that opened them, and tests run many runtimes in one process.

use std::sync::OnceLock;
use std::time::Duration;

#[derive(Debug, Default)]
pub struct Outbound(OnceLock<reqwest::Client>);

impl Outbound {
    /// The client. Redirects are never followed: an OAuth endpoint must not redirect
    /// (RFC 6749 §3.2), and following one could send credentials elsewhere. Every call
    /// ends within 10 s.
    pub fn client(&self) -> &reqwest::Client {
        self.0.get_or_init(|| {
            reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(10))
                .build()
                .expect("a client with no custom TLS builds")
        })
    }
}
