//! The HTML side, one concern per module:
//!
//! - [`cookies`]: reading and setting cookies; CSRF (double-submit).
//! - [`extract`]: the prologue of every page as extractors: CSRF first, then who.
//! - [`render`]: pages, error pages, redirects and [`PageError`].
//! - [`headers`]: the security headers of every page (CSP, anti-framing).
//! - [`next`]: where to go after signing in, never off our origin.
//! - [`dates`]: timestamps for people.
//! - [`passwords`]: hashing and checking passwords off the async threads.

pub mod chart;
pub mod cookies;
pub mod dates;
pub mod extract;
pub mod headers;
pub mod next;
pub mod passwords;
pub mod render;

pub use cookies::{Csrf, Jar, cookie, csrf, csrf_ok};
pub use dates::{until, when};
pub use extract::{Administrator, Anyone, FormToken, MaybeSignedIn, Posted, SignedIn};
pub use headers::{add_security_headers, csp, security_headers};
pub use next::safe_next;
pub use render::{ErrorPage, PageError, PageResult, csrf_failure, error_page, render, see_other};
