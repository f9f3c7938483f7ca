//! Who performed an act: what the audit record's `by` names, typed so that the pages,
//! the command line and the rules cannot spell it three ways.

use serde::{Serialize, Serializer};

/// Who acted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// The operator, at the command line (whoever runs the service).
    Operator,
    /// An administrator on the admin pages, by user name.
    Administrator(String),
    /// A person acting on their own things (their grants, their clients), by user id.
    Person(String),
    /// An identity provider's word at a sign-in through it (its groups claim), by the
    /// provider's name.
    Provider(String),
    /// An upstream MCP server's word: it refused the person's token (connected
    /// accounts), by the upstream's name.
    Upstream(String),
}

impl std::fmt::Display for Actor {
    /// `operator`, `admin:<name>`, `user:<id>`: the form the audit record keeps.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Operator => f.write_str("operator"),
            Self::Administrator(name) => write!(f, "admin:{name}"),
            Self::Person(id) => write!(f, "user:{id}"),
            Self::Provider(name) => write!(f, "idp:{name}"),
            Self::Upstream(name) => write!(f, "upstream:{name}"),
        }
    }
}

impl Serialize for Actor {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_actor_is_recorded_in_its_one_form() {
        assert_eq!(Actor::Operator.to_string(), "operator");
        assert_eq!(Actor::Administrator("ada".into()).to_string(), "admin:ada");
        assert_eq!(Actor::Person("u1".into()).to_string(), "user:u1");
        assert_eq!(Actor::Provider("okta".into()).to_string(), "idp:okta");
        assert_eq!(
            Actor::Upstream("files".into()).to_string(),
            "upstream:files"
        );
        assert_eq!(
            serde_json::to_value(Actor::Person("u1".into())).unwrap(),
            "user:u1"
        );
    }
}
