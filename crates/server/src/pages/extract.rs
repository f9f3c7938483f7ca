//! The prologue of every page, as extractors, so that a handler cannot forget one:
//!
//! - [`Posted`]: a form POSTed from this origin with this browser's CSRF token,
//!   checked before anything else of the request is read, and who posted it;
//! - [`SignedIn`] / [`MaybeSignedIn`]: the person of the browser's session (without
//!   one, a redirect to sign in and back to the page);
//! - [`Administrator`]: a signed-in person with the admin role (403 otherwise);
//! - [`FormToken`]: the CSRF token a page's forms carry (and its cookie when new).
//!
//! Who is signed in: a random id in an `HttpOnly`, `SameSite=Lax` cookie (`Secure` and
//! `__Host-` prefixed behind https at the origin's root, see [`super::cookies`]); the
//! store keeps its hash. Lax, so that the top-level navigation from an AI client to
//! `/authorize` still sees the person signed in. A store that fails while reading the
//! session is an error page, never "signed out" (which would send a signed-in person
//! back to the sign-in form).

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::response::{IntoResponse, Response};
use http::request::Parts;
use http::{Method, StatusCode};
use mcpgate_domain::flows::sign_in;
use mcpgate_domain::model::User;

use super::{Csrf, Jar, PageError, csrf, csrf_failure, csrf_ok, error_page, see_other};
use crate::forms::{Form, Params};
use crate::state::AuthServer;

/// The person of the browser's session, if any.
pub struct MaybeSignedIn(pub Option<User>);

impl FromRequestParts<AuthServer> for MaybeSignedIn {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, s: &AuthServer) -> Result<Self, Response> {
        let Some(id) = Jar::Session.read(&s.cfg, &parts.headers) else {
            return Ok(Self(None));
        };
        sign_in::session_user(&s.auth, &id)
            .await
            .map(Self)
            .map_err(|e| PageError::from(e).into_response())
    }
}

/// Where this page is, for the way back after signing in: its path and query within
/// the mount (the rebasing layer moves the redirect under the base path).
fn here(parts: &Parts) -> String {
    let path_and_query = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    // Encoded as a query value, slashes left readable (`next=/admin/users`).
    url::form_urlencoded::byte_serialize(path_and_query.as_bytes())
        .collect::<String>()
        .replace("%2F", "/")
}

/// The signed-in person; without a session, a redirect to the sign-in page that
/// comes back here.
pub struct SignedIn(pub User);

impl FromRequestParts<AuthServer> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, s: &AuthServer) -> Result<Self, Response> {
        match MaybeSignedIn::from_request_parts(parts, s).await?.0 {
            Some(u) => Ok(Self(u)),
            None => Err(see_other(&format!("/login?next={}", here(parts)))),
        }
    }
}

pub fn forbidden() -> Response {
    error_page(
        StatusCode::FORBIDDEN,
        "Administrators only",
        "Your account does not have the admin role.",
    )
}

/// A signed-in administrator. Viewing a page without a session leads to the sign-in
/// page and back; acting without one, or without the role, is 403.
pub struct Administrator(pub User);

impl FromRequestParts<AuthServer> for Administrator {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, s: &AuthServer) -> Result<Self, Response> {
        match MaybeSignedIn::from_request_parts(parts, s).await?.0 {
            Some(u) if u.is_admin => Ok(Self(u)),
            Some(_) => Err(forbidden()),
            None if parts.method == Method::GET => {
                Err(see_other(&format!("/login?next={}", here(parts))))
            }
            None => Err(forbidden()),
        }
    }
}

/// The CSRF token for a page's forms, and the cookie to set when the browser has none.
pub struct FormToken(pub Csrf);

impl FromRequestParts<AuthServer> for FormToken {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        s: &AuthServer,
    ) -> Result<Self, std::convert::Infallible> {
        Ok(Self(csrf(s, &parts.headers)))
    }
}

/// A form POSTed from this origin with this browser's CSRF token, checked first, and
/// then `W`, who posted it (the person, an administrator, or `()` on forms that need
/// nobody signed in).
pub struct Posted<W> {
    pub who: W,
    pub form: Params,
}

impl<W> FromRequest<AuthServer> for Posted<W>
where
    W: FromRequestParts<AuthServer, Rejection = Response> + Send,
{
    type Rejection = Response;

    async fn from_request(req: Request, s: &AuthServer) -> Result<Self, Response> {
        let (mut parts, body) = req.into_parts();
        let headers = parts.headers.clone();
        let Form(form) = Form::from_request(Request::from_parts(parts.clone(), body), s).await?;
        if !csrf_ok(s, &headers, &form) {
            return Err(csrf_failure());
        }
        let who = W::from_request_parts(&mut parts, s).await?;
        Ok(Self { who, form })
    }
}

/// Nobody need be signed in (the sign-in form itself, signing out).
pub struct Anyone;

impl FromRequestParts<AuthServer> for Anyone {
    type Rejection = Response;

    async fn from_request_parts(_: &mut Parts, _: &AuthServer) -> Result<Self, Response> {
        Ok(Self)
    }
}
