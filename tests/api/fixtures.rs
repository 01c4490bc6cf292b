//! Valid proto records of every kind, and malformed ones with the field they get wrong.

use rescue::proto::v1::{self as proto, record::Kind};

/// A fixed point in the past all fixture times count from: 2026-01-01T00:00:00Z.
pub const BASE_SECONDS: i64 = 1_767_225_600;

pub fn at(offset_seconds: i64) -> Option<prost_types::Timestamp> {
    Some(prost_types::Timestamp {
        seconds: BASE_SECONDS + offset_seconds,
        nanos: 0,
    })
}

pub fn record(kind: Kind) -> proto::Record {
    proto::Record { kind: Some(kind) }
}

pub fn customer(id: &str) -> proto::Record {
    customer_version(id, 0, 1_000.0)
}

/// A customer profile produced `version` seconds after the base time, worth `annual_value`.
pub fn customer_version(id: &str, version: i64, annual_value: f64) -> proto::Record {
    record(Kind::Customer(proto::Customer {
        customer_id: id.into(),
        segment: proto::Segment::SmallBusiness.into(),
        plan: proto::PlanTier::Standard.into(),
        persona: "owner".into(),
        region: "EMEA".into(),
        annual_value,
        customer_since: at(-400 * 86_400),
        updated_at: at(version),
        attributes: Default::default(),
    }))
}

pub fn usage_event(id: &str, customer: &str) -> proto::Record {
    usage_event_of(id, customer, 3.0)
}

pub fn usage_event_of(id: &str, customer: &str, quantity: f64) -> proto::Record {
    record(Kind::UsageEvent(proto::UsageEvent {
        event_id: id.into(),
        customer_id: customer.into(),
        occurred_at: at(3_600),
        activity: "login".into(),
        quantity,
    }))
}

pub fn interaction(id: &str, customer: &str) -> proto::Record {
    record(Kind::Interaction(proto::Interaction {
        interaction_id: id.into(),
        customer_id: customer.into(),
        occurred_at: at(7_200),
        channel: proto::Channel::Phone.into(),
        tag: proto::IssueTag::Billing.into(),
        tag_name: String::new(),
        failure: true,
        resolution: proto::Resolution::Unresolved.into(),
        wait_seconds: 540.0,
        first_contact_resolution: false,
        repeat_contact: true,
    }))
}

pub fn survey(id: &str, customer: &str) -> proto::Record {
    record(Kind::Survey(proto::Survey {
        survey_id: id.into(),
        customer_id: customer.into(),
        answered_at: at(10_800),
        channel: proto::Channel::Email.into(),
        interaction_id: String::new(),
        csat: Some(2),
        nps: Some(5),
        recovery_rating: None,
        comment: "Billed twice.\nStill waiting.".into(),
    }))
}

pub fn churn_outcome(customer: &str, observed: i64) -> proto::Record {
    record(Kind::ChurnOutcome(proto::ChurnOutcome {
        customer_id: customer.into(),
        status: proto::ChurnStatus::Active.into(),
        churned_at: None,
        observed_at: at(observed),
    }))
}

pub fn recovery_case(id: &str, customer: &str, version: i64) -> proto::Record {
    record(Kind::RecoveryCase(proto::RecoveryCase {
        case_id: id.into(),
        customer_id: customer.into(),
        trigger: proto::RecoveryTrigger::LowSurveyScore.into(),
        tag: proto::IssueTag::Billing.into(),
        action: proto::RecoveryAction::Refund.into(),
        tag_name: String::new(),
        action_name: String::new(),
        cost: 25.0,
        trigger_interaction_id: String::new(),
        trigger_survey_id: String::new(),
        opened_at: at(14_400),
        first_response_at: at(15_000),
        resolved_at: None,
        cares: Some(proto::CaresRatings {
            communication: Some(6),
            accountability: Some(5),
            responsiveness: None,
            empathy: Some(7),
            solution: None,
        }),
        resurvey_score: None,
        retained: None,
        spend_change_pct: None,
        updated_at: at(14_400 + version),
    }))
}

