//! Valid records of every kind, for unit tests.

use std::collections::BTreeMap;

use super::*;

fn at(seconds: i64) -> Timestamp {
    Timestamp::from_unix_micros(seconds * 1_000_000)
}

fn rating<const MIN: u8, const MAX: u8>(value: u32) -> Option<Rating<MIN, MAX>> {
    Rating::parse(value).ok()
}

fn attribute(name: &str) -> AttributeName {
    AttributeName::parse(name.into()).expect("valid name")
}

/// One fully populated record of each kind, all for customer `c-1`.
pub fn one_of_each_kind() -> Vec<Record> {
    let customer = CustomerId::parse("c-1".into()).expect("valid id");
    vec![
        Record::Customer(Customer {
            customer_id: customer.clone(),
            segment: Segment::SmallBusiness,
            plan: PlanTier::Standard,
            persona: Some("owner".into()),
            region: None,
            annual_value: Money::parse(1200.0).expect("valid"),
            customer_since: at(1_600_000_000),
            updated_at: at(1_700_000_000),
            attributes: Attributes::new(BTreeMap::from([
                (attribute("employees"), AttributeValue::Number(42.0)),
                (
                    attribute("contract"),
                    AttributeValue::Category("two year".into()),
                ),
                (attribute("paperless_billing"), AttributeValue::Flag(true)),
            ]))
            .expect("valid attributes"),
        }),
        Record::UsageEvent(UsageEvent {
            event_id: EventId::parse("u-1".into()).expect("valid id"),
            customer_id: customer.clone(),
            occurred_at: at(1_700_000_100),
            activity: "login".into(),
            quantity: Amount::parse(3.0).expect("valid"),
        }),
        Record::Interaction(Interaction {
            interaction_id: InteractionId::parse("i-1".into()).expect("valid id"),
            customer_id: customer.clone(),
            occurred_at: at(1_700_000_200),
            channel: Channel::Phone,
            tag: IssueTag::from(BuiltInTag::Billing),
            failure: true,
            resolution: Resolution::Unresolved,
            wait_seconds: WaitSeconds::parse(600.0).expect("valid"),
            first_contact_resolution: false,
            repeat_contact: true,
        }),
        Record::Survey(Survey {
            survey_id: SurveyId::parse("s-1".into()).expect("valid id"),
            customer_id: customer.clone(),
            answered_at: at(1_700_000_300),
            channel: Channel::Email,
            interaction_id: InteractionId::parse("i-1".into()).ok(),
            csat: rating(2),
            nps: rating(4),
            recovery_rating: None,
            comment: Some("billed twice".into()),
        }),
        Record::ChurnOutcome(ChurnOutcome {
            customer_id: customer.clone(),
            status: ChurnStatus::Churned,
            churned_at: Some(at(1_700_100_000)),
            observed_at: at(1_700_200_000),
        }),
        Record::RecoveryCase(RecoveryCase {
            case_id: CaseId::parse("r-1".into()).expect("valid id"),
            customer_id: customer,
            trigger: RecoveryTrigger::LowSurveyScore,
            tag: IssueTag::from(BuiltInTag::Billing),
            action: RecoveryAction::from(BuiltInAction::Refund),
            cost: Money::parse(50.0).expect("valid"),
            trigger_interaction_id: None,
            trigger_survey_id: SurveyId::parse("s-1".into()).ok(),
            opened_at: at(1_700_000_400),
            first_response_at: Some(at(1_700_000_500)),
            resolved_at: None,
            cares: CaresRatings {
                communication: rating(6),
                empathy: rating(5),
                ..CaresRatings::default()
            },
            resurvey_score: rating(6),
            retained: Some(true),
            spend_change_pct: SpendChange::parse(-10.0).ok(),
            updated_at: at(1_700_000_600),
        }),
    ]
}
