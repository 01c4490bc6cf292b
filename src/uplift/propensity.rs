//! How likely each failure was to be recovered, given what was known of the customer: the
//! program's own way of choosing whom to recover, estimated from the rows themselves. A program
//! recovers valuable customers more often, and they churn less anyway; comparing recovered and
//! unrecovered failures as they come would credit the recovery with that difference. Weighting
//! each failure by the inverse of the probability of what it got removes it (see
//! [`crate::model::qini`]).

use super::rows::UpliftRow;
use crate::model::{Dataset, LogisticModel, ModelError, ValidTrainParams, train_logistic};

/// Propensities are held within this range: a failure that almost never gets a recovery
/// would otherwise stand for hundreds of others and make the metrics one customer's luck.
pub const PROPENSITY_RANGE: (f64, f64) = (0.05, 0.95);

/// P(recovered | features), fitted by logistic regression on `rows` (which need recovered and
/// unrecovered failures).
pub fn fit(rows: &[&UpliftRow], params: &ValidTrainParams) -> Result<LogisticModel, ModelError> {
    let features = super::learner::feature_matrix(rows)?;
    let treated: Vec<bool> = rows.iter().map(|r| r.treated()).collect();
    train_logistic(&Dataset::new(features, treated)?, params)
}

/// Each row's inverse-propensity weight: `1 / e` if it was recovered, `1 / (1 − e)` if not,
/// with `e` = P(recovered | features) [`fit`] on `rows`. Needs recovered and unrecovered rows.
pub fn inverse_propensity_weights(
    rows: &[UpliftRow],
    params: &ValidTrainParams,
) -> Result<Vec<f64>, ModelError> {
    let refs: Vec<&UpliftRow> = rows.iter().collect();
    let model = fit(&refs, params)?;
    let (low, high) = PROPENSITY_RANGE;
    Ok(rows
        .iter()
        .map(|row| {
            let e = model.probability(&row.features).clamp(low, high);
            if row.treated() {
                1.0 / e
            } else {
                1.0 / (1.0 - e)
            }
        })
        .collect())
}
