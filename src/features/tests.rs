use super::*;
use crate::domain::{
    Amount, CaresRatings, CaseId, Channel, ChurnOutcome, CustomerId, EventId, InteractionId,
    IssueTag, Money, Rating, RecoveryAction, RecoveryTrigger, SurveyId, WaitSeconds,
};
use crate::domain::{BuiltInAction, BuiltInTag};

const DAY: i64 = 86_400 * 1_000_000;
/// 2025-06-01T00:00:00Z.
const AS_OF: i64 = 1_748_736_000 * 1_000_000;

fn at_day(day: i64) -> Timestamp {
    Timestamp::from_unix_micros(AS_OF + day * DAY)
}

fn customer() -> Customer {
    Customer {
        customer_id: CustomerId::parse("c-1".into()).expect("id"),
        segment: Segment::SmallBusiness,
        plan: PlanTier::Standard,
        persona: None,
        region: None,
        annual_value: Money::parse(1_200.0).expect("money"),
        customer_since: at_day(-730),
        updated_at: at_day(-730),
        attributes: Default::default(),
    }
}

fn usage(n: usize, day: i64, quantity: f64) -> UsageEvent {
    UsageEvent {
        event_id: EventId::parse(format!("u-{n}")).expect("id"),
        customer_id: customer().customer_id,
        occurred_at: at_day(day),
        activity: "active_days".into(),
        quantity: Amount::parse(quantity).expect("amount"),
    }
}

fn contact(n: usize, day: i64, failure: bool) -> Interaction {
    Interaction {
        interaction_id: InteractionId::parse(format!("i-{n}")).expect("id"),
        customer_id: customer().customer_id,
        occurred_at: at_day(day),
        channel: Channel::Phone,
        tag: IssueTag::from(BuiltInTag::Billing),
        failure,
        resolution: Resolution::Unresolved,
        wait_seconds: WaitSeconds::parse(600.0).expect("wait"),
        first_contact_resolution: false,
        repeat_contact: true,
    }
}

fn survey(n: usize, day: i64, csat: u32, nps: Option<u32>) -> Survey {
    Survey {
        survey_id: SurveyId::parse(format!("s-{n}")).expect("id"),
        customer_id: customer().customer_id,
        answered_at: at_day(day),
        channel: Channel::Email,
        interaction_id: None,
        csat: Rating::parse(csat).ok(),
        nps: nps.and_then(|n| Rating::parse(n).ok()),
        recovery_rating: None,
        comment: None,
    }
}

fn case(n: usize, opened_day: i64, resolved_day: i64, empathy: u32) -> RecoveryCase {
    RecoveryCase {
        case_id: CaseId::parse(format!("r-{n}")).expect("id"),
        customer_id: customer().customer_id,
        trigger: RecoveryTrigger::Complaint,
        tag: IssueTag::from(BuiltInTag::Billing),
        action: RecoveryAction::from(BuiltInAction::Refund),
        cost: Money::parse(20.0).expect("money"),
        trigger_interaction_id: None,
        trigger_survey_id: None,
        opened_at: at_day(opened_day),
        first_response_at: None,
        resolved_at: Some(at_day(resolved_day)),
        cares: CaresRatings {
            empathy: Rating::parse(empathy).ok(),
            ..CaresRatings::default()
        },
        resurvey_score: None,
        retained: None,
        spend_change_pct: None,
        updated_at: at_day(resolved_day),
    }
}

fn busy_history() -> History {
    let mut history = History::new(customer());
    // 20 a month in the 60 days before the last 30, 11 in the last 30: usage down 45%.
    history.usage = vec![
        usage(1, -80, 20.0),
        usage(2, -50, 20.0),
        usage(3, -20, 6.0),
        usage(4, -3, 5.0),
    ];
    history.interactions = vec![
        contact(1, -40, true),
        contact(2, -10, true),
        contact(3, -5, false),
    ];
    history.surveys = vec![
        survey(1, -100, 5, Some(9)),
        survey(2, -30, 4, None),
        survey(3, -4, 2, Some(3)),
    ];
    history.recovery_cases = vec![case(1, -9, -8, 6)];
    history
}

fn value(features: &FeatureVector, name: &str) -> f64 {
    features
        .get(name)
        .unwrap_or_else(|| panic!("no feature {name}"))
}

#[test]
fn the_vector_has_one_value_per_named_feature() {
    let features = compute(&busy_history(), at_day(0));
    assert_eq!(features.0.len(), FEATURE_NAMES.len());
    assert!(features.0.iter().all(|v| v.is_finite()));
}

