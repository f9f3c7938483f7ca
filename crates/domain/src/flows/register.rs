//! Dynamic client registration (RFC 7591). Deprecated by MCP 2026-07-28 in favour of
//! Client ID Metadata Documents, but still what most MCP clients do.
//!
//! Every redirect URI must pass the form rules and the operator's allow-list; the
//! whole registration fails if one does (and says which and why). Sizes and counts
//! are bounded. An identical public registration returns the same client (clients
//! that re-register on every start do not pile up), and registrations never used
//! expire.

use mcpgate_core::redirect_uri::{AllowList, ApplicationType};
use mcpgate_core::secret::{Secret, hash_token, random_id};
use mcpgate_core::{ErrorCode, OAuthError, ScopeSet};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::audit::Event;
use crate::model::{AuthMethod, Client, ClientKind, Outcome, StepKind};
use crate::store::StoreResult;
use crate::{Authority, OAuthResult};

pub const MAX_REGISTRATION_BYTES: usize = 16 * 1024;
const MAX_REDIRECT_URIS: usize = 10;
const MAX_NAME_LEN: usize = 200;

#[derive(Debug, Deserialize)]
pub struct RegistrationRequest {
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    #[serde(default)]
    pub client_name: Option<String>,
    #[serde(default)]
    pub token_endpoint_auth_method: Option<String>,
    #[serde(default)]
    pub grant_types: Option<Vec<String>>,
    #[serde(default)]
    pub response_types: Option<Vec<String>>,
    #[serde(default)]
    pub scope: Option<String>,
    #[serde(default)]
    pub client_uri: Option<String>,
    #[serde(default)]
    pub logo_uri: Option<String>,
    /// MCP clients MUST send it; a non-OIDC server accepts and ignores it.
    #[serde(default)]
    pub application_type: Option<String>,
    #[serde(default)]
    pub software_id: Option<String>,
    #[serde(default)]
    pub software_version: Option<String>,
}

fn meta_err(msg: impl Into<String>) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidClientMetadata, msg.into())
}

/// Validates client-supplied names: length, and no control characters.
pub fn clean_name(name: Option<&str>) -> Result<String, OAuthError> {
    let name = name
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .unwrap_or("Unnamed client");
    if name.chars().count() > MAX_NAME_LEN {
        return Err(meta_err(format!(
            "client_name is longer than {MAX_NAME_LEN} characters"
        )));
    }
    if name.chars().any(char::is_control) {
        return Err(meta_err("client_name contains control characters"));
    }
    Ok(name.to_owned())
}

/// Checks redirect URIs against form rules and the allow-list.
pub fn check_redirects(allow: &AllowList, uris: &[String]) -> Result<(), OAuthError> {
    if uris.is_empty() {
        return Err(OAuthError::new(
            ErrorCode::InvalidRedirectUri,
            "redirect_uris is required",
        ));
    }
    if uris.len() > MAX_REDIRECT_URIS {
        return Err(OAuthError::new(
            ErrorCode::InvalidRedirectUri,
            format!("at most {MAX_REDIRECT_URIS} redirect_uris"),
        ));
    }
    for u in uris {
        allow
            .check(u)
            .map_err(|e| OAuthError::new(ErrorCode::InvalidRedirectUri, e.to_string()))?;
    }
    Ok(())
}

/// Checks redirect URIs against the kind of application a client says it is, when it
/// says (`application_type`, OpenID Connect Dynamic Client Registration §2): a value
/// other than `web` or `native` is refused, and a web client may not register a
/// redirect only an app on the person's device could receive. A client that does not
/// say keeps today's rules, which already admit both kinds.
pub fn check_application_type(kind: Option<&str>, uris: &[String]) -> Result<(), OAuthError> {
    let Some(kind) = kind else {
        return Ok(());
    };
    let kind = ApplicationType::parse(kind).ok_or_else(|| {
        meta_err(format!(
            "application_type {:?} is not supported (web, native)",
            kind.chars().take(40).collect::<String>()
        ))
    })?;
    for u in uris {
        let url = mcpgate_core::redirect_uri::validate_form(u)
            .map_err(|e| OAuthError::new(ErrorCode::InvalidRedirectUri, e.to_string()))?;
        kind.check(&url)
            .map_err(|e| OAuthError::new(ErrorCode::InvalidRedirectUri, e.to_string()))?;
    }
    Ok(())
}

