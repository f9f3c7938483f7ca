//! Who may enter once a provider has vouched for someone. A person is (provider,
//! subject): an email is only a way to find the account an operator invited, and only
//! when the provider has verified it.

use mcpgate_store::User;

use super::{Identity, IdpSettings, Preset};

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
    /// No account here, and none may be created for this person.
    NoAccount,
    /// Several accounts share the email: an operator must link one by hand.
    AmbiguousEmail,
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
        }
    }
}

/// Decides a sign-in. `linked`: the user (provider, subject) is linked to, if any;
/// `by_email`: users whose email is the identity's email.
pub fn decide(
    p: &IdpSettings,
    id: &Identity,
    linked: Option<User>,
    by_email: Vec<User>,
) -> Admission {
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
    match by_email.len() {
        0 => {}
        1 => {
            let u = by_email.into_iter().next().expect("one");
            return if u.disabled {
                Admission::Refuse(Refusal::Disabled)
            } else {
                Admission::LinkByEmail(u)
            };
        }
        _ => return Admission::Refuse(Refusal::AmbiguousEmail),
    }
    if p.auto_create && domain_allowed(p, id, email) {
        Admission::Create {
            email: email.to_owned(),
        }
    } else {
        Admission::Refuse(Refusal::NoAccount)
    }
}

/// Google Workspace accounts are matched by `hd` from the verified ID token (never from
/// the request); a consumer account (no `hd`) by its email's domain. Others: the
/// verified email's domain.
fn domain_allowed(p: &IdpSettings, id: &Identity, email: &str) -> bool {
    let email_domain = email.rsplit_once('@').map(|(_, d)| d).unwrap_or("");
    match (&id.hosted_domain, p.preset) {
        (Some(hd), Preset::Google) => p.domain_allowed(hd) && email_domain.eq_ignore_ascii_case(hd),
        _ => !email_domain.is_empty() && p.domain_allowed(email_domain),
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

#[cfg(test)]
mod tests {
    use super::*;
    use mcpgate_core::secret::Secret;

    fn provider(preset: Preset, auto: bool, domains: &[&str]) -> IdpSettings {
        IdpSettings {
            name: "p".into(),
            display_name: "P".into(),
            preset,
            issuer: "https://idp.example".into(),
            client_id: "c".into(),
            client_secret: Secret::new("s"),
            allowed_domains: domains.iter().map(|d| d.to_string()).collect(),
            auto_create: auto,
        }
    }

    fn identity(email: &str, verified: bool) -> Identity {
        Identity {
            subject: "sub-1".into(),
            email: Some(email.into()),
            email_verified: verified,
            hosted_domain: None,
            preferred_username: None,
        }
    }

    fn user(disabled: bool) -> User {
        User {
            id: "u1".into(),
            username: "alice".into(),
            email: Some("alice@example.com".into()),
            password_hash: "!".into(),
            is_admin: false,
            disabled,
            created_at: 0,
        }
    }

    #[test]
    fn a_linked_identity_enters_unless_disabled_whatever_its_email() {
        let p = provider(Preset::Oidc, false, &[]);
        let id = identity("other@elsewhere.example", false);
        assert_eq!(
            decide(&p, &id, Some(user(false)), vec![]),
            Admission::Linked(user(false))
        );
        assert_eq!(
            decide(&p, &id, Some(user(true)), vec![]),
            Admission::Refuse(Refusal::Disabled)
        );
    }

    #[test]
    fn linking_by_email_needs_a_verified_email() {
        let p = provider(Preset::Oidc, false, &[]);
        assert_eq!(
            decide(
                &p,
                &identity("alice@example.com", true),
                None,
                vec![user(false)]
            ),
            Admission::LinkByEmail(user(false))
        );
        assert_eq!(
            decide(
                &p,
                &identity("alice@example.com", false),
                None,
                vec![user(false)]
            ),
            Admission::Refuse(Refusal::EmailUnverified)
        );
        let mut no_email = identity("x@example.com", true);
        no_email.email = None;
        assert_eq!(
            decide(&p, &no_email, None, vec![]),
            Admission::Refuse(Refusal::EmailUnverified)
        );
        assert_eq!(
            decide(
                &p,
                &identity("alice@example.com", true),
                None,
                vec![user(true)]
            ),
            Admission::Refuse(Refusal::Disabled)
        );
        assert_eq!(
            decide(
                &p,
                &identity("alice@example.com", true),
                None,
                vec![user(false), user(false)]
            ),
            Admission::Refuse(Refusal::AmbiguousEmail)
        );
    }

    #[test]
    fn accounts_are_created_only_when_allowed_for_a_verified_email_of_an_allowed_domain() {
        let id = identity("new@example.com", true);
        assert_eq!(
            decide(
                &provider(Preset::Oidc, true, &["example.com"]),
                &id,
                None,
                vec![]
            ),
            Admission::Create {
                email: "new@example.com".into()
            }
        );
        assert_eq!(
            decide(
                &provider(Preset::Oidc, false, &["example.com"]),
                &id,
                None,
                vec![]
            ),
            Admission::Refuse(Refusal::NoAccount),
            "without auto-create"
        );
        assert_eq!(
            decide(
                &provider(Preset::Oidc, true, &["other.example"]),
                &id,
                None,
                vec![]
            ),
            Admission::Refuse(Refusal::NoAccount),
            "another domain"
        );
        assert_eq!(
            decide(
                &provider(Preset::Oidc, true, &["example.com"]),
                &identity("new@example.com", false),
                None,
                vec![]
            ),
            Admission::Refuse(Refusal::EmailUnverified)
        );
        // a look-alike domain is not the allowed one
        assert_eq!(
            decide(
                &provider(Preset::Oidc, true, &["example.com"]),
                &identity("new@evil-example.com", true),
                None,
                vec![]
            ),
            Admission::Refuse(Refusal::NoAccount)
        );
        assert_eq!(
            decide(
                &provider(Preset::Oidc, true, &["example.com"]),
                &identity("new@example.com.evil", true),
                None,
                vec![]
            ),
            Admission::Refuse(Refusal::NoAccount)
        );
    }

    #[test]
    fn google_workspace_accounts_are_matched_by_hd() {
        let p = provider(Preset::Google, true, &["corp.example"]);
        let mut id = identity("new@corp.example", true);
        id.hosted_domain = Some("corp.example".into());
        assert!(matches!(
            decide(&p, &id, None, vec![]),
            Admission::Create { .. }
        ));
        id.hosted_domain = Some("other.example".into());
        assert_eq!(
            decide(&p, &id, None, vec![]),
            Admission::Refuse(Refusal::NoAccount)
        );
    }

    #[test]
    fn usernames_from_emails_are_safe() {
        assert_eq!(username_for("Alice.Smith@example.com"), "alice.smith");
        assert_eq!(username_for("<b>@example.com"), "b");
        assert_eq!(username_for("@example.com"), "user");
    }
}
