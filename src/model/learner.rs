//! The fitted health model, whichever learner fitted it: one enum that training, the
//! artifact, the gate and scoring handle the same way. A third learner is a variant here and
//! a fit function beside the others.

use ndarray::ArrayView2;
use serde::{Deserialize, Serialize};

use super::artifact::{check_model_finite, check_model_lengths};
use super::{
    Dataset, LogisticModel, ModelError, TreeModel, TreeParams, ValidTrainParams, train_logistic,
    train_trees,
};

/// The learners a training run fits; each name is how reports and artifacts call it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Learner {
    Logistic,
    Trees,
}

impl Learner {
    pub const ALL: [Self; 2] = [Self::Logistic, Self::Trees];

    pub const fn name(self) -> &'static str {
        match self {
            Self::Logistic => "logistic",
            Self::Trees => "trees",
        }
    }
}

/// A fitted churn model: P(churn) from a feature vector, and each feature's share of it.
///
/// Externally tagged (`{"trees": {…}}`): an internally tagged enum is buffered by serde on
/// the way in, and the booster's maps keyed by number cannot be read back from that buffer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FittedModel {
    Logistic(LogisticModel),
    /// Boxed: a booster's settings alone are several hundred bytes.
    Trees(Box<TreeModel>),
}

impl FittedModel {
    /// Fits `learner` on `rows`: the logistic regression with `params`, the trees with their
    /// defaults ([`TreeParams`]).
    pub fn fit(
        learner: Learner,
        rows: &Dataset,
        params: &ValidTrainParams,
    ) -> Result<Self, ModelError> {
        Ok(match learner {
            Learner::Logistic => Self::Logistic(train_logistic(rows, params)?),
            Learner::Trees => Self::Trees(Box::new(train_trees(rows, &TreeParams::default())?)),
        })
    }

    pub fn learner(&self) -> Learner {
        match self {
            Self::Logistic(_) => Learner::Logistic,
            Self::Trees(_) => Learner::Trees,
        }
    }

    /// Calibrated P(churn) of every row.
    pub fn predict_all(&self, rows: ArrayView2<'_, f64>) -> Vec<f64> {
        match self {
            Self::Logistic(model) => model.predict_all(rows),
            Self::Trees(model) => model.predict_all(rows),
        }
    }

    /// Each feature's share of the churn log-odds for `x` (positive raises the risk), and
    /// P(churn). NaN everywhere when `x` has the wrong width.
    pub fn explain(&self, x: &[f64]) -> (Vec<f64>, f64) {
        match self {
            Self::Logistic(model) => {
                let contributions = model.contributions(x);
                let probability = model.probability_from_contributions(&contributions);
                (contributions, probability)
            }
            Self::Trees(model) if x.len() != model.inputs => (vec![f64::NAN; x.len()], f64::NAN),
            Self::Trees(model) => {
                let (contributions, logit) = model.contributions(x);
                (contributions, super::logistic::sigmoid(logit))
            }
        }
    }

    /// P(churn) of one feature vector.
    pub fn probability(&self, x: &[f64]) -> f64 {
        match self {
            Self::Logistic(model) => model.probability(x),
            Self::Trees(model) => model.probability(x),
        }
    }

    /// Refuses a model whose inputs do not match the `features` of its spec.
    pub(crate) fn check_inputs(&self, features: usize) -> Result<(), ModelError> {
        match self {
            Self::Logistic(model) => {
                check_model_lengths(&model.scaler, &model.coefficients, features)
            }
            Self::Trees(model) if model.inputs != features => {
                Err(ModelError::ArtifactLengthMismatch {
                    part: "tree inputs",
                    features,
                    found: model.inputs,
                })
            }
            Self::Trees(_) => Ok(()),
        }
    }

    /// JSON carries no NaN or infinity: refuse them before saving.
    pub(crate) fn check_finite(&self) -> Result<(), ModelError> {
        match self {
            Self::Logistic(model) => {
                check_model_finite(&model.scaler, &model.coefficients, model.intercept)
            }
            Self::Trees(model) => {
                for (field, value) in [("tree slope", model.slope), ("tree offset", model.offset)] {
                    if !value.is_finite() {
                        return Err(ModelError::ArtifactNonFinite { field, value });
                    }
                }
                Ok(())
            }
        }
    }
}
