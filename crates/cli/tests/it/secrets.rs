//! Secrets never need a command line: each secret option has an environment variable
//! and a file form, and the first-run administrator password can go to a 0600 file
//! instead of the terminal. The CLI runs as the real binary.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use mcpgate_domain::store::prelude::*;
use mcpgate_store::Database;

/// The store of a data directory, as the CLI opens it.
async fn open_store(dir: &Path) -> Database {
    mcpgate::config::Storage {
        url: None,
        dir: dir.to_owned(),
        kek: Default::default(),
    }
    .open()
    .await
    .unwrap()
}

use crate::support::{TestApp, temp_dir};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_mcpgate"));
    c.env_remove("MCPGATE_KEY_ENCRYPTION_KEY");
    c
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn secret_file(dir: &Path, name: &str, value: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, format!("{value}\n")).unwrap();
    p
}

fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

async fn password_verifies(dir: &Path, user: &str, password: &str) -> bool {
    let store = open_store(dir).await;
    let hash = store
        .user_by_name(user)
        .await
        .unwrap()
        .unwrap()
        .password_hash;
    mcpgate_server::pages::passwords::verify(password.to_owned(), Some(hash)).await
}

#[tokio::test]
async fn the_first_run_password_can_go_to_a_private_file_instead_of_the_terminal() {
    let dir = temp_dir();
    let file = dir.join("admin-password");
    let mut child = bin()
        .arg("--data-dir")
        .arg(&dir)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("MCPGATE_ADMIN_PASSWORD_FILE", &file)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut banner = String::new();
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        banner.push_str(&line);
        banner.push('\n');
        if line.contains("change it with") {
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        banner.contains(&format!("written to {}", file.display())),
        "{banner}"
    );
    let password = std::fs::read_to_string(&file).unwrap().trim().to_owned();
    assert!(password.len() >= 32);
    assert!(
        !banner.contains(&password),
        "the password reached the terminal"
    );
    assert_eq!(mode(&file), 0o600);
    assert!(password_verifies(&dir, "admin", &password).await);
}

/// `serve` on `dir` with `args`, until its first-run banner has been printed (or it
/// exits): (the child, still running if it started, and what it printed).
fn serve_banner(dir: &Path, args: &[&str]) -> (std::process::Child, String) {
    let mut child = bin()
        .arg("--data-dir")
        .arg(dir)
        .arg("serve")
        .args(args)
        .env_remove("MCPGATE_LISTEN")
        .env_remove("MCPGATE_METRICS_LISTEN")
        .env_remove("MCPGATE_ADMIN_PASSWORD_FILE")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut banner = String::new();
    let mut out = BufReader::new(child.stdout.take().unwrap()).lines();
    for line in out.by_ref() {
        let line = line.unwrap();
        banner.push_str(&line);
        banner.push('\n');
        if line.contains("Connect a client") {
            break;
        }
    }
    // Keep reading, so that the server never writes to a closed pipe.
    std::thread::spawn(move || out.for_each(drop));
    (child, banner)
}

