//! Secrets the operator gives mcpgate, never on a command line (where `ps` and shell
//! history show them): from an environment variable or a file.
//!
//! The key-encryption key seals signing keys and identity-provider secrets at rest
//! ([`mcpgate_core::sealed`]). It comes from `MCPGATE_KEY_ENCRYPTION_KEY` (the key
//! itself), else `--key-encryption-key-file` / `MCPGATE_KEY_ENCRYPTION_KEY_FILE` /
//! `key_encryption_key_file` in the config file, else `key-encryption.key` in the
//! data directory, generated there (mode 0600) on first use of the embedded
//! database. Instances sharing a PostgreSQL database must share one key, so none is
//! generated for PostgreSQL: without one configured, secrets stay in clear and a
//! warning says so.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use mcpgate_core::sealed::{Sealer, WrappingKey};
use mcpgate_core::secret::Secret;

/// The key file generated in the data directory.
pub const KEY_FILE: &str = "key-encryption.key";
/// The environment variable holding the key itself.
pub const KEY_ENV: &str = "MCPGATE_KEY_ENCRYPTION_KEY";

/// Where the key-encryption keys are (global flags).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct KeyEncryptionArgs {
    /// File holding the 32-byte key that seals signing keys and identity-provider
    /// secrets at rest (base64 or hex). Default: `key-encryption.key` in the data
    /// directory, generated on first run (SQLite). `MCPGATE_KEY_ENCRYPTION_KEY` may
    /// hold the key itself instead.
    #[arg(long, global = true, env = "MCPGATE_KEY_ENCRYPTION_KEY_FILE")]
    pub key_encryption_key_file: Option<PathBuf>,
    /// Key files that sealed secrets before a rotation of the key-encryption key
    /// (repeatable): their secrets are opened and sealed again with the current key.
    #[arg(
        long = "previous-key-encryption-key-file",
        global = true,
        env = "MCPGATE_PREVIOUS_KEY_ENCRYPTION_KEY_FILES",
        value_delimiter = ','
    )]
    pub previous: Vec<PathBuf>,
}

/// The resolved sources of the key-encryption keys.
#[derive(Debug, Clone, Default)]
pub struct KeyEncryption {
    /// The key itself, from the environment.
    pub key: Option<Secret>,
    pub file: Option<PathBuf>,
    pub previous: Vec<PathBuf>,
}

impl KeyEncryption {
    /// Environment over flags over the config file.
    pub fn resolve(args: &KeyEncryptionArgs, file_setting: Option<&Path>) -> Self {
        Self {
            key: std::env::var(KEY_ENV)
                .ok()
                .filter(|v| !v.is_empty())
                .map(Secret::new),
            file: args
                .key_encryption_key_file
                .clone()
                .or_else(|| file_setting.map(Path::to_path_buf)),
            previous: args.previous.clone(),
        }
    }

    /// The sealer for a database in `dir` (`shared`: PostgreSQL, several instances);
    /// None when secrets stay in clear.
    pub fn sealer(&self, dir: &Path, shared: bool) -> anyhow::Result<Option<Sealer>> {
        let current = if let Some(k) = &self.key {
            Some(WrappingKey::parse(k.expose()).context(KEY_ENV)?)
        } else if let Some(f) = &self.file {
            Some(read_key(f)?)
        } else {
            let default = dir.join(KEY_FILE);
            if default.exists() {
                Some(read_key(&default)?)
            } else if shared {
                None
            } else {
                Some(generate_key(&default)?)
            }
        };
        let Some(current) = current else {
            return Ok(None);
        };
        let previous = self
            .previous
            .iter()
            .map(|f| read_key(f))
            .collect::<anyhow::Result<_>>()?;
        Ok(Some(Sealer::new(current, previous)))
    }
}

fn read_key(path: &Path) -> anyhow::Result<WrappingKey> {
    let text = read_secret_file(path, "key-encryption key")?;
    WrappingKey::parse(text.expose())
        .with_context(|| format!("reading the key-encryption key {}", path.display()))
}

/// Creates `path` with a new random key, readable by its owner only (0600). When
/// another process created it first, that key is used.
///
/// The key is written whole to a temporary file beside `path` and then linked into
/// place, which fails if `path` exists: a reader never sees a file that is empty or
/// half written, and two instances starting together on one data directory end up
/// with the same key instead of one sealing secrets with a key the other replaces.
fn generate_key(path: &Path) -> anyhow::Result<WrappingKey> {
    let (key, text) = WrappingKey::generate();
    let tmp = temp_beside(path);
    let written = private_file(&tmp).and_then(|mut f| {
        f.write_all(format!("{text}\n").as_bytes())
            .and_then(|()| f.sync_all())
    });
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("writing {}", tmp.display()));
    }
    let linked = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => {
            tracing::info!(path = %path.display(), key_id = key.id(), "generated the key-encryption key");
            Ok(key)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => read_key(path),
        Err(e) => Err(e).with_context(|| format!("creating {}", path.display())),
    }
}