fn edit<T>(
    mut record: proto::Record,
    change: impl FnOnce(&mut Kind) -> Option<&mut T>,
    apply: impl FnOnce(&mut T),
) -> proto::Record {
    if let Some(kind) = record.kind.as_mut()
        && let Some(inner) = change(kind)
    {
        apply(inner);
    }
    record
}

fn as_usage(kind: &mut Kind) -> Option<&mut proto::UsageEvent> {
    if let Kind::UsageEvent(r) = kind {
        Some(r)
    } else {
        None
    }
}
fn as_interaction(kind: &mut Kind) -> Option<&mut proto::Interaction> {
    if let Kind::Interaction(r) = kind {
        Some(r)
    } else {
        None
    }
}
fn as_survey(kind: &mut Kind) -> Option<&mut proto::Survey> {
    if let Kind::Survey(r) = kind {
        Some(r)
    } else {
        None
    }
}
fn as_case(kind: &mut Kind) -> Option<&mut proto::RecoveryCase> {
    if let Kind::RecoveryCase(r) = kind {
        Some(r)
    } else {
        None
    }
}
fn as_churn(kind: &mut Kind) -> Option<&mut proto::ChurnOutcome> {
    if let Kind::ChurnOutcome(r) = kind {
        Some(r)
    } else {
        None
    }
}
fn as_customer(kind: &mut Kind) -> Option<&mut proto::Customer> {
    if let Kind::Customer(r) = kind {
        Some(r)
    } else {
        None
    }
}

/// A malformed record, the field path it must be rejected on, and a word the reason must use.
pub struct Malformed {
    pub record: proto::Record,
    pub field: &'static str,
    pub reason_mentions: &'static str,
}

/// One malformed record of each sort, for customer `customer`, with ids built from `tag`.
pub fn malformed(tag: &str, customer: &str) -> Vec<Malformed> {
    let two_days_ahead = prost_types::Timestamp {
        seconds: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock after 1970")
            .as_secs() as i64
            + 2 * 86_400,
        nanos: 0,
    };
    let id = |suffix: &str| format!("{tag}-{suffix}");
    vec![
        Malformed {
            record: usage_event_of(&id("nan"), customer, f64::NAN),
            field: "usage_event.quantity",
            reason_mentions: "finite",
        },
        Malformed {
            record: edit(
                recovery_case(&id("negative-cost"), customer, 0),
                as_case,
                |r| r.cost = -5.0,
            ),
            field: "recovery_case.cost",
            reason_mentions: "negative",
        },
        Malformed {
            record: edit(survey(&id("csat-0"), customer), as_survey, |r| {
                r.csat = Some(0)
            }),
            field: "survey.csat",
            reason_mentions: "between 1 and 5",
        },
        Malformed {
            record: edit(recovery_case(&id("empathy-8"), customer, 0), as_case, |r| {
                if let Some(cares) = r.cares.as_mut() {
                    cares.empathy = Some(8);
                }
            }),
            field: "recovery_case.cares.empathy",
            reason_mentions: "between 1 and 7",
        },
        Malformed {
            record: edit(survey(&id("resurvey-0"), customer), as_survey, |r| {
                r.recovery_rating = Some(0)
            }),
            field: "survey.recovery_rating",
            reason_mentions: "between 1 and 7",
        },
        Malformed {
            record: usage_event("", customer),
            field: "usage_event.event_id",
            reason_mentions: "empty",
        },
        Malformed {
            record: interaction(&"x".repeat(10 * 1024), customer),
            field: "interaction.interaction_id",
            reason_mentions: "at most 128 bytes",
        },
        Malformed {
            record: edit(
                interaction(&id("channel-99"), customer),
                as_interaction,
                |r| r.channel = 99,
            ),
            field: "interaction.channel",
            reason_mentions: "unknown value 99",
        },
        Malformed {
            record: edit(usage_event(&id("future"), customer), as_usage, |r| {
                r.occurred_at = Some(two_days_ahead)
            }),
            field: "usage_event.occurred_at",
            reason_mentions: "future",
        },
        Malformed {
            record: survey(&id("stranger"), "nobody-we-know"),
            field: "survey.customer_id",
            reason_mentions: "unknown customer",
        },
        Malformed {
            record: proto::Record { kind: None },
            field: "kind",
            reason_mentions: "required",
        },
        Malformed {
            record: edit(churn_outcome(customer, 100), as_churn, |r| {
                r.status = proto::ChurnStatus::Churned.into()
            }),
            field: "churn_outcome.churned_at",
            reason_mentions: "required when status is CHURNED",
        },
        Malformed {
            record: edit(survey(&id("nps-11"), customer), as_survey, |r| {
                r.nps = Some(11)
            }),
            field: "survey.nps",
            reason_mentions: "between 0 and 10",
        },
        Malformed {
            record: edit(
                customer_version(&id("unspecified-plan"), 0, 10.0),
                as_customer,
                |r| r.plan = 0,
            ),
            field: "customer.plan",
            reason_mentions: "required",
        },
        Malformed {
            record: edit(
                customer_version(&id("infinite-value"), 0, f64::INFINITY),
                as_customer,
                |_| {},
            ),
            field: "customer.annual_value",
            reason_mentions: "finite",
        },
        Malformed {
            record: edit(
                recovery_case(&id("early-response"), customer, 0),
                as_case,
                |r| r.first_response_at = at(0),
            ),
            field: "recovery_case.first_response_at",
            reason_mentions: "before opened_at",
        },
        Malformed {
            record: edit(usage_event(&id("bad-nanos"), customer), as_usage, |r| {
                r.occurred_at = Some(prost_types::Timestamp {
                    seconds: BASE_SECONDS,
                    nanos: -1,
                })
            }),
            field: "usage_event.occurred_at",
            reason_mentions: "not a valid time",
        },
        Malformed {
            record: edit(usage_event(&id("control"), customer), as_usage, |r| {
                r.activity = "log\u{7}in".into()
            }),
            field: "usage_event.activity",
            reason_mentions: "control characters",
        },
        // A zero-width space, a right-to-left override and a line separator: ids that look
        // like others, read backwards, or split a log line.
        Malformed {
            record: usage_event(&format!("{}\u{200b}", id("zero-width")), customer),
            field: "usage_event.event_id",
            reason_mentions: "invisible",
        },
        Malformed {
            record: usage_event(&id("rtl\u{202e}evil"), customer),
            field: "usage_event.event_id",
            reason_mentions: "bidirectional overrides",
        },
        Malformed {
            record: usage_event(&id("line\u{2028}break"), customer),
            field: "usage_event.event_id",
            reason_mentions: "line separators",
        },
    ]
}

