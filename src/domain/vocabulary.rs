//! The program's own words for what an issue is about (issue tags) and what is done to recover
//! a customer (recovery actions). A contact centre writes its protocol in its own words ("app
//! crash", "courier redelivery"); the program file declares them, and the built-in vocabulary
//! serves when it does not.
//!
//! A tag or an action is an interned name: a copyable handle on one shared string, carried by
//! records, models and decisions as cheaply as an enum. Names are interned only once checked,
//! from a program file, a stored row or a model artifact; a request's text is looked up in the
//! serving vocabulary and never interned, so no client can grow the set.

use std::collections::HashMap;
use std::fmt;
use std::sync::LazyLock;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use ustr::Ustr;

use super::enums::{BuiltInAction, BuiltInTag, UnknownName};
use super::id::{HIDDEN_CHARACTERS, has_hidden_characters, shortened};

/// A tag or an action is a label, not prose.
pub const MAX_NAME_BYTES: usize = 64;
/// Each list of a vocabulary; the uplift model gives every action an input of its own.
pub const MAX_NAMES: usize = 256;
/// How many names an error lists before "and N more".
const NAMES_LISTED: usize = 20;

/// Why `name` cannot be a tag or an action.
fn check_name(name: &str) -> Result<(), String> {
    if name.trim().is_empty() {
        return Err("must not be empty".into());
    }
    if name.len() > MAX_NAME_BYTES {
        return Err(format!(
            "must be at most {MAX_NAME_BYTES} bytes, got {}",
            name.len()
        ));
    }
    if has_hidden_characters(name) {
        return Err(HIDDEN_CHARACTERS.into());
    }
    if name.trim() != name {
        return Err("must not start or end with whitespace".into());
    }
    Ok(())
}

/// What a list of names needs of its values: how each is checked, and its text.
trait Name: Copy {
    fn checked(name: &str) -> Result<Self, String>;
    fn text(&self) -> &'static str;
}

macro_rules! vocabulary_name {
    ($(#[$doc:meta])* $name:ident, $built_in:ty) => {
        $(#[$doc])*
        // Ordered by the text (ustr's order), so maps keyed by tag or action read
        // alphabetically.
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Ustr);

        impl $name {
            /// A name accepted before: read back from the store or a model artifact, or
            /// declared by a program file. Requests go through [`Vocabulary`] instead.
            pub fn named(name: &str) -> Result<Self, String> {
                check_name(name)?;
                Ok(Self(ustr::ustr(name)))
            }

            pub fn as_str(&self) -> &'static str {
                self.0.as_str()
            }

            /// The built-in value of this name, if it is one (the contract's enum carries it).
            pub fn built_in(&self) -> Option<$built_in> {
                self.as_str().parse().ok()
            }
        }

        /// How stored rows read back: any valid name, declared by whichever program served.
        impl std::str::FromStr for $name {
            type Err = UnknownName;

            fn from_str(name: &str) -> Result<Self, UnknownName> {
                Self::named(name).map_err(|_| UnknownName {
                    kind: stringify!($name),
                    name: shortened(name, MAX_NAME_BYTES).to_owned(),
                })
            }
        }

        impl Name for $name {
            fn checked(name: &str) -> Result<Self, String> {
                Self::named(name)
            }

            fn text(&self) -> &'static str {
                self.as_str()
            }
        }

        impl From<$built_in> for $name {
            fn from(value: $built_in) -> Self {
                Self(ustr::ustr(value.as_str()))
            }
        }

        impl PartialEq<$built_in> for $name {
            fn eq(&self, other: &$built_in) -> bool {
                self.as_str() == other.as_str()
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.as_str())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let name = String::deserialize(deserializer)?;
                Self::named(&name).map_err(|reason| {
                    serde::de::Error::custom(format!(
                        "{} {name:?} {reason}",
                        stringify!($name)
                    ))
                })
            }
        }
    };
}

vocabulary_name!(
    /// What an issue is about, in the program's words.
    IssueTag,
    BuiltInTag
);

