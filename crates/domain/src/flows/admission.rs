//! Who may enter once a provider has vouched for someone. A person is (provider,
//! subject): an email is only a way to find the account an operator invited, and only
//! when the provider has verified it, it is of a domain the provider is trusted for,
//! and the account is not an administrator's.
//!
//! Why each rule: an email address proves nothing about who holds an account here
//! unless the provider is authoritative for its domain. A provider with allowed domains
//! is trusted for those alone (any other domain's addresses it may let anyone claim);
//! for Google, only the ID token's `hd` says an account belongs to a Workspace domain
//! (a consumer account may carry any address, and Google documents `hd` as the claim to
//! check, "Authenticate with a backend server"). An administrator's account is never
//! taken over by email: an operator links it by hand (`mcpgate idp link`).
//!
//! The flow [`admit`] reads what is known of the person, applies [`decide`] (a pure
//! function, every case in its table test), and does what it says: touch the link,
//! link by email, create the account, or refuse, audited with who it was. An admitted
//! person's groups at the provider, when it is configured to send them, then set their
//! memberships of the groups linked to it ([`groups::sync_from_provider`]).

use crate::audit::Event;
use crate::flows::groups;
use crate::flows::identities::{self, ProviderIdentity};
use crate::model::User;
use crate::{Authority, ErrorCode, OAuthError};

/// What a provider is trusted for, from its settings.
#[derive(Debug, Clone, Copy)]
pub struct Trust<'a> {
    /// The provider's name (as the links and the audit name it).
    pub name: &'a str,
    /// Email domains whose people it may vouch for (lower case); none: every domain.
    pub allowed_domains: &'a [String],
    /// Create an account on a first sign-in in an allowed domain.
    pub auto_create: bool,
    /// The provider asserts an account's organisation domain in the ID token (Google's
    /// `hd`), and only that decides the domain (a consumer account may carry any email).
    pub hosted_domains: bool,
}

impl Trust<'_> {
    pub fn domain_allowed(&self, domain: &str) -> bool {
        self.allowed_domains
            .iter()
            .any(|d| d.eq_ignore_ascii_case(domain))
    }
}

/// Who the provider vouched for, after every check of its protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vouched {
    /// The provider's stable identifier of the person (`sub`, GitHub's numeric `id`).
    pub subject: String,
    pub email: Option<String>,
    /// Whether the provider vouches for the email (OIDC `email_verified`, GitHub's
    /// verified primary email, Entra's `xms_edov`).
    pub email_verified: bool,
    /// The organisation domain the provider asserts (Google's `hd`), if any.
    pub hosted_domain: Option<String>,
    /// A name to suggest for a new account.
    pub preferred_username: Option<String>,
    /// The groups the provider lists for the person, when it is configured to be
    /// read (`None`: memberships are not touched; empty: the person is in none).
    pub groups: Option<Vec<String>>,
}

/// The decision for one sign-in.
#[derive(Debug, PartialEq, Eq)]
pub enum Admission {
    /// The identity is linked to this user already.
    Linked(User),
    /// Link the identity to this existing user (found by verified email), then sign in.
    LinkByEmail(User),
    /// Create an account for this verified email, link it, sign in.
    Create {
        email: String,
    },
    Refuse(Refusal),
}

/// Why someone stays out; each has its own page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Disabled,
    /// The provider gave no email, or did not verify it.
    EmailUnverified,
    /// The email (for Google with allowed domains: the account's Workspace domain,
    /// `hd`) is not of a domain this provider is trusted for.
    DomainNotAllowed,
    /// No account here, and none may be created for this person.
    NoAccount,
    /// Several accounts share the email: an operator must link one by hand.
    AmbiguousEmail,
    /// The email is an administrator's: an operator must link it by hand.
    AdministratorNotLinked,
}

