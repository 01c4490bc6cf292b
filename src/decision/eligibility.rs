//! Whether the program's criteria flag a customer for recovery, and on what trigger: a given
//! failed interaction or survey answer, or else the latest qualifying one within the
//! look-back window. Only what happened before the decision's `as_of` counts.

use crate::domain::{Interaction, InteractionId, IssueTag, Survey, SurveyId, Timestamp};
use crate::features::History;

use super::program::Eligibility;

use crate::domain::MICROS_PER_DAY;

/// The trigger a caller named, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TriggerRequest {
    Interaction(InteractionId),
    Survey(SurveyId),
    /// Find the latest qualifying event.
    Latest,
}

/// The event a decision is about.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Trigger<'h> {
    Interaction(&'h Interaction),
    Survey(&'h Survey),
}

impl Trigger<'_> {
    pub fn at(&self) -> Timestamp {
        match self {
            Self::Interaction(i) => i.occurred_at,
            Self::Survey(s) => s.answered_at,
        }
    }

    /// The issue's tag: the interaction's, or that of the interaction a survey is about.
    pub fn tag(&self, history: &History) -> Option<IssueTag> {
        let interaction = match self {
            Self::Interaction(i) => Some(*i),
            Self::Survey(s) => s.interaction_id.as_ref().and_then(|id| {
                history
                    .interactions
                    .iter()
                    .find(|i| i.interaction_id == *id)
            }),
        };
        interaction.map(|i| i.tag)
    }

    pub fn interaction_id(&self) -> Option<&InteractionId> {
        match self {
            Self::Interaction(i) => Some(&i.interaction_id),
            Self::Survey(_) => None,
        }
    }

    pub fn survey_id(&self) -> Option<&SurveyId> {
        match self {
            Self::Survey(s) => Some(&s.survey_id),
            Self::Interaction(_) => None,
        }
    }
}

/// Why a named trigger cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TriggerError {
    /// Not among this customer's records (it may be another customer's, or unknown).
    #[error("{0} is not one of this customer's records")]
    NotFound(String),
    #[error("{what} happened at {at}, not before the decision's as_of {as_of}")]
    AfterAsOf {
        what: String,
        at: Timestamp,
        as_of: Timestamp,
    },
}

/// The outcome of the criteria: the trigger found (if any), whether it qualifies, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict<'h> {
    pub trigger: Option<Trigger<'h>>,
    pub eligible: bool,
    pub reasons: Vec<String>,
}

/// The first ten characters of RFC 3339: the day, for reasons in words.
pub(super) fn day(at: Timestamp) -> String {
    at.to_string().chars().take(10).collect()
}

/// Applies the program's criteria to `history` as of `as_of`.
pub fn assess<'h>(
    rules: &Eligibility,
    history: &'h History,
    as_of: Timestamp,
    request: &TriggerRequest,
) -> Result<Verdict<'h>, TriggerError> {
    let trigger = match request {
        TriggerRequest::Interaction(id) => Some(named_interaction(history, id, as_of)?),
        TriggerRequest::Survey(id) => Some(named_survey(history, id, as_of)?),
        TriggerRequest::Latest => latest_qualifying(rules, history, as_of),
    };
    let mut reasons = Vec::new();
    let mut eligible = false;
    match trigger {
        Some(trigger) => match qualifies(rules, &trigger) {
            Ok(why) => {
                eligible = true;
                reasons.push(why);
            }
            Err(why_not) => reasons.push(why_not),
        },
        None => reasons.push(format!(
            "no qualifying failure or survey answer in the {} days before {}",
            rules.lookback_days,
            day(as_of)
        )),
    }
    if let Some(repeat) = rules.repeat_failures {
        let since = Timestamp::from_unix_micros(
            as_of.unix_micros() - i64::from(repeat.within_days) * MICROS_PER_DAY,
        );
        let failures = history
            .interactions
            .iter()
            .filter(|i| i.failure && i.occurred_at >= since && i.occurred_at < as_of)
            .count();
        if failures >= repeat.count as usize {
            eligible = true;
            reasons.push(format!(
                "{failures} service failures in the last {} days (the program's limit is {})",
                repeat.within_days, repeat.count
            ));
        }
    }
    Ok(Verdict {
        trigger,
        eligible,
        reasons,
    })
}