pub async fn allow_list(s: &Authority) -> OAuthResult<AllowList> {
    let entries = s.store.allowed_redirects().await?;
    Ok(AllowList::from_entries(entries.iter().map(String::as_str)))
}

/// A registration request that passed every rule: what is stored.
#[derive(Debug)]
pub struct Checked {
    pub name: String,
    pub redirect_uris: Vec<String>,
    pub method: AuthMethod,
    pub metadata: Value,
}

/// Checks a registration request against the rules (RFC 7591 §2, and the operator's
/// allow-list for redirect URIs); pure, so property tests can run it on any input.
pub fn check(allow: &AllowList, req: RegistrationRequest) -> Result<Checked, OAuthError> {
    let name = clean_name(req.client_name.as_deref())?;
    check_redirects(allow, &req.redirect_uris)?;
    check_application_type(req.application_type.as_deref(), &req.redirect_uris)?;
    // RFC 7591 §2: the default is client_secret_basic.
    let method = match req.token_endpoint_auth_method.as_deref() {
        None => AuthMethod::ClientSecretBasic,
        // Keys come from an operator (`client add --jwks-uri`) or a metadata document,
        // not from an anonymous registration.
        Some(m) => AuthMethod::parse(m)
            .filter(|m| *m != AuthMethod::PrivateKeyJwt)
            .ok_or_else(|| {
                meta_err(format!("token_endpoint_auth_method {m:?} is not supported"))
            })?,
    };
    let grant_types = req
        .grant_types
        .clone()
        .unwrap_or_else(|| vec!["authorization_code".into()]);
    if let Some(g) = grant_types
        .iter()
        .find(|g| !matches!(g.as_str(), "authorization_code" | "refresh_token"))
    {
        return Err(meta_err(format!(
            "grant type {g:?} is not supported (authorization_code, refresh_token)"
        )));
    }
    if let Some(r) = req
        .response_types
        .as_ref()
        .and_then(|r| r.iter().find(|r| *r != "code"))
    {
        return Err(meta_err(format!(
            "response type {r:?} is not supported (code)"
        )));
    }
    if let Some(sc) = &req.scope {
        ScopeSet::parse(sc).map_err(|e| meta_err(e.to_string()))?;
    }
    for (field, v) in [("client_uri", &req.client_uri), ("logo_uri", &req.logo_uri)] {
        if let Some(v) = v
            && (v.len() > 2000
                || url::Url::parse(v)
                    .map(|u| u.scheme() != "https")
                    .unwrap_or(true))
        {
            return Err(meta_err(format!("{field} must be an https URL")));
        }
    }
    let metadata = json!({
        "client_name": name,
        "redirect_uris": req.redirect_uris,
        "token_endpoint_auth_method": method.as_str(),
        "grant_types": grant_types,
        "response_types": ["code"],
        "scope": req.scope,
        "client_uri": req.client_uri,
        "logo_uri": req.logo_uri,
        "application_type": req.application_type,
        "software_id": req.software_id,
        "software_version": req.software_version,
    });
    Ok(Checked {
        name,
        redirect_uris: req.redirect_uris,
        method,
        metadata,
    })
}

/// How precisely a client's last use is kept: a client used again within this long of
/// the use on record is not written again. Its first use is always written (from then
/// on it is never evicted at the registration cap); the pages show it to the minute.
pub const LAST_USE_PRECISION_SECS: i64 = 60;

