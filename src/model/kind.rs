//! The kinds of model the service trains and serves, each named once: the name the registry
//! stores, artifacts carry, versions start with and the command line takes.

use std::fmt;

use serde::{Deserialize, Serialize};

/// What a model predicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    /// Churn probability within the horizon, behind the health score.
    Health,
    /// Recovery uplift: retention after a failure if recovered minus if not.
    Uplift,
}

impl ModelKind {
    pub const ALL: [Self; 2] = [Self::Health, Self::Uplift];

    /// The stored name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Health => "health",
            Self::Uplift => "uplift",
        }
    }

    /// The kind stored as `name`, if this build knows it.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == name)
    }
}

impl fmt::Display for ModelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_parses_from_its_stored_name_and_serializes_as_it() {
        for kind in ModelKind::ALL {
            assert_eq!(ModelKind::parse(kind.as_str()), Some(kind));
            assert_eq!(
                serde_json::to_string(&kind).expect("serializes"),
                format!("\"{kind}\"")
            );
        }
        assert_eq!(ModelKind::parse("Health"), None);
    }
}
