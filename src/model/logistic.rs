//! Fitting the logistic regression fast, and the fitted model that scores rows.
//!
//! The objective is linfa-logistic's (the summed logistic loss of P(label = true) plus an L2
//! penalty on the standardized coefficients; see [`TrainParams`](super::TrainParams)) and so is
//! the solver: argmin's L-BFGS with a More–Thuente line search. What differs is the work per
//! step (docs/dependencies.md, "linfa-logistic"):
//! - one pass over the matrix gives the loss and its gradient together ([`Objective`]), split
//!   between the cores; linfa-logistic makes three or four, each `X·w` a general matrix
//!   product that first copies the whole matrix;
//! - the standardized matrix is column-major, so every pass walks contiguous columns;
//! - it is `f32` ([`Work`]): every pass streams the whole matrix, so half the bytes is half
//!   the time, and single precision is ample for standardized features (each block's sums go
//!   into `f64` totals, and the tolerance is far coarser);
//! - the solve is warm-started from fits on nested random subsamples, so the full-data L-BFGS
//!   starts close to the optimum and needs a few iterations instead of dozens.
//!
//! Only the path to the optimum changes. The benchmark `cargo bench --bench train` measures it
//! against scikit-learn.

use std::thread;

use std::sync::Mutex;

use argmin::core::{CostFunction, Executor, Gradient};
use argmin::solver::linesearch::MoreThuenteLineSearch;
use argmin::solver::quasinewton::LBFGS;
use ndarray::{Array1, Array2, ArrayView2, ShapeBuilder};
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

use super::artifact::check_model_lengths;
use super::{Dataset, ModelError, ValidTrainParams};

/// Per-feature standardization learned from the training rows: `(x - mean) / scale`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scaler {
    pub mean: Vec<f64>,
    /// The population standard deviation, or 1 for a (near-)constant column so it standardizes
    /// to 0 instead of NaN (scikit-learn's `StandardScaler` does the same).
    pub scale: Vec<f64>,
}

/// A column whose spread is below this, relative to its magnitude, is constant up to rounding:
/// dividing by it would blow rounding noise up into a feature.
const CONSTANT_COLUMN_RELATIVE_SPREAD: f64 = 10.0 * f64::EPSILON;

impl Scaler {
    /// Mean and population standard deviation of every column, two passes (exact enough for
    /// columns with a large mean, unlike the one-pass sum of squares).
    pub fn fit(features: ArrayView2<'_, f64>) -> Self {
        let rows = features.nrows().max(1) as f64;
        let mean: Vec<f64> = features
            .mean_axis(ndarray::Axis(0))
            .map(|m| m.to_vec())
            .unwrap_or_else(|| vec![0.0; features.ncols()]);
        let mut squares = vec![0.0; features.ncols()];
        for row in features.rows() {
            for ((square, value), mean) in squares.iter_mut().zip(row).zip(&mean) {
                let centred = value - mean;
                *square += centred * centred;
            }
        }
        let scale = squares
            .iter()
            .zip(&mean)
            .map(|(square, mean)| {
                let std = (square / rows).sqrt();
                if std <= CONSTANT_COLUMN_RELATIVE_SPREAD * mean.abs().max(1.0) {
                    1.0
                } else {
                    std
                }
            })
            .collect();
        Self { mean, scale }
    }

    pub fn feature_count(&self) -> usize {
        self.mean.len()
    }

    fn standardize(&self, column: usize, value: f64) -> f64 {
        (value - self.mean[column]) / self.scale[column]
    }
}

/// A fitted churn model: P(churn) = σ(intercept + Σⱼ coefficientⱼ · standardizedⱼ).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogisticModel {
    pub scaler: Scaler,
    /// One per feature, for the STANDARDIZED feature, oriented so a positive value raises
    /// P(label = true): comparable across features, which is what ranking drivers needs.
    pub coefficients: Vec<f64>,
    pub intercept: f64,
}

impl LogisticModel {
    pub fn feature_count(&self) -> usize {
        self.coefficients.len()
    }

    /// The log-odds of churn for raw (unstandardized) features, or NaN when `x` has the wrong
    /// number of features (a caller bug that a NaN makes visible instead of a plausible score).
    pub fn logit(&self, x: &[f64]) -> f64 {
        if x.len() != self.feature_count() {
            return f64::NAN;
        }
        self.intercept + self.contributions(x).iter().sum::<f64>()
    }

