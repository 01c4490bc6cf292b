//! How good an uplift model is: its Qini coefficient, Qini curve and uplift@k on a hold-out
//! (definitions in [`crate::model::qini`]), and how much of the attainable net value a policy
//! investing on its predictions captures.

use serde::{Deserialize, Serialize};

use crate::model::ModelError;
use crate::model::qini::{self, QiniPoint, Units, UpliftAtK};

/// The shares of the hold-out uplift@k is reported at: the best-ranked tenth, fifth and
/// three tenths — the range a recovery budget usually covers.
pub const UPLIFT_AT: [f64; 3] = [0.1, 0.2, 0.3];

/// The Qini curve is kept at these shares of the hold-out (tenths), enough to draw it.
const CURVE_POINTS: usize = 10;

/// An uplift model's hold-out metrics. Outcomes are "retained"; units are failures, each
/// weighted by its inverse propensity (see [`super::propensity`]) unless said otherwise.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct UpliftMetrics {
    /// See [`crate::model::qini`]: 0 is a random order, higher is better.
    pub qini_coefficient: f64,
    /// The same without weights: what the plain treated-versus-control comparison shows,
    /// which also credits the model with whom the program chose to recover.
    pub unweighted_qini_coefficient: f64,
    /// The Qini curve at every tenth of the hold-out, from 0 to all of it.
    pub qini_curve: Vec<QiniPoint>,
    pub uplift_at: Vec<UpliftAtK>,
    pub rows: u64,
    /// Recovered failures, and how many of those customers were retained.
    pub treated: u64,
    pub treated_retained: u64,
    /// Failures not recovered, and how many of those customers were retained.
    pub control: u64,
    pub control_retained: u64,
}

impl UpliftMetrics {
    /// Every metric for uplift `scores` of units that were `treated` or not and `retained` or
    /// not, with their inverse-propensity `weights`. Needs treated and control units.
    pub fn evaluate(
        scores: &[f64],
        treated: &[bool],
        retained: &[bool],
        weights: &[f64],
    ) -> Result<Self, ModelError> {
        let units = Units {
            scores,
            treated,
            outcomes: retained,
            weights: Some(weights),
        };
        let curve = qini::qini_curve(units)?;
        let unweighted = qini::qini_curve(Units {
            weights: None,
            ..units
        })?;
        let n = scores.len() as f64;
        let qini_curve = (0..=CURVE_POINTS)
            .map(|tenth| {
                let units = (n * tenth as f64 / CURVE_POINTS as f64).round();
                QiniPoint {
                    units: units as u64,
                    qini: qini::qini_at(&curve, units),
                }
            })
            .collect();
        let count = |group: bool, good: bool| {
            treated
                .iter()
                .zip(retained)
                .filter(|(t, r)| **t == group && (!good || **r))
                .count() as u64
        };
        Ok(Self {
            qini_coefficient: qini::qini_coefficient(&curve),
            unweighted_qini_coefficient: qini::qini_coefficient(&unweighted),
            qini_curve,
            uplift_at: qini::uplift_at(units, &UPLIFT_AT)?,
            rows: scores.len() as u64,
            treated: count(true, false),
            treated_retained: count(true, true),
            control: count(false, false),
            control_retained: count(false, true),
        })
    }

    /// Every fractional number, for the artifact's finiteness check.
    pub(crate) fn values(&self) -> impl Iterator<Item = f64> + '_ {
        [self.qini_coefficient, self.unweighted_qini_coefficient]
            .into_iter()
            .chain(self.qini_curve.iter().map(|p| p.qini))
            .chain(
                self.uplift_at
                    .iter()
                    .flat_map(|u| [Some(u.fraction), u.uplift])
                    .flatten(),
            )
    }
}

/// Bootstrap draws of the hold-out that measure how much two models' Qini coefficients could
/// differ by chance: enough for a standard error good to a few percent.
pub const BOOTSTRAP_DRAWS: usize = 100;

