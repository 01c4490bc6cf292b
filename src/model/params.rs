//! Training settings, checked before any data is touched (linfa's `Params → check → ValidParams`).

use super::ModelError;

/// How hard to fit. The objective is scikit-learn's, so settings carry over between the two:
///
/// `Σᵢ log-loss(rowᵢ) + l2_penalty / 2 · ‖w‖²` (intercept not penalized), i.e. scikit-learn's
/// `LogisticRegression(C = 1 / l2_penalty)`.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainParams {
    /// L2 strength λ over the summed loss; scikit-learn's `1 / C`. It does not grow with the
    /// row count, so more data weighs more against the prior, as in scikit-learn.
    pub l2_penalty: f64,
    /// Cap on L-BFGS iterations of the final full-data solve.
    pub max_iterations: u64,
    /// Stop when every component of the gradient of the MEAN loss is at most this: scikit-learn's
    /// `tol` for lbfgs. Training converts it for its solver, which sums the loss and tests the
    /// L2 norm of the gradient (docs/dependencies.md, "Stopping rule").
    pub gradient_tolerance: f64,
}

impl Default for TrainParams {
    /// scikit-learn's defaults (`C = 1`, `tol = 1e-4`); more iterations than its 100 because the
    /// solve is warm-started and rarely needs them, but a cold one on badly scaled data may.
    fn default() -> Self {
        Self {
            l2_penalty: 1.0,
            max_iterations: 200,
            gradient_tolerance: 1e-4,
        }
    }
}

/// [`TrainParams`] that passed [`TrainParams::check`].
#[derive(Debug, Clone, PartialEq)]
pub struct ValidTrainParams(TrainParams);

impl ValidTrainParams {
    pub fn l2_penalty(&self) -> f64 {
        self.0.l2_penalty
    }

    pub fn max_iterations(&self) -> u64 {
        self.0.max_iterations
    }

    pub fn gradient_tolerance(&self) -> f64 {
        self.0.gradient_tolerance
    }
}

impl TrainParams {
    pub fn check(self) -> Result<ValidTrainParams, ModelError> {
        if !self.l2_penalty.is_finite() || self.l2_penalty < 0.0 {
            return Err(ModelError::InvalidParameter {
                name: "l2_penalty",
                reason: format!("must be finite and >= 0, got {}", self.l2_penalty),
            });
        }
        if self.max_iterations == 0 {
            return Err(ModelError::InvalidParameter {
                name: "max_iterations",
                reason: "must be at least 1".into(),
            });
        }
        if !self.gradient_tolerance.is_finite() || self.gradient_tolerance <= 0.0 {
            return Err(ModelError::InvalidParameter {
                name: "gradient_tolerance",
                reason: format!("must be finite and > 0, got {}", self.gradient_tolerance),
            });
        }
        Ok(ValidTrainParams(self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_pass_the_check() {
        assert!(TrainParams::default().check().is_ok());
    }

    #[test]
    fn negative_nan_or_zero_settings_are_parameter_errors() {
        for params in [
            TrainParams {
                l2_penalty: -1.0,
                ..TrainParams::default()
            },
            TrainParams {
                l2_penalty: f64::NAN,
                ..TrainParams::default()
            },
            TrainParams {
                max_iterations: 0,
                ..TrainParams::default()
            },
            TrainParams {
                gradient_tolerance: 0.0,
                ..TrainParams::default()
            },
        ] {
            assert!(matches!(
                params.check(),
                Err(ModelError::InvalidParameter { .. })
            ));
        }
    }
}
