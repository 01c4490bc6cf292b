//! Regressions of a real-valued target on features, in the two learners' families: a ridge
//! regression for the logistic learner and boosted trees on squared loss for the tree
//! learner. The uplift model's doubly-robust learner regresses each failure's estimate of what
//! recovery did on the customer's features with one of them.
//!
//! The ridge is solved in closed form — `(XᵀX + λI) w = Xᵀy` on standardized features, by
//! linfa-linalg's Cholesky decomposition: the system has one row and column per feature, so
//! it is solved in microseconds whatever the row count, and the penalty keeps it positive
//! definite when features are collinear (a full set of one-hot columns always is). Its
//! strength λ is chosen by cross-validation: from the same sums, each fold's fit is one more
//! small solve.

use linfa_linalg::cholesky::SolveCInplace;
use ndarray::{Array2, ArrayView2};

use serde::{Deserialize, Serialize};

use super::trees::{TreeParams, TreeRegression, train_tree_regression};
use super::{Learner, ModelError, Scaler};

/// A fitted regression.
///
/// Externally tagged, like [`super::FittedModel`]: the booster's maps keyed by number cannot
/// be read back through serde's buffer for internally tagged enums.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Regression {
    Linear(LinearRegression),
    Trees(Box<TreeRegression>),
}

/// `intercept + Σ coefficientⱼ · (xⱼ − meanⱼ) / scaleⱼ`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinearRegression {
    pub scaler: Scaler,
    pub coefficients: Vec<f64>,
    pub intercept: f64,
}

impl LinearRegression {
    pub fn predict(&self, x: &[f64]) -> f64 {
        if x.len() != self.coefficients.len() {
            return f64::NAN;
        }
        self.intercept
            + x.iter()
                .zip(&self.coefficients)
                .zip(self.scaler.mean.iter().zip(&self.scaler.scale))
                .map(|((value, weight), (mean, scale))| weight * (value - mean) / scale)
                .sum::<f64>()
    }
}

impl Regression {
    /// The predicted target of one row; NaN for a row of the wrong width.
    pub fn predict(&self, x: &[f64]) -> f64 {
        match self {
            Self::Linear(model) => model.predict(x),
            Self::Trees(model) => model.predict(x),
        }
    }

    /// The number of features it reads.
    pub fn inputs(&self) -> usize {
        match self {
            Self::Linear(model) => model.coefficients.len(),
            Self::Trees(model) => model.inputs,
        }
    }

    /// JSON carries no NaN or infinity.
    pub(crate) fn check_finite(&self) -> Result<(), ModelError> {
        match self {
            Self::Linear(model) => super::artifact::check_model_finite(
                &model.scaler,
                &model.coefficients,
                model.intercept,
            ),
            Self::Trees(_) => Ok(()),
        }
    }
}

/// Fits `targets` on `features` with `learner`'s family: a ridge regression whose strength is
/// chosen by cross-validation, or trees with `trees`.
pub fn fit_regression(
    learner: Learner,
    features: ArrayView2<'_, f64>,
    targets: &[f64],
    trees: &TreeParams,
) -> Result<Regression, ModelError> {
    if let Some(((row, column), value)) = features.indexed_iter().find(|(_, v)| !v.is_finite()) {
        return Err(ModelError::NonFiniteFeature {
            row,
            column,
            value: *value,
        });
    }
    match learner {
        Learner::Logistic => Ok(Regression::Linear(fit_ridge(features, targets)?)),
        Learner::Trees => Ok(Regression::Trees(Box::new(train_tree_regression(
            features, targets, trees,
        )?))),
    }
}

/// Ridge strengths tried, per training row (the penalty is over the summed squared error of
/// standardized features, whose diagonal is one per row): from almost none to one that
/// leaves little but the mean. A noisy target — an effect estimate per failure is mostly
/// noise — needs the strong end.
const RIDGE_GRID: [f64; 10] = [1e-4, 1e-3, 1e-2, 0.1, 0.3, 1.0, 3.0, 10.0, 100.0, 1000.0];
/// Folds of the cross-validation that chooses the strength.
const RIDGE_FOLDS: usize = 5;

/// The sums a least-squares fit needs, over some rows of standardized features.
#[derive(Clone)]
struct Moments {
    rows: f64,
    sum_x: Vec<f64>,
    sum_y: f64,
    sum_xx: Array2<f64>,
    sum_xy: Vec<f64>,
}

impl Moments {
    fn new(columns: usize) -> Self {
        Self {
            rows: 0.0,
            sum_x: vec![0.0; columns],
            sum_y: 0.0,
            sum_xx: Array2::zeros((columns, columns)),
            sum_xy: vec![0.0; columns],
        }
    }

    fn add(&mut self, x: &[f64], y: f64) {
        self.rows += 1.0;
        self.sum_y += y;
        for (j, &xj) in x.iter().enumerate() {
            self.sum_x[j] += xj;
            self.sum_xy[j] += xj * y;
            for (k, &xk) in x.iter().enumerate().take(j + 1) {
                self.sum_xx[[j, k]] += xj * xk;
            }
        }
    }