/// The standard error of `qini(a) − qini(b)`, the weighted Qini coefficients of two models'
/// uplift scores on the same hold-out units: the spread of that difference over
/// [`BOOTSTRAP_DRAWS`] seeded draws of the units with replacement, the same draw for both
/// models, so the luck of the outcomes they share cancels out.
pub fn qini_difference_spread(
    a: &[f64],
    b: &[f64],
    treated: &[bool],
    retained: &[bool],
    weights: &[f64],
    seed: u64,
) -> Result<f64, ModelError> {
    use rand::{Rng, SeedableRng};
    let n = a.len();
    // Each model's units sorted once, highest score first: a draw keeps that order, so the
    // curve's own sort meets sorted input.
    let order_of = |scores: &[f64]| {
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by(|&i, &j| scores[j].total_cmp(&scores[i]));
        order
    };
    let (order_a, order_b) = (order_of(a), order_of(b));
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut counts = vec![0u32; n];
    let mut differences = Vec::with_capacity(BOOTSTRAP_DRAWS);
    for _ in 0..BOOTSTRAP_DRAWS {
        counts.iter_mut().for_each(|c| *c = 0);
        for _ in 0..n {
            counts[rng.gen_range(0..n)] += 1;
        }
        let qini = |scores: &[f64], order: &[usize]| -> Result<f64, ModelError> {
            // A unit drawn k times is there k times (in one group of equal scores).
            let drawn: Vec<usize> = order
                .iter()
                .flat_map(|&i| std::iter::repeat_n(i, counts[i] as usize))
                .collect();
            let pick = |f: &dyn Fn(usize) -> f64| drawn.iter().map(|&i| f(i)).collect::<Vec<f64>>();
            let scores = pick(&|i| scores[i]);
            let weights = pick(&|i| weights[i]);
            let treated: Vec<bool> = drawn.iter().map(|&i| treated[i]).collect();
            let retained: Vec<bool> = drawn.iter().map(|&i| retained[i]).collect();
            let curve = qini::qini_curve(Units {
                scores: &scores,
                treated: &treated,
                outcomes: &retained,
                weights: Some(&weights),
            })?;
            Ok(qini::qini_coefficient(&curve))
        };
        differences.push(qini(a, &order_a)? - qini(b, &order_b)?);
    }
    let mean = differences.iter().sum::<f64>() / differences.len() as f64;
    let variance = differences.iter().map(|d| (d - mean).powi(2)).sum::<f64>()
        / (differences.len() as f64 - 1.0);
    Ok(variance.sqrt())
}

/// Groups of the hold-out a calibration check compares predicted with observed uplift in, at
/// most: tenths, as a calibration plot has.
const CALIBRATION_GROUPS: usize = 10;

/// Recovered and unrecovered failures a calibration group needs at least, each: fewer, and
/// its observed uplift is mostly noise.
const CALIBRATION_GROUP_SIDE: usize = 50;

/// How far a model's uplift is off on the hold-out beyond what chance explains: the hold-out
/// is cut into equal groups along each of `orderings` (e.g. by predicted uplift, by predicted
/// risk), and in each group the mean `predicted` uplift is compared with the observed one —
/// the weighted retention of the recovered minus that of the unrecovered (Hájek estimates with
/// the inverse-propensity `weights`). A squared gap larger than the observed uplift's variance
/// is error the model makes; the result is the root of the mean excess over the groups (by
/// size) along the ordering that shows most, 0 when no ordering shows more than chance.
///
/// It sees error only as far as the groups do — an error that averages out within every group
/// is not there — so it is a floor on what the model's intervals miss, not a measure of all of
/// it.
pub fn calibration_error(
    orderings: &[&[f64]],
    predicted: &[f64],
    treated: &[bool],
    retained: &[bool],
    weights: &[f64],
) -> f64 {
    let n = predicted.len();
    let smaller_side = treated
        .iter()
        .filter(|&&t| t)
        .count()
        .min(treated.iter().filter(|&&t| !t).count());
    let groups = (smaller_side / CALIBRATION_GROUP_SIDE).clamp(1, CALIBRATION_GROUPS);
    let excess_of = |order: &[usize]| {
        let mut sum = 0.0;
        for g in 0..groups {
            let members = &order[g * n / groups..(g + 1) * n / groups];
            let side = |recovered: bool| {
                WeightedMean::of(
                    members
                        .iter()
                        .filter(|&&i| treated[i] == recovered)
                        .map(|&i| (weights[i], f64::from(u8::from(retained[i])))),
                )
            };
            let (Some(recovered), Some(not)) = (side(true), side(false)) else {
                continue;
            };
            let mean_predicted =
                members.iter().map(|&i| predicted[i]).sum::<f64>() / members.len() as f64;
            let gap = recovered.mean - not.mean - mean_predicted;
            let chance = recovered.variance + not.variance;
            sum += members.len() as f64 * (gap * gap - chance);
        }
        (sum / n as f64).max(0.0)
    };
    orderings
        .iter()
        .map(|values| {
            let mut order: Vec<usize> = (0..n).collect();
            order.sort_by(|&i, &j| values[i].total_cmp(&values[j]));
            excess_of(&order)
        })
        .fold(0.0, f64::max)
        .sqrt()
}

/// A weighted mean and its variance as an estimate (the variance of a ratio estimate).
struct WeightedMean {
    mean: f64,
    variance: f64,
}

