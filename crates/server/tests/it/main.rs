//! Integration tests of the authorization server's edge, over real HTTP on loopback
//! and a real store (a dev-dependency: the server's own code reaches data through the
//! domain's traits only).
//!
//! - [`provider`]: an OpenID provider the tests play, and the ID-token checks.
//! - [`idp_routes`]: the provider's callback: who is linked, who is refused.

mod idp_routes;
mod provider;
