//! The return path after sign-in, kept on the issuer's origin and under its path.

/// Where to send a person after signing in: `next` resolved against the public URL,
/// kept only when it lands on the same origin *and under the public URL's path*;
/// otherwise the connected-apps page.
///
/// Browsers strip tabs and newlines from URLs and read `\\` as `/` (WHATWG URL
/// parsing), so `/<TAB>/evil.example` or `/\\evil.example` would leave the site once the
/// browser follows the redirect. Any control character or backslash, raw or
/// percent-encoded, refuses the value outright; the answer is an absolute URL, so no
/// browser resolves it again.
///
/// Mounted under a path (`https://host/oauth/2.1`), the rest of the origin belongs to
/// other applications: `next=/../../other-app/x` must not send a signed-in person
/// there (an open redirect within the origin, OAuth 2.1 §7.12.2). The path is checked
/// as a browser resolves it (dot segments, `%2e` for `.`: WHATWG URL "path state") and
/// again as a server or proxy in front might read it (percent-decoded, repeated
/// slashes merged, dot segments resolved); both must lie under the base path.
pub fn safe_next(issuer: &str, next: Option<&str>) -> String {
    let base = url::Url::parse(issuer).expect("the issuer is a URL");
    let fallback = || format!("{}/apps", issuer.trim_end_matches('/'));
    let Some(n) = next else {
        return fallback();
    };
    let decoded: String = percent_decode_lossy(n);
    let hostile = |s: &str| s.chars().any(|c| c.is_control() || c == '\\');
    if n.is_empty() || n.len() >= 2048 || hostile(n) || hostile(&decoded) {
        return fallback();
    }
    // Our own return paths are written as if at the root (see `crate::mount`): a
    // root-relative one is under the issuer's path.
    let base_path = crate::mount::base_path(issuer);
    let within = match n.starts_with('/') && !n.starts_with("//") {
        true => format!("{base_path}{n}"),
        false => n.to_owned(),
    };
    match base.join(&within) {
        Ok(u)
            if u.origin() == base.origin()
                && u.username().is_empty()
                && u.password().is_none()
                && under(&base_path, u.path())
                && under(&base_path, &normalized(&percent_decode_lossy(u.path()))) =>
        {
            u.to_string()
        }
        _ => fallback(),
    }
}

