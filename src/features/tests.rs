use super::*;
use crate::domain::{
    Amount, CaresRatings, CaseId, Channel, ChurnOutcome, CustomerId, EventId, InteractionId,
    IssueTag, Money, Rating, RecoveryAction, RecoveryTrigger, SurveyId, WaitSeconds,
};

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
        tag: IssueTag::Billing,
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
        tag: IssueTag::Billing,
        action: RecoveryAction::Refund,
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