#[test]
fn windows_count_what_happened_in_them() {
    let f = compute(&busy_history(), at_day(0));
    assert_eq!(value(&f, "segment_small_business"), 1.0);
    assert_eq!(value(&f, "failures_30d"), 1.0);
    assert_eq!(value(&f, "failures_90d"), 2.0);
    assert_eq!(value(&f, "repeat_failures_90d"), 1.0);
    assert_eq!(value(&f, "days_since_last_failure"), 10.0);
    assert_eq!(value(&f, "days_since_last_activity"), 3.0);
    assert!(
        (value(&f, "usage_trend") + 0.45).abs() < 1e-9,
        "{}",
        value(&f, "usage_trend")
    );
    assert!((value(&f, "log_usage_30d") - 11.0_f64.ln_1p()).abs() < 1e-9);
    assert_eq!(value(&f, "latest_csat"), 2.0);
    assert!((value(&f, "csat_trend") - (2.0 - 4.5)).abs() < 1e-9);
    assert_eq!(value(&f, "nps_detractor"), 1.0);
    assert_eq!(value(&f, "nps_promoter"), 0.0);
    assert_eq!(value(&f, "mean_wait_minutes_90d"), 10.0);
    assert_eq!(value(&f, "mean_recovery_rating_90d"), 6.0);
    assert!((value(&f, "tenure_years") - 2.0).abs() < 0.01);
}

#[test]
fn missing_data_is_a_neutral_value_with_an_indicator() {
    let f = compute(&History::new(customer()), at_day(0));
    assert_eq!(value(&f, "no_activity_90d"), 1.0);
    assert_eq!(value(&f, "days_since_last_activity"), MAX_DAYS);
    assert_eq!(value(&f, "no_csat_180d"), 1.0);
    assert_eq!(value(&f, "latest_csat"), 0.0);
    assert_eq!(value(&f, "no_nps"), 1.0);
    assert_eq!(value(&f, "no_contacts_90d"), 1.0);
    assert_eq!(value(&f, "first_contact_resolution_rate_90d"), 1.0);
    assert_eq!(value(&f, "no_recovery_90d"), 1.0);
}

#[test]
fn nothing_at_or_after_as_of_changes_the_features() {
    let as_of = at_day(0);
    let before = compute(&busy_history(), as_of);
    let mut later = busy_history();
    later.usage.push(usage(9, 0, 50.0));
    later.usage.push(usage(10, 3, 50.0));
    later.interactions.push(contact(9, 0, true));
    later.interactions.push(contact(10, 20, true));
    later.surveys.push(survey(9, 1, 1, Some(0)));
    later.recovery_cases.push(case(9, 2, 5, 1));
    assert_eq!(compute(&later, as_of), before);
}

#[test]
fn a_recovery_rating_learnt_after_as_of_is_not_used() {
    let mut history = History::new(customer());
    // Opened before as_of, resolved (and rated) after it.
    history.recovery_cases = vec![case(1, -5, 3, 7)];
    let f = compute(&history, at_day(0));
    assert_eq!(value(&f, "recovery_cases_90d"), 1.0);
    assert_eq!(value(&f, "no_recovery_90d"), 1.0);
    assert_eq!(value(&f, "mean_recovery_rating_90d"), 0.0);
}

#[test]
fn the_label_is_churn_within_the_horizon_when_known() {
    let outcome = |status, churned_day: Option<i64>, observed_day| ChurnOutcome {
        customer_id: customer().customer_id,
        status,
        churned_at: churned_day.map(at_day),
        observed_at: at_day(observed_day),
    };
    let as_of = at_day(0);
    assert_eq!(
        churn_label(
            Some(&outcome(ChurnStatus::Churned, Some(30), 200)),
            as_of,
            90
        ),
        Some(true)
    );
    assert_eq!(
        churn_label(
            Some(&outcome(ChurnStatus::Churned, Some(120), 200)),
            as_of,
            90
        ),
        Some(false)
    );
    assert_eq!(
        churn_label(
            Some(&outcome(ChurnStatus::Churned, Some(-1), 200)),
            as_of,
            90
        ),
        None
    );
    assert_eq!(
        churn_label(Some(&outcome(ChurnStatus::Active, None, 90)), as_of, 90),
        Some(false)
    );
    assert_eq!(
        churn_label(Some(&outcome(ChurnStatus::Active, None, 89)), as_of, 90),
        None
    );
    assert_eq!(churn_label(None, as_of, 90), None);
}

mod chosen_from_the_data {
    use std::collections::BTreeMap;

    use super::*;
    use crate::domain::{AttributeName, AttributeValue, Attributes};

    fn with_attributes(values: &[(&str, AttributeValue)]) -> History {
        let mut customer = customer();
        customer.attributes = Attributes::new(
            values
                .iter()
                .map(|(name, value)| {
                    (
                        AttributeName::parse((*name).to_owned()).expect("a name"),
                        value.clone(),
                    )
                })
                .collect::<BTreeMap<_, _>>(),
        )
        .expect("attributes");
        History::new(customer)
    }