    /// P(label = true) for raw features; NaN when `x` has the wrong length (see [`Self::logit`]).
    pub fn probability(&self, x: &[f64]) -> f64 {
        sigmoid(self.logit(x))
    }

    /// [`Self::probability`] from the row's [`Self::contributions`], for a caller that needs
    /// both: the same sum as [`Self::logit`], so the same value, without standardizing twice.
    pub fn probability_from_contributions(&self, contributions: &[f64]) -> f64 {
        sigmoid(self.intercept + contributions.iter().sum::<f64>())
    }

    /// Each feature's share of the logit, `coefficient × standardized value`: positive pushes
    /// towards churn. With the intercept they sum to [`Self::logit`]. All NaN on a length mismatch.
    pub fn contributions(&self, x: &[f64]) -> Vec<f64> {
        if x.len() != self.feature_count() {
            return vec![f64::NAN; self.feature_count()];
        }
        x.iter()
            .enumerate()
            .zip(&self.coefficients)
            .map(|((column, value), coefficient)| {
                coefficient * self.scaler.standardize(column, *value)
            })
            .collect()
    }

    /// [`Self::probability`] of every row.
    pub fn predict_all(&self, x: ArrayView2<'_, f64>) -> Vec<f64> {
        if x.ncols() != self.feature_count() {
            return vec![f64::NAN; x.nrows()];
        }
        // Folding the scaler into the weights makes a row one dot product.
        let weights: Vec<f64> = self
            .coefficients
            .iter()
            .zip(&self.scaler.scale)
            .map(|(coefficient, scale)| coefficient / scale)
            .collect();
        let offset = self.intercept
            - weights
                .iter()
                .zip(&self.scaler.mean)
                .map(|(weight, mean)| weight * mean)
                .sum::<f64>();
        x.rows()
            .into_iter()
            .map(|row| sigmoid(offset + row.iter().zip(&weights).map(|(v, w)| v * w).sum::<f64>()))
            .collect()
    }
}

/// The logistic function, without overflow for large |z|.
pub(super) fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

/// The float type the solver works in (see the module doc for why `f32`).
type Work = f32;

/// Below this many rows a cold solve is already fast and subsamples would be too small to
/// say much about the optimum.
const WARM_START_MIN_ROWS: usize = 50_000;
/// Each warm-start stage fits this fraction of the rows the next stage fits: small enough that
/// the stages together cost about one full-data iteration, large enough that each lands within
/// a few L-BFGS steps of the next stage's optimum.
const WARM_START_SHRINK: usize = 8;
/// The smallest warm-start stage; a first stage smaller than this says too little.
const WARM_START_MIN_STAGE_ROWS: usize = 10_000;
/// The subsample draw is fixed, so the same rows give the same model.
const WARM_START_SEED: u64 = 0x5eed_c4a2;

/// Fits a logistic regression of `labels` on standardized `features`, giving P(label = true).
///
/// Synchronous and CPU-bound (seconds at a million rows): run it on a blocking thread.
/// Deterministic: the same data and parameters give the same model.
pub fn train_logistic(
    data: &Dataset,
    params: &ValidTrainParams,
) -> Result<LogisticModel, ModelError> {
    train_logistic_with(data, params, &LogisticFit::default())
}

/// What [`train_logistic_with`] may change about a fit.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogisticFit<'a> {
    /// Each coefficient's own L2 penalty λⱼ over the summed loss, in place of
    /// `params.l2_penalty()` for all (glmnet's `penalty.factor`, as strengths): a larger one
    /// shrinks that coefficient harder. Empty means `params.l2_penalty()` for every column.
    pub column_penalties: &'a [f64],
    /// A model of the same columns to start the solve from instead of the warm-start
    /// cascade: along a path of penalties, the last one's solution is close to the next
    /// one's (glmnet's warm starts).
    pub start: Option<&'a LogisticModel>,
}

