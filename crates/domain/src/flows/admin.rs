//! The operator's acts on users, clients, scopes and the redirect allow-list: one
//! function per act, called by the command line (`mcpgate user|client|clients
//! allowed|scope`) and by the admin pages alike, so both validate the same way and
//! leave the same audit event. `by` names who acted (`operator` for the command line,
//! `admin:<name>` for a page) and goes into the event's detail.
//!
//! Acts that end access (disabling a person, a new password, removing a client,
//! revoking a grant) are [`super::accounts`] and [`super::revoke`].

use mcpgate_core::redirect_uri::{self, AllowEntry, PRESETS};
use mcpgate_core::secret::{Secret, random_id};
use mcpgate_core::{ErrorCode, OAuthError, ScopeSet, scope};
use serde_json::json;

use crate::Actor;
use crate::audit::{AllowedEntry, Event};
use crate::flows::register::{allow_list, check_redirects, clean_name};
use crate::model::{AuthMethod, Client, ClientKeys, ClientKind, Machine, User};
use crate::store::StoreError;
use crate::{Authority, OAuthResult};

/// Longest password accepted (argon2 handles any length; this bounds the work).
pub const MAX_PASSWORD_LEN: usize = 1024;

/// Longest email address kept (RFC 5321 §4.5.3.1.3 bounds a path at 256 octets).
pub const MAX_EMAIL_LEN: usize = 254;
/// Longest scope description shown on the consent page.
pub const MAX_SCOPE_DESCRIPTION_LEN: usize = 300;

fn invalid(msg: impl Into<String>) -> OAuthError {
    OAuthError::invalid_request(msg.into())
}

/// User names: 1-64 characters, no spaces or control characters.
pub fn check_username(name: &str) -> Result<(), OAuthError> {
    if name.is_empty()
        || name.chars().count() > 64
        || name.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(invalid("user names are 1-64 characters without spaces"));
    }
    Ok(())
}

/// Passwords: at least 8 characters, at most [`MAX_PASSWORD_LEN`] bytes.
pub fn check_password(p: &str) -> Result<(), OAuthError> {
    if p.chars().count() < 8 {
        return Err(invalid("the password must have at least 8 characters"));
    }
    if p.len() > MAX_PASSWORD_LEN {
        return Err(invalid("the password is too long"));
    }
    Ok(())
}

/// Most clients one person may own (created on their own pages).
pub const MAX_OWN_CLIENTS: i64 = 50;

/// A user to create. Without a password the person signs in through an identity
/// provider whose verified email matches `email` (an invitation).
pub struct NewUser {
    pub username: String,
    pub email: Option<String>,
    pub admin: bool,
    pub password: Option<String>,
}

/// Creates a user; the password is hashed here (argon2id, off the async threads).
pub async fn create_user(s: &Authority, n: NewUser, by: &Actor) -> OAuthResult<User> {
    check_username(&n.username)?;
    if let Some(e) = &n.email
        && (e.len() > MAX_EMAIL_LEN || !e.contains('@') || e.chars().any(char::is_control))
    {
        return Err(invalid("the email address is not valid"));
    }
    let password_hash = match n.password {
        Some(p) => {
            check_password(&p)?;
            s.passwords.hash(p).await
        }
        None if n.email.is_some() => "!".to_owned(), // not a PHC string: nothing verifies
        None => {
            return Err(invalid(
                "give a password, or an email for a person who signs in through an identity provider",
            ));
        }
    };
    let u = User {
        id: random_id(),
        username: n.username,
        email: n.email,
        password_hash,
        is_admin: n.admin,
        disabled: false,
        created_at: s.now(),
    };
    match insert_user(s, u, by).await? {
        Inserted::Yes(u) => Ok(u),
        Inserted::Taken(name) => Err(invalid(format!("a user named {name} exists"))),
    }
}

enum Inserted {
    Yes(User),
    Taken(String),
}

