//! How well an uplift model ranks units by the effect of a treatment, on a hold-out where some
//! units were treated and some were not: the Qini curve, the Qini coefficient and uplift@k.
//!
//! Every function takes, per unit, an uplift score (higher = treat first), whether the unit
//! was treated, its outcome (`true` = the good outcome, e.g. the customer was retained), and
//! optionally a weight.
//!
//! # Definitions
//! Units are sorted by score, highest first; equal scores form one group that enters the
//! curve together (a model that cannot tell them apart gets no credit for their order).
//! For the top `k` units, `N_t(k)` and `N_c(k)` count the treated and control units and
//! `R_t(k)` and `R_c(k)` the good outcomes among them — each unit counting its weight (1
//! without weights).
//!
//! The plain counts assume treatment was assigned at random. When it was not (a recovery
//! program treats valuable customers more often), each unit should be weighted by the inverse
//! of its probability of getting what it got (`1 / e` for a treated unit, `1 / (1 − e)` for a
//! control one, `e` its propensity): both groups then stand for the whole population at every
//! cut-off, and the curve measures the treatment's effect instead of who tends to get it.
//!
//! - **Qini curve**: `Qini(k) = R_t(k) − R_c(k) · N_t(k) / N_c(k)`, the good outcomes the
//!   treatment added among the top `k`, with the control group rescaled to the treated group's
//!   size (`Qini(k) = R_t(k)` while no control unit is among the top `k`: nothing to subtract).
//!   It is evaluated at the end of every group of equal scores and linear in between.
//! - **Qini coefficient**: the area between the Qini curve and the straight line from `(0, 0)`
//!   to `(N, Qini(N))` (what a random order gets on average), computed with the trapezoid rule
//!   and divided by `N²`. Both axes are thus shares of the `N` units, so hold-outs of different
//!   sizes compare: 0 is no better than random; the value is the mean, over every cut-off
//!   share, of the extra good outcomes per unit that ranking by the score finds above random.
//! - **uplift@k**: among the top `⌈k · N⌉` units (ties broken by input order),
//!   `R_t / N_t − R_c / N_c`: the observed difference in the good-outcome rate between treated
//!   and control units. Undefined when either group is empty there.

use serde::{Deserialize, Serialize};

use super::ModelError;

/// One point of a Qini curve.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct QiniPoint {
    /// The top `units` units by score.
    pub units: u64,
    /// `Qini(units)`: good outcomes added by the treatment among them.
    pub qini: f64,
}

/// The observed uplift among the top share of units.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct UpliftAtK {
    /// `k`, the share of units (0–1], highest scores first.
    pub fraction: f64,
    /// Good-outcome rate of the treated minus that of the control units among them (weighted
    /// rates with weights); `None` when one of the two groups is empty there.
    pub uplift: Option<f64>,
    /// Treated and control units among them (unweighted counts).
    pub treated: u64,
    pub control: u64,
}