/// [`train_logistic`] with [`LogisticFit`]'s changes.
pub fn train_logistic_with(
    data: &Dataset,
    params: &ValidTrainParams,
    fit: &LogisticFit<'_>,
) -> Result<LogisticModel, ModelError> {
    data.check_shape()?;
    let columns = data.features.ncols();
    let given = fit.column_penalties;
    if !given.is_empty() && given.len() != columns {
        return Err(ModelError::InvalidParameter {
            name: "column_penalties",
            reason: format!("{} penalties for {columns} columns", given.len()),
        });
    }
    if let Some(bad) = given.iter().find(|f| !f.is_finite() || **f < 0.0) {
        return Err(ModelError::InvalidParameter {
            name: "column_penalties",
            reason: format!("must be finite and >= 0, got {bad}"),
        });
    }
    if let Some(start) = fit.start {
        check_model_lengths(&start.scaler, &start.coefficients, columns)?;
    }
    let rows = data.rows();
    let positives = data.positives();
    if positives == 0 || positives == rows {
        return Err(ModelError::SingleClass {
            rows,
            label: positives == rows,
        });
    }
    let penalties: Vec<f64> = if given.is_empty() {
        vec![params.l2_penalty(); columns]
    } else {
        given.to_vec()
    };
    let scaler = Scaler::fit(data.features.view());
    let x = standardize_column_major(data.features.view(), &scaler)?;
    let labels = Array1::from(data.labels.clone());
    let (coefficients, intercept) = match fit.start {
        Some(start) => fit_once(
            x.view(),
            &labels,
            &penalties,
            params.gradient_tolerance(),
            params.max_iterations(),
            Some(&(start.coefficients.clone(), start.intercept)),
        )?,
        None => solve(x.view(), &labels, &penalties, params)?,
    };
    Ok(LogisticModel {
        scaler,
        coefficients,
        intercept,
    })
}

/// Rows per block of the transposition in [`standardize_column_major`]: a block of source rows
/// (256 × 40 features × 8 bytes = 80 KiB) stays in L2 while it is written out column by column;
/// walking one whole column at a time instead re-reads the matrix from memory once per column.
const TRANSPOSE_BLOCK_ROWS: usize = 256;

/// The standardized features in column-major order and [`Work`] precision, refusing non-finite
/// values. One thread per core, each owning a range of rows (a slice of every output column).
fn standardize_column_major(
    features: ArrayView2<'_, f64>,
    scaler: &Scaler,
) -> Result<Array2<Work>, ModelError> {
    let (rows, columns) = features.dim();
    let source = features.as_standard_layout();
    let source = source.as_slice().unwrap_or(&[]);
    let mut out = vec![0.0 as Work; rows * columns];
    let threads = thread::available_parallelism()
        .map(usize::from)
        .unwrap_or(1)
        .clamp(1, rows.max(1));
    let rows_per_thread = rows.div_ceil(threads).max(1);
    // pieces[t][j]: rows of thread t in output column j.
    let mut pieces: Vec<Vec<&mut [Work]>> =
        (0..threads).map(|_| Vec::with_capacity(columns)).collect();
    for column in out.chunks_mut(rows.max(1)) {
        let mut rest = column;
        for piece in pieces.iter_mut() {
            let take = rows_per_thread.min(rest.len());
            let (head, tail) = std::mem::take(&mut rest).split_at_mut(take);
            piece.push(head);
            rest = tail;
        }
    }
    let first_bad = thread::scope(|scope| {
        let handles: Vec<_> = pieces
            .into_iter()
            .enumerate()
            .map(|(t, mut piece)| {
                let first_row = t * rows_per_thread;
                scope.spawn(move || {
                    let mut first_bad: Option<(usize, usize, f64)> = None;
                    let len = piece.first().map_or(0, |column| column.len());
                    for block in (0..len).step_by(TRANSPOSE_BLOCK_ROWS) {
                        let block_end = (block + TRANSPOSE_BLOCK_ROWS).min(len);
                        for (j, column) in piece.iter_mut().enumerate() {
                            let (mean, scale) = (scaler.mean[j], scaler.scale[j]);
                            for (i, cell) in column[block..block_end].iter_mut().enumerate() {
                                let row = first_row + block + i;
                                let value = source[row * columns + j];
                                if !value.is_finite()
                                    && first_bad.is_none_or(|(r, c, _)| (row, j) < (r, c))
                                {
                                    first_bad = Some((row, j, value));
                                }
                                *cell = ((value - mean) / scale) as Work;
                            }
                        }
                    }
                    first_bad
                })
            })
            .collect();
        handles
            .into_iter()
            .filter_map(|handle| handle.join().ok().flatten())
            .min_by_key(|&(row, column, _)| (row, column))
    });
    if let Some((row, column, value)) = first_bad {
        return Err(ModelError::NonFiniteFeature { row, column, value });
    }
    Array2::from_shape_vec((rows, columns).f(), out)
        .map_err(|_| ModelError::ShapeMismatch { rows, labels: rows })
}