/// Writes a new user and records who created them: the one place a user comes to be
/// (but for a first sign-in through a provider, which writes the identity with it).
async fn insert_user(s: &Authority, u: User, by: &Actor) -> OAuthResult<Inserted> {
    match s.store.create_user(&u).await {
        Ok(()) => {}
        Err(StoreError::Conflict(_)) => return Ok(Inserted::Taken(u.username)),
        Err(e) => return Err(e.into()),
    }
    s.audit(
        Event::UserCreated {
            username: u.username.clone(),
            admin: Some(u.is_admin),
            by: Some(by.clone()),
            provider: None,
            subject: None,
            email: None,
        },
        Some(&u.id),
        None,
    )
    .await;
    Ok(Inserted::Yes(u))
}

/// The name of the administrator a first run creates.
pub const FIRST_ADMINISTRATOR: &str = "admin";

/// On a database without users, creates the administrator `admin` with a random
/// password, returned once (it is stored only as a hash) and audited like any
/// creation. `None` when people exist already, or when another instance starting on
/// the same empty database created them first (the name is unique).
pub async fn create_first_administrator(s: &Authority) -> OAuthResult<Option<(User, Secret)>> {
    if s.store.count_users().await? > 0 {
        return Ok(None);
    }
    let password = Secret::generate();
    let u = User {
        id: random_id(),
        username: FIRST_ADMINISTRATOR.to_owned(),
        email: None,
        password_hash: s.passwords.hash(password.expose().to_owned()).await,
        is_admin: true,
        disabled: false,
        created_at: s.now(),
    };
    match insert_user(s, u, &Actor::Operator).await? {
        Inserted::Yes(u) => Ok(Some((u, password))),
        Inserted::Taken(_) => Ok(None),
    }
}

/// Sets a new password (checked, then hashed) through [`super::accounts::change_password`],
/// which ends the person's grants and sessions, except `keep_session` (the hash of the
/// session of an administrator setting their own password).
pub async fn reset_password(
    s: &Authority,
    username: &str,
    password: String,
    keep_session: Option<&str>,
    by: &Actor,
) -> OAuthResult<super::accounts::AccountOutcome> {
    check_password(&password)?;
    let hash = s.passwords.hash(password).await;
    super::accounts::change_password(s, username, &hash, keep_session, by).await
}

/// A client an operator (or a person, for their own) registers by hand.
pub struct NewClient {
    pub name: String,
    pub redirect_uris: Vec<String>,
    /// With a secret (`client_secret_basic`); otherwise public, PKCE only.
    pub confidential: bool,
    /// May call the introspection endpoint (implies confidential).
    pub introspection: bool,
    /// The person who owns it; `None` for the operator's clients.
    pub owner: Option<String>,
    /// A machine: the scopes and resources it may get with client_credentials (the
    /// operator's clients only).
    pub machine: Option<Machine>,
    /// Authenticates with `private_key_jwt` and these keys instead of a secret.
    pub keys: Option<ClientKeys>,
    /// Its secret goes in the request body (`client_secret_post`) rather than the
    /// Authorization header (`client_secret_basic`, the default of RFC 7591 §2): some
    /// clients send only that way (the official Python SDK's identity-assertion
    /// provider, by default). Either way it is the one method the client may use.
    pub secret_in_body: bool,
}

