//! The churn model against the truth: trained on simulated data whose true churn
//! probabilities are known, it must rank customers nearly as well as the truth does and be
//! calibrated.

use std::collections::HashMap;

use rescue::model::{Metrics, TrainParams, train_logistic};
use rescue::simulate::{self, SimulationParams};
use rescue::store::CustomerRecords;
use rescue::training::RowBuilder;

/// Customers in the test world: enough hold-out churners (several hundred) for ROC-AUC
/// differences of 0.02 to be signal, small enough for a debug-build test. The README's
/// full-size figures come from the same test with `RESCUE_QUALITY_CUSTOMERS=50000`.
const CUSTOMERS: usize = 6_000;

fn customers() -> usize {
    std::env::var("RESCUE_QUALITY_CUSTOMERS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(CUSTOMERS)
}

#[test]
fn the_trained_model_ranks_within_0_02_of_the_oracle_and_is_calibrated() {
    let as_of = simulate::snapshot_dates();
    let holdout_at = *as_of.last().expect("snapshots");
    let mut rows = RowBuilder::new(as_of, simulate::HORIZON_DAYS as u32).expect("a valid grid");
    let mut truth: HashMap<String, f64> = HashMap::new();
    for customer in simulate::simulate(SimulationParams {
        customers: customers(),
        seed: 11,
    }) {
        for oracle in customer
            .churn_oracle
            .iter()
            .filter(|o| o.as_of == holdout_at)
        {
            truth.insert(oracle.customer_id.clone(), oracle.p_churn);
        }
        rows.add(&CustomerRecords::from_records(customer.records).expect("a profile"));
    }
    let split = rows.finish().expect("both classes in both splits");
    let params = TrainParams::default().check().expect("default parameters");
    let model = train_logistic(&split.train, &params).expect("training");

    let scores = model.predict_all(split.holdout.features.view());
    let trained = Metrics::evaluate(&scores, &split.holdout.labels).expect("metrics");
    let oracle_scores: Vec<f64> = split
        .holdout_customers
        .iter()
        .map(|id| {
            *truth
                .get(id.as_str())
                .unwrap_or_else(|| panic!("no oracle row for hold-out customer {id}"))
        })
        .collect();
    let oracle = Metrics::evaluate(&oracle_scores, &split.holdout.labels).expect("metrics");

    eprintln!(
        "{} customers; hold-out rows {}, churned {}: ROC-AUC trained {:.4} vs oracle {:.4}; ECE trained {:.4} vs oracle {:.4}",
        customers(),
        trained.rows,
        trained.positives,
        trained.roc_auc,
        oracle.roc_auc,
        trained.expected_calibration_error,
        oracle.expected_calibration_error
    );
    assert!(
        trained.positives >= 200,
        "too few churners to judge: {}",
        trained.positives
    );
    assert!(
        trained.roc_auc >= oracle.roc_auc - 0.02,
        "{} vs {}",
        trained.roc_auc,
        oracle.roc_auc
    );
    assert!(
        trained.expected_calibration_error < 0.02,
        "{}",
        trained.expected_calibration_error
    );
}