/// The warm-start cascade then the full-data solve; returns coefficients and intercept for
/// P(label = true).
fn solve(
    x: ArrayView2<'_, Work>,
    labels: &Array1<bool>,
    penalties: &[f64],
    params: &ValidTrainParams,
) -> Result<(Vec<f64>, f64), ModelError> {
    solve_in_stages(x, labels, penalties, params, &warm_start_stages(x.nrows()))
}

/// The subsample sizes to warm-start through, smallest first; none for small data.
fn warm_start_stages(rows: usize) -> Vec<usize> {
    let mut stages = Vec::new();
    if rows >= WARM_START_MIN_ROWS {
        let mut stage = rows / WARM_START_SHRINK;
        while stage >= WARM_START_MIN_STAGE_ROWS {
            stages.push(stage);
            stage /= WARM_START_SHRINK;
        }
        stages.reverse();
    }
    stages
}

fn solve_in_stages(
    x: ArrayView2<'_, Work>,
    labels: &Array1<bool>,
    penalties: &[f64],
    params: &ValidTrainParams,
    stages: &[usize],
) -> Result<(Vec<f64>, f64), ModelError> {
    let rows = x.nrows();
    let mut rng = StdRng::seed_from_u64(WARM_START_SEED);
    let mut start: Option<(Vec<f64>, f64)> = None;
    for &stage_rows in stages {
        let mut picked = rand::seq::index::sample(&mut rng, rows, stage_rows).into_vec();
        // Sorted indices gather with forward strides, kind to caches and prefetchers.
        picked.sort_unstable();
        let sub_x = gather_rows(x, &picked);
        let sub_labels: Array1<bool> = picked.iter().map(|&i| labels[i]).collect();
        // The penalty scales with the rows so the subsample's optimum estimates the full one's.
        let fraction = stage_rows as f64 / rows as f64;
        let scaled: Vec<f64> = penalties.iter().map(|p| p * fraction).collect();
        let fitted = fit_once(
            sub_x.view(),
            &sub_labels,
            &scaled,
            params.gradient_tolerance(),
            params.max_iterations(),
            start.as_ref(),
        )?;
        start = Some(fitted);
    }
    fit_once(
        x,
        labels,
        penalties,
        params.gradient_tolerance(),
        params.max_iterations(),
        start.as_ref(),
    )
}

/// The rows `picked` of a column-major matrix, column-major.
fn gather_rows(x: ArrayView2<'_, Work>, picked: &[usize]) -> Array2<Work> {
    let mut out = Array2::<Work>::zeros((picked.len(), x.ncols()).f());
    for (mut target, source) in out.columns_mut().into_iter().zip(x.columns()) {
        for (cell, &i) in target.iter_mut().zip(picked) {
            *cell = source[i];
        }
    }
    out
}

/// One L-BFGS solve. `gradient_tolerance` is scikit-learn's (max component of the mean loss's
/// gradient); `start` is a previous solution for P(label = true).
fn fit_once(
    x: ArrayView2<'_, Work>,
    labels: &Array1<bool>,
    penalties: &[f64],
    gradient_tolerance: f64,
    max_iterations: u64,
    start: Option<&(Vec<f64>, f64)>,
) -> Result<(Vec<f64>, f64), ModelError> {
    let rows = x.nrows();
    let objective = Objective::new(x, labels, penalties)?;
    // The solver stops when the L2 norm of the SUMMED gradient is below its tolerance. Since
    // max|gᵢ| ≤ ‖g‖₂, `rows × tol` guarantees scikit-learn's criterion.
    let solver = LBFGS::new(MoreThuenteLineSearch::new(), LBFGS_MEMORY)
        .with_tolerance_grad(gradient_tolerance * rows as f64)
        .map_err(|e| ModelError::Fit(e.to_string()))?;
    let initial: Array1<f64> = match start {
        Some((coefficients, intercept)) => coefficients
            .iter()
            .chain(std::iter::once(intercept))
            .copied()
            .collect(),
        None => Array1::zeros(x.ncols() + 1),
    };
    let result = Executor::new(objective, solver)
        .configure(|state| state.param(initial).max_iters(max_iterations))
        .run()
        .map_err(|e| ModelError::Fit(e.to_string()))?;
    let solution = result
        .state
        .best_param
        .ok_or_else(|| ModelError::Fit("the solver returned no parameters".into()))?;
    let (coefficients, intercept) = solution.as_slice().unwrap_or(&[]).split_at(x.ncols());
    Ok((
        coefficients.to_vec(),
        intercept.first().copied().unwrap_or(0.0),
    ))
}