/// Creates a client: the name and the redirect URIs are checked (the URIs against the
/// allow-list, as for dynamic registration); the secret is returned once and stored
/// as a hash. An operator's client may have no redirect URI (a resource server that
/// only introspects); a person's must have one.
pub async fn create_client(
    s: &Authority,
    n: NewClient,
    by: &Actor,
) -> OAuthResult<(Client, Option<Secret>)> {
    let name = clean_name(Some(&n.name))?;
    if !n.redirect_uris.is_empty() || n.owner.is_some() {
        check_redirects(&allow_list(s).await?, &n.redirect_uris)?;
    }
    if n.owner.is_some() && (n.machine.is_some() || n.keys.is_some()) {
        return Err(invalid(
            "machine clients and key-authenticated clients are the operator's",
        ));
    }
    if let Some(m) = &n.machine {
        check_machine(s, m).await?;
    }
    if let Some(k) = &n.keys {
        check_keys(k)?;
    }
    let with_keys = n.keys.is_some();
    // A machine without keys authenticates with a secret.
    let confidential = !with_keys && (n.confidential || n.introspection || n.machine.is_some());
    if n.secret_in_body && !confidential {
        return Err(invalid(
            "only a client with a secret sends it in the body (client_secret_post)",
        ));
    }
    let secret = confidential.then(Secret::generate);
    let client = Client {
        client_id: random_id(),
        secret_hash: secret.as_ref().map(Secret::hash),
        name: name.clone(),
        redirect_uris: n.redirect_uris,
        kind: ClientKind::Preregistered,
        auth_method: if with_keys {
            AuthMethod::PrivateKeyJwt
        } else {
            match AuthMethod::for_secret(confidential) {
                AuthMethod::ClientSecretBasic if n.secret_in_body => AuthMethod::ClientSecretPost,
                m => m,
            }
        },
        can_introspect: n.introspection,
        owner_user_id: n.owner,
        registration_hash: None,
        metadata: json!({"client_name": name}),
        fetched_until: None,
        created_at: s.now(),
        last_used_at: None,
        machine: n.machine,
        keys: n.keys,
    };
    match &client.owner_user_id {
        // A person's own clients are bounded, in the same step as the insert.
        Some(_) => {
            if !s
                .store
                .insert_owned_client(&client, MAX_OWN_CLIENTS)
                .await?
            {
                return Err(invalid(format!(
                    "You can own at most {MAX_OWN_CLIENTS} clients."
                )));
            }
        }
        None => s.store.insert_client(&client).await?,
    }
    s.audit(
        Event::ClientCreated {
            name: client.name.clone(),
            by: by.clone(),
        },
        client.owner_user_id.as_deref(),
        Some(&client.client_id),
    )
    .await;
    Ok((client, secret))
}

/// A machine's scopes are ones this server offers, and its resources ones it protects
/// (compared in canonical form, RFC 8707).
async fn check_machine(s: &Authority, m: &Machine) -> OAuthResult<()> {
    if m.scopes.is_empty() {
        return Err(invalid("a machine client needs at least one --scope"));
    }
    let known = super::authorize::known_scopes(s).await?;
    if let Some(unknown) = m.scopes.iter().find(|sc| !known.contains(sc)) {
        return Err(invalid(format!(
            "no scope named {unknown} (see `mcpgate scope list`)"
        )));
    }
    let served = s.cfg.resources();
    if m.resources.is_empty() {
        return Err(invalid("a machine client needs at least one --resource"));
    }
    if let Some(other) = m.resources.iter().find(|r| !served.contains(*r)) {
        return Err(invalid(format!(
            "{other} is not a resource this server issues tokens for ({}); commands learn the \
             public URL as serve does: MCPGATE_PUBLIC_URL, or public_url in the \
             configuration file",
            served.join(", ")
        )));
    }
    Ok(())
}

/// A client's keys: a JWK Set with at least one usable signing key, or an https URL
/// to fetch one from.
fn check_keys(k: &ClientKeys) -> OAuthResult<()> {
    match k {
        ClientKeys::Set(set) => {
            if mcpgate_core::jose::PublicKeys::from_jwks(set).is_empty() {
                return Err(invalid(
                    "the JWK Set has no usable signing key (RSA of 2048 bits or more, P-256, P-384 or Ed25519)",
                ));
            }
        }
        ClientKeys::Uri(u) => {
            let ok = url::Url::parse(u).is_ok_and(|u| {
                u.scheme() == "https"
                    || (u.scheme() == "http" && u.host_str().is_some_and(is_loopback_host))
            });
            if !ok {
                return Err(invalid("a jwks_uri must be https (http only on loopback)"));
            }
        }
    }
    Ok(())
}

fn is_loopback_host(h: &str) -> bool {
    h == "localhost" || h == "127.0.0.1" || h == "[::1]"
}

/// Adds a scope or changes its description (shown on the consent page).
pub async fn set_scope(
    s: &Authority,
    name: &str,
    description: &str,
    by: &Actor,
) -> OAuthResult<()> {
    let parsed = ScopeSet::parse(name).map_err(|e| invalid(e.to_string()))?;
    if parsed.len() != 1 || name.len() > scope::MAX_SCOPE_TOKEN_LEN {
        return Err(invalid("a scope is one token without spaces"));
    }
    let description = description.trim();
    if description.chars().count() > MAX_SCOPE_DESCRIPTION_LEN
        || description.chars().any(char::is_control)
    {
        return Err(invalid(format!(
            "a description is at most {MAX_SCOPE_DESCRIPTION_LEN} characters on one line"
        )));
    }
    s.store.upsert_scope(name, description).await?;
    s.audit(
        Event::ScopeSet {
            scope: name.to_owned(),
            description: description.to_owned(),
            by: by.clone(),
        },
        None,
        None,
    )
    .await;
    Ok(())
}

