//! Password hashing with argon2id (default parameters: 19 MiB, 2 passes), off the
//! async threads. Unknown usernames are checked against a dummy hash so that a
//! response's timing does not tell whether an account exists.

use std::sync::OnceLock;

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier, phc::PasswordHash};

pub use mcpgate_domain::flows::admin::MAX_PASSWORD_LEN;

/// The rules' password hasher ([`mcpgate_domain::ports::PasswordHasher`]).
pub struct Argon2id;

#[async_trait::async_trait]
impl mcpgate_domain::ports::PasswordHasher for Argon2id {
    async fn hash(&self, password: String) -> String {
        hash(password).await
    }

    async fn verify(&self, password: String, phc: Option<String>) -> bool {
        verify(password, phc).await
    }
}

pub async fn hash(password: String) -> String {
    tokio::task::spawn_blocking(move || hash_blocking(&password))
        .await
        .expect("hashing task")
}

pub fn hash_blocking(password: &str) -> String {
    Argon2::default()
        .hash_password(password.as_bytes())
        .expect("argon2 hashing")
        .to_string()
}

/// Verifies `password` against `phc` (or against a dummy when there is no account).
pub async fn verify(password: String, phc: Option<String>) -> bool {
    tokio::task::spawn_blocking(move || {
        let known = phc.is_some();
        let phc = phc.unwrap_or_else(|| dummy().to_owned());
        let ok = PasswordHash::new(&phc).is_ok_and(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        });
        ok && known
    })
    .await
    .unwrap_or(false)
}

fn dummy() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| hash_blocking("mcpgate dummy password"))
}
