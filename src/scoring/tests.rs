use std::sync::Arc;

use super::*;
use crate::features::FEATURE_NAMES;

#[test]
fn bands_follow_descending_thresholds() {
    let bands = Bands::default().check().expect("defaults are valid");
    assert_eq!(bands.band(95.0), Band::Healthy);
    assert_eq!(bands.band(90.0), Band::Healthy);
    assert_eq!(bands.band(85.0), Band::Watch);
    assert_eq!(bands.band(60.0), Band::AtRisk);
    assert_eq!(bands.band(59.9), Band::Critical);
}

#[test]
fn thresholds_out_of_order_or_range_are_refused() {
    assert!(
        Bands {
            healthy: 80.0,
            watch: 90.0,
            at_risk: 60.0
        }
        .check()
        .is_err()
    );
    assert!(
        Bands {
            healthy: 120.0,
            watch: 90.0,
            at_risk: 60.0
        }
        .check()
        .is_err()
    );
    assert!(
        Bands {
            healthy: 90.0,
            watch: 90.0,
            at_risk: 60.0
        }
        .check()
        .is_err()
    );
}

#[test]
fn drivers_put_the_strongest_risks_first_and_keep_two_protective_ones() {
    let index = |name: &str| {
        FEATURE_NAMES
            .iter()
            .position(|n| *n == name)
            .expect("feature")
    };
    let mut values = vec![0.0; FEATURE_NAMES.len()];
    let mut contributions = vec![0.0; FEATURE_NAMES.len()];
    for (name, value, contribution) in [
        ("failures_30d", 2.0, 0.9),
        ("usage_trend", -0.45, 0.5),
        ("latest_csat", 2.0, 0.7),
        ("unresolved_issues_90d", 1.0, 0.2),
        ("repeat_contacts_90d", 1.0, 0.1),
        ("tenure_years", 6.0, -0.4),
        ("plan_tier", 3.0, -0.3),
        ("log_annual_value", 8.0, -0.05),
    ] {
        values[index(name)] = value;
        contributions[index(name)] = contribution;
    }
    let names: Vec<String> = FEATURE_NAMES.iter().map(|n| (*n).to_owned()).collect();
    let chosen = drivers(&FeatureSpec::built_in(&names), &values, &contributions);
    let names: Vec<&str> = chosen.iter().map(|d| d.feature.as_str()).collect();
    assert_eq!(
        names,
        [
            "failures_30d",
            "latest_csat",
            "usage_trend",
            "tenure_years",
            "plan_tier"
        ]
    );
    assert_eq!(
        chosen[0].description,
        "2 service failures in the last 30 days"
    );
}

#[test]
fn a_request_keeps_the_model_it_started_with_across_a_swap() {
    let slot = ModelSlot::default();
    assert!(slot.current().is_none());
    let model = |version: &str| {
        let names: Vec<String> = FEATURE_NAMES.iter().map(|n| (*n).to_owned()).collect();
        Arc::new(HealthModel {
            version: version.into(),
            horizon_days: 90,
            features: FeatureSpec::built_in(&names),
            model: FittedModel::Logistic(crate::model::LogisticModel {
                scaler: crate::model::Scaler {
                    mean: vec![0.0; FEATURE_NAMES.len()],
                    scale: vec![1.0; FEATURE_NAMES.len()],
                },
                coefficients: vec![0.0; FEATURE_NAMES.len()],
                intercept: 0.0,
            }),
            baseline: false,
            trained_to: Timestamp::from_unix_micros(0),
        })
    };
    slot.replace(model("v1"));
    let held = slot.current().expect("a model");
    slot.replace(model("v2"));
    assert_eq!(held.version, "v1");
    assert_eq!(slot.current().expect("a model").version, "v2");
}