/// Records that `client` was used at `now` (a code or token issued to it), unless the
/// use on record is recent: one write less on most token requests, and the store keeps
/// remembering the client (a write makes it read the row again).
pub(crate) async fn mark_used(s: &Authority, client: &Client, now: i64) -> StoreResult<()> {
    if client
        .last_used_at
        .is_some_and(|t| (t..t + LAST_USE_PRECISION_SECS).contains(&now))
    {
        return Ok(());
    }
    s.store.touch_client(&client.client_id, now).await
}

/// Registers a client; returns the RFC 7591 §3.2.1 response body.
pub async fn register(s: &Authority, req: RegistrationRequest) -> OAuthResult<Value> {
    let Checked {
        name,
        redirect_uris,
        method,
        metadata,
    } = check(&allow_list(s).await?, req)?;
    let now = s.now();
    let public = method == AuthMethod::None;
    let reg_hash = hash_token(&metadata.to_string());
    if public && let Some(existing) = s.store.client_by_registration_hash(&reg_hash).await? {
        s.note(
            &existing.client_id,
            StepKind::Register,
            Outcome::Ok,
            "registered again with the same metadata: the same client",
        );
        return Ok(response(&existing, None));
    }
    make_room(s).await?;
    let secret = (!public).then(Secret::generate);
    let client = Client {
        client_id: random_id(),
        secret_hash: secret.as_ref().map(Secret::hash),
        name,
        redirect_uris,
        kind: ClientKind::Dynamic,
        auth_method: method,
        can_introspect: false,
        owner_user_id: None,
        registration_hash: public.then_some(reg_hash),
        metadata,
        fetched_until: None,
        created_at: now,
        last_used_at: None,
        machine: None,
        keys: None,
    };
    s.store.insert_client(&client).await?;
    s.audit(
        Event::ClientRegistered {
            name: client.name.clone(),
            redirect_uris: client.redirect_uris.clone(),
        },
        None,
        Some(&client.client_id),
    )
    .await;
    s.note(
        &client.client_id,
        StepKind::Register,
        Outcome::Ok,
        format!("registered dynamically (RFC 7591) as {}", client.name),
    );
    Ok(response(&client, secret.as_ref()))
}

/// At the cap of dynamic registrations (public and confidential alike), evicts the
/// oldest one never used, so that a flood of registrations cannot lock out every new
/// client (RFC 7591 §5 leaves registration lifetimes to the server). Only when every
/// registration has been used is a new one refused.
async fn make_room(s: &Authority) -> OAuthResult<()> {
    if s.store.count_dynamic_clients().await? < s.cfg.max_dynamic_clients {
        return Ok(());
    }
    // A registration younger than an authorization request and its code may belong
    // to a sign-in in progress: never evicted, so a flood of registrations cannot
    // push out the clients people are connecting right now.
    let in_progress = s.cfg.request_ttl_secs + s.cfg.code_ttl_secs;
    match s
        .store
        .evict_oldest_unused_dynamic_client(s.now() - in_progress)
        .await?
    {
        Some(evicted) => {
            s.audit(
                Event::ClientEvicted {
                    reason: "registration cap reached; never used",
                },
                None,
                Some(&evicted),
            )
            .await;
            Ok(())
        }
        None => Err(OAuthError::new(
            ErrorCode::TemporarilyUnavailable,
            "too many registered clients; try again later",
        )),
    }
}

fn response(c: &Client, secret: Option<&Secret>) -> Value {
    let mut body = c.metadata.clone();
    let obj = body.as_object_mut().expect("metadata is an object");
    obj.retain(|_, v| !v.is_null());
    obj.insert("client_id".into(), json!(c.client_id));
    obj.insert("client_id_issued_at".into(), json!(c.created_at));
    if let Some(sec) = secret {
        obj.insert("client_secret".into(), json!(sec.expose()));
        obj.insert("client_secret_expires_at".into(), json!(0));
    }
    body
}