vocabulary_name!(
    /// What was done to recover a customer, in the program's words.
    RecoveryAction,
    BuiltInAction
);

/// One list of names with its case-blind index: "App crash" finds "app crash".
#[derive(Debug, Clone, PartialEq)]
struct Names<T> {
    ordered: Vec<T>,
    by_folded: HashMap<String, T>,
}

impl<T: Name> Names<T> {
    fn new(what: &str, raw: &[String], problems: &mut Vec<String>) -> Self {
        let mut names = Self {
            ordered: Vec::with_capacity(raw.len()),
            by_folded: HashMap::with_capacity(raw.len()),
        };
        if raw.is_empty() {
            problems.push(format!("vocabulary.{what} must name at least one"));
        }
        if raw.len() > MAX_NAMES {
            problems.push(format!(
                "vocabulary.{what} may name at most {MAX_NAMES}, not {}",
                raw.len()
            ));
            return names;
        }
        for name in raw {
            match T::checked(name) {
                Err(reason) => problems.push(format!("vocabulary.{what}: {name:?} {reason}")),
                Ok(value) => {
                    if names.by_folded.insert(name.to_lowercase(), value).is_some() {
                        problems.push(format!(
                            "vocabulary.{what} names {name:?} twice (names are compared ignoring case)"
                        ));
                    } else {
                        names.ordered.push(value);
                    }
                }
            }
        }
        names
    }

    fn find(&self, name: &str) -> Option<T> {
        self.ordered
            .iter()
            .find(|value| value.text() == name)
            .or_else(|| self.by_folded.get(&name.to_lowercase()))
            .copied()
    }

    fn unknown(&self, name: &str, what: &str) -> String {
        let mut listed: Vec<&str> = self
            .ordered
            .iter()
            .take(NAMES_LISTED)
            .map(T::text)
            .collect();
        let more = self.ordered.len().saturating_sub(NAMES_LISTED);
        let more = if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        };
        listed.sort_unstable();
        format!(
            "{:?} is not one of the program's {what} ({}{more})",
            shortened(name, MAX_NAME_BYTES),
            listed.join(", ")
        )
    }
}

/// The tags and actions a program speaks in, and the tag an issue gets when nothing names one.
#[derive(Debug, Clone, PartialEq)]
pub struct Vocabulary {
    tags: Names<IssueTag>,
    actions: Names<RecoveryAction>,
    default_tag: Option<IssueTag>,
}