impl Refusal {
    /// The page's title and text.
    pub fn message(self, provider: &str) -> (&'static str, String) {
        match self {
            Self::Disabled => (
                "Account disabled",
                "Your account here is disabled. Ask an administrator.".into(),
            ),
            Self::EmailUnverified => (
                "Email address not verified",
                format!(
                    "{provider} did not confirm that your email address is verified, so it \
                     cannot be used to sign you in here. Verify it at {provider} and try again."
                ),
            ),
            Self::DomainNotAllowed => (
                "This account cannot sign in here",
                format!(
                    "The account you used at {provider} is not one of the organizations \
                     allowed to sign in here through {provider}. Sign in with your \
                     organization's account, or ask an administrator."
                ),
            ),
            Self::NoAccount => (
                "No account for you here",
                format!(
                    "You signed in at {provider}, but there is no account for you here. \
                     Ask an administrator to invite you."
                ),
            ),
            Self::AmbiguousEmail => (
                "Your account cannot be chosen",
                "Several accounts here have your email address. Ask an administrator.".into(),
            ),
            Self::AdministratorNotLinked => (
                "An administrator must link this account",
                format!(
                    "Your email address belongs to an administrator's account here, which \
                     is never linked to {provider} automatically. An administrator must \
                     link your {provider} account to it."
                ),
            ),
        }
    }
}

/// Decides a sign-in. `linked`: the user (provider, subject) is linked to, if any;
/// `by_email`: users whose email is the identity's email.
pub fn decide(p: &Trust<'_>, id: &Vouched, linked: Option<User>, by_email: Vec<User>) -> Admission {
    if let Some(u) = linked {
        return if u.disabled {
            Admission::Refuse(Refusal::Disabled)
        } else {
            Admission::Linked(u)
        };
    }
    let Some(email) = id.email.as_deref().filter(|_| id.email_verified) else {
        return Admission::Refuse(Refusal::EmailUnverified);
    };
    if !domain_trusted(p, id, email) {
        return Admission::Refuse(Refusal::DomainNotAllowed);
    }
    match by_email.len() {
        0 => {}
        1 => {
            let u = by_email.into_iter().next().expect("one");
            return if u.disabled {
                Admission::Refuse(Refusal::Disabled)
            } else if u.is_admin {
                Admission::Refuse(Refusal::AdministratorNotLinked)
            } else {
                Admission::LinkByEmail(u)
            };
        }
        _ => return Admission::Refuse(Refusal::AmbiguousEmail),
    }
    // Creating an account needs allowed domains (settings refuse auto-create without).
    if p.auto_create && !p.allowed_domains.is_empty() {
        Admission::Create {
            email: email.to_owned(),
        }
    } else {
        Admission::Refuse(Refusal::NoAccount)
    }
}

/// Whether the provider is trusted for this verified email, to find or make an account
/// by it. Without allowed domains, any domain (the operator trusts the provider for
/// every address it verifies). With them: Google only through `hd` from the verified ID
/// token (never from the request), which must be the email's own domain and an allowed
/// one, so a consumer account (no `hd`) or another Workspace's is refused whatever its
/// address; every other provider, the email's domain.
fn domain_trusted(p: &Trust<'_>, id: &Vouched, email: &str) -> bool {
    if p.allowed_domains.is_empty() {
        return true;
    }
    let email_domain = email.rsplit_once('@').map(|(_, d)| d).unwrap_or("");
    if email_domain.is_empty() {
        return false;
    }
    match p.hosted_domains {
        true => id
            .hosted_domain
            .as_deref()
            .is_some_and(|hd| hd.eq_ignore_ascii_case(email_domain) && p.domain_allowed(hd)),
        false => p.domain_allowed(email_domain),
    }
}

/// A username for a new account: the email's local part, made safe; the caller adds
/// a suffix when it is taken.
pub fn username_for(email: &str) -> String {
    let local = email.split('@').next().unwrap_or("");
    let mut name: String = local
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        .take(32)
        .collect::<String>()
        .to_ascii_lowercase();
    if name.is_empty() {
        name = "user".into();
    }
    name
}

/// Why [`admit`] let nobody in.
#[derive(Debug)]
pub enum NotAdmitted {
    /// A rule refused the person (audited); the page says why.
    Refused(Refusal),
    /// The store failed: read as "no such person", it would create a second account
    /// for someone who has one.
    Unavailable(OAuthError),
}

