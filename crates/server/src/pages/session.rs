//! Who is signed in: a random id in an `HttpOnly`, `SameSite=Lax` cookie (`Secure`
//! and `__Host-` prefixed behind https at the origin's root, see
//! [`super::cookies`]); the store keeps its hash. Lax, so that the top-level navigation from
//! an AI client to `/authorize` still sees the person signed in.

use http::HeaderMap;
use mcpgate_core::secret::hash_token;
use mcpgate_domain::model::User;

use super::{Jar, PageError};
use crate::state::AuthServer;

/// The signed-in person, if any. A database failure is an error page, never
/// "signed out" (which would send a signed-in person back to the sign-in form).
pub async fn current_user(s: &AuthServer, headers: &HeaderMap) -> Result<Option<User>, PageError> {
    let Some(id) = Jar::Session.read(&s.cfg, headers) else {
        return Ok(None);
    };
    Ok(s.auth
        .store
        .session_user(&hash_token(&id), s.auth.now())
        .await?)
}
