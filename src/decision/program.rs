//! The recovery program's configuration: eligibility criteria, the protocol (tag -> allowed
//! actions and their costs), the frontline authority limit, response-time targets, the
//! holdout share, the prior's assumed quality, and the vocabulary of tags and actions it
//! speaks. Parsed from TOML and checked once; a
//! [`Program`] is always valid.

use std::collections::BTreeMap;

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::domain::{BuiltInAction, BuiltInTag, IssueTag, RecoveryAction, Vocabulary};

/// The program served when no file is given; documented line by line.
pub const DEFAULT_PROGRAM_TOML: &str = include_str!("default_program.toml");

/// A program file that cannot be served, with every problem found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid program configuration: {}", .problems.join("; "))]
pub struct ProgramError {
    pub problems: Vec<String>,
}

impl ProgramError {
    fn one(problem: impl Into<String>) -> Self {
        Self {
            problems: vec![problem.into()],
        }
    }
}

/// Which events flag a customer for recovery.
#[derive(Debug, Clone, PartialEq)]
pub struct Eligibility {
    /// Any interaction flagged as a failure.
    pub failure: bool,
    /// A survey answer at or under these scores.
    pub max_csat: Option<u8>,
    pub max_nps: Option<u8>,
    pub max_recovery_rating: Option<u8>,
    /// `count` failures within `within_days` before the decision.
    pub repeat_failures: Option<RepeatFailures>,
    /// How far back the latest qualifying event is looked for when no trigger is given.
    pub lookback_days: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepeatFailures {
    pub count: u32,
    pub within_days: u32,
}

/// What an action costs for a customer: a fixed amount plus a share of their monthly value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ActionCost {
    pub action: RecoveryAction,
    pub cost: f64,
    pub share_of_monthly_value: f64,
}

impl ActionCost {
    pub fn for_customer(&self, annual_value: f64) -> f64 {
        let amount = self.cost + self.share_of_monthly_value * annual_value / 12.0;
        (amount * 100.0).round() / 100.0
    }
}

/// Response-time targets.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResponseTargets {
    pub target_hours: f64,
    pub high_value_annual: f64,
    pub high_value_factor: f64,
    pub aging_half_life_hours: f64,
    pub min_hours: f64,
}

/// The holdout group: `fraction` of customers, chosen by a digest of `salt` and the id.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HoldoutRule {
    pub fraction: f64,
    pub salt: String,
}

/// A valid program configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Program {
    /// A digest of the TOML text: what decisions record as the program they followed.
    pub version: String,
    /// The TOML it was read from.
    pub toml: String,
    pub eligibility: Eligibility,
    /// Re-survey score (1–7) at or above which a recovery counts as recovered.
    pub recovered_at_or_above: u8,
    pub frontline_limit: f64,
    pub response: ResponseTargets,
    pub holdout: HoldoutRule,
    /// The recovery rating the prior assumes when the caller gives none.
    pub prior_quality: u8,
    /// Which uplift an investment must pay for itself at.
    pub invest_on: InvestOn,
    /// The tags and actions records, requests and the protocol may name.
    pub vocabulary: Vocabulary,
    /// Each tag's allowed actions, in the order the file lists them.
    pub protocol: BTreeMap<IssueTag, Vec<ActionCost>>,
}

impl Program {
    /// The built-in program.
    pub fn builtin() -> Self {
        match Self::from_toml(DEFAULT_PROGRAM_TOML) {
            Ok(program) => program,
            // The built-in file is checked by a unit test; this cannot happen in a build that
            // passed it.
            Err(error) => panic!("the built-in program is invalid: {error}"),
        }
    }

    /// Parses and checks a program file, reporting every problem with its key.
    pub fn from_toml(text: &str) -> Result<Self, ProgramError> {
        let file: ProgramFile =
            toml::from_str(text).map_err(|e| ProgramError::one(e.message().to_owned()))?;
        let mut problems = Vec::new();
        let program = file.check(&mut problems);
        if !problems.is_empty() {
            return Err(ProgramError { problems });
        }
        let digest = Sha256::digest(text.as_bytes());
        let hex: String = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
        Ok(Self {
            version: format!("program-{hex}"),
            toml: text.to_owned(),
            ..program
        })
    }