/// linfa-logistic's solver: L-BFGS with a More–Thuente line search, 10 corrections kept.
const LBFGS_MEMORY: usize = 10;

/// Rows per block of one evaluation: a block's margins and residuals (2 × 4096 × 4 bytes)
/// stay in L1 while every column's slice of the block streams past them.
const EVALUATION_BLOCK_ROWS: usize = 4_096;

/// The L2-penalised logistic loss of P(label = true) over column-major rows, as
/// linfa-logistic defines it — Σᵢ log(1 + exp(−yᵢ·zᵢ)) + Σⱼ λⱼ/2·wⱼ², the intercept unpenalised
/// (linfa-logistic has one λ for every coefficient; here each may have its own) —
/// and its gradient, both from one pass over the matrix. (linfa-logistic computes them apart,
/// each `X·w` a general matrix product that first copies the whole matrix: three to four
/// passes and two copies for what one pass gives.) The parameters are the coefficients, then
/// the intercept.
struct Objective<'a> {
    x: &'a [Work],
    rows: usize,
    columns: usize,
    /// +1 for a true label, −1 for a false one.
    signs: Vec<Work>,
    /// Each coefficient's λ.
    penalties: Vec<f64>,
    /// The last point evaluated: the line search asks for the cost and then the gradient at
    /// each point it tries, and the second comes from the same pass.
    last: Mutex<Option<Evaluation>>,
}

#[derive(Clone)]
struct Evaluation {
    at: Array1<f64>,
    cost: f64,
    gradient: Array1<f64>,
}

impl<'a> Objective<'a> {
    fn new(
        x: ArrayView2<'a, Work>,
        labels: &Array1<bool>,
        penalties: &[f64],
    ) -> Result<Self, ModelError> {
        let (rows, columns) = x.dim();
        // Column-major and contiguous, as `standardize_column_major` and `gather_rows` make it.
        let x = x
            .reversed_axes()
            .to_slice()
            .ok_or_else(|| ModelError::Fit("the solver needs column-major rows".into()))?;
        Ok(Self {
            x,
            rows,
            columns,
            signs: labels.iter().map(|&l| if l { 1.0 } else { -1.0 }).collect(),
            penalties: penalties.to_vec(),
            last: Mutex::new(None),
        })
    }

    fn evaluation(&self, at: &Array1<f64>) -> Evaluation {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(done) = last.as_ref().filter(|done| done.at == *at) {
            return done.clone();
        }
        let done = self.evaluate(at);
        *last = Some(done.clone());
        done
    }

    /// Loss and gradient at `at`, the rows split between the cores.
    fn evaluate(&self, at: &Array1<f64>) -> Evaluation {
        let weights: Vec<Work> = at.iter().take(self.columns).map(|&w| w as Work).collect();
        let intercept = at[self.columns] as Work;
        let threads = thread::available_parallelism()
            .map(usize::from)
            .unwrap_or(1)
            .clamp(1, self.rows.div_ceil(EVALUATION_BLOCK_ROWS).max(1));
        let rows_per_thread = self.rows.div_ceil(threads);
        let parts: Vec<(f64, Vec<f64>)> = thread::scope(|scope| {
            let handles: Vec<_> = (0..threads)
                .map(|t| {
                    let (weights, from) = (&weights, t * rows_per_thread);
                    let to = (from + rows_per_thread).min(self.rows);
                    scope.spawn(move || self.loss_and_gradient(weights, intercept, from..to))
                })
                .collect();
            handles
                .into_iter()
                .map(|handle| handle.join().unwrap_or((f64::NAN, Vec::new())))
                .collect()
        });
        let mut loss = 0.0;
        let mut gradient = Array1::zeros(self.columns + 1);
        for (part_loss, part_gradient) in parts {
            loss += part_loss;
            if part_gradient.len() != gradient.len() {
                gradient.fill(f64::NAN);
            } else {
                gradient += &Array1::from(part_gradient);
            }
        }
        let mut penalty = 0.0;
        for ((j, &w), &lambda) in at
            .iter()
            .take(self.columns)
            .enumerate()
            .zip(&self.penalties)
        {
            penalty += lambda * w * w;
            gradient[j] += lambda * w;
        }
        Evaluation {
            at: at.clone(),
            cost: loss + 0.5 * penalty,
            gradient,
        }
    }