/// A health model with hand-set coefficients on raw feature values (scaler mean 0, scale 1):
/// failures and repeat contacts raise the risk, usage and CSAT lower it.
pub fn artifact(version: &str, intercept: f64) -> rescue::model::ModelArtifact {
    use rescue::features::FEATURE_NAMES;
    let weight = |name: &str| match name {
        "failures_30d" => 0.8,
        "failures_90d" => 0.3,
        "repeat_contacts_90d" => 0.2,
        "latest_csat" => -0.3,
        "log_usage_30d" => -0.4,
        "tenure_years" => -0.1,
        _ => 0.0,
    };
    let metrics =
        rescue::model::Metrics::evaluate(&[0.2, 0.7, 0.4, 0.9], &[false, true, false, true])
            .expect("metrics of a tiny hold-out");
    let now = rescue::domain::Timestamp::now();
    rescue::model::ModelArtifact {
        artifact_schema: rescue::model::ARTIFACT_SCHEMA_VERSION,
        kind: rescue::model::ModelKind::Health,
        version: version.into(),
        features: rescue::features::FeatureSpec::every_built_in(),
        horizon_days: 90,
        model: rescue::model::FittedModel::Logistic(rescue::model::LogisticModel {
            scaler: rescue::model::Scaler {
                mean: vec![0.0; FEATURE_NAMES.len()],
                scale: vec![1.0; FEATURE_NAMES.len()],
            },
            coefficients: FEATURE_NAMES.iter().map(|n| weight(n)).collect(),
            intercept,
        }),
        candidates: Vec::new(),
        holdout: "the rows at the last as-of time".into(),
        metrics,
        trained_from: now,
        trained_to: now,
        training_rows: 4,
        holdout_rows: 4,
        positives: 2,
        created_at: now,
        checksum: String::new(),
    }
}