    fn names(spec: &FeatureSpec) -> Vec<&str> {
        spec.names()
            .filter(|n| !FEATURE_NAMES.contains(n))
            .collect()
    }

    #[test]
    fn attributes_activities_and_tags_become_features_when_enough_customers_have_them() {
        let mut builder = SpecBuilder::default();
        for i in 0..100 {
            let contract = match i {
                0..60 => "monthly",
                60..95 => "yearly",
                _ => "two year",
            };
            let mut values = vec![
                ("contract", AttributeValue::Category(contract.into())),
                ("paperless", AttributeValue::Flag(i % 2 == 0)),
            ];
            if i >= 10 {
                values.push(("age", AttributeValue::Number(f64::from(i))));
            }
            if i < 5 {
                values.push(("rarely_set", AttributeValue::Number(1.0)));
            }
            let mut history = with_attributes(&values);
            history.usage.push(usage(i as usize, -3, 2.0));
            history.interactions.push(contact(i as usize, -5, true));
            builder.add(&history, at_day(0));
        }
        let spec = builder.finish();
        assert_eq!(
            names(&spec),
            [
                "attr.age",
                "attr.age.missing",
                "attr.contract=monthly",
                "attr.contract=yearly",
                "attr.contract=other",
                "attr.paperless",
                "activity.active_days.30d",
                "activity.active_days.90d",
                "activity.active_days.days_since",
                "contacts.billing.90d",
            ]
        );
        assert!(spec.check().is_ok());

        let history = with_attributes(&[("contract", AttributeValue::Category("two year".into()))]);
        let values = spec.compute(&history, at_day(0));
        let value = |name: &str| {
            let index = spec.names().position(|n| n == name).expect("a feature");
            values.0[index]
        };
        // A missing number takes the training median (of 10..=99) and its indicator.
        assert_eq!(value("attr.age"), 54.5);
        assert_eq!(value("attr.age.missing"), 1.0);
        assert_eq!(value("attr.contract=monthly"), 0.0);
        assert_eq!(value("attr.contract=other"), 1.0);
        assert_eq!(value("activity.active_days.days_since"), MAX_DAYS);
    }

    #[test]
    fn serving_holds_each_feature_within_its_training_range_and_says_which() {
        let names: Vec<String> = ["failures_90d", "log_usage_30d"]
            .iter()
            .map(|n| (*n).to_owned())
            .collect();
        let mut spec = FeatureSpec::built_in(&names);
        spec.record_ranges(&[0.0, 1.0, 2.0, 3.0]);
        assert_eq!(spec.features[0].range, Some((0.0, 2.0)));
        let mut history = History::new(customer());
        for n in 0..5 {
            history.interactions.push(contact(n, -1 - n as i64, true));
        }
        let (values, held) = spec.compute_checked(&history, at_day(0));
        assert_eq!(
            values.0[0], 2.0,
            "5 failures held at the most seen in training"
        );
        // No usage: ln(1) = 0, below the least seen (1), held there too.
        assert_eq!(values.0[1], 1.0);
        assert_eq!(held, [0, 1]);
    }

    #[test]
    fn a_constant_column_is_dropped_and_a_feature_this_build_lacks_is_refused() {
        let names: Vec<String> = ["failures_90d", "plan_tier"]
            .iter()
            .map(|n| (*n).to_owned())
            .collect();
        let spec = FeatureSpec::built_in(&names);
        let (kept, columns) = spec.without_constant_columns(&[1.0, 2.0, 0.0, 2.0]);
        assert_eq!(kept.names().collect::<Vec<_>>(), ["failures_90d"]);
        assert_eq!(columns, [0]);
        let unknown = FeatureSpec::built_in(&["no_such_feature".to_owned()]);
        assert!(unknown.check().is_err());
    }

    #[test]
    fn attribute_features_are_put_into_words() {
        let mut builder = SpecBuilder::default();
        for i in 0..20 {
            builder.add(
                &with_attributes(&[
                    (
                        "monthly_charge",
                        AttributeValue::Number(f64::from(i) + 0.25),
                    ),
                    (
                        "contract",
                        AttributeValue::Category("month-to-month".into()),
                    ),
                ]),
                at_day(0),
            );
        }
        let spec = builder.finish();
        let describe = |name: &str, value: f64| {
            let index = spec.names().position(|n| n == name).expect("a feature");
            spec.describe(index, value)
        };
        assert_eq!(
            describe("attr.monthly_charge", 70.35).as_deref(),
            Some("monthly charge 70.35")
        );
        assert_eq!(
            describe("attr.contract=month-to-month", 1.0).as_deref(),
            Some("contract: month-to-month")
        );
        assert_eq!(describe("attr.contract=month-to-month", 0.0), None);
    }
}
