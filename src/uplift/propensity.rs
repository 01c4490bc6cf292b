//! How likely each failure was to be recovered, given what was known of the customer: the
//! program's own way of choosing whom to recover, estimated from the rows themselves. A program
//! recovers valuable customers more often, and they churn less anyway; comparing recovered and
//! unrecovered failures as they come would credit the recovery with that difference. Weighting
//! each failure by the inverse of the probability of what it got removes it (see
//! [`crate::model::qini`]).

use ndarray::Array2;

use super::rows::UpliftRow;
use crate::features::FEATURE_NAMES;
use crate::model::{Dataset, ModelError, ValidTrainParams, train_logistic};

/// Propensities are held within this range: a failure that almost never gets a recovery
/// would otherwise stand for hundreds of others and make the metrics one customer's luck.
pub const PROPENSITY_RANGE: (f64, f64) = (0.05, 0.95);

/// Each row's inverse-propensity weight: `1 / e` if it was recovered, `1 / (1 − e)` if not,
/// with `e` = P(recovered | features) fitted by logistic regression on `rows`. Needs
/// recovered and unrecovered rows.
pub fn inverse_propensity_weights(
    rows: &[UpliftRow],
    params: &ValidTrainParams,
) -> Result<Vec<f64>, ModelError> {
    let width = FEATURE_NAMES.len();
    let values: Vec<f64> = rows
        .iter()
        .flat_map(|r| r.features.iter().copied())
        .collect();
    let features = Array2::from_shape_vec((rows.len(), width), values).map_err(|_| {
        ModelError::FeatureCountMismatch {
            expected: width,
            actual: rows.first().map_or(0, |r| r.features.len()),
        }
    })?;
    let treated: Vec<bool> = rows.iter().map(UpliftRow::treated).collect();
    let data = Dataset::new(features, treated)?;
    let model = train_logistic(&data, params)?;
    let (low, high) = PROPENSITY_RANGE;
    Ok(model
        .predict_all(data.features.view())
        .into_iter()
        .zip(&data.labels)
        .map(|(e, treated)| {
            let e = e.clamp(low, high);
            if *treated { 1.0 / e } else { 1.0 / (1.0 - e) }
        })
        .collect())
}