    /// The unpenalised loss over `rows` and its gradient (coefficients, then intercept).
    fn loss_and_gradient(
        &self,
        weights: &[Work],
        intercept: Work,
        rows: std::ops::Range<usize>,
    ) -> (f64, Vec<f64>) {
        let mut loss = 0.0f64;
        let mut gradient = vec![0.0f64; self.columns + 1];
        let mut margins = vec![0.0 as Work; EVALUATION_BLOCK_ROWS];
        let mut residuals = vec![0.0 as Work; EVALUATION_BLOCK_ROWS];
        for from in rows.clone().step_by(EVALUATION_BLOCK_ROWS) {
            let to = (from + EVALUATION_BLOCK_ROWS).min(rows.end);
            let (margins, residuals) = (&mut margins[..to - from], &mut residuals[..to - from]);
            margins.fill(intercept);
            for (j, &w) in weights.iter().enumerate() {
                let column = &self.x[j * self.rows + from..j * self.rows + to];
                for (m, &v) in margins.iter_mut().zip(column) {
                    *m += w * v;
                }
            }
            let mut residual_sum = 0.0f64;
            for ((m, r), &y) in margins
                .iter()
                .zip(residuals.iter_mut())
                .zip(&self.signs[from..to])
            {
                let yz = f64::from(y * m);
                // log(1 + exp(−yz)) without overflow either way.
                loss += if yz > 0.0 {
                    (-yz).exp().ln_1p()
                } else {
                    -yz + yz.exp().ln_1p()
                };
                // d loss / d z = −y · σ(−yz).
                let slope = -f64::from(y) * sigmoid(-yz);
                *r = slope as Work;
                residual_sum += slope;
            }
            gradient[self.columns] += residual_sum;
            for (j, g) in gradient.iter_mut().take(self.columns).enumerate() {
                let column = &self.x[j * self.rows + from..j * self.rows + to];
                let dot: Work = column
                    .iter()
                    .zip(residuals.iter())
                    .map(|(v, r)| v * r)
                    .sum();
                *g += f64::from(dot);
            }
        }
        (loss, gradient)
    }
}

impl CostFunction for Objective<'_> {
    type Param = Array1<f64>;
    type Output = f64;

    fn cost(&self, at: &Array1<f64>) -> Result<f64, argmin::core::Error> {
        Ok(self.evaluation(at).cost)
    }
}