/// Which scopes a deployment offers from its own code or configuration (the
/// calculator's, an upstream's), and whether their descriptions there win over one the
/// operator edited.
pub enum Offered {
    /// Added when missing; an operator's description is kept (the calculator's).
    Missing,
    /// Added or described as declared on every start (an upstream's configuration is
    /// the source of truth).
    AsDeclared,
}

/// Offers `scopes` (name, description) through [`set_scope`], audited as the
/// operator's; a scope already described as declared is left alone, so a restart
/// records nothing.
pub async fn offer_scopes(s: &Authority, scopes: &[(&str, &str)], how: Offered) -> OAuthResult<()> {
    let known = s.store.scopes().await?;
    for (name, description) in scopes {
        let current = known
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, d)| d.as_str());
        let wanted = match (&how, current) {
            (_, None) => true,
            (Offered::Missing, Some(_)) => false,
            (Offered::AsDeclared, Some(d)) => d != description.trim(),
        };
        if wanted {
            set_scope(s, name, description, &Actor::Operator).await?;
        }
    }
    Ok(())
}

/// Enables every allowed-client preset, once per database, whichever process opens it
/// first (`serve`, or a `clients allowed …` command run before it): the `seeded`
/// marker, not the list's emptiness, says it was done, so an operator's edits made
/// before or after the first start are kept. Each preset is enabled through
/// [`set_preset`], audited as the operator's.
pub async fn seed_allowed_presets(s: &Authority) -> OAuthResult<()> {
    if s.store.mark_seeded("allowed_presets", s.now()).await? {
        for p in PRESETS {
            set_preset(s, p.name, true, &Actor::Operator).await?;
        }
    }
    Ok(())
}

/// Enables (`on`) or disables a preset of the allow-list. False when nothing changed
/// (enabling one already enabled, disabling one that was not): no event then.
pub async fn set_preset(s: &Authority, preset: &str, on: bool, by: &Actor) -> OAuthResult<bool> {
    if redirect_uri::preset(preset).is_none() {
        let names: Vec<&str> = PRESETS.iter().map(|p| p.name).collect();
        return Err(invalid(format!(
            "no preset {preset}; the presets are {}",
            names.join(", ")
        )));
    }
    let entry = AllowEntry::Preset(preset.to_owned()).stored();
    let changed = if on {
        s.store.allow_redirect(&entry, s.now()).await?
    } else {
        s.store.disallow_redirect(&entry).await?
    };
    if changed {
        s.audit(
            allow_event(on, AllowedEntry::Preset(preset.to_owned()), by),
            None,
            None,
        )
        .await;
    }
    Ok(changed)
}

/// Allows (`on`) or stops allowing a custom redirect URI (loopback URIs match any
/// port, RFC 8252 §7.3). False when nothing changed: no event then.
pub async fn set_redirect_uri(s: &Authority, uri: &str, on: bool, by: &Actor) -> OAuthResult<bool> {
    if AllowEntry::looks_like_preset(uri) {
        return Err(invalid("presets are enabled by name"));
    }
    let changed = if on {
        redirect_uri::validate_form(uri)
            .map_err(|e| OAuthError::new(ErrorCode::InvalidRedirectUri, e.to_string()))?;
        s.store.allow_redirect(uri, s.now()).await?
    } else {
        s.store.disallow_redirect(uri).await?
    };
    if changed {
        s.audit(
            allow_event(on, AllowedEntry::Uri(uri.to_owned()), by),
            None,
            None,
        )
        .await;
    }
    Ok(changed)
}

fn allow_event(on: bool, entry: AllowedEntry, by: &Actor) -> Event {
    let by = by.to_owned();
    if on {
        Event::RedirectAllowed { entry, by }
    } else {
        Event::RedirectDisallowed { entry, by }
    }
}

/// The redirect URIs of a form's textarea: one a line, blank lines skipped.
pub fn uri_lines(text: Option<&str>) -> Vec<String> {
    text.unwrap_or("")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect()
}
