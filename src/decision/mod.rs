//! The recovery policy: given a customer's history, their churn risk and what recovery is
//! expected to buy, decide whether to invest in recovering them — eligible or not and why,
//! each allowed action's expected and net value, the recommended action, a respond-by time,
//! who may approve it, and a C.A.R.E.S. checklist — and, over stored decisions, the
//! program's funnel.
//!
//! Everything here is pure: the API gathers the facts (history, health score, uplift
//! estimates) and stores the [`Decision`].

mod checklist;
pub mod eligibility;
pub mod funnel;
pub mod holdout;
mod policy;
pub mod prior;
pub mod program;

pub use checklist::{CaresElement, CaresItem};
pub use eligibility::{Trigger, TriggerError, TriggerRequest};
pub use policy::{Estimates, Facts, decide, new_decision_id};
pub use program::{DEFAULT_PROGRAM_TOML, Program, ProgramError};

use crate::domain::{
    CustomerId, InteractionId, IssueTag, RecoveryAction, Segment, SurveyId, Timestamp,
};
/// Retention over the horizon with and without a recovery, from the uplift model or the prior.
pub use crate::uplift::Retention;

/// Where the retention estimates came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpliftSource {
    /// The docs/domain.md prior ([`prior`]).
    Prior,
    /// The active recovery uplift model.
    Model,
}

impl UpliftSource {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Prior => "prior",
            Self::Model => "model",
        }
    }
}

/// Who may approve an action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Approval {
    /// Within the frontline authority limit.
    Frontline,
    Manager,
}

impl Approval {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Frontline => "frontline",
            Self::Manager => "manager",
        }
    }
}

/// One allowed action, valued for one customer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ValuedAction {
    pub action: RecoveryAction,
    pub cost: f64,
    pub retention: Retention,
    /// Customer value × uplift.
    pub expected_value: f64,
    /// Expected value − cost.
    pub net_value: f64,
    /// Customer value × the lower end of the uplift's interval − cost, when there is one.
    pub net_value_low: Option<f64>,
    pub approval: Approval,
    /// Where `retention` came from: the prior for an action the uplift model saw too few
    /// recoveries with, even when a model serves.
    pub source: UpliftSource,
}

/// The event a decision was about.
#[derive(Debug, Clone, PartialEq)]
pub struct TriggerRef {
    pub interaction_id: Option<InteractionId>,
    pub survey_id: Option<SurveyId>,
    pub at: Timestamp,
}

/// A recommendation, as answered and as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub decision_id: String,
    /// When it was made (wall clock), and the moment it was made for (only data before it
    /// counted; the funnel's windows and outcomes are measured from it).
    pub decided_at: Timestamp,
    pub as_of: Timestamp,
    pub customer_id: CustomerId,
    pub segment: Segment,
    /// The customer's annual value.
    pub customer_value: f64,
    pub trigger: Option<TriggerRef>,
    pub tag: Option<IssueTag>,
    pub eligible: bool,
    pub holdout: bool,
    /// Whether to invest: eligible, not held out, and the best net value is positive.
    pub invest: bool,
    /// What `invest` would have been without the holdout.
    pub would_invest: bool,
    /// Every allowed action, best net value first.
    pub options: Vec<ValuedAction>,
    pub respond_by: Option<Timestamp>,
    pub checklist: Vec<CaresItem>,
    pub reasons: Vec<String>,
    pub churn_probability: f64,
    pub health_score: f64,
    pub health_model_version: String,
    pub uplift_source: UpliftSource,
    pub uplift_version: String,
    pub program_version: String,
}

impl Decision {
    /// The action with the highest net value.
    pub fn recommended(&self) -> Option<&ValuedAction> {
        self.options.first()
    }
}
