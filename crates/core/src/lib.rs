//! mcpgate-core: the OAuth 2.1 domain, free of HTTP and storage.
//!
//! Layout:
//! - [`scope`]: scope tokens and sets (RFC 6749 §3.3).
//! - [`secret`]: random opaque tokens, their hashes at rest, constant-time comparison.
//! - [`pkce`]: Proof Key for Code Exchange, `S256` only (RFC 7636, OAuth 2.1 §4.1.1).
//! - [`redirect_uri`]: redirect URI validation and matching (OAuth 2.1 §7.12, RFC 8252 §7.3).
//! - [`resource`]: canonical resource URIs (RFC 8707, MCP "Canonical Server URI").
//! - [`jwt`]: RFC 9068 access tokens, signed and verified with keys parsed once.
//! - [`dpop`]: DPoP proofs (RFC 9449), checked for one request.
//! - [`jose`]: others' JWTs (issuers' tokens, client assertions, ID-JAGs, DPoP proofs)
//!   verified with pinned algorithms.
//! - [`error`]: the RFC 6749/7009/7591/6750 error codes.
//! - [`clock`]: an injectable clock, so expiry is testable without sleeping.

pub mod clock;
pub mod dpop;
pub mod error;
pub mod grace;
pub mod jose;
pub mod jwt;
pub mod pkce;
pub mod prehashed;
pub mod redirect_uri;
pub mod resource;
pub mod revocation;
pub mod scope;
pub mod sealed;
pub mod secret;
pub mod token_map;

pub use error::{ErrorCode, OAuthError};
pub use scope::ScopeSet;

#[cfg(test)]
mod proptests;