/// Signs in over HTTP at the server listening on `addr`: the status of the answer.
async fn sign_in(addr: &str, user: &str, password: &str) -> u16 {
    crate::support::install_crypto();
    let http = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = http
        .get(format!("http://{addr}/login"))
        .send()
        .await
        .unwrap();
    let cookies = page
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned())
        .collect::<Vec<_>>()
        .join("; ");
    let csrf = crate::support::Browser::csrf_of(&page.text().await.unwrap());
    http.post(format!("http://{addr}/login"))
        .header("cookie", cookies)
        .form(&[
            ("csrf", csrf.as_str()),
            ("username", user),
            ("password", password),
            ("next", "/apps"),
        ])
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// A first run that cannot bind its ports stops before it creates the administrator:
/// the one-time password is never printed by a process that then exits, and the
/// next start, on free ports, prints one that signs in.
#[tokio::test]
async fn a_first_run_that_cannot_listen_creates_no_administrator() {
    let dir = temp_dir();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = taken.local_addr().unwrap().to_string();
    for args in [
        &["--listen", &taken][..],
        &["--listen", "127.0.0.1:0", "--metrics-listen", &taken][..],
    ] {
        let out = bin()
            .arg("--data-dir")
            .arg(&dir)
            .arg("serve")
            .args(args)
            .env_remove("MCPGATE_LISTEN")
            .env_remove("MCPGATE_METRICS_LISTEN")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} started on a taken port");
        assert!(err.contains(&taken), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
        assert!(
            !String::from_utf8_lossy(&out.stdout).contains("First run"),
            "{args:?}"
        );
    }
    let (mut child, banner) = serve_banner(&dir, &["--listen", "127.0.0.1:0"]);
    let password = banner
        .lines()
        .find_map(|l| l.trim().strip_prefix("password:"))
        .map(|p| p.trim().to_owned());
    let addr = banner
        .lines()
        .find_map(|l| l.split_once(" listening on "))
        .map(|(_, a)| a.trim().to_owned());
    let signed_in = match (&password, &addr) {
        (Some(p), Some(a)) => Some((
            sign_in(a, "admin", "wrong password").await,
            sign_in(a, "admin", p).await,
        )),
        _ => None,
    };
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(password.is_some(), "no first-run password: {banner}");
    let (wrong, right) = signed_in.unwrap();
    assert_eq!(wrong, 401, "{banner}");
    assert_eq!(right, 303, "the first-run password signs in");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A password file that cannot be created stops the first run before the
/// administrator exists; the next start, with a writable path, still gets one.
#[tokio::test]
async fn a_first_run_whose_password_file_cannot_be_written_creates_no_administrator() {
    let dir = temp_dir();
    // A directory, so the path looks plausible; no file can be created in it.
    let unwritable = "/proc/self/admin-password";
    let out = bin()
        .arg("--data-dir")
        .arg(&dir)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--admin-password-file",
            unwritable,
        ])
        .env_remove("MCPGATE_LISTEN")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "started without its password file");
    assert!(err.contains("--admin-password-file"), "{err}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("First run"));
    let file = dir.join("admin-password");
    let file_arg = file.to_str().unwrap();
    let (mut child, banner) = serve_banner(
        &dir,
        &["--listen", "127.0.0.1:0", "--admin-password-file", file_arg],
    );
    let addr = banner
        .lines()
        .find_map(|l| l.split_once(" listening on "))
        .map(|(_, a)| a.trim().to_owned());
    let password = std::fs::read_to_string(&file).ok();
    let status = match (&addr, &password) {
        (Some(a), Some(p)) => Some(sign_in(a, "admin", p.trim()).await),
        _ => None,
    };
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(banner.contains("written to"), "{banner}");
    assert_eq!(
        status,
        Some(303),
        "the first-run password signs in: {banner}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn passwords_database_urls_and_provider_secrets_are_read_from_files() {
    let dir = temp_dir();
    let data = dir.join("data");
    // the database URL (which may carry a password) from a file
    let url = secret_file(
        &dir,
        "db-url",
        &format!("sqlite://{}", dir.join("from-file.db").display()),
    );
    let out = run(bin().arg("--database-file").arg(&url).arg("migrate"));
    assert!(out.contains("migrations applied"), "{out}");
    assert!(dir.join("from-file.db").exists());
    // a person's password
    let pw = secret_file(&dir, "pw", "a password from a file");
    run(bin()
        .arg("--data-dir")
        .arg(&data)
        .args(["user", "add", "bob", "--password-file"])
        .arg(&pw));
    assert!(password_verifies(&data, "bob", "a password from a file").await);
    let pw2 = secret_file(&dir, "pw2", "another password here");
    run(bin()
        .arg("--data-dir")
        .arg(&data)
        .args(["user", "passwd", "bob"])
        .env("MCPGATE_USER_PASSWORD_FILE", &pw2));
    assert!(password_verifies(&data, "bob", "another password here").await);
    // an identity provider's client secret
    let s = secret_file(&dir, "idp", "provider secret from a file");
    run(bin()
        .arg("--data-dir")
        .arg(&data)
        .args([
            "idp",
            "add",
            "corp",
            "--preset",
            "github",
            "--client-id",
            "cid",
        ])
        .arg("--client-secret-file")
        .arg(&s));
    let store = open_store(&data).await;
    let idps = store.identity_providers().await.unwrap();
    assert_eq!(idps[0].client_secret, "provider secret from a file");
    // an empty secret file is refused with a clear message
    let empty = secret_file(&dir, "empty", "");
    let out = bin()
        .arg("--database-file")
        .arg(&empty)
        .arg("migrate")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("is empty"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// `mcpgate mcp` takes its introspection client secret from a file: with the right
/// one a token is accepted, with a wrong one it is not (the authorization server
/// refuses the resource server, which then cannot validate: 503).
#[tokio::test]
async fn the_introspection_secret_is_read_from_a_file() {
    let app =
        TestApp::spawn_with(|c| c.rules.extra_resources = vec!["http://127.0.0.1:1/mcp".into()])
            .await;
    let secret = app.rs_credentials().await;
    let dir = temp_dir();
    for (file_secret, expected) in [(secret.expose(), 200), ("wrong", 503)] {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let public = format!("http://127.0.0.1:{port}");
        let f = secret_file(&dir, "introspection", file_secret);
        let mut child = bin()
            .args([
                "mcp",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--public-url",
                &public,
            ])
            .args(["--issuer", &app.base, "--introspection-client-id", "rs"])
            .env("MCPGATE_INTROSPECTION_CLIENT_SECRET_FILE", &f)
            .env("NO_PROXY", "*")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mcp = format!("{public}/mcp");
        // for this server, and for the authorization server's own resource, whose
        // introspection vouches only for tokens it could have issued
        let token = app.mint("op:add", |c| {
            c.aud = mcpgate_core::jwt::Audience::Many(vec![app.mcp_url(), mcp.clone()]);
            c.session_id = None;
        });
        let mut status = 0;
        for _ in 0..100 {
            let mut req = app.calc_as(&token, "add", 1.0, 2.0).build().unwrap();
            *req.url_mut() = mcp.parse().unwrap();
            if let Ok(r) = app.http.execute(req).await {
                status = r.status().as_u16();
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(status, expected, "secret {file_secret:?}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