impl Vocabulary {
    /// The vocabulary the built-in program speaks: the contract's enums.
    pub fn built_in() -> &'static Self {
        static BUILT_IN: LazyLock<Vocabulary> = LazyLock::new(|| {
            let tags: Vec<String> = BuiltInTag::ALL.iter().map(|t| t.to_string()).collect();
            let actions: Vec<String> = BuiltInAction::ALL.iter().map(|a| a.to_string()).collect();
            let mut problems = Vec::new();
            let vocabulary = Vocabulary::new(
                &tags,
                &actions,
                Some(BuiltInTag::Other.as_str()),
                &mut problems,
            );
            assert!(problems.is_empty(), "the built-in vocabulary: {problems:?}");
            vocabulary
        });
        &BUILT_IN
    }

    /// Checks declared names, pushing each problem (with its key) onto `problems`.
    pub fn new(
        tags: &[String],
        actions: &[String],
        default_tag: Option<&str>,
        problems: &mut Vec<String>,
    ) -> Self {
        let tags = Names::<IssueTag>::new("tags", tags, problems);
        let actions = Names::<RecoveryAction>::new("actions", actions, problems);
        let default_tag = default_tag.and_then(|name| {
            let found = tags.find(name);
            if found.is_none() {
                problems.push(format!(
                    "vocabulary.default_tag {name:?} is not one of vocabulary.tags"
                ));
            }
            found
        });
        Self {
            tags,
            actions,
            default_tag,
        }
    }

    /// The declared tag `name` names, ignoring case; the error lists the declared ones.
    pub fn tag(&self, name: &str) -> Result<IssueTag, String> {
        self.tags
            .find(name)
            .ok_or_else(|| self.tags.unknown(name, "issue tags"))
    }

    /// The declared action `name` names, ignoring case; the error lists the declared ones.
    pub fn action(&self, name: &str) -> Result<RecoveryAction, String> {
        self.actions
            .find(name)
            .ok_or_else(|| self.actions.unknown(name, "recovery actions"))
    }

    /// The declared tags, in the file's order.
    pub fn tags(&self) -> &[IssueTag] {
        &self.tags.ordered
    }

    /// The declared actions, in the file's order.
    pub fn actions(&self) -> &[RecoveryAction] {
        &self.actions.ordered
    }

    /// The tag of a triggered issue that names none; `None` leaves such an issue untagged.
    pub fn default_tag(&self) -> Option<IssueTag> {
        self.default_tag
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn declared(tags: &[&str], actions: &[&str]) -> (Vocabulary, Vec<String>) {
        let owned = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        let mut problems = Vec::new();
        let vocabulary = Vocabulary::new(&owned(tags), &owned(actions), None, &mut problems);
        (vocabulary, problems)
    }

    #[test]
    fn names_are_found_ignoring_case_in_their_declared_spelling() {
        let (vocabulary, problems) = declared(
            &["app crash", "Late delivery"],
            &["voucher", "courier redelivery"],
        );
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(vocabulary.tag("App Crash").unwrap().as_str(), "app crash");
        assert_eq!(
            vocabulary.tag("late delivery").unwrap().as_str(),
            "Late delivery"
        );
        assert_eq!(vocabulary.action("VOUCHER").unwrap().as_str(), "voucher");
        let error = vocabulary.tag("billing").unwrap_err();
        assert_eq!(
            error,
            "\"billing\" is not one of the program's issue tags (Late delivery, app crash)"
        );
        assert_eq!(vocabulary.default_tag(), None);
    }

    #[test]
    fn a_bad_declaration_names_every_problem() {
        let long = "x".repeat(MAX_NAME_BYTES + 1);
        let (_, problems) = declared(&["crash", "CRASH", " padded", &long], &[]);
        assert_eq!(problems.len(), 4, "{problems:?}");
        assert!(problems[0].contains("\"CRASH\" twice"), "{problems:?}");
        assert!(problems[1].contains("whitespace"), "{problems:?}");
        assert!(problems[2].contains("at most 64 bytes"), "{problems:?}");
        assert!(problems[3].contains("vocabulary.actions must name at least one"));
    }

    #[test]
    fn an_unknown_name_is_echoed_cut_and_the_list_is_capped() {
        let many: Vec<String> = (0..30).map(|i| format!("tag {i:02}")).collect();
        let mut problems = Vec::new();
        let vocabulary = Vocabulary::new(&many, &["call".into()], None, &mut problems);
        let error = vocabulary.tag(&"é".repeat(10_000)).unwrap_err();
        assert!(error.len() < 400, "{error}");
        assert!(error.ends_with("and 10 more)"), "{error}");
    }

    #[test]
    fn the_built_in_vocabulary_is_the_contracts_enums() {
        let vocabulary = Vocabulary::built_in();
        assert_eq!(vocabulary.tags().len(), BuiltInTag::ALL.len());
        assert_eq!(vocabulary.actions().len(), BuiltInAction::ALL.len());
        assert_eq!(
            vocabulary.default_tag(),
            Some(IssueTag::from(BuiltInTag::Other))
        );
        let refund = vocabulary.action("refund").unwrap();
        assert_eq!(refund.built_in(), Some(BuiltInAction::Refund));
        assert_eq!(refund, BuiltInAction::Refund);
    }

    #[test]
    fn names_read_back_from_json_are_checked() {
        let tag: IssueTag = serde_json::from_str("\"app crash\"").unwrap();
        assert_eq!(serde_json::to_string(&tag).unwrap(), "\"app crash\"");
        assert!(serde_json::from_str::<IssueTag>("\"\"").is_err());
    }
}