    /// The sums of these rows and `other`'s (`sign` 1), or of these without `other`'s (−1).
    fn combined(&self, other: &Self, sign: f64) -> Self {
        let add = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(a, b)| a + sign * b).collect();
        Self {
            rows: self.rows + sign * other.rows,
            sum_x: add(&self.sum_x, &other.sum_x),
            sum_y: self.sum_y + sign * other.sum_y,
            sum_xx: &self.sum_xx + &(&other.sum_xx * sign),
            sum_xy: add(&self.sum_xy, &other.sum_xy),
        }
    }

    /// The ridge fit of these rows at `penalty` (the intercept unpenalised): coefficients and
    /// intercept.
    fn solve(&self, penalty: f64) -> Result<(Vec<f64>, f64), ModelError> {
        let columns = self.sum_x.len();
        let n = self.rows.max(1.0);
        let mean_x: Vec<f64> = self.sum_x.iter().map(|s| s / n).collect();
        let mean_y = self.sum_y / n;
        let mut gram = Array2::<f64>::zeros((columns, columns));
        let mut moment = Array2::<f64>::zeros((columns, 1));
        for j in 0..columns {
            moment[[j, 0]] = self.sum_xy[j] - n * mean_x[j] * mean_y;
            for k in 0..=j {
                let centred = self.sum_xx[[j, k]] - n * mean_x[j] * mean_x[k];
                gram[[j, k]] = centred;
                gram[[k, j]] = centred;
            }
            // A feature constant in the rows has no spread: the penalty alone keeps its
            // coefficient (at zero) determined.
            gram[[j, j]] += penalty.max(f64::EPSILON);
        }
        // Decomposes `gram` (Cholesky) in place, then solves.
        gram.solvec_inplace(&mut moment)
            .map_err(|e| ModelError::Fit(format!("ridge regression: {e}")))?;
        let coefficients = moment.column(0).to_vec();
        let intercept = mean_y
            - coefficients
                .iter()
                .zip(&mean_x)
                .map(|(c, m)| c * m)
                .sum::<f64>();
        Ok((coefficients, intercept))
    }
}

/// A ridge regression whose strength is chosen from [`RIDGE_GRID`] by the squared error of
/// [`RIDGE_FOLDS`]-fold cross-validation (the strongest within one standard error of the
/// least, see [`strongest_within_one_standard_error`]), then fitted on every row.
fn fit_ridge(
    features: ArrayView2<'_, f64>,
    targets: &[f64],
) -> Result<LinearRegression, ModelError> {
    let (rows, columns) = features.dim();
    if rows != targets.len() {
        return Err(ModelError::ShapeMismatch {
            rows,
            labels: targets.len(),
        });
    }
    if rows == 0 || columns == 0 {
        return Err(ModelError::EmptyDataset);
    }
    let scaler = Scaler::fit(features);
    let standardized = |row: ndarray::ArrayView1<'_, f64>| -> Vec<f64> {
        row.iter()
            .enumerate()
            .map(|(j, value)| (value - scaler.mean[j]) / scaler.scale[j])
            .collect()
    };
    let fold_of = |i: usize| i % RIDGE_FOLDS;
    let mut folds = vec![Moments::new(columns); RIDGE_FOLDS];
    for (i, (row, target)) in features.rows().into_iter().zip(targets).enumerate() {
        folds[fold_of(i)].add(&standardized(row), *target);
    }
    let all = folds[1..]
        .iter()
        .fold(folds[0].clone(), |sum, f| sum.combined(f, 1.0));
    // Each strength's out-of-fold squared error on every row.
    let mut errors: Vec<Vec<f64>> = Vec::with_capacity(RIDGE_GRID.len());
    for per_row in RIDGE_GRID {
        let mut fitted = Vec::with_capacity(RIDGE_FOLDS);
        for fold in &folds {
            let rest = all.combined(fold, -1.0);
            fitted.push(rest.solve(per_row * rest.rows)?);
        }
        errors.push(
            features
                .rows()
                .into_iter()
                .zip(targets)
                .enumerate()
                .map(|(i, (row, target))| {
                    let (coefficients, intercept) = &fitted[fold_of(i)];
                    let x = standardized(row);
                    let predicted =
                        intercept + x.iter().zip(coefficients).map(|(v, c)| v * c).sum::<f64>();
                    (target - predicted).powi(2)
                })
                .collect(),
        );
    }
    let per_row = RIDGE_GRID[strongest_within_one_standard_error(&errors)];
    let (coefficients, intercept) = all.solve(per_row * all.rows)?;
    Ok(LinearRegression {
        scaler,
        coefficients,
        intercept,
    })
}

