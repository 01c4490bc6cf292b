//! The C.A.R.E.S. checklist (Temkin, docs/domain.md): one instruction per element of a good
//! recovery, filled with this customer's facts so an agent can act on it as written.

use super::eligibility::{Trigger, day};
use super::{Approval, ValuedAction};
use crate::domain::{IssueTag, Timestamp};
use crate::features::History;

const MICROS_PER_HOUR: f64 = 3_600.0 * 1e6;
use crate::domain::MICROS_PER_DAY;

/// The five elements, in the model's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaresElement {
    Communication,
    Accountability,
    Responsiveness,
    Empathy,
    Solution,
}

impl CaresElement {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Communication => "communication",
            Self::Accountability => "accountability",
            Self::Responsiveness => "responsiveness",
            Self::Empathy => "empathy",
            Self::Solution => "solution",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaresItem {
    pub element: CaresElement,
    pub instruction: String,
}

/// What the checklist is filled from.
#[derive(Debug, Clone, Copy)]
pub(super) struct ChecklistFacts<'a> {
    pub history: &'a History,
    pub as_of: Timestamp,
    pub trigger: Option<Trigger<'a>>,
    pub tag: Option<IssueTag>,
    /// The action to take, when the decision is to invest.
    pub recommended: Option<&'a ValuedAction>,
    pub respond_by: Timestamp,
    pub frontline_limit: f64,
}

pub(super) fn fill(facts: &ChecklistFacts<'_>) -> Vec<CaresItem> {
    let issue = facts
        .tag
        .map_or_else(|| "their issue".to_owned(), |t| format!("their {t} issue"));
    let about = match facts.trigger {
        Some(Trigger::Interaction(i)) => format!(
            " (interaction {} on {})",
            i.interaction_id,
            day(i.occurred_at)
        ),
        Some(Trigger::Survey(s)) => format!(" (survey {} on {})", s.survey_id, day(s.answered_at)),
        None => String::new(),
    };
    let respond_by = facts.respond_by.to_string();
    let hours_left =
        (facts.respond_by.unix_micros() - facts.as_of.unix_micros()) as f64 / MICROS_PER_HOUR;
    let open_hours = facts
        .trigger
        .map(|t| (facts.as_of.unix_micros() - t.at().unix_micros()) as f64 / MICROS_PER_HOUR);

    let since_90d = Timestamp::from_unix_micros(facts.as_of.unix_micros() - 90 * MICROS_PER_DAY);
    let recent = facts
        .history
        .interactions
        .iter()
        .filter(|i| i.occurred_at >= since_90d && i.occurred_at < facts.as_of);
    let failures = recent.clone().filter(|i| i.failure).count();
    let unresolved = recent
        .filter(|i| i.resolution != crate::domain::Resolution::Resolved)
        .count();

    let customer = &facts.history.customer;
    let years = (facts.as_of.unix_micros() - customer.customer_since.unix_micros()).max(0) as f64
        / (365.25 * MICROS_PER_DAY as f64);
    let feeling = facts
        .history
        .surveys
        .iter()
        .filter(|s| s.answered_at < facts.as_of)
        .max_by_key(|s| s.answered_at)
        .map_or_else(
            || "no survey answer on record".to_owned(),
            |s| {
                let score = s
                    .csat
                    .map(|c| format!("CSAT {}/5", c.get()))
                    .or_else(|| s.nps.map(|n| format!("NPS {}/10", n.get())))
                    .or_else(|| {
                        s.recovery_rating
                            .map(|r| format!("recovery rating {}/7", r.get()))
                    })
                    .unwrap_or_default();
                format!(
                    "their latest survey answer was {score} on {}",
                    day(s.answered_at)
                )
            },
        );

    let solution = match facts.recommended {
        Some(action) => {
            let who = match action.approval {
                Approval::Frontline => format!("within the frontline authority of {:.2}: grant it now", facts.frontline_limit),
                Approval::Manager => format!("above the frontline authority of {:.2}: get a manager's approval first", facts.frontline_limit),
            };
            format!(
                "Offer {} (cost {:.2}, {who}), solve the underlying problem, then re-survey the customer.",
                action.action, action.cost
            )
        }
        None => "Solve the underlying problem itself (no paid recovery action is recommended), then re-survey the customer.".to_owned(),
    };

    vec![
        CaresItem {
            element: CaresElement::Communication,
            instruction: format!(
                "Tell the customer what will happen about {issue}{about} and by when; set the expectation before {respond_by}."
            ),
        },
        CaresItem {
            element: CaresElement::Accountability,
            instruction: format!(
                "Own the fix end to end: {failures} service failure(s) and {unresolved} unresolved contact(s) in the last 90 days; do not pass the customer on."
            ),
        },
        CaresItem {
            element: CaresElement::Responsiveness,
            instruction: match open_hours {
                Some(open) => format!(
                    "Respond by {respond_by} ({hours_left:.1} h from now); the issue has been open {open:.1} h and the customer's mood worsens the longer it stays open."
                ),
                None => format!("Respond by {respond_by} ({hours_left:.1} h from now)."),
            },
        },
        CaresItem {
            element: CaresElement::Empathy,
            instruction: format!(
                "Acknowledge what the problem did to them: {feeling}; a {} customer for {years:.1} years, worth {:.2} a year.",
                customer.segment,
                customer.annual_value.get()
            ),
        },
        CaresItem {
            element: CaresElement::Solution,
            instruction: solution,
        },
    ]
}
