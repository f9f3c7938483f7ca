//! Scopes: space-delimited, case-sensitive tokens (RFC 6749 §3.3).

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Longest scope token we accept; real scopes are short, and a bound keeps hostile input small.
pub const MAX_SCOPE_TOKEN_LEN: usize = 128;
/// Most scope tokens in one request.
pub const MAX_SCOPES: usize = 64;

/// Why a scope string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScopeError {
    #[error("scope token {0:?} contains a character RFC 6749 §3.3 does not allow")]
    InvalidChar(String),
    #[error("a scope token is longer than {MAX_SCOPE_TOKEN_LEN} characters")]
    TooLong,
    #[error("more than {MAX_SCOPES} scope tokens")]
    TooMany,
}

/// A set of scope tokens, kept sorted so that its string form is deterministic.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct ScopeSet(BTreeSet<String>);

impl ScopeSet {
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses a space-delimited scope string. Empty tokens (repeated spaces) are ignored.
    pub fn parse(s: &str) -> Result<Self, ScopeError> {
        let mut set = BTreeSet::new();
        for token in s.split(' ').filter(|t| !t.is_empty()) {
            if token.len() > MAX_SCOPE_TOKEN_LEN {
                return Err(ScopeError::TooLong);
            }
            // scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
            if !token
                .bytes()
                .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
            {
                return Err(ScopeError::InvalidChar(token.chars().take(32).collect()));
            }
            set.insert(token.to_owned());
            if set.len() > MAX_SCOPES {
                return Err(ScopeError::TooMany);
            }
        }
        Ok(Self(set))
    }

    pub fn from_tokens<I, S>(tokens: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self(tokens.into_iter().map(Into::into).collect())
    }

    pub fn contains(&self, scope: &str) -> bool {
        self.0.contains(scope)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }

    /// True when every scope of `other` is in `self`.
    pub fn is_superset(&self, other: &ScopeSet) -> bool {
        self.0.is_superset(&other.0)
    }

    pub fn union(&self, other: &ScopeSet) -> ScopeSet {
        Self(self.0.union(&other.0).cloned().collect())
    }

    pub fn intersection(&self, other: &ScopeSet) -> ScopeSet {
        Self(self.0.intersection(&other.0).cloned().collect())
    }

    pub fn difference(&self, other: &ScopeSet) -> ScopeSet {
        Self(self.0.difference(&other.0).cloned().collect())
    }
}

impl fmt::Display for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for s in &self.0 {
            if !first {
                f.write_str(" ")?;
            }
            f.write_str(s)?;
            first = false;
        }
        Ok(())
    }
}

impl Serialize for ScopeSet {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ScopeSet {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        ScopeSet::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_sorts_and_dedups() {
        let s = ScopeSet::parse("op:sub  op:add op:add").unwrap();
        assert_eq!(s.to_string(), "op:add op:sub");
    }

    #[test]
    fn parse_rejects_quote_and_backslash() {
        assert!(ScopeSet::parse("a\"b").is_err());
        assert!(ScopeSet::parse("a\\b").is_err());
        assert!(ScopeSet::parse("caf\u{e9}").is_err());
    }

    #[test]
    fn parse_bounds_size() {
        assert_eq!(ScopeSet::parse(&"x".repeat(129)), Err(ScopeError::TooLong));
        let many: Vec<String> = (0..65).map(|i| format!("s{i}")).collect();
        assert_eq!(ScopeSet::parse(&many.join(" ")), Err(ScopeError::TooMany));
    }

    #[test]
    fn superset_and_difference() {
        let granted = ScopeSet::parse("op:add op:sub").unwrap();
        let need = ScopeSet::parse("op:add").unwrap();
        assert!(granted.is_superset(&need));
        assert!(!need.is_superset(&granted));
        assert_eq!(granted.difference(&need).to_string(), "op:sub");
    }
}
