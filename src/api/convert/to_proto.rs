//! Domain records back into the contract's form: the inverse of [`super::RecordParser`],
//! field by field, so a record written out (a simulated backfill file, a recovery case in an
//! outcome's answer) reads back as the very record it was.

use super::{action_number, tag_number, timestamp};
use crate::domain::{
    AttributeValue, Attributes, CaresRatings, ChurnOutcome, Customer, Interaction, InteractionId,
    Rating, Record, RecoveryCase, SpendChange, Survey, SurveyId, UsageEvent,
};
use crate::proto::v1::{self as proto, record::Kind};

/// A required time, as the contract's optional message.
fn time(at: crate::domain::Timestamp) -> Option<prost_types::Timestamp> {
    Some(timestamp(at))
}

fn rating<const MIN: u8, const MAX: u8>(value: Option<Rating<MIN, MAX>>) -> Option<u32> {
    value.map(|v| u32::from(v.get()))
}

/// A profile's attributes in the contract's map form.
pub fn attributes_to_proto(
    attributes: &Attributes,
) -> std::collections::BTreeMap<String, proto::AttributeValue> {
    use proto::attribute_value::Value;
    attributes
        .iter()
        .map(|(name, value)| {
            let value = match value {
                AttributeValue::Number(n) => Value::Number(*n),
                AttributeValue::Category(c) => Value::Category(c.clone()),
                AttributeValue::Flag(f) => Value::Flag(*f),
            };
            (
                name.as_str().to_owned(),
                proto::AttributeValue { value: Some(value) },
            )
        })
        .collect()
}

impl From<Record> for proto::Record {
    fn from(record: Record) -> Self {
        let kind = match record {
            Record::Customer(Customer {
                customer_id,
                segment,
                plan,
                persona,
                region,
                annual_value,
                customer_since,
                updated_at,
                attributes,
            }) => Kind::Customer(proto::Customer {
                customer_id: customer_id.into_string(),
                segment: proto::Segment::from(segment).into(),
                plan: proto::PlanTier::from(plan).into(),
                persona: persona.unwrap_or_default(),
                region: region.unwrap_or_default(),
                annual_value: annual_value.get(),
                customer_since: time(customer_since),
                updated_at: time(updated_at),
                attributes: attributes_to_proto(&attributes),
            }),
            Record::UsageEvent(UsageEvent {
                event_id,
                customer_id,
                occurred_at,
                activity,
                quantity,
            }) => Kind::UsageEvent(proto::UsageEvent {
                event_id: event_id.into_string(),
                customer_id: customer_id.into_string(),
                occurred_at: time(occurred_at),
                activity,
                quantity: quantity.get(),
            }),
            Record::Interaction(Interaction {
                interaction_id,
                customer_id,
                occurred_at,
                channel,
                tag,
                failure,
                resolution,
                wait_seconds,
                first_contact_resolution,
                repeat_contact,
            }) => Kind::Interaction(proto::Interaction {
                interaction_id: interaction_id.into_string(),
                customer_id: customer_id.into_string(),
                occurred_at: time(occurred_at),
                channel: proto::Channel::from(channel).into(),
                tag: tag_number(tag),
                tag_name: tag.to_string(),
                failure,
                resolution: proto::Resolution::from(resolution).into(),
                wait_seconds: wait_seconds.get(),
                first_contact_resolution,
                repeat_contact,
            }),
            Record::Survey(Survey {
                survey_id,
                customer_id,
                answered_at,
                channel,
                interaction_id,
                csat,
                nps,
                recovery_rating,
                comment,
            }) => Kind::Survey(proto::Survey {
                survey_id: SurveyId::into_string(survey_id),
                customer_id: customer_id.into_string(),
                answered_at: time(answered_at),
                channel: proto::Channel::from(channel).into(),
                interaction_id: interaction_id
                    .map(InteractionId::into_string)
                    .unwrap_or_default(),
                csat: rating(csat),
                nps: rating(nps),
                recovery_rating: rating(recovery_rating),
                comment: comment.unwrap_or_default(),
            }),
            Record::ChurnOutcome(ChurnOutcome {
                customer_id,
                status,
                churned_at,
                observed_at,
            }) => Kind::ChurnOutcome(proto::ChurnOutcome {
                customer_id: customer_id.into_string(),
                status: proto::ChurnStatus::from(status).into(),
                churned_at: churned_at.and_then(time),
                observed_at: time(observed_at),
            }),
            Record::RecoveryCase(case) => Kind::RecoveryCase(case.into()),
        };
        proto::Record { kind: Some(kind) }
    }
}

impl From<RecoveryCase> for proto::RecoveryCase {
    fn from(case: RecoveryCase) -> Self {
        let RecoveryCase {
            case_id,
            customer_id,
            trigger,
            tag,
            action,
            cost,
            trigger_interaction_id,
            trigger_survey_id,
            opened_at,
            first_response_at,
            resolved_at,
            cares,
            resurvey_score,
            retained,
            spend_change_pct,
            updated_at,
        } = case;
        let CaresRatings {
            communication,
            accountability,
            responsiveness,
            empathy,
            solution,
        } = cares;
        Self {
            case_id: case_id.into_string(),
            customer_id: customer_id.into_string(),
            trigger: proto::RecoveryTrigger::from(trigger).into(),
            tag: tag_number(tag),
            action: action_number(action),
            tag_name: tag.to_string(),
            action_name: action.to_string(),
            cost: cost.get(),
            trigger_interaction_id: trigger_interaction_id
                .map(InteractionId::into_string)
                .unwrap_or_default(),
            trigger_survey_id: trigger_survey_id
                .map(SurveyId::into_string)
                .unwrap_or_default(),
            opened_at: Some(timestamp(opened_at)),
            first_response_at: first_response_at.map(timestamp),
            resolved_at: resolved_at.map(timestamp),
            cares: Some(proto::CaresRatings {
                communication: rating(communication),
                accountability: rating(accountability),
                responsiveness: rating(responsiveness),
                empathy: rating(empathy),
                solution: rating(solution),
            }),
            resurvey_score: rating(resurvey_score),
            retained,
            spend_change_pct: spend_change_pct.map(SpendChange::get),
            updated_at: Some(timestamp(updated_at)),
        }
    }
}