impl WeightedMean {
    /// Of `(weight, value)` pairs; `None` for none.
    fn of(pairs: impl Iterator<Item = (f64, f64)> + Clone) -> Option<Self> {
        let total: f64 = pairs.clone().map(|(w, _)| w).sum();
        if total <= 0.0 {
            return None;
        }
        let mean = pairs.clone().map(|(w, v)| w * v).sum::<f64>() / total;
        let variance = pairs.map(|(w, v)| (w * (v - mean)).powi(2)).sum::<f64>() / (total * total);
        Some(Self { mean, variance })
    }
}

/// One unit a policy may invest in: what keeping the customer is worth, what the investment
/// costs, and the uplift in retention it buys — as predicted, and as it truly is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate {
    pub value: f64,
    pub cost: f64,
    pub predicted_uplift: f64,
    pub true_uplift: f64,
}

impl Candidate {
    /// `value × predicted uplift − cost`: what the policy believes an investment earns.
    pub fn predicted_net(&self) -> f64 {
        self.value * self.predicted_uplift - self.cost
    }

    /// `value × true uplift − cost`: what it really earns.
    pub fn true_net(&self) -> f64 {
        self.value * self.true_uplift - self.cost
    }
}

/// The units a policy invests in: those whose `net` is positive, best first, each taken if
/// its cost still fits in what is left of `budget` (a unit that does not fit is skipped and
/// cheaper ones after it may still be taken). Returns their indices in the order taken.
pub fn invest(
    candidates: &[Candidate],
    net: impl Fn(&Candidate) -> f64,
    budget: f64,
) -> Vec<usize> {
    let mut order: Vec<usize> = (0..candidates.len())
        .filter(|&i| net(&candidates[i]) > 0.0)
        .collect();
    order.sort_by(|&a, &b| net(&candidates[b]).total_cmp(&net(&candidates[a])));
    let mut left = budget;
    order
        .into_iter()
        .filter(|&i| {
            let fits = candidates[i].cost <= left;
            if fits {
                left -= candidates[i].cost;
            }
            fits
        })
        .collect()
}

/// What a policy investing on the model's predictions captures of what an oracle policy,
/// which knows the true uplift, captures with the same money.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Capture {
    /// What the model's policy spends: everything it finds worth investing in.
    pub budget: f64,
    pub model_invested: usize,
    /// The true net value (Σ value × true uplift − cost) of the model policy's investments.
    pub model_net: f64,
    pub oracle_invested: usize,
    pub oracle_spent: f64,
    /// The true net value of the oracle policy's investments within the same budget.
    pub oracle_net: f64,
}

impl Capture {
    /// `model_net / oracle_net`; 1 when neither finds anything worth doing.
    pub fn ratio(&self) -> f64 {
        if self.oracle_net <= 0.0 {
            return if self.model_net >= 0.0 { 1.0 } else { 0.0 };
        }
        self.model_net / self.oracle_net
    }
}