/// The last (strongest) of the strengths whose mean error exceeds the least one's by at most
/// one standard error of their per-row difference — glmnet's `lambda.1se`: on a noisy target
/// the least cross-validated error is partly luck, and a penalty that does about as well
/// while fitting less of the noise is the safer choice.
fn strongest_within_one_standard_error(errors: &[Vec<f64>]) -> usize {
    let mean = |values: &[f64]| values.iter().sum::<f64>() / values.len().max(1) as f64;
    let least = (0..errors.len())
        .min_by(|&a, &b| mean(&errors[a]).total_cmp(&mean(&errors[b])))
        .unwrap_or(0);
    (least..errors.len())
        .rev()
        .find(|&i| {
            let differences: Vec<f64> = errors[i]
                .iter()
                .zip(&errors[least])
                .map(|(e, l)| e - l)
                .collect();
            let average = mean(&differences);
            let n = differences.len().max(2) as f64;
            let variance = differences
                .iter()
                .map(|d| (d - average).powi(2))
                .sum::<f64>()
                / (n - 1.0);
            average <= (variance / n).sqrt()
        })
        .unwrap_or(least)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    /// y = 2 + 3·x₀ − x₁ + noise, with x₂ a copy of x₀ (collinear) and x₃ constant.
    fn rows(count: usize) -> (Array2<f64>, Vec<f64>) {
        let mut rng = StdRng::seed_from_u64(3);
        let mut features = Array2::zeros((count, 4));
        let mut targets = Vec::with_capacity(count);
        for mut row in features.rows_mut() {
            let (a, b): (f64, f64) = (rng.gen_range(-1.0..1.0), rng.gen_range(-1.0..1.0));
            row.assign(&ndarray::arr1(&[a, b, a, 5.0]));
            targets.push(2.0 + 3.0 * a - b + rng.gen_range(-0.1..0.1));
        }
        (features, targets)
    }

    #[test]
    fn the_ridge_recovers_a_linear_target_despite_collinear_and_constant_columns() {
        let (features, targets) = rows(5_000);
        let model = fit_regression(
            Learner::Logistic,
            features.view(),
            &targets,
            &TreeParams::default(),
        )
        .expect("fits");
        for (x, expected) in [([0.5, 0.2, 0.5, 5.0], 3.3), ([-1.0, -1.0, -1.0, 5.0], 0.0)] {
            let predicted = model.predict(&x);
            assert!(
                (predicted - expected).abs() < 0.02,
                "{predicted} vs {expected}"
            );
        }
        assert!(model.predict(&[1.0]).is_nan());
    }

    /// A target that is noise around 0.3, whatever the features: cross-validation picks a
    /// penalty that leaves the mean, not the noise's accidental slopes.
    #[test]
    fn the_ridge_shrinks_a_pure_noise_target_to_its_mean() {
        let mut rng = StdRng::seed_from_u64(9);
        let mut features = Array2::zeros((4_000, 30));
        features.mapv_inplace(|_: f64| rng.gen_range(-1.0..1.0));
        let targets: Vec<f64> = (0..4_000).map(|_| 0.3 + rng.gen_range(-2.0..2.0)).collect();
        let model = fit_regression(
            Learner::Logistic,
            features.view(),
            &targets,
            &TreeParams::default(),
        )
        .expect("fits");
        let predictions: Vec<f64> = features
            .rows()
            .into_iter()
            .map(|row| model.predict(&row.to_vec()))
            .collect();
        let mean = predictions.iter().sum::<f64>() / predictions.len() as f64;
        let spread = (predictions.iter().map(|p| (p - mean).powi(2)).sum::<f64>()
            / predictions.len() as f64)
            .sqrt();
        // Least squares would spread them by about 0.1 (30 slopes of noise 1.15 / √4000).
        assert!((mean - 0.3).abs() < 0.05, "mean {mean:.3}");
        assert!(spread < 0.02, "predictions spread by {spread:.3}");
    }

    #[test]
    fn the_tree_regression_follows_a_step() {
        let mut rng = StdRng::seed_from_u64(5);
        let mut features = Array2::zeros((4_000, 2));
        let mut targets = Vec::new();
        for mut row in features.rows_mut() {
            let (a, b): (f64, f64) = (rng.gen_range(0.0..1.0), rng.gen_range(0.0..1.0));
            row.assign(&ndarray::arr1(&[a, b]));
            targets.push(if a > 0.5 { 1.0 } else { -1.0 } + rng.gen_range(-0.2..0.2));
        }
        let model = fit_regression(
            Learner::Trees,
            features.view(),
            &targets,
            &TreeParams::default(),
        )
        .expect("fits");
        assert!((model.predict(&[0.9, 0.3]) - 1.0).abs() < 0.1);
        assert!((model.predict(&[0.1, 0.7]) + 1.0).abs() < 0.1);
        let json = serde_json::to_string(&model).expect("serializes");
        let back: Regression = serde_json::from_str(&json).expect("reads back");
        assert_eq!(back.predict(&[0.9, 0.3]), model.predict(&[0.9, 0.3]));
    }
}