impl Gradient for Objective<'_> {
    type Param = Array1<f64>;
    type Gradient = Array1<f64>;

    fn gradient(&self, at: &Array1<f64>) -> Result<Array1<f64>, argmin::core::Error> {
        Ok(self.evaluation(at).gradient)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{TrainParams, metrics};
    use rand::Rng;
    use rand_distr::{Distribution, Normal, Poisson};

    /// Rows from a known logistic model over features of very different scales (a count, a
    /// rate, a one-hot, a balance in the thousands, and noise the model ignores).
    /// Returns the data and the true P(churn) of each row.
    fn known_model_rows(rows: usize, intercept: f64, seed: u64) -> (Dataset, Vec<f64>) {
        const TRUE_WEIGHTS: [f64; 5] = [0.35, -2.0, 0.9, -0.0008, 0.0];
        let mut rng = StdRng::seed_from_u64(seed);
        let tickets = Poisson::new(2.0).expect("valid rate");
        let balance = Normal::new(2_000.0, 600.0).expect("valid spread");
        let noise = Normal::new(0.0, 1.0).expect("valid spread");
        let mut features = Array2::zeros((rows, TRUE_WEIGHTS.len()));
        let mut labels = Vec::with_capacity(rows);
        let mut truth = Vec::with_capacity(rows);
        for mut row in features.rows_mut() {
            row[0] = tickets.sample(&mut rng);
            row[1] = rng.gen_range(0.0..1.0);
            row[2] = f64::from(u8::from(rng.gen_bool(0.3)));
            row[3] = balance.sample(&mut rng);
            row[4] = noise.sample(&mut rng);
            let logit: f64 = intercept
                + row
                    .iter()
                    .zip(TRUE_WEIGHTS)
                    .map(|(x, w)| x * w)
                    .sum::<f64>();
            let p = sigmoid(logit);
            truth.push(p);
            labels.push(rng.gen_bool(p));
        }
        (Dataset::new(features, labels).expect("valid rows"), truth)
    }

    fn params() -> ValidTrainParams {
        TrainParams::default().check().expect("valid defaults")
    }

    #[test]
    fn training_recovers_the_signs_and_nearly_the_auc_of_the_true_model() {
        let (data, truth) = known_model_rows(6_000, 0.0, 7);
        let (train, holdout) = data.split_at(4_000);
        let model = train_logistic(&train, &params()).expect("fits");
        let expected_signs = [1.0, -1.0, 1.0, -1.0];
        for (j, sign) in expected_signs.iter().enumerate() {
            assert!(
                model.coefficients[j] * sign > 0.1,
                "coefficient {j} = {} has the wrong sign or is too weak",
                model.coefficients[j]
            );
        }
        assert!(
            model.coefficients[4].abs() < 0.1,
            "noise got weight {}",
            model.coefficients[4]
        );
        let scores = model.predict_all(holdout.features.view());
        let fitted_auc = metrics::roc_auc(&scores, &holdout.labels).expect("auc");
        let true_auc = metrics::roc_auc(&truth[4_000..], &holdout.labels).expect("auc");
        assert!(
            fitted_auc > true_auc - 0.01,
            "fitted AUC {fitted_auc} vs true model's {true_auc}"
        );
    }

    #[test]
    fn a_minority_positive_class_still_gives_p_of_true() {
        // About 6% positives: linfa-logistic's own probability would be P(false) here (trap 3).
        let (data, _) = known_model_rows(4_000, -2.0, 11);
        let positive_rate = data.positives() as f64 / data.rows() as f64;
        assert!(
            (0.03..0.12).contains(&positive_rate),
            "positive rate {positive_rate}"
        );
        let model = train_logistic(&data, &params()).expect("fits");
        assert!(model.coefficients[0] > 0.0, "more tickets must raise churn");
        assert!(
            model.coefficients[1] < 0.0,
            "a higher rate must lower churn"
        );
        let scores = model.predict_all(data.features.view());
        let mean_score = scores.iter().sum::<f64>() / scores.len() as f64;
        // A fit with an intercept reproduces the base rate on its own training rows.
        assert!(
            (mean_score - positive_rate).abs() < 0.01,
            "mean P(churn) {mean_score} vs churn rate {positive_rate}"
        );
    }

    #[test]
    fn a_majority_positive_class_gives_p_of_true_too() {
        let (data, _) = known_model_rows(3_000, 2.5, 13);
        assert!(data.positives() * 2 > data.rows());
        let model = train_logistic(&data, &params()).expect("fits");
        assert!(model.coefficients[0] > 0.0 && model.coefficients[1] < 0.0);
    }

    #[test]
    fn a_constant_column_standardizes_to_zero_not_nan() {
        let (mut data, _) = known_model_rows(2_000, 0.0, 17);
        data.features.column_mut(2).fill(7.25);
        let model = train_logistic(&data, &params()).expect("fits");
        assert_eq!(model.scaler.scale[2], 1.0);
        assert_eq!(model.scaler.mean[2], 7.25);
        assert!(model.coefficients.iter().all(|c| c.is_finite()));
        assert!(
            model.coefficients[2].abs() < 1e-6,
            "constant column got weight"
        );
        let row = data.features.row(0).to_vec();
        assert!(model.probability(&row).is_finite());
        assert_eq!(model.contributions(&row)[2], 0.0);
    }

    #[test]
    fn warm_start_reaches_the_same_optimum_as_a_cold_solve() {
        // Minority positives, so each stage's orientation flip is exercised as well.
        let (data, _) = known_model_rows(8_000, -2.5, 19);
        let scaler = Scaler::fit(data.features.view());
        let x = standardize_column_major(data.features.view(), &scaler).expect("finite");
        let labels = Array1::from(data.labels.clone());
        let tight = TrainParams {
            gradient_tolerance: 1e-7,
            ..TrainParams::default()
        }
        .check()
        .expect("valid");
        let penalties = vec![tight.l2_penalty(); x.ncols()];
        let (cold, cold_intercept) =
            solve_in_stages(x.view(), &labels, &penalties, &tight, &[]).expect("fits");
        let (warm, warm_intercept) =
            solve_in_stages(x.view(), &labels, &penalties, &tight, &[500, 2_000]).expect("fits");
        for (c, w) in cold.iter().zip(&warm) {
            assert!((c - w).abs() < 1e-3, "cold {cold:?} vs warm {warm:?}");
        }
        assert!((cold_intercept - warm_intercept).abs() < 1e-3);
    }

    #[test]
    fn a_column_penalty_shrinks_only_its_own_coefficient() {
        let (data, _) = known_model_rows(4_000, -1.0, 23);
        let columns = data.features.ncols();
        let params = TrainParams::default().check().expect("valid");
        let with = |column_penalties: &[f64]| {
            let fit = LogisticFit {
                column_penalties,
                start: None,
            };
            train_logistic_with(&data, &params, &fit)
        };
        let plain = train_logistic(&data, &params).expect("fits");
        let same = vec![params.l2_penalty(); columns];
        assert_eq!(
            plain,
            with(&same).expect("fits"),
            "the usual penalty for each"
        );
        let mut penalties = same.clone();
        penalties[0] = 1e6;
        let shrunk = with(&penalties).expect("fits");
        assert!(
            shrunk.coefficients[0].abs() < 0.05 * plain.coefficients[0].abs(),
            "{} vs {}",
            shrunk.coefficients[0],
            plain.coefficients[0]
        );
        assert!(shrunk.coefficients[1..].iter().any(|c| c.abs() > 0.1));
        for bad in [vec![1.0; columns + 1], vec![-1.0; columns]] {
            assert!(matches!(
                with(&bad),
                Err(ModelError::InvalidParameter { .. })
            ));
        }
    }

    #[test]
    fn a_fit_started_from_another_penaltys_solution_reaches_its_own_optimum() {
        let (data, _) = known_model_rows(4_000, -1.0, 29);
        let tight = TrainParams {
            gradient_tolerance: 1e-7,
            ..TrainParams::default()
        }
        .check()
        .expect("valid");
        let columns = data.features.ncols();
        let strong = vec![300.0; columns];
        let cold = LogisticFit {
            column_penalties: &strong,
            start: None,
        };
        let cold = train_logistic_with(&data, &tight, &cold).expect("fits");
        let plain = train_logistic(&data, &tight).expect("fits");
        let warm = LogisticFit {
            column_penalties: &strong,
            start: Some(&plain),
        };
        let warm = train_logistic_with(&data, &tight, &warm).expect("fits");
        for (c, w) in cold.coefficients.iter().zip(&warm.coefficients) {
            assert!((c - w).abs() < 1e-3, "cold {cold:?} vs warm {warm:?}");
        }
    }

    #[test]
    fn warm_start_stages_shrink_geometrically_and_skip_small_data() {
        assert!(warm_start_stages(WARM_START_MIN_ROWS - 1).is_empty());
        assert_eq!(warm_start_stages(800_000), vec![12_500, 100_000]);
    }

    #[test]
    fn contributions_and_intercept_sum_to_the_logit() {
        let (data, _) = known_model_rows(1_000, 0.0, 23);
        let model = train_logistic(&data, &params()).expect("fits");
        let row = data.features.row(3).to_vec();
        let contributions = model.contributions(&row);
        let sum = model.intercept + contributions.iter().sum::<f64>();
        assert!((sum - model.logit(&row)).abs() < 1e-12);
        assert_eq!(
            model
                .probability_from_contributions(&contributions)
                .to_bits(),
            model.probability(&row).to_bits()
        );
        let all = model.predict_all(data.features.view());
        assert!((all[3] - model.probability(&row)).abs() < 1e-12);
        assert!(
            model.probability(&row[..2]).is_nan(),
            "a short row must not score"
        );
    }

    #[test]
    fn single_class_and_non_finite_data_are_refused() {
        let (data, _) = known_model_rows(200, 0.0, 29);
        let all_retained = Dataset {
            features: data.features.clone(),
            labels: vec![false; 200],
        };
        assert!(matches!(
            train_logistic(&all_retained, &params()),
            Err(ModelError::SingleClass { label: false, .. })
        ));
        let mut poisoned = data.clone();
        poisoned.features[[17, 3]] = f64::INFINITY;
        assert!(matches!(
            train_logistic(&poisoned, &params()),
            Err(ModelError::NonFiniteFeature {
                row: 17,
                column: 3,
                ..
            })
        ));
    }
}