/// Whether `path` is `base` or below it (`base` has no trailing slash; `""` is the
/// whole origin).
fn under(base: &str, path: &str) -> bool {
    base.is_empty()
        || path == base
        || path
            .strip_prefix(base)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// `path` as a lenient server reads it: repeated slashes merged and dot segments
/// resolved (RFC 3986 §5.2.4), never above the root.
fn normalized(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for seg in path.split('/').filter(|s| !s.is_empty()) {
        match seg {
            "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s),
        }
    }
    format!("/{}", out.join("/"))
}

/// Percent-decodes repeatedly (a few rounds), so doubly encoded bytes are seen too.
fn percent_decode_lossy(s: &str) -> String {
    let mut cur = s.as_bytes().to_vec();
    for _ in 0..3 {
        let mut out = Vec::with_capacity(cur.len());
        let mut i = 0;
        while i < cur.len() {
            let hex = |b: u8| (b as char).to_digit(16);
            match (cur[i], cur.get(i + 1), cur.get(i + 2)) {
                (b'%', Some(&h), Some(&l)) if hex(h).is_some() && hex(l).is_some() => {
                    out.push((hex(h).unwrap_or(0) * 16 + hex(l).unwrap_or(0)) as u8);
                    i += 3;
                }
                (b, _, _) => {
                    out.push(b);
                    i += 1;
                }
            }
        }
        if out == cur {
            break;
        }
        cur = out;
    }
    String::from_utf8_lossy(&cur).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_stays_on_this_site() {
        let iss = "https://as.example";
        assert_eq!(
            safe_next(iss, Some("/consent?request=x")),
            "https://as.example/consent?request=x"
        );
        assert_eq!(
            safe_next(iss, Some("https://as.example/clients")),
            "https://as.example/clients"
        );
        for bad in [
            "//evil.example/x",
            "https://evil.example",
            "/\\evil.example",
            "\\\\evil.example",
            "/\t/evil.example",
            "/\n/evil.example",
            "\t//evil.example",
            "/%09/evil.example",
            "/%5C%5Cevil.example",
            "/%255C%255Cevil.example",
            "/%0d%0aSet-Cookie:x=1",
            "javascript:alert(1)",
            "https://as.example@evil.example/",
            "https://user@as.example/",
            "http://as.example/",
            "https://as.example:444/",
            "",
        ] {
            assert_eq!(
                safe_next(iss, Some(bad)),
                "https://as.example/apps",
                "{bad:?}"
            );
        }
    }

    /// Mounted under a path, the rest of the origin is someone else's: every way of
    /// climbing out (dot segments, encoded dots or slashes, merged slashes, backslashes,
    /// an absolute URL elsewhere on the origin) falls back to the default.
    #[test]
    fn next_never_leaves_the_base_path() {
        let iss = "https://as.example/oauth/2.1";
        let apps = "https://as.example/oauth/2.1/apps";
        assert_eq!(
            safe_next(iss, Some("/consent?request=x")),
            "https://as.example/oauth/2.1/consent?request=x"
        );
        assert_eq!(safe_next(iss, Some("/a/../apps")), apps);
        assert_eq!(
            safe_next(iss, Some("https://as.example/oauth/2.1/clients")),
            "https://as.example/oauth/2.1/clients"
        );
        assert_eq!(
            safe_next(iss, Some("/x//y")),
            "https://as.example/oauth/2.1/x//y"
        );
        for bad in [
            "/../../other-app/x",
            "/..",
            "/../2.10/x",
            "/a/../../../other-app",
            "/%2e%2e/%2e%2e/other-app/x",
            "/%2E%2E/%2E%2E/other-app/x",
            "/.%2e/.%2e/other-app/x",
            "/..%2f..%2fother-app/x",
            "/..%2F..%2Fother-app/x",
            "/%252e%252e/%252e%252e/other-app/x",
            "/..\\..\\other-app/x",
            "/..%5c..%5cother-app/x",
            "//..//..//other-app/x",
            "https://as.example/other-app/x",
            "https://as.example/oauth/2.10/x",
            "https://as.example/oauth/2.1/../../other-app",
            "../../other-app",
        ] {
            let out = safe_next(iss, Some(bad));
            assert_eq!(out, apps, "{bad:?} -> {out:?}");
        }
    }
}

#[cfg(test)]
mod proptests {
    //! `PROPTEST_CASES=100000 cargo test -p mcpgate-server proptests` runs them longer.
    use proptest::prelude::*;

    use crate::proptest_cases as cases;

    proptest! {
        #![proptest_config(cases())]

        /// Whatever `next` is, the redirect after sign-in stays on the issuer's origin,
        /// under its path, and carries nothing a browser would rewrite.
        #[test]
        fn next_never_leaves_the_origin_or_the_base_path(
            pieces in proptest::collection::vec(prop_oneof![
                Just("/"), Just("\\"), Just("\t"), Just("\n"), Just("%09"), Just("%5C"), Just("%2F"),
                Just("@"), Just(":"), Just("evil.example"), Just("https:"), Just("."), Just("#"), Just("?"),
                Just("%25"), Just("apps"), Just(".."), Just("%2e"), Just("%2E%2e"), Just("%2f"),
                Just("base"), Just("https://as.example/"),
            ], 0..8),
            tail in ".{0,10}",
        ) {
            let iss = "https://as.example/base";
            let next = format!("{}{tail}", pieces.concat());
            let out = super::safe_next(iss, Some(&next));
            prop_assert!(!out.chars().any(|c| c.is_control() || c == '\\'), "{:?} -> {:?}", next, out);
            let u = url::Url::parse(&out).unwrap();
            prop_assert_eq!(u.origin(), url::Url::parse(iss).unwrap().origin(), "{:?} -> {:?}", next, out);
            prop_assert!(u.username().is_empty() && u.password().is_none());
            // Under the base path as the browser reads it, and as a server decoding
            // and normalizing it would.
            let decoded = super::normalized(&super::percent_decode_lossy(u.path()));
            for path in [u.path(), decoded.as_str()] {
                prop_assert!(
                    path == "/base" || path.starts_with("/base/"),
                    "{:?} -> {:?} ({:?})", next, out, path
                );
            }
        }
    }
}