/// Uplift@k as reports word it: "uplift@10% 0.0412, uplift@20% …", "undefined" where a group
/// is empty. Takes `(fraction, uplift)` pairs, so the stored metrics and their gRPC form read
/// the same.
pub fn uplift_at_text(at: impl IntoIterator<Item = (f64, Option<f64>)>) -> String {
    at.into_iter()
        .map(|(fraction, uplift)| {
            let uplift = uplift.map_or("undefined".to_owned(), |u| format!("{u:.4}"));
            format!("uplift@{:.0}% {uplift}", fraction * 100.0)
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The units to measure: one entry per unit in each slice.
#[derive(Debug, Clone, Copy)]
pub struct Units<'a> {
    pub scores: &'a [f64],
    pub treated: &'a [bool],
    pub outcomes: &'a [bool],
    /// Each unit's weight (e.g. its inverse propensity); `None`: every unit counts 1.
    pub weights: Option<&'a [f64]>,
}

impl Units<'_> {
    fn weight(&self, i: usize) -> f64 {
        self.weights.map_or(1.0, |w| w[i])
    }
}

fn check(units: &Units<'_>) -> Result<(), ModelError> {
    let Units {
        scores,
        treated,
        outcomes,
        weights,
    } = *units;
    for other in [
        treated.len(),
        outcomes.len(),
        weights.map_or(scores.len(), <[f64]>::len),
    ] {
        if other != scores.len() {
            return Err(ModelError::MetricLengthMismatch {
                count: scores.len(),
                labels: other,
            });
        }
    }
    if let Some((index, value)) = scores.iter().enumerate().find(|(_, s)| !s.is_finite()) {
        return Err(ModelError::NonFiniteUpliftScore {
            index,
            value: *value,
        });
    }
    if let Some((index, value)) = weights
        .into_iter()
        .flatten()
        .enumerate()
        .find(|(_, w)| !(w.is_finite() && **w > 0.0))
    {
        return Err(ModelError::InvalidParameter {
            name: "weights",
            reason: format!("weight {value} at index {index} is not a positive number"),
        });
    }
    let treated_units = treated.iter().filter(|t| **t).count();
    if treated_units == 0 || treated_units == treated.len() {
        return Err(ModelError::MetricNeedsBothGroups {
            metric: "Qini",
            rows: treated.len(),
            treated: treated_units,
        });
    }
    Ok(())
}

/// Indices by score, highest first, ties in input order.
fn descending(scores: &[f64]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    order
}

/// Running (weighted) counts over the top units.
#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    treated_units: u64,
    control_units: u64,
    treated: f64,
    control: f64,
    treated_good: f64,
    control_good: f64,
}

impl Tally {
    fn add(&mut self, treated: bool, good: bool, weight: f64) {
        let good = if good { weight } else { 0.0 };
        if treated {
            self.treated_units += 1;
            self.treated += weight;
            self.treated_good += good;
        } else {
            self.control_units += 1;
            self.control += weight;
            self.control_good += good;
        }
    }

    fn qini(&self) -> f64 {
        let control_term = if self.control_units == 0 {
            0.0
        } else {
            self.control_good * self.treated / self.control
        };
        self.treated_good - control_term
    }

    fn uplift(&self) -> Option<f64> {
        (self.treated_units > 0 && self.control_units > 0)
            .then(|| self.treated_good / self.treated - self.control_good / self.control)
    }
}

/// The Qini curve: `(0, 0)`, then a point at the end of each group of equal scores.
/// Needs at least one treated and one control unit.
pub fn qini_curve(units: Units<'_>) -> Result<Vec<QiniPoint>, ModelError> {
    check(&units)?;
    let Units {
        scores,
        treated,
        outcomes,
        ..
    } = units;
    let order = descending(scores);
    let mut curve = Vec::with_capacity(scores.len() + 1);
    curve.push(QiniPoint {
        units: 0,
        qini: 0.0,
    });
    let mut tally = Tally::default();
    for (position, &i) in order.iter().enumerate() {
        tally.add(treated[i], outcomes[i], units.weight(i));
        let group_ends = order
            .get(position + 1)
            .is_none_or(|&next| scores[next] != scores[i]);
        if group_ends {
            curve.push(QiniPoint {
                units: position as u64 + 1,
                qini: tally.qini(),
            });
        }
    }
    Ok(curve)
}

/// The Qini coefficient of a curve from [`qini_curve`] (see the module doc): 0 for an empty
/// curve.
pub fn qini_coefficient(curve: &[QiniPoint]) -> f64 {
    let Some(last) = curve.last().filter(|last| last.units > 0) else {
        return 0.0;
    };
    let n = last.units as f64;
    let area: f64 = curve
        .windows(2)
        .map(|w| (w[1].units - w[0].units) as f64 * (w[0].qini + w[1].qini) / 2.0)
        .sum();
    let random = n * last.qini / 2.0;
    (area - random) / (n * n)
}

/// The curve's value after `units` units, linear between its points.
pub fn qini_at(curve: &[QiniPoint], units: f64) -> f64 {
    let Some(after) = curve.iter().position(|p| p.units as f64 >= units) else {
        return curve.last().map_or(0.0, |p| p.qini);
    };
    if after == 0 {
        return curve[0].qini;
    }
    let (a, b) = (curve[after - 1], curve[after]);
    let share = (units - a.units as f64) / (b.units - a.units) as f64;
    a.qini + share * (b.qini - a.qini)
}