impl From<OAuthError> for NotAdmitted {
    fn from(e: OAuthError) -> Self {
        Self::Unavailable(e)
    }
}

impl From<crate::StoreError> for NotAdmitted {
    fn from(e: crate::StoreError) -> Self {
        Self::Unavailable(e.into())
    }
}

/// Admits the person `id` the provider `p` vouched for: the user to sign in, or why
/// not. Refusals are audited with who it was, so an operator can link the identity by
/// hand when that is the remedy.
pub async fn admit(s: &Authority, p: &Trust<'_>, id: &Vouched) -> Result<User, NotAdmitted> {
    let linked = match s.store.user_identity(p.name, &id.subject).await? {
        Some(link) => s.store.user(&link.user_id).await?,
        None => None,
    };
    let by_email = match (&id.email, id.email_verified, &linked) {
        (Some(e), true, None) => s.store.users_by_email(e).await?,
        _ => Vec::new(),
    };
    let who = ProviderIdentity {
        provider: p.name,
        subject: &id.subject,
        email: id.email.as_deref(),
    };
    let refused = |r| async move {
        audit_refused(s, p.name, format!("{r:?}"), Some(id), None).await;
        NotAdmitted::Refused(r)
    };
    let user = match decide(p, id, linked, by_email) {
        Admission::Linked(u) => {
            let _ = s
                .store
                .touch_identity(p.name, &id.subject, id.email.as_deref(), s.now())
                .await;
            u
        }
        Admission::LinkByEmail(u) => match identities::link_by_email(s, who, &u).await {
            Ok(()) => u,
            // The rules refuse an administrator's account even if the decision did not.
            Err(e) if e.code == ErrorCode::AccessDenied => {
                return Err(refused(Refusal::AdministratorNotLinked).await);
            }
            Err(e) => return Err(e.into()),
        },
        Admission::Create { email } => {
            let name = username_of(&email, id);
            identities::provision(s, who, &name, &email).await?
        }
        Admission::Refuse(r) => return Err(refused(r).await),
    };
    // The provider's word on the person's groups holds from this sign-in on.
    if let Some(groups) = &id.groups {
        groups::sync_from_provider(s, p.name, &user.id, groups)
            .await
            .map_err(OAuthError::from)?;
    }
    Ok(user)
}

/// Records a refused sign-in at provider `provider`: why, who the provider said it
/// was (once verified), and the provider's own error code when it sent one.
pub async fn audit_refused(
    s: &Authority,
    provider: &str,
    reason: String,
    who: Option<&Vouched>,
    error: Option<String>,
) {
    let event = Event::IdpLoginRefused {
        provider: provider.to_owned(),
        reason,
        subject: who.map(|i| i.subject.clone()),
        email: who.and_then(|i| i.email.clone()),
        error,
    };
    s.audit(event, None, None).await;
}

