//! Resource URIs in one normal form, so that a resource rule decides on the resource
//! the server will read, not on a spelling of it. `file:///srv/public/*` must not
//! admit `file:///srv/public/../secret/key`, `FILE:///srv/public/%2e%2e/secret/key` or
//! `file:///srv/public/..%2Fsecret`: a server resolving the path reads the secret.
//!
//! The normal form is RFC 3986 §6.2.2's syntax-based normalization: the scheme and the
//! host in lower case (§6.2.2.1), percent-encodings of unreserved characters decoded
//! and the others' hex digits in upper case (§6.2.2.2). Then, instead of removing dot
//! segments (§6.2.2.3, §5.2.4), a URI whose path still holds one is refused, as is one
//! with an encoded `/` or `\`, a raw `\`, a NUL or a control character: servers differ
//! in how they resolve those (a file server decodes `%2F` after splitting, another
//! before), and no client needs them to name a resource it was given.

/// Why a URI has no normal form the gateway will decide on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UriError {
    #[error("not a URI with a scheme")]
    NoScheme,
    #[error("a percent sign not followed by two hex digits")]
    BadEscape,
    #[error("a dot segment, an encoded '/' or '\\', or a control character")]
    Unsafe,
}

/// RFC 3986 §2.3: `ALPHA / DIGIT / "-" / "." / "_" / "~"`.
fn unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// `uri` in normal form, or why it has none.
pub fn normalize(uri: &str) -> Result<String, UriError> {
    let colon = uri.find(':').ok_or(UriError::NoScheme)?;
    let scheme = &uri[..colon];
    // RFC 3986 §3.1: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )
    let valid_scheme = scheme
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic())
        && scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
    if !valid_scheme {
        return Err(UriError::NoScheme);
    }
    let decoded = decode_unreserved(&uri[colon + 1..])?;
    if decoded.bytes().any(|b| b.is_ascii_control() || b == b'\\') {
        return Err(UriError::Unsafe);
    }
    let mut out = String::with_capacity(uri.len());
    out.push_str(&scheme.to_ascii_lowercase());
    out.push(':');
    let (hier, rest) = match decoded.find(['?', '#']) {
        Some(i) => decoded.split_at(i),
        None => (decoded.as_str(), ""),
    };
    let path = match hier.strip_prefix("//") {
        Some(after) => {
            let end = after.find('/').unwrap_or(after.len());
            let (authority, path) = after.split_at(end);
            out.push_str("//");
            // The host is case-insensitive (§3.2.2); userinfo is not.
            let (userinfo, host) = match authority.rfind('@') {
                Some(i) => authority.split_at(i + 1),
                None => ("", authority),
            };
            out.push_str(userinfo);
            out.push_str(&host.to_ascii_lowercase());
            path
        }
        None => hier,
    };
    let upper = path.to_ascii_uppercase();
    if upper.contains("%2F") || upper.contains("%5C") || upper.contains("%00") {
        return Err(UriError::Unsafe);
    }
    if path.split('/').any(|seg| seg == "." || seg == "..") {
        return Err(UriError::Unsafe);
    }
    out.push_str(path);
    out.push_str(rest);
    Ok(out)
}

/// Decodes the percent-encodings of unreserved characters and writes the others'
/// hex digits in upper case.
fn decode_unreserved(s: &str) -> Result<String, UriError> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'%' {
            out.push(b[i]);
            i += 1;
            continue;
        }
        let hex = |c: u8| (c as char).to_digit(16);
        let (Some(hi), Some(lo)) = (
            b.get(i + 1).copied().and_then(hex),
            b.get(i + 2).copied().and_then(hex),
        ) else {
            return Err(UriError::BadEscape);
        };
        let byte = (hi * 16 + lo) as u8;
        if unreserved(byte) {
            out.push(byte);
        } else {
            out.push(b'%');
            out.extend_from_slice(format!("{byte:02X}").as_bytes());
        }
        i += 3;
    }
    // Only ASCII was replaced by ASCII: the bytes are still the input's UTF-8.
    String::from_utf8(out).map_err(|_| UriError::BadEscape)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_of_one_resource_have_one_normal_form() {
        for (given, normal) in [
            ("file:///srv/public/a.txt", "file:///srv/public/a.txt"),
            ("FILE:///srv/public/%61.txt", "file:///srv/public/a.txt"),
            ("File:///srv/public/a%2etxt", "file:///srv/public/a.txt"),
            ("HTTPS://Example.COM/Docs/A", "https://example.com/Docs/A"),
            ("https://User@Example.com/x", "https://User@example.com/x"),
            (
                "demo://resource/static/%e2%82%ac",
                "demo://resource/static/%E2%82%AC",
            ),
            ("test://x/y?q=%7e#f", "test://x/y?q=~#f"),
            ("memo:insights", "memo:insights"),
        ] {
            assert_eq!(normalize(given).as_deref(), Ok(normal), "{given}");
        }
    }

    #[test]
    fn ways_out_of_a_directory_are_refused() {
        for uri in [
            "file:///srv/public/../secret/key",
            "file:///srv/public/./key",
            "file:///srv/public/%2e%2e/secret/key",
            "file:///srv/public/%2E%2E/secret/key",
            "file:///srv/public/..%2Fsecret/key",
            "file:///srv/public/..%2fsecret/key",
            "file:///srv/public/..%5Csecret",
            "file:///srv/public/..\\secret",
            "file:///srv/public/a%00b",
            "file:///srv/public/a\tb",
            "file:///srv/public/..",
        ] {
            assert_eq!(normalize(uri), Err(UriError::Unsafe), "{uri}");
        }
        assert_eq!(normalize("/srv/x"), Err(UriError::NoScheme));
        assert_eq!(normalize("1x:/a"), Err(UriError::NoScheme));
        assert_eq!(normalize("file:///a%zz"), Err(UriError::BadEscape));
        assert_eq!(normalize("file:///a%2"), Err(UriError::BadEscape));
    }
}