/// uplift@k for each of `fractions` (each in (0, 1]; see the module doc).
pub fn uplift_at(units: Units<'_>, fractions: &[f64]) -> Result<Vec<UpliftAtK>, ModelError> {
    check(&units)?;
    if let Some(bad) = fractions.iter().find(|f| !(**f > 0.0 && **f <= 1.0)) {
        return Err(ModelError::InvalidParameter {
            name: "fraction",
            reason: format!("must be in (0, 1], got {bad}"),
        });
    }
    let order = descending(units.scores);
    Ok(fractions
        .iter()
        .map(|&fraction| {
            let top = ((fraction * order.len() as f64).ceil() as usize).min(order.len());
            let mut tally = Tally::default();
            for &i in &order[..top] {
                tally.add(units.treated[i], units.outcomes[i], units.weight(i));
            }
            UpliftAtK {
                fraction,
                uplift: tally.uplift(),
                treated: tally.treated_units,
                control: tally.control_units,
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_close(actual: f64, expected: f64) {
        assert!((actual - expected).abs() < 1e-12, "{actual} != {expected}");
    }

    fn units<'a>(scores: &'a [f64], treated: &'a [bool], good: &'a [bool]) -> Units<'a> {
        Units {
            scores,
            treated,
            outcomes: good,
            weights: None,
        }
    }

    fn qinis(curve: &[QiniPoint]) -> Vec<f64> {
        curve.iter().map(|p| p.qini).collect()
    }

    // Four units, highest score first: treated good, control bad, treated bad, control good.
    const SCORES: [f64; 4] = [0.9, 0.8, 0.7, 0.6];
    const TREATED: [bool; 4] = [true, false, true, false];
    const GOOD: [bool; 4] = [true, false, false, true];

    #[test]
    fn the_curve_matches_the_hand_computed_points() {
        let curve = qini_curve(units(&SCORES, &TREATED, &GOOD)).expect("curve");
        // k=1: R_t=1, no control yet → 1. k=2: 1 − 0·1/1 = 1. k=3: 1 − 0·2/1 = 1.
        // k=4: 1 − 1·2/2 = 0.
        let points: Vec<(u64, f64)> = curve.iter().map(|p| (p.units, p.qini)).collect();
        assert_eq!(
            points,
            vec![(0, 0.0), (1, 1.0), (2, 1.0), (3, 1.0), (4, 0.0)]
        );
        // Trapezoids: ½ + 1 + 1 + ½ = 3; the random line ends at 0 so adds nothing; 3 / 4².
        assert_close(qini_coefficient(&curve), 3.0 / 16.0);
    }

    #[test]
    fn the_random_line_is_subtracted() {
        // Treated good, control bad, control bad, treated good: Qini(N) = 2 − 0 = 2.
        let curve = qini_curve(units(
            &[4.0, 3.0, 2.0, 1.0],
            &[true, false, false, true],
            &[true, false, false, true],
        ))
        .expect("curve");
        assert_eq!(qinis(&curve), vec![0.0, 1.0, 1.0, 1.0, 2.0]);
        // Area ½ + 1 + 1 + 1.5 = 4; random line area 4 · 2 / 2 = 4: no better than random.
        assert_close(qini_coefficient(&curve), 0.0);
        // The units of `SCORES` ranked backwards: worse than random.
        let bad = qini_curve(units(&[1.0, 2.0, 3.0, 4.0], &TREATED, &GOOD)).expect("curve");
        // Top first: control good (0 − 1·0/1 = 0), treated bad (0 − 1·1/1 = −1),
        // control bad (0 − 1·1/2 = −½), treated good (1 − 1·2/2 = 0).
        assert_eq!(qinis(&bad), vec![0.0, 0.0, -1.0, -0.5, 0.0]);
        // Area 0 − ½ − ¾ − ¼ = −1.5, over 16.
        assert_close(qini_coefficient(&bad), -1.5 / 16.0);
    }

    #[test]
    fn equal_scores_enter_the_curve_together() {
        let curve = qini_curve(units(
            &[0.5, 0.5, 0.1],
            &[true, false, true],
            &[true, false, true],
        ))
        .expect("curve");
        // One point after the tied pair (1 − 0·1/1 = 1), then 2 − 0·2/1 = 2.
        let points: Vec<(u64, f64)> = curve.iter().map(|p| (p.units, p.qini)).collect();
        assert_eq!(points, vec![(0, 0.0), (2, 1.0), (3, 2.0)]);
        // Area: 2 · ½ + 1 · 1.5 = 2.5; random 3 · 2 / 2 = 3; (2.5 − 3) / 9.
        assert_close(qini_coefficient(&curve), -0.5 / 9.0);
        assert_close(qini_at(&curve, 1.0), 0.5);
        assert_close(qini_at(&curve, 3.0), 2.0);
    }

    #[test]
    fn weights_count_each_unit_as_the_population_it_stands_for() {
        // `SCORES` with weights 2, 4, 2, 4/3 (treated at propensity ½, control at ¾ and ¼).
        let weights = [2.0, 4.0, 2.0, 4.0 / 3.0];
        let curve = qini_curve(Units {
            weights: Some(&weights),
            ..units(&SCORES, &TREATED, &GOOD)
        })
        .expect("curve");
        // k=1: R_t=2. k=2: 2 − 0·2/4 = 2. k=3: 2 − 0·4/4 = 2. k=4: 2 − (4/3)·4/(16/3) = 1.
        assert_eq!(qinis(&curve), vec![0.0, 2.0, 2.0, 2.0, 1.0]);
        // Area 1 + 2 + 2 + 1.5 = 6.5; random 4 · 1 / 2 = 2; 4.5 / 16.
        assert_close(qini_coefficient(&curve), 4.5 / 16.0);
        // Weights of 1 are no weights.
        let ones = [1.0; 4];
        let plain = qini_curve(units(&SCORES, &TREATED, &GOOD)).expect("curve");
        let unit_weights = qini_curve(Units {
            weights: Some(&ones),
            ..units(&SCORES, &TREATED, &GOOD)
        })
        .expect("curve");
        assert_eq!(plain, unit_weights);
        // uplift@100%: weighted rates 2/4 − (4/3)/(16/3) = ½ − ¼.
        let at = uplift_at(
            Units {
                weights: Some(&weights),
                ..units(&SCORES, &TREATED, &GOOD)
            },
            &[1.0],
        )
        .expect("uplift");
        assert_close(at[0].uplift.expect("both groups"), 0.25);
        assert_eq!((at[0].treated, at[0].control), (2, 2));
    }

    #[test]
    fn uplift_at_k_compares_rates_among_the_top_units() {
        let at = uplift_at(units(&SCORES, &TREATED, &GOOD), &[0.25, 0.5, 1.0]).expect("uplift");
        // Top 1: no control unit.
        assert_eq!(at[0].uplift, None);
        assert_eq!((at[0].treated, at[0].control), (1, 0));
        // Top 2: 1/1 − 0/1.
        assert_close(at[1].uplift.expect("both groups"), 1.0);
        // All: 1/2 − 1/2.
        assert_close(at[2].uplift.expect("both groups"), 0.0);
        // ⌈0.3 · 4⌉ = 2 units.
        let at = uplift_at(units(&SCORES, &TREATED, &GOOD), &[0.3]).expect("uplift");
        assert_eq!(at[0].treated + at[0].control, 2);
    }

    #[test]
    fn bad_input_is_refused() {
        assert!(matches!(
            qini_curve(units(&[0.1, 0.2], &[true, true], &[true, false])),
            Err(ModelError::MetricNeedsBothGroups { treated: 2, .. })
        ));
        assert!(matches!(
            qini_curve(units(&[0.1, f64::NAN], &[true, false], &[true, false])),
            Err(ModelError::NonFiniteUpliftScore { index: 1, .. })
        ));
        assert!(matches!(
            qini_curve(units(&[0.1], &[true, false], &[true, false])),
            Err(ModelError::MetricLengthMismatch { .. })
        ));
        assert!(matches!(
            qini_curve(Units {
                weights: Some(&[1.0, 0.0]),
                ..units(&[0.1, 0.2], &[true, false], &[true, false])
            }),
            Err(ModelError::InvalidParameter {
                name: "weights",
                ..
            })
        ));
        assert!(uplift_at(units(&SCORES, &TREATED, &GOOD), &[0.0]).is_err());
        assert_eq!(qini_coefficient(&[]), 0.0);
    }
}