    /// The actions allowed for `tag`; empty when the protocol has none.
    pub fn actions(&self, tag: IssueTag) -> &[ActionCost] {
        self.protocol.get(&tag).map_or(&[], Vec::as_slice)
    }
}

/// Which uplift a recovery must pay for itself at to be worth investing in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InvestOn {
    /// The estimate: invest when customer value × uplift exceeds the cost.
    #[default]
    Estimate,
    /// The lower end of the uplift's interval: invest only when even a pessimistic uplift pays
    /// for the recovery. An estimate without an interval (the prior, or a model trained
    /// without replicates) is then not enough to invest on.
    LowerBound,
}

// The file as written; [`ProgramFile::check`] turns it into a [`Program`].

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProgramFile {
    eligibility: EligibilityFile,
    recovered: RecoveredFile,
    authority: AuthorityFile,
    response: ResponseTargets,
    holdout: HoldoutRule,
    prior: PriorFile,
    /// Optional: without it, investments are judged on the estimate.
    #[serde(default)]
    investment: InvestmentFile,
    /// Optional: without it, the built-in tags and actions.
    #[serde(default)]
    vocabulary: VocabularyFile,
    protocol: BTreeMap<String, Vec<ActionFile>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct VocabularyFile {
    tags: Option<Vec<String>>,
    actions: Option<Vec<String>>,
    default_tag: Option<String>,
}

impl VocabularyFile {
    /// Each list the file leaves out is the built-in one; the default tag, when not given, is
    /// "other" if the tags have it (an issue is otherwise left untagged).
    fn check(self, problems: &mut Vec<String>) -> Vocabulary {
        let tags = self
            .tags
            .unwrap_or_else(|| names_of(BuiltInTag::ALL, BuiltInTag::as_str));
        let actions = self
            .actions
            .unwrap_or_else(|| names_of(BuiltInAction::ALL, BuiltInAction::as_str));
        let other = BuiltInTag::Other.as_str();
        let default_tag = match &self.default_tag {
            Some(name) => Some(name.as_str()),
            None => tags
                .iter()
                .any(|tag| tag.eq_ignore_ascii_case(other))
                .then_some(other),
        };
        Vocabulary::new(&tags, &actions, default_tag, problems)
    }
}

fn names_of<T: Copy>(values: &[T], name: fn(T) -> &'static str) -> Vec<String> {
    values.iter().map(|v| name(*v).to_owned()).collect()
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct InvestmentFile {
    #[serde(default)]
    invest_on: InvestOn,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EligibilityFile {
    failure: bool,
    max_csat: Option<u8>,
    max_nps: Option<u8>,
    max_recovery_rating: Option<u8>,
    repeat_failures: Option<RepeatFailures>,
    lookback_days: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RecoveredFile {
    min_resurvey: u8,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AuthorityFile {
    frontline_limit: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PriorFile {
    expected_quality: u8,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ActionFile {
    action: String,
    cost: f64,
    #[serde(default)]
    share_of_monthly_value: f64,
}

fn check_range<T: PartialOrd + Copy + std::fmt::Display>(
    problems: &mut Vec<String>,
    key: &str,
    value: T,
    low: T,
    high: T,
) {
    if !(low..=high).contains(&value) {
        problems.push(format!("{key} must be from {low} to {high}, not {value}"));
    }
}

fn check_amount(problems: &mut Vec<String>, key: &str, value: f64) {
    if !value.is_finite() || value < 0.0 {
        problems.push(format!("{key} must be a number at least 0, not {value}"));
    }
}

impl ProgramFile {
    fn check(self, problems: &mut Vec<String>) -> Program {
        let e = &self.eligibility;
        if let Some(csat) = e.max_csat {
            check_range(problems, "eligibility.max_csat", csat, 1, 5);
        }
        if let Some(nps) = e.max_nps {
            check_range(problems, "eligibility.max_nps", nps, 0, 10);
        }
        if let Some(rating) = e.max_recovery_rating {
            check_range(problems, "eligibility.max_recovery_rating", rating, 1, 7);
        }
        if let Some(repeat) = e.repeat_failures {
            check_range(
                problems,
                "eligibility.repeat_failures.count",
                repeat.count,
                1,
                1000,
            );
            check_range(
                problems,
                "eligibility.repeat_failures.within_days",
                repeat.within_days,
                1,
                3650,
            );
        }
        check_range(
            problems,
            "eligibility.lookback_days",
            e.lookback_days,
            1,
            3650,
        );
        check_range(
            problems,
            "recovered.min_resurvey",
            self.recovered.min_resurvey,
            1,
            7,
        );
        check_amount(
            problems,
            "authority.frontline_limit",
            self.authority.frontline_limit,
        );
        let r = &self.response;
        check_range(problems, "response.min_hours", r.min_hours, 0.0, 8760.0);
        check_range(
            problems,
            "response.target_hours",
            r.target_hours,
            r.min_hours.max(0.0),
            8760.0,
        );
        check_amount(problems, "response.high_value_annual", r.high_value_annual);
        check_range(
            problems,
            "response.high_value_factor",
            r.high_value_factor,
            0.0,
            1.0,
        );
        if !(r.aging_half_life_hours.is_finite() && r.aging_half_life_hours > 0.0) {
            problems.push(format!(
                "response.aging_half_life_hours must be more than 0, not {}",
                r.aging_half_life_hours
            ));
        }
        check_range(
            problems,
            "holdout.fraction",
            self.holdout.fraction,
            0.0,
            1.0,
        );
        check_range(
            problems,
            "prior.expected_quality",
            self.prior.expected_quality,
            1,
            7,
        );
        let vocabulary = self.vocabulary.check(problems);
        let mut protocol = BTreeMap::new();
        for (tag_name, actions) in self.protocol {
            let tag = match vocabulary.tag(&tag_name) {
                Ok(tag) => tag,
                Err(reason) => {
                    problems.push(format!("protocol.{tag_name}: {reason}"));
                    continue;
                }
            };
            if actions.is_empty() {
                problems.push(format!("protocol.{tag_name}: list at least one action"));
            }
            let mut allowed: Vec<ActionCost> = Vec::with_capacity(actions.len());
            for (i, entry) in actions.into_iter().enumerate() {
                let key = format!("protocol.{tag_name}[{i}]");
                let action = match vocabulary.action(&entry.action) {
                    Ok(action) => action,
                    Err(reason) => {
                        problems.push(format!("{key}.action: {reason}"));
                        continue;
                    }
                };
                if allowed.iter().any(|a| a.action == action) {
                    problems.push(format!("{key}.action: {action} is listed twice"));
                }
                check_amount(problems, &format!("{key}.cost"), entry.cost);
                check_range(
                    problems,
                    &format!("{key}.share_of_monthly_value"),
                    entry.share_of_monthly_value,
                    0.0,
                    12.0,
                );
                allowed.push(ActionCost {
                    action,
                    cost: entry.cost,
                    share_of_monthly_value: entry.share_of_monthly_value,
                });
            }
            if protocol.insert(tag, allowed).is_some() {
                problems.push(format!(
                    "protocol.{tag_name}: {tag} has another list (tags are compared ignoring case)"
                ));
            }
        }
        Program {
            version: String::new(),
            toml: String::new(),
            eligibility: Eligibility {
                failure: e.failure,
                max_csat: e.max_csat,
                max_nps: e.max_nps,
                max_recovery_rating: e.max_recovery_rating,
                repeat_failures: e.repeat_failures,
                lookback_days: e.lookback_days,
            },
            recovered_at_or_above: self.recovered.min_resurvey,
            frontline_limit: self.authority.frontline_limit,
            response: self.response,
            holdout: self.holdout,
            prior_quality: self.prior.expected_quality,
            invest_on: self.investment.invest_on,
            vocabulary,
            protocol,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_program_is_valid_and_covers_every_tag() {
        let program = Program::from_toml(DEFAULT_PROGRAM_TOML).expect("built-in program");
        assert_eq!(&program.vocabulary, Vocabulary::built_in());
        for tag in program.vocabulary.tags() {
            assert!(!program.actions(*tag).is_empty(), "{tag} has no action");
        }
        assert!(program.version.starts_with("program-"));
        assert_eq!(program.recovered_at_or_above, 5);
    }

    #[test]
    fn every_problem_is_reported_with_its_key() {
        let text = DEFAULT_PROGRAM_TOML
            .replace("fraction = 0.05", "fraction = 1.5")
            .replace("max_csat = 2", "max_csat = 9")
            .replace(
                "pricing = [",
                "shipping = [ { action = \"refund\", cost = 1.0 } ]\npricing = [",
            )
            .replace("action = \"fee_waiver\"", "action = \"free_lunch\"");
        let error = Program::from_toml(&text).expect_err("invalid program");
        let all = error.problems.join("\n");
        assert!(
            all.contains("holdout.fraction must be from 0 to 1, not 1.5"),
            "{all}"
        );
        assert!(
            all.contains("eligibility.max_csat must be from 1 to 5, not 9"),
            "{all}"
        );
        assert!(
            all.contains("protocol.shipping: \"shipping\" is not one of the program's issue tags"),
            "{all}"
        );
        assert!(
            all.contains("protocol.billing[1].action: \"free_lunch\" is not one of the program's recovery actions"),
            "{all}"
        );
        assert_eq!(error.problems.len(), 4, "{all}");
    }

    /// The built-in program's rules with the example vocabulary of the file's comments.
    fn own_words(default_tag: &str, protocol: &str) -> String {
        let rules = &DEFAULT_PROGRAM_TOML[..DEFAULT_PROGRAM_TOML.find("[protocol]").unwrap()];
        format!(
            "{rules}\n[vocabulary]\ntags = [\"app crash\", \"Late delivery\"]\n\
             actions = [\"voucher\", \"courier redelivery\"]\n{default_tag}\n\
             [protocol]\n{protocol}"
        )
    }

    #[test]
    fn a_program_speaks_its_own_tags_and_actions() {
        let program = Program::from_toml(&own_words(
            "",
            "\"late delivery\" = [{ action = \"Courier redelivery\", cost = 12.0 }]\n\
             \"app crash\" = [{ action = \"voucher\", cost = 5.0 }]",
        ))
        .expect("a program in its own words");
        let late = program.vocabulary.tag("LATE DELIVERY").expect("declared");
        assert_eq!(late.as_str(), "Late delivery");
        let actions = program.actions(late);
        assert_eq!(actions.len(), 1);
        assert_eq!(actions[0].action.as_str(), "courier redelivery");
        // Without "other" among the tags and no default_tag, an untagged issue stays untagged.
        assert_eq!(program.vocabulary.default_tag(), None);
        assert!(program.vocabulary.tag("billing").is_err());
    }

    #[test]
    fn a_protocol_outside_the_vocabulary_is_refused_by_key() {
        let error = Program::from_toml(&own_words(
            "",
            "billing = [{ action = \"voucher\", cost = 5.0 }]\n\
             \"app crash\" = [{ action = \"refund\", cost = 5.0 }]\n\
             \"APP CRASH\" = [{ action = \"voucher\", cost = 5.0 }]",
        ))
        .expect_err("names outside the vocabulary");
        let all = error.problems.join("\n");
        assert!(
            all.contains("protocol.billing: \"billing\" is not one of the program's issue tags (Late delivery, app crash)"),
            "{all}"
        );
        assert!(
            all.contains("protocol.app crash[0].action: \"refund\" is not one of the program's recovery actions"),
            "{all}"
        );
        assert!(all.contains("has another list"), "{all}");
        let unknown_default = own_words(
            "default_tag = \"other\"",
            "\"app crash\" = [{ action = \"voucher\", cost = 5.0 }]",
        );
        let error = Program::from_toml(&unknown_default).expect_err("undeclared default");
        assert!(
            error
                .to_string()
                .contains("vocabulary.default_tag \"other\" is not one of vocabulary.tags"),
            "{error}"
        );
    }

    #[test]
    fn a_misspelt_key_or_broken_toml_is_refused() {
        let misspelt = DEFAULT_PROGRAM_TOML.replace("frontline_limit", "frontline_limt");
        let error = Program::from_toml(&misspelt).expect_err("unknown key");
        assert!(error.to_string().contains("frontline_limt"), "{error}");
        assert!(Program::from_toml("[eligibility\nfailure = true").is_err());
    }

    #[test]
    fn costs_add_a_share_of_the_monthly_value() {
        let cost = ActionCost {
            action: BuiltInAction::Refund.into(),
            cost: 10.0,
            share_of_monthly_value: 0.5,
        };
        assert_eq!(cost.for_customer(1200.0), 60.0);
    }
}
