//! Fitting the two retention models an uplift is the difference of: P(retained | features,
//! recovered with an action at a quality) and P(retained | features, not recovered).

use ndarray::Array2;
use serde::{Deserialize, Serialize};

use super::rows::UpliftRow;
use super::treatment::{self, TREATMENT_NAMES};
use crate::features::FEATURE_NAMES;
use crate::model::{Dataset, LogisticModel, ModelError, Scaler, ValidTrainParams, train_logistic};

/// How the two retention models were learnt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Learner {
    /// Two models: one fitted on the recovered failures (features and treatment inputs), one
    /// on the others (features).
    TLearner,
    /// One model on every failure (features, treatment inputs and a recovered flag), read as
    /// the two models it implies.
    SLearner,
}

impl Learner {
    pub const fn as_str(self) -> &'static str {
        match self {
            Learner::TLearner => "t_learner",
            Learner::SLearner => "s_learner",
        }
    }
}

/// The two fitted models. `recovered` reads the features followed by the treatment inputs;
/// `not_recovered` reads the features.
#[derive(Debug, Clone, PartialEq)]
pub struct RetentionModels {
    pub recovered: LogisticModel,
    pub not_recovered: LogisticModel,
}

/// Fits the retention models on `rows` (which need recovered and not-recovered failures,
/// each with retained and churned customers).
pub fn fit(
    learner: Learner,
    rows: &[UpliftRow],
    params: &ValidTrainParams,
) -> Result<RetentionModels, ModelError> {
    match learner {
        Learner::TLearner => {
            let treated: Vec<&UpliftRow> = rows.iter().filter(|r| r.treated()).collect();
            let control: Vec<&UpliftRow> = rows.iter().filter(|r| !r.treated()).collect();
            Ok(RetentionModels {
                recovered: train_logistic(&dataset(&treated, Inputs::Treatment)?, params)?,
                not_recovered: train_logistic(&dataset(&control, Inputs::Features)?, params)?,
            })
        }
        Learner::SLearner => {
            let all: Vec<&UpliftRow> = rows.iter().collect();
            let joint = train_logistic(&dataset(&all, Inputs::TreatmentAndFlag)?, params)?;
            Ok(split_joint(&joint))
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Inputs {
    Features,
    Treatment,
    TreatmentAndFlag,
}

fn dataset(rows: &[&UpliftRow], inputs: Inputs) -> Result<Dataset, ModelError> {
    let width = match inputs {
        Inputs::Features => FEATURE_NAMES.len(),
        Inputs::Treatment => FEATURE_NAMES.len() + TREATMENT_NAMES.len(),
        Inputs::TreatmentAndFlag => FEATURE_NAMES.len() + TREATMENT_NAMES.len() + 1,
    };
    let mut values = Vec::with_capacity(rows.len() * width);
    for row in rows {
        values.extend_from_slice(&row.features);
        match (inputs, &row.treatment) {
            (Inputs::Features, _) => {}
            (Inputs::Treatment, Some(t)) => treatment::encode(t.action, &t.quality, &mut values),
            (Inputs::Treatment, None) => {
                values.extend(std::iter::repeat_n(0.0, TREATMENT_NAMES.len()))
            }
            (Inputs::TreatmentAndFlag, Some(t)) => {
                treatment::encode(t.action, &t.quality, &mut values);
                values.push(1.0);
            }
            (Inputs::TreatmentAndFlag, None) => {
                values.extend(std::iter::repeat_n(0.0, TREATMENT_NAMES.len() + 1))
            }
        }
    }
    let features = Array2::from_shape_vec((rows.len(), width), values).map_err(|_| {
        ModelError::FeatureCountMismatch {
            expected: width,
            actual: rows.first().map_or(0, |r| r.features.len()),
        }
    })?;
    Dataset::new(features, rows.iter().map(|r| r.retained).collect())
}

/// The two models a joint model implies: the recovered flag (the last input) set to 1 and
/// folded into the intercept, or every treatment input and the flag at 0.
fn split_joint(joint: &LogisticModel) -> RetentionModels {
    let features = FEATURE_NAMES.len();
    let treatments = TREATMENT_NAMES.len();
    let standardized =
        |j: usize, value: f64| (value - joint.scaler.mean[j]) / joint.scaler.scale[j];
    let flag = features + treatments;
    let recovered = LogisticModel {
        scaler: Scaler {
            mean: joint.scaler.mean[..flag].to_vec(),
            scale: joint.scaler.scale[..flag].to_vec(),
        },
        coefficients: joint.coefficients[..flag].to_vec(),
        intercept: joint.intercept + joint.coefficients[flag] * standardized(flag, 1.0),
    };
    let zero_inputs: f64 = (features..=flag)
        .map(|j| joint.coefficients[j] * standardized(j, 0.0))
        .sum();
    let not_recovered = LogisticModel {
        scaler: Scaler {
            mean: joint.scaler.mean[..features].to_vec(),
            scale: joint.scaler.scale[..features].to_vec(),
        },
        coefficients: joint.coefficients[..features].to_vec(),
        intercept: joint.intercept + zero_inputs,
    };
    RetentionModels {
        recovered,
        not_recovered,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_joint_model_splits_into_two_that_agree_with_it() {
        let width = FEATURE_NAMES.len() + TREATMENT_NAMES.len() + 1;
        let joint = LogisticModel {
            scaler: Scaler {
                mean: (0..width).map(|j| j as f64 * 0.1).collect(),
                scale: (0..width).map(|j| 1.0 + j as f64 * 0.05).collect(),
            },
            coefficients: (0..width).map(|j| ((j as f64) * 0.37).sin()).collect(),
            intercept: 0.4,
        };
        let models = split_joint(&joint);
        let features: Vec<f64> = (0..FEATURE_NAMES.len()).map(|j| j as f64 * 0.3).collect();
        let quality = treatment::Quality {
            resurvey: Some(5),
            cares: Some([5.0; 5]),
        };
        let mut recovered = features.clone();
        treatment::encode(
            crate::domain::RecoveryAction::Callback,
            &quality,
            &mut recovered,
        );
        let mut joint_recovered = recovered.clone();
        joint_recovered.push(1.0);
        let mut joint_not = features.clone();
        joint_not.extend(std::iter::repeat_n(0.0, TREATMENT_NAMES.len() + 1));
        assert!((models.recovered.logit(&recovered) - joint.logit(&joint_recovered)).abs() < 1e-9);
        assert!((models.not_recovered.logit(&features) - joint.logit(&joint_not)).abs() < 1e-9);
    }
}