/// A name for a temporary file in `path`'s directory (so that a link or rename to
/// `path` stays on one file system), hidden and unique.
pub fn temp_beside(path: &Path) -> PathBuf {
    path.with_file_name(format!(
        ".{}.{}",
        path.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("secret"),
        mcpgate_core::secret::random_id()
    ))
}

/// A new file (never an existing one) readable and writable by its owner only.
pub fn private_file(path: &Path) -> std::io::Result<std::fs::File> {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    o.open(path)
}

/// Reads a secret from a file: one line, its trailing newline dropped. Refuses an
/// empty file, and warns when others may read it.
pub fn read_secret_file(path: &Path, what: &str) -> anyhow::Result<Secret> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the {what} from {}", path.display()))?;
    let value = text.trim_end_matches(['\n', '\r']);
    if value.is_empty() {
        bail!("the {what} file {} is empty", path.display());
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o077 != 0) {
            tracing::warn!(path = %path.display(), "the {what} file is readable by others than its owner; chmod 600 it");
        }
    }
    Ok(Secret::new(value))
}

/// A person's new password, from `file`, else from standard input (never an
/// argument): 8 characters at least, bounded.
pub fn new_password(file: Option<&Path>) -> anyhow::Result<String> {
    let p = match file {
        Some(f) => read_secret_file(f, "password")?.expose().to_owned(),
        None => {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)?;
            s.trim_end_matches(['\n', '\r']).to_owned()
        }
    };
    if p.chars().count() < 8 {
        bail!("the password must have at least 8 characters");
    }
    if p.len() > mcpgate_server::pages::passwords::MAX_PASSWORD_LEN {
        bail!("the password is too long");
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir() -> PathBuf {
        let d =
            std::env::temp_dir().join(format!("mcpgate-kek-{}", mcpgate_core::secret::random_id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn the_embedded_default_generates_a_private_key_file_once() {
        let d = dir();
        let none = KeyEncryption::default();
        let first = none.sealer(&d, false).unwrap().unwrap();
        let second = none.sealer(&d, false).unwrap().unwrap();
        assert_eq!(first.current_id(), second.current_id());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(d.join(KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // a shared database gets no generated key
        let other = dir();
        assert!(none.sealer(&other, true).unwrap().is_none());
        assert!(!other.join(KEY_FILE).exists());
        let _ = std::fs::remove_dir_all(d);
        let _ = std::fs::remove_dir_all(other);
    }

    /// Instances starting together on one data directory: every one ends up with the
    /// key in the file, none reads a file still being written, none is left behind.
    #[test]
    fn instances_racing_to_generate_the_key_file_all_get_the_same_key() {
        const RACERS: usize = 8;
        for _ in 0..20 {
            let d = dir();
            let start = std::sync::Arc::new(std::sync::Barrier::new(RACERS));
            let racers: Vec<_> = (0..RACERS)
                .map(|_| {
                    let (d, start) = (d.clone(), start.clone());
                    std::thread::spawn(move || {
                        start.wait();
                        KeyEncryption::default()
                            .sealer(&d, false)
                            .map(|s| s.unwrap().current_id().to_owned())
                            .map_err(|e| format!("{e:#}"))
                    })
                })
                .collect();
            let ids: Vec<String> = racers
                .into_iter()
                .map(|t| t.join().unwrap().unwrap())
                .collect();
            let on_disk = read_key(&d.join(KEY_FILE)).unwrap();
            assert!(ids.iter().all(|id| id == on_disk.id()), "{ids:?}");
            let left: Vec<_> = std::fs::read_dir(&d).unwrap().collect();
            assert_eq!(left.len(), 1, "temporary files left behind: {left:?}");
            let _ = std::fs::remove_dir_all(d);
        }
    }

    #[test]
    fn bad_key_files_are_clear_errors() {
        let d = dir();
        let f = d.join("k");
        std::fs::write(&f, "not a key\n").unwrap();
        let e = KeyEncryption {
            file: Some(f.clone()),
            ..Default::default()
        };
        let msg = format!("{:#}", e.sealer(&d, false).unwrap_err());
        assert!(msg.contains("32 bytes"), "{msg}");
        std::fs::write(&f, "").unwrap();
        let msg = format!("{:#}", e.sealer(&d, false).unwrap_err());
        assert!(msg.contains("empty"), "{msg}");
        let _ = std::fs::remove_dir_all(d);
    }
}