fn named_interaction<'h>(
    history: &'h History,
    id: &InteractionId,
    as_of: Timestamp,
) -> Result<Trigger<'h>, TriggerError> {
    let interaction = history
        .interactions
        .iter()
        .find(|i| i.interaction_id == *id)
        .ok_or_else(|| TriggerError::NotFound(format!("interaction {id}")))?;
    before(
        Trigger::Interaction(interaction),
        format!("interaction {id}"),
        as_of,
    )
}

fn named_survey<'h>(
    history: &'h History,
    id: &SurveyId,
    as_of: Timestamp,
) -> Result<Trigger<'h>, TriggerError> {
    let survey = history
        .surveys
        .iter()
        .find(|s| s.survey_id == *id)
        .ok_or_else(|| TriggerError::NotFound(format!("survey {id}")))?;
    before(Trigger::Survey(survey), format!("survey {id}"), as_of)
}

fn before(
    trigger: Trigger<'_>,
    what: String,
    as_of: Timestamp,
) -> Result<Trigger<'_>, TriggerError> {
    if trigger.at() < as_of {
        Ok(trigger)
    } else {
        Err(TriggerError::AfterAsOf {
            what,
            at: trigger.at(),
            as_of,
        })
    }
}

/// The most recent event within the look-back window that meets a criterion.
fn latest_qualifying<'h>(
    rules: &Eligibility,
    history: &'h History,
    as_of: Timestamp,
) -> Option<Trigger<'h>> {
    let since = Timestamp::from_unix_micros(
        as_of.unix_micros() - i64::from(rules.lookback_days) * MICROS_PER_DAY,
    );
    let in_window = |at: Timestamp| at >= since && at < as_of;
    let interactions = history.interactions.iter().map(Trigger::Interaction);
    let surveys = history.surveys.iter().map(Trigger::Survey);
    interactions
        .chain(surveys)
        .filter(|t| in_window(t.at()) && qualifies(rules, t).is_ok())
        .max_by_key(Trigger::at)
}

/// Why the trigger qualifies (`Ok`) or does not (`Err`), in words.
fn qualifies(rules: &Eligibility, trigger: &Trigger<'_>) -> Result<String, String> {
    match trigger {
        Trigger::Interaction(i) => {
            let what = format!("interaction {} on {}", i.interaction_id, day(i.occurred_at));
            match (i.failure, rules.failure) {
                (true, true) => Ok(format!("{what} was a {} service failure", i.tag)),
                (true, false) => Err(format!(
                    "{what} was a service failure, but the program does not flag failures on their own"
                )),
                (false, _) => Err(format!("{what} was not a service failure")),
            }
        }
        Trigger::Survey(s) => {
            let what = format!("survey {} on {}", s.survey_id, day(s.answered_at));
            let scores = [
                ("CSAT", s.csat.map(|r| (r.get(), 5)), rules.max_csat),
                ("NPS", s.nps.map(|r| (r.get(), 10)), rules.max_nps),
                (
                    "recovery rating",
                    s.recovery_rating.map(|r| (r.get(), 7)),
                    rules.max_recovery_rating,
                ),
            ];
            let low = scores.iter().find_map(|(name, score, max)| {
                let ((value, scale), max) = (score.as_ref()?, max.as_ref()?);
                (value <= max).then(|| {
                    format!("{what} scored {name} {value}/{scale}, at or under the program's {max}")
                })
            });
            low.ok_or_else(|| {
                let given: Vec<String> = scores
                    .iter()
                    .filter_map(|(name, score, _)| {
                        score.map(|(v, scale)| format!("{name} {v}/{scale}"))
                    })
                    .collect();
                format!(
                    "{what} scored {}, above the program's thresholds",
                    given.join(", ")
                )
            })
        }
    }
}