/// The model policy invests wherever it predicts a positive net value, best first; its spend
/// is the budget. The oracle policy invests, best true net value first, within that budget.
/// Both are then judged on the true net value of what they invested in.
pub fn policy_capture(candidates: &[Candidate]) -> Capture {
    let model = invest(candidates, Candidate::predicted_net, f64::INFINITY);
    let budget: f64 = model.iter().map(|&i| candidates[i].cost).sum();
    let oracle = invest(candidates, Candidate::true_net, budget);
    let true_net = |chosen: &[usize]| chosen.iter().map(|&i| candidates[i].true_net()).sum();
    Capture {
        budget,
        model_invested: model.len(),
        model_net: true_net(&model),
        oracle_invested: oracle.len(),
        oracle_spent: oracle.iter().map(|&i| candidates[i].cost).sum(),
        oracle_net: true_net(&oracle),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A hold-out whose true uplift is `0.2 x` over a feature `x` in [0, 1), recovered with a
    /// propensity rising with `x`: the feature, recovered, retained and the weights.
    fn varying_effect_holdout() -> (Vec<f64>, Vec<bool>, Vec<bool>, Vec<f64>) {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(41);
        let (mut x, mut treated, mut retained, mut weights) = (vec![], vec![], vec![], vec![]);
        for _ in 0..20_000 {
            let feature: f64 = rng.r#gen();
            let propensity = 0.3 + 0.4 * feature;
            let recovered = rng.gen_bool(propensity);
            let retention = 0.5 + if recovered { 0.2 * feature } else { 0.0 };
            x.push(feature);
            treated.push(recovered);
            retained.push(rng.gen_bool(retention));
            weights.push(if recovered {
                1.0 / propensity
            } else {
                1.0 / (1.0 - propensity)
            });
        }
        (x, treated, retained, weights)
    }

    #[test]
    fn calibration_error_is_chance_free_and_finds_what_the_model_gets_wrong() {
        let (x, treated, retained, weights) = varying_effect_holdout();
        let error = |predicted: &[f64], orderings: &[&[f64]]| {
            calibration_error(orderings, predicted, &treated, &retained, &weights)
        };
        let right: Vec<f64> = x.iter().map(|x| 0.2 * x).collect();
        let flat = vec![0.1; x.len()];
        let shifted: Vec<f64> = right.iter().map(|u| u + 0.1).collect();
        // The right model: what is left is chance, which the check takes out.
        assert!(
            error(&right, &[&right, &x]) < 0.02,
            "{}",
            error(&right, &[&right, &x])
        );
        // One uplift for all: its own order shows nothing, the feature's order shows the
        // tenths' spread around it (0.2 × 0.29 ≈ 0.057).
        let along_x = error(&flat, &[&flat, &x]);
        assert!((0.04..0.075).contains(&along_x), "{along_x}");
        // Off by 0.1 everywhere: every group shows it.
        let off = error(&shifted, &[&shifted]);
        assert!((0.085..0.115).contains(&off), "{off}");
    }

    fn candidate(value: f64, cost: f64, predicted: f64, truth: f64) -> Candidate {
        Candidate {
            value,
            cost,
            predicted_uplift: predicted,
            true_uplift: truth,
        }
    }

    #[test]
    fn a_policy_takes_positive_net_value_best_first_within_the_budget() {
        let candidates = [
            candidate(1_000.0, 10.0, 0.05, 0.0), // net 40
            candidate(1_000.0, 50.0, 0.2, 0.0),  // net 150
            candidate(1_000.0, 30.0, 0.02, 0.0), // net −10: never
            candidate(100.0, 5.0, 0.1, 0.0),     // net 5
        ];
        let all = invest(&candidates, Candidate::predicted_net, f64::INFINITY);
        assert_eq!(all, vec![1, 0, 3]);
        // 55 left after the best: the second (cost 10) fits, the third (5) too.
        assert_eq!(
            invest(&candidates, Candidate::predicted_net, 65.0),
            vec![1, 0, 3]
        );
        // 40: the best (50) does not fit, so the cheaper ones are taken.
        assert_eq!(
            invest(&candidates, Candidate::predicted_net, 40.0),
            vec![0, 3]
        );
    }

    #[test]
    fn capture_compares_true_net_value_at_the_model_policys_spend() {
        let candidates = [
            // The model likes it, truly worth 1000 × 0.01 − 20 = −10.
            candidate(1_000.0, 20.0, 0.1, 0.01),
            // The model likes it, truly 1000 × 0.05 − 10 = 40.
            candidate(1_000.0, 10.0, 0.03, 0.05),
            // The model misses it, truly 1000 × 0.1 − 30 = 70.
            candidate(1_000.0, 30.0, 0.0, 0.1),
        ];
        let capture = policy_capture(&candidates);
        assert_eq!(capture.budget, 30.0);
        assert_eq!(capture.model_invested, 2);
        assert!((capture.model_net - 30.0).abs() < 1e-9);
        // With 30 the oracle takes the best (70, cost 30) and nothing else fits.
        assert_eq!(capture.oracle_invested, 1);
        assert!((capture.oracle_net - 70.0).abs() < 1e-9);
        assert!((capture.ratio() - 30.0 / 70.0).abs() < 1e-12);
    }

    #[test]
    fn capture_of_nothing_worth_doing_is_complete() {
        let capture = policy_capture(&[candidate(10.0, 5.0, 0.1, 0.1)]);
        assert_eq!(capture.budget, 0.0);
        assert_eq!(capture.ratio(), 1.0);
    }

    #[test]
    fn metrics_count_the_groups_and_keep_the_curve_at_tenths() {
        let scores: Vec<f64> = (0..20).map(|i| 1.0 - i as f64 / 20.0).collect();
        let treated: Vec<bool> = (0..20).map(|i| i % 2 == 0).collect();
        let retained: Vec<bool> = (0..20).map(|i| i < 10 || i % 2 == 1).collect();
        let metrics =
            UpliftMetrics::evaluate(&scores, &treated, &retained, &[1.0; 20]).expect("metrics");
        assert_eq!(
            (metrics.rows, metrics.treated, metrics.control),
            (20, 10, 10)
        );
        assert_eq!(
            (metrics.treated_retained, metrics.control_retained),
            (5, 10)
        );
        assert_eq!(metrics.qini_curve.len(), 11);
        assert_eq!(metrics.qini_curve[10].units, 20);
        // All: 5 − 10 · 10/10.
        assert!((metrics.qini_curve[10].qini - -5.0).abs() < 1e-12);
        assert_eq!(metrics.uplift_at.len(), UPLIFT_AT.len());
        assert_eq!(
            metrics.qini_coefficient,
            metrics.unweighted_qini_coefficient
        );
        assert!(metrics.values().all(f64::is_finite));
    }
}