/// The user name a new account is given: the provider's preferred one, else the
/// email's local part.
fn username_of(email: &str, id: &Vouched) -> String {
    id.preferred_username
        .as_deref()
        .map(|u| username_for(&format!("{u}@")))
        .filter(|u| u != "user")
        .unwrap_or_else(|| username_for(email))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What kind of provider a case is about: Google's accounts carry `hd`.
    #[derive(Clone, Copy)]
    enum Preset {
        Oidc,
        Google,
        Github,
    }

    /// A provider's trust, owned for the table.
    struct Provider {
        domains: Vec<String>,
        auto: bool,
        hosted: bool,
    }

    impl Provider {
        fn trust(&self) -> Trust<'_> {
            Trust {
                name: "p",
                allowed_domains: &self.domains,
                auto_create: self.auto,
                hosted_domains: self.hosted,
            }
        }
    }

    fn provider(preset: Preset, auto: bool, domains: &[&str]) -> Provider {
        Provider {
            domains: domains.iter().map(|d| d.to_string()).collect(),
            auto,
            hosted: matches!(preset, Preset::Google),
        }
    }

    fn identity(email: &str, verified: bool, hd: Option<&str>) -> Vouched {
        Vouched {
            subject: "sub-1".into(),
            email: Some(email.into()).filter(|e: &String| !e.is_empty()),
            email_verified: verified,
            hosted_domain: hd.map(str::to_owned),
            preferred_username: None,
            groups: None,
        }
    }

    fn user(email: &str, admin: bool, disabled: bool) -> User {
        User {
            id: "u1".into(),
            username: "alice".into(),
            email: Some(email.into()),
            password_hash: "!".into(),
            is_admin: admin,
            disabled,
            created_at: 0,
        }
    }

    /// (name, provider, identity, linked, by_email, expected)
    type Case = (
        &'static str,
        Provider,
        Vouched,
        Option<User>,
        Vec<User>,
        Want,
    );

    enum Want {
        Linked,
        LinkByEmail,
        Create,
        Refuse(Refusal),
    }

    /// Every case of the decision, named. `linked`: the account the identity is linked
    /// to already; `by_email`: accounts with the identity's email.
    #[test]
    fn every_sign_in_is_decided_by_its_rule() {
        use Preset::{Github, Google, Oidc};
        use Refusal::*;
        use Want::*;
        let a = |e: &str| user(e, false, false);
        let admin = |e: &str| user(e, true, false);
        let off = |e: &str| user(e, false, true);
        #[rustfmt::skip]
        let cases: Vec<Case> = vec![
            // an identity linked already enters, whatever its email, unless disabled
            ("linked, any email", provider(Oidc, false, &[]), identity("x@elsewhere.example", false, None), Some(a("a@example.com")), vec![], Linked),
            ("linked, disabled", provider(Oidc, false, &[]), identity("x@elsewhere.example", true, None), Some(off("a@example.com")), vec![], Refuse(Disabled)),
            ("linked administrator (by an operator)", provider(Oidc, false, &["example.com"]), identity("x@elsewhere.example", true, None), Some(admin("a@example.com")), vec![], Linked),
            // linking by email needs a verified email
            ("no allowed domains: verified email links", provider(Oidc, false, &[]), identity("a@example.com", true, None), None, vec![a("a@example.com")], LinkByEmail),
            ("unverified email never links", provider(Oidc, false, &[]), identity("a@example.com", false, None), None, vec![a("a@example.com")], Refuse(EmailUnverified)),
            ("no email", provider(Oidc, false, &[]), identity("", true, None), None, vec![], Refuse(EmailUnverified)),
            ("email of a disabled account", provider(Oidc, false, &[]), identity("a@example.com", true, None), None, vec![off("a@example.com")], Refuse(Disabled)),
            ("email shared by several accounts", provider(Oidc, false, &[]), identity("a@example.com", true, None), None, vec![a("a@example.com"), a("a@example.com")], Refuse(AmbiguousEmail)),
            ("no account, no auto-create", provider(Oidc, false, &[]), identity("new@example.com", true, None), None, vec![], Refuse(NoAccount)),
            // an administrator is never linked by email
            ("administrator's email", provider(Oidc, false, &[]), identity("root@example.com", true, None), None, vec![admin("root@example.com")], Refuse(AdministratorNotLinked)),
            ("administrator's email, allowed domain", provider(Oidc, true, &["example.com"]), identity("root@example.com", true, None), None, vec![admin("root@example.com")], Refuse(AdministratorNotLinked)),
            ("administrator's email, Workspace", provider(Google, true, &["corp.example"]), identity("root@corp.example", true, Some("corp.example")), None, vec![admin("root@corp.example")], Refuse(AdministratorNotLinked)),
            ("administrator's email, GitHub", provider(Github, false, &[]), identity("root@example.com", true, None), None, vec![admin("root@example.com")], Refuse(AdministratorNotLinked)),
            // with allowed domains, the provider is trusted for those alone
            ("allowed domain links", provider(Oidc, false, &["example.com"]), identity("a@example.com", true, None), None, vec![a("a@example.com")], LinkByEmail),
            ("allowed domain, any case", provider(Oidc, false, &["example.com"]), identity("a@EXAMPLE.com", true, None), None, vec![a("a@example.com")], LinkByEmail),
            ("another domain never links", provider(Oidc, false, &["example.com"]), identity("a@other.example", true, None), None, vec![a("a@other.example")], Refuse(DomainNotAllowed)),
            ("another domain on GitHub", provider(Github, false, &["example.com"]), identity("a@other.example", true, None), None, vec![a("a@other.example")], Refuse(DomainNotAllowed)),
            ("a subdomain is another domain", provider(Oidc, false, &["example.com"]), identity("a@sub.example.com", true, None), None, vec![a("a@sub.example.com")], Refuse(DomainNotAllowed)),
            // accounts are created only when allowed, for a verified email of an allowed domain
            ("created in an allowed domain", provider(Oidc, true, &["example.com"]), identity("new@example.com", true, None), None, vec![], Create),
            ("not created without auto-create", provider(Oidc, false, &["example.com"]), identity("new@example.com", true, None), None, vec![], Refuse(NoAccount)),
            ("not created in another domain", provider(Oidc, true, &["other.example"]), identity("new@example.com", true, None), None, vec![], Refuse(DomainNotAllowed)),
            ("not created for an unverified email", provider(Oidc, true, &["example.com"]), identity("new@example.com", false, None), None, vec![], Refuse(EmailUnverified)),
            ("a look-alike domain", provider(Oidc, true, &["example.com"]), identity("new@evil-example.com", true, None), None, vec![], Refuse(DomainNotAllowed)),
            ("a suffixed look-alike", provider(Oidc, true, &["example.com"]), identity("new@example.com.evil", true, None), None, vec![], Refuse(DomainNotAllowed)),
            ("no domain at all", provider(Oidc, true, &["example.com"]), identity("new@", true, None), None, vec![], Refuse(DomainNotAllowed)),
            // Google with allowed domains: only the ID token's hd, equal to the email's domain
            ("Workspace account, hd allowed", provider(Google, true, &["corp.example"]), identity("new@corp.example", true, Some("corp.example")), None, vec![], Create),
            ("Workspace account links", provider(Google, false, &["corp.example"]), identity("a@corp.example", true, Some("corp.example")), None, vec![a("a@corp.example")], LinkByEmail),
            ("consumer account (no hd), email in the domain: no create", provider(Google, true, &["corp.example"]), identity("new@corp.example", true, None), None, vec![], Refuse(DomainNotAllowed)),
            ("consumer account (no hd), email in the domain: no link", provider(Google, false, &["corp.example"]), identity("a@corp.example", true, None), None, vec![a("a@corp.example")], Refuse(DomainNotAllowed)),
            ("another Workspace, email in the domain", provider(Google, true, &["corp.example"]), identity("a@corp.example", true, Some("other.example")), None, vec![a("a@corp.example")], Refuse(DomainNotAllowed)),
            ("another Workspace's hd, allowed too, email elsewhere", provider(Google, true, &["corp.example", "other.example"]), identity("a@corp.example", true, Some("other.example")), None, vec![], Refuse(DomainNotAllowed)),
            ("hd allowed, email of another domain", provider(Google, true, &["corp.example"]), identity("a@gmail.example", true, Some("corp.example")), None, vec![], Refuse(DomainNotAllowed)),
            // Google without allowed domains: verified emails link as for any provider
            ("Google, no allowed domains, no hd: links", provider(Google, false, &[]), identity("a@example.com", true, None), None, vec![a("a@example.com")], LinkByEmail),
        ];
        for (name, p, id, linked, by_email, want) in cases {
            let got = decide(&p.trust(), &id, linked, by_email);
            let ok = match (&want, &got) {
                (Linked, Admission::Linked(_)) => true,
                (LinkByEmail, Admission::LinkByEmail(_)) => true,
                (Create, Admission::Create { email }) => Some(email) == id.email.as_ref(),
                (Refuse(r), Admission::Refuse(g)) => r == g,
                _ => false,
            };
            assert!(ok, "{name}: got {got:?}");
        }
    }

    #[test]
    fn usernames_from_emails_are_safe() {
        assert_eq!(username_for("Alice.Smith@example.com"), "alice.smith");
        assert_eq!(username_for("<b>@example.com"), "b");
        assert_eq!(username_for("@example.com"), "user");
    }
}
