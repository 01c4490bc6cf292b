//! The six kinds of customer data, as validated values. Usage events, interactions and surveys
//! are immutable facts; customers, churn outcomes and recovery cases are versioned by a time
//! and progress, so a newer version replaces an older one.

use super::{
    Amount, Attributes, CaseId, Channel, ChurnStatus, CustomerId, EventId, InteractionId, IssueTag,
    Money, PlanTier, Rating, RecoveryAction, RecoveryTrigger, Resolution, Segment, SpendChange,
    SurveyId, Timestamp, WaitSeconds,
};

/// Who the customer is.
#[derive(Debug, Clone, PartialEq)]
pub struct Customer {
    pub customer_id: CustomerId,
    pub segment: Segment,
    pub plan: PlanTier,
    pub persona: Option<String>,
    pub region: Option<String>,
    pub annual_value: Money,
    pub customer_since: Timestamp,
    pub updated_at: Timestamp,
    /// The company's own attributes of this profile version.
    pub attributes: Attributes,
}

/// One measure of product use.
#[derive(Debug, Clone, PartialEq)]
pub struct UsageEvent {
    pub event_id: EventId,
    pub customer_id: CustomerId,
    pub occurred_at: Timestamp,
    pub activity: String,
    pub quantity: Amount,
}

/// One contact with customer service.
#[derive(Debug, Clone, PartialEq)]
pub struct Interaction {
    pub interaction_id: InteractionId,
    pub customer_id: CustomerId,
    pub occurred_at: Timestamp,
    pub channel: Channel,
    pub tag: IssueTag,
    pub failure: bool,
    pub resolution: Resolution,
    pub wait_seconds: WaitSeconds,
    pub first_contact_resolution: bool,
    pub repeat_contact: bool,
}

/// One survey answer; at least one of the scores is present.
#[derive(Debug, Clone, PartialEq)]
pub struct Survey {
    pub survey_id: SurveyId,
    pub customer_id: CustomerId,
    pub answered_at: Timestamp,
    pub channel: Channel,
    pub interaction_id: Option<InteractionId>,
    pub csat: Option<Rating<1, 5>>,
    pub nps: Option<Rating<0, 10>>,
    pub recovery_rating: Option<Rating<1, 7>>,
    pub comment: Option<String>,
}

/// Whether a customer had churned when observed.
#[derive(Debug, Clone, PartialEq)]
pub struct ChurnOutcome {
    pub customer_id: CustomerId,
    pub status: ChurnStatus,
    /// Present exactly when `status` is churned.
    pub churned_at: Option<Timestamp>,
    pub observed_at: Timestamp,
}

/// The C.A.R.E.S. ratings of a recovery, each 1–7 when given.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CaresRatings {
    pub communication: Option<Rating<1, 7>>,
    pub accountability: Option<Rating<1, 7>>,
    pub responsiveness: Option<Rating<1, 7>>,
    pub empathy: Option<Rating<1, 7>>,
    pub solution: Option<Rating<1, 7>>,
}

/// One service-recovery case, at some stage of its progress.
#[derive(Debug, Clone, PartialEq)]
pub struct RecoveryCase {
    pub case_id: CaseId,
    pub customer_id: CustomerId,
    pub trigger: RecoveryTrigger,
    pub tag: IssueTag,
    pub action: RecoveryAction,
    pub cost: Money,
    pub trigger_interaction_id: Option<InteractionId>,
    pub trigger_survey_id: Option<SurveyId>,
    pub opened_at: Timestamp,
    pub first_response_at: Option<Timestamp>,
    pub resolved_at: Option<Timestamp>,
    pub cares: CaresRatings,
    pub resurvey_score: Option<Rating<1, 7>>,
    pub retained: Option<bool>,
    pub spend_change_pct: Option<SpendChange>,
    pub updated_at: Timestamp,
}

/// Which of the six kinds a record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RecordKind {
    Customer,
    UsageEvent,
    Interaction,
    Survey,
    ChurnOutcome,
    RecoveryCase,
}

impl RecordKind {
    pub const ALL: [Self; 6] = [
        Self::Customer,
        Self::UsageEvent,
        Self::Interaction,
        Self::Survey,
        Self::ChurnOutcome,
        Self::RecoveryCase,
    ];

    /// The record's field name in the ingest contract, used as the root of field paths.
    pub const fn field_name(self) -> &'static str {
        match self {
            Self::Customer => "customer",
            Self::UsageEvent => "usage_event",
            Self::Interaction => "interaction",
            Self::Survey => "survey",
            Self::ChurnOutcome => "churn_outcome",
            Self::RecoveryCase => "recovery_case",
        }
    }

    /// The name of the record's own id field.
    pub const fn id_field(self) -> &'static str {
        match self {
            Self::Customer | Self::ChurnOutcome => "customer_id",
            Self::UsageEvent => "event_id",
            Self::Interaction => "interaction_id",
            Self::Survey => "survey_id",
            Self::RecoveryCase => "case_id",
        }
    }
}

/// A record of any kind.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    Customer(Customer),
    UsageEvent(UsageEvent),
    Interaction(Interaction),
    Survey(Survey),
    ChurnOutcome(ChurnOutcome),
    RecoveryCase(RecoveryCase),
}

impl Record {
    pub fn kind(&self) -> RecordKind {
        match self {
            Self::Customer(_) => RecordKind::Customer,
            Self::UsageEvent(_) => RecordKind::UsageEvent,
            Self::Interaction(_) => RecordKind::Interaction,
            Self::Survey(_) => RecordKind::Survey,
            Self::ChurnOutcome(_) => RecordKind::ChurnOutcome,
            Self::RecoveryCase(_) => RecordKind::RecoveryCase,
        }
    }

    /// The record's own id, unique within its kind.
    pub fn id(&self) -> &str {
        match self {
            Self::Customer(r) => r.customer_id.as_str(),
            Self::UsageEvent(r) => r.event_id.as_str(),
            Self::Interaction(r) => r.interaction_id.as_str(),
            Self::Survey(r) => r.survey_id.as_str(),
            Self::ChurnOutcome(r) => r.customer_id.as_str(),
            Self::RecoveryCase(r) => r.case_id.as_str(),
        }
    }

    /// The customer the record belongs to.
    pub fn customer_id(&self) -> &CustomerId {
        match self {
            Self::Customer(r) => &r.customer_id,
            Self::UsageEvent(r) => &r.customer_id,
            Self::Interaction(r) => &r.customer_id,
            Self::Survey(r) => &r.customer_id,
            Self::ChurnOutcome(r) => &r.customer_id,
            Self::RecoveryCase(r) => &r.customer_id,
        }
    }

    /// The version of a versioned record (newer wins); `None` for immutable events.
    pub fn version(&self) -> Option<Timestamp> {
        match self {
            Self::Customer(r) => Some(r.updated_at),
            Self::ChurnOutcome(r) => Some(r.observed_at),
            Self::RecoveryCase(r) => Some(r.updated_at),
            Self::UsageEvent(_) | Self::Interaction(_) | Self::Survey(_) => None,
        }
    }
}
