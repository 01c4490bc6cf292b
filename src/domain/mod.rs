//! Validated customer data. Every type here is built once, at the edge, by a `parse` function
//! that reports what is wrong with which field; inside the crate a value of these types is
//! always valid and is never checked again.

mod attributes;
mod enums;
#[cfg(test)]
pub(crate) mod examples;
mod id;
mod outcome;
mod quantity;
mod records;
mod time;
mod violation;
mod vocabulary;

pub use attributes::{
    AttributeName, AttributeValue, Attributes, MAX_ATTRIBUTE_NAME_BYTES, MAX_ATTRIBUTES,
};
pub use enums::{
    BuiltInAction, BuiltInTag, Channel, ChurnStatus, PlanTier, RecoveryTrigger, Resolution,
    Segment, UnknownName,
};
pub use id::{
    CaseId, CustomerId, EventId, HIDDEN_CHARACTERS, InteractionId, MAX_ECHOED_BYTES, SurveyId,
    has_hidden_characters, shortened,
};
pub use outcome::RecoveryOutcome;
pub use quantity::{Amount, Money, Rating, SpendChange, WaitSeconds};
pub use records::{
    CaresRatings, ChurnOutcome, Customer, Interaction, Record, RecordKind, RecoveryCase, Survey,
    UsageEvent,
};
pub use time::{MICROS_PER_DAY, Timestamp, TimestampBounds};
pub use violation::{FieldViolation, Violations};
pub use vocabulary::{IssueTag, MAX_NAME_BYTES, RecoveryAction, Vocabulary};
