//! The return path after sign-in, kept on the issuer's origin.

/// Where to send a person after signing in: `next` resolved against the public URL,
/// kept only when it lands on the same origin; otherwise the connected-apps page.
///
/// Browsers strip tabs and newlines from URLs and read `\\` as `/` (WHATWG URL
/// parsing), so `/<TAB>/evil.example` or `/\\evil.example` would leave the site once the
/// browser follows the redirect. Any control character or backslash, raw or
/// percent-encoded, refuses the value outright; the answer is an absolute URL, so no
/// browser resolves it again.
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
    let within = match n.starts_with('/') && !n.starts_with("//") {
        true => format!("{}{n}", crate::mount::base_path(issuer)),
        false => n.to_owned(),
    };
    match base.join(&within) {
        Ok(u)
            if u.origin() == base.origin() && u.username().is_empty() && u.password().is_none() =>
        {
            u.to_string()
        }
        _ => fallback(),
    }
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
}

#[cfg(test)]
mod proptests {
    //! `PROPTEST_CASES=100000 cargo test -p mcpgate-server proptests` runs them longer.
    use proptest::prelude::*;

    use crate::proptest_cases as cases;

    proptest! {
        #![proptest_config(cases())]

        /// Whatever `next` is, the redirect after sign-in stays on the issuer's origin
        /// and carries nothing a browser would rewrite.
        #[test]
        fn next_never_leaves_the_origin(
            pieces in proptest::collection::vec(prop_oneof![
                Just("/"), Just("\\"), Just("\t"), Just("\n"), Just("%09"), Just("%5C"), Just("%2F"),
                Just("@"), Just(":"), Just("evil.example"), Just("https:"), Just("."), Just("#"), Just("?"),
                Just("%25"), Just("apps"),
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
        }
    }
}
