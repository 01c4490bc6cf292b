//! How good a churn model's probabilities are on a hold-out: ranking (ROC-AUC, PR-AUC),
//! accuracy of the probabilities (Brier, log-loss) and calibration.
//!
//! Every function takes scores in [0, 1] (P(churn)) and labels (`true` = churned), and refuses
//! mismatched lengths, scores outside [0, 1] or NaN, and — where the metric is undefined —
//! labels of a single class, with a [`ModelError`] rather than a NaN.

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};

use super::ModelError;

/// Scores are clipped to [ε, 1 − ε] in [`log_loss`] so a confident mistake costs a large,
/// finite amount (scikit-learn's historical default clip).
pub const LOG_LOSS_EPSILON: f64 = 1e-15;

/// The number of calibration bins [`Metrics::evaluate`] uses: tenths, the usual reliability plot.
pub const DEFAULT_CALIBRATION_BINS: usize = 10;

fn check(scores: &[f64], labels: &[bool]) -> Result<(), ModelError> {
    if scores.len() != labels.len() {
        return Err(ModelError::MetricLengthMismatch {
            count: scores.len(),
            labels: labels.len(),
        });
    }
    if let Some((index, value)) = scores
        .iter()
        .enumerate()
        .find(|(_, score)| !(0.0..=1.0).contains(*score))
    {
        return Err(ModelError::InvalidScore {
            index,
            value: *value,
        });
    }
    Ok(())
}

fn require_both_classes(metric: &'static str, labels: &[bool]) -> Result<usize, ModelError> {
    let positives = labels.iter().filter(|label| **label).count();
    if positives == 0 || positives == labels.len() {
        return Err(ModelError::MetricNeedsBothClasses {
            metric,
            rows: labels.len(),
            positives,
        });
    }
    Ok(positives)
}

/// Indices of the scores in descending order, so equal scores are adjacent.
fn descending(scores: &[f64]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_unstable_by(|&a, &b| scores[b].partial_cmp(&scores[a]).unwrap_or(Ordering::Equal));
    order
}

/// The runs of equal scores in `order` (descending), as (positives, negatives) per run.
fn tie_groups(scores: &[f64], labels: &[bool], order: &[usize]) -> Vec<(usize, usize)> {
    let mut groups = Vec::new();
    let mut start = 0;
    while start < order.len() {
        let score = scores[order[start]];
        let mut end = start;
        let mut positives = 0;
        while end < order.len() && scores[order[end]] == score {
            positives += usize::from(labels[order[end]]);
            end += 1;
        }
        groups.push((positives, end - start - positives));
        start = end;
    }
    groups
}

/// The probability that a random churner scores above a random non-churner, ties counting
/// half (the Mann–Whitney statistic with average ranks). O(n log n). Needs both classes.
pub fn roc_auc(scores: &[f64], labels: &[bool]) -> Result<f64, ModelError> {
    check(scores, labels)?;
    let positives = require_both_classes("ROC-AUC", labels)?;
    let negatives = labels.len() - positives;
    let order = descending(scores);
    // Walking down from the top score, each positive outranks every negative still below it;
    // a tie group's negatives count half against its own positives.
    let mut negatives_above = 0.0;
    let mut wins = 0.0;
    for (group_positives, group_negatives) in tie_groups(scores, labels, &order) {
        let (p, n) = (group_positives as f64, group_negatives as f64);
        wins += p * (negatives as f64 - negatives_above - n) + 0.5 * p * n;
        negatives_above += n;
    }
    Ok(wins / (positives as f64 * negatives as f64))
}

/// Average precision: Σ over thresholds (recallₖ − recallₖ₋₁) · precisionₖ, thresholds at each
/// distinct score (scikit-learn's `average_precision_score`). Needs at least one positive.
pub fn pr_auc(scores: &[f64], labels: &[bool]) -> Result<f64, ModelError> {
    check(scores, labels)?;
    let positives = labels.iter().filter(|label| **label).count();
    if positives == 0 {
        return Err(ModelError::MetricNeedsBothClasses {
            metric: "PR-AUC",
            rows: labels.len(),
            positives,
        });
    }
    let order = descending(scores);
    let (mut true_positives, mut flagged) = (0usize, 0usize);
    let mut average = 0.0;
    for (group_positives, group_negatives) in tie_groups(scores, labels, &order) {
        true_positives += group_positives;
        flagged += group_positives + group_negatives;
        let recall_gain = group_positives as f64 / positives as f64;
        average += recall_gain * true_positives as f64 / flagged as f64;
    }
    Ok(average)
}

/// Mean squared error of the probabilities. Defined for any non-empty input.
pub fn brier(scores: &[f64], labels: &[bool]) -> Result<f64, ModelError> {
    check(scores, labels)?;
    mean(scores.iter().zip(labels).map(|(score, label)| {
        let error = score - f64::from(u8::from(*label));
        error * error
    }))
}

/// Mean negative log-likelihood, scores clipped to [`LOG_LOSS_EPSILON`]. Defined for any
/// non-empty input.
pub fn log_loss(scores: &[f64], labels: &[bool]) -> Result<f64, ModelError> {
    check(scores, labels)?;
    mean(scores.iter().zip(labels).map(|(score, label)| {
        let p = score.clamp(LOG_LOSS_EPSILON, 1.0 - LOG_LOSS_EPSILON);
        if *label { -p.ln() } else { -(1.0 - p).ln() }
    }))
}

fn mean(values: impl Iterator<Item = f64>) -> Result<f64, ModelError> {
    let (sum, count) = values.fold((0.0, 0usize), |(sum, count), v| (sum + v, count + 1));
    if count == 0 {
        return Err(ModelError::MetricLengthMismatch {
            count: 0,
            labels: 0,
        });
    }
    Ok(sum / count as f64)
}

/// One bar of a reliability plot: the scores in [`lower`, `upper`) (the last bin includes 1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CalibrationBin {
    pub lower: f64,
    pub upper: f64,
    pub count: u64,
    /// Mean score in the bin: what the model said.
    pub mean_predicted: f64,
    /// Fraction of the bin that churned: what happened.
    pub observed_rate: f64,
}

/// Equal-width bins over [0, 1]. Empty bins are left out (they have no rate to report, and a
/// NaN would not survive JSON); the edges of the returned bins show where the gaps are.
pub fn calibration(
    scores: &[f64],
    labels: &[bool],
    bins: usize,
) -> Result<Vec<CalibrationBin>, ModelError> {
    check(scores, labels)?;
    if bins == 0 {
        return Err(ModelError::NoCalibrationBins);
    }
    let mut sums = vec![(0u64, 0.0f64, 0u64); bins];
    for (score, label) in scores.iter().zip(labels) {
        // A score of exactly 1 belongs to the last bin, not a bin past the end.
        let bin = ((score * bins as f64) as usize).min(bins - 1);
        let (count, predicted, positives) = &mut sums[bin];
        *count += 1;
        *predicted += score;
        *positives += u64::from(*label);
    }
    Ok(sums
        .into_iter()
        .enumerate()
        .filter(|(_, (count, _, _))| *count > 0)
        .map(|(bin, (count, predicted, positives))| CalibrationBin {
            lower: bin as f64 / bins as f64,
            upper: (bin + 1) as f64 / bins as f64,
            count,
            mean_predicted: predicted / count as f64,
            observed_rate: positives as f64 / count as f64,
        })
        .collect())
}

/// Σ (bin share of rows) × |mean predicted − observed rate|: how far, on average, a score is
/// from the churn rate of the scores like it. 0 for no bins.
pub fn expected_calibration_error(bins: &[CalibrationBin]) -> f64 {
    let total: u64 = bins.iter().map(|bin| bin.count).sum();
    if total == 0 {
        return 0.0;
    }
    bins.iter()
        .map(|bin| bin.count as f64 / total as f64 * (bin.mean_predicted - bin.observed_rate).abs())
        .sum()
}

/// All the hold-out metrics of one model, as stored in its artifact and reported by `Train`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    pub roc_auc: f64,
    pub pr_auc: f64,
    pub brier: f64,
    pub log_loss: f64,
    pub calibration: Vec<CalibrationBin>,
    pub expected_calibration_error: f64,
    pub rows: u64,
    pub positives: u64,
}

impl Metrics {
    /// Every metric, with [`DEFAULT_CALIBRATION_BINS`] bins. Needs both classes in `labels`
    /// (ROC-AUC is undefined otherwise).
    pub fn evaluate(scores: &[f64], labels: &[bool]) -> Result<Self, ModelError> {
        let roc_auc = roc_auc(scores, labels)?;
        let calibration = calibration(scores, labels, DEFAULT_CALIBRATION_BINS)?;
        Ok(Self {
            roc_auc,
            pr_auc: pr_auc(scores, labels)?,
            brier: brier(scores, labels)?,
            log_loss: log_loss(scores, labels)?,
            expected_calibration_error: expected_calibration_error(&calibration),
            calibration,
            rows: labels.len() as u64,
            positives: labels.iter().filter(|label| **label).count() as u64,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLOSE: f64 = 1e-12;

    fn assert_close(actual: f64, expected: f64) {
        assert!(
            (actual - expected).abs() < CLOSE,
            "expected {expected}, got {actual}"
        );
    }

    #[test]
    fn roc_auc_counts_ordered_pairs() {
        // Positives 0.8, 0.4; negatives 0.6, 0.2. Pairs won: (0.8>0.6), (0.8>0.2), (0.4>0.2) = 3/4.
        let auc = roc_auc(&[0.8, 0.6, 0.4, 0.2], &[true, false, true, false]).expect("auc");
        assert_close(auc, 0.75);
    }

    #[test]
    fn roc_auc_counts_ties_as_half() {
        // Positive 0.5 ties negative 0.5 (½), beats negative 0.1 (1); positive 0.9 beats both (2).
        // 3.5 of 4 pairs.
        let auc = roc_auc(&[0.9, 0.5, 0.5, 0.1], &[true, true, false, false]).expect("auc");
        assert_close(auc, 0.875);
        // All scores equal: no information, exactly ½.
        let flat = roc_auc(&[0.3; 5], &[true, false, true, false, false]).expect("auc");
        assert_close(flat, 0.5);
    }

    #[test]
    fn roc_auc_is_one_for_a_perfect_ranking_and_zero_for_a_reversed_one() {
        let labels = [true, true, false, false];
        assert_close(roc_auc(&[0.9, 0.8, 0.2, 0.1], &labels).expect("auc"), 1.0);
        assert_close(roc_auc(&[0.1, 0.2, 0.8, 0.9], &labels).expect("auc"), 0.0);
    }

    #[test]
    fn roc_auc_refuses_a_single_class() {
        assert!(matches!(
            roc_auc(&[0.2, 0.4], &[false, false]),
            Err(ModelError::MetricNeedsBothClasses { positives: 0, .. })
        ));
        assert!(matches!(
            roc_auc(&[0.2, 0.4], &[true, true]),
            Err(ModelError::MetricNeedsBothClasses { positives: 2, .. })
        ));
    }

    #[test]
    fn average_precision_matches_the_hand_computed_value() {
        // Descending: 0.9 (P), 0.8 (N), 0.7 (P), 0.1 (N).
        // Thresholds with a recall gain: 0.9 → P=1/1, ΔR=½; 0.7 → P=2/3, ΔR=½. AP = ½ + ⅓.
        let ap = pr_auc(&[0.9, 0.8, 0.7, 0.1], &[true, false, true, false]).expect("ap");
        assert_close(ap, 0.5 + 1.0 / 3.0);
    }

    #[test]
    fn average_precision_treats_a_tie_as_one_threshold() {
        // 0.5 holds one positive and one negative: precision ½ at recall 1.
        let ap = pr_auc(&[0.5, 0.5], &[true, false]).expect("ap");
        assert_close(ap, 0.5);
        assert!(matches!(
            pr_auc(&[0.5, 0.5], &[false, false]),
            Err(ModelError::MetricNeedsBothClasses { .. })
        ));
    }

    #[test]
    fn brier_and_log_loss_match_hand_computed_values() {
        let scores = [0.8, 0.3];
        let labels = [true, false];
        // ((0.2)² + (0.3)²) / 2
        assert_close(brier(&scores, &labels).expect("brier"), 0.065);
        // (−ln 0.8 − ln 0.7) / 2
        assert_close(
            log_loss(&scores, &labels).expect("log loss"),
            (-(0.8f64.ln()) - 0.7f64.ln()) / 2.0,
        );
    }

    #[test]
    fn log_loss_is_finite_for_a_confident_mistake() {
        let loss = log_loss(&[0.0, 1.0], &[true, false]).expect("log loss");
        // −ln ε, up to 1 − ε not being exact in binary.
        assert!((loss - -(LOG_LOSS_EPSILON.ln())).abs() < 1e-3, "got {loss}");
    }

    #[test]
    fn brier_and_log_loss_are_defined_for_one_class() {
        assert_close(brier(&[0.1, 0.3], &[false, false]).expect("brier"), 0.05);
        assert!(log_loss(&[0.1], &[true]).is_ok());
    }

    #[test]
    fn scores_outside_zero_one_nan_or_of_another_length_are_refused() {
        assert!(matches!(
            brier(&[0.5, 1.5], &[true, false]),
            Err(ModelError::InvalidScore { index: 1, .. })
        ));
        assert!(matches!(
            roc_auc(&[f64::NAN, 0.5], &[true, false]),
            Err(ModelError::InvalidScore { index: 0, .. })
        ));
        assert!(matches!(
            log_loss(&[0.5], &[true, false]),
            Err(ModelError::MetricLengthMismatch {
                count: 1,
                labels: 2
            })
        ));
        assert!(brier(&[], &[]).is_err());
    }

    #[test]
    fn calibration_bins_are_equal_width_and_skip_empty_ones() {
        let scores = [0.05, 0.15, 0.12, 0.95, 1.0];
        let labels = [false, true, false, true, true];
        let bins = calibration(&scores, &labels, 10).expect("bins");
        assert_eq!(bins.len(), 3);
        assert_eq!(bins[0].count, 1);
        assert_close(bins[0].lower, 0.0);
        assert_close(bins[0].upper, 0.1);
        assert_eq!(bins[1].count, 2);
        assert_close(bins[1].mean_predicted, 0.135);
        assert_close(bins[1].observed_rate, 0.5);
        // 1.0 lands in the last bin with 0.95.
        assert_eq!(bins[2].count, 2);
        assert_close(bins[2].lower, 0.9);
        assert_close(bins[2].mean_predicted, 0.975);
        assert_close(bins[2].observed_rate, 1.0);
        // ECE = 1/5·|0.05−0| + 2/5·|0.135−0.5| + 2/5·|0.975−1|
        assert_close(
            expected_calibration_error(&bins),
            0.2 * 0.05 + 0.4 * 0.365 + 0.4 * 0.025,
        );
        assert!(matches!(
            calibration(&scores, &labels, 0),
            Err(ModelError::NoCalibrationBins)
        ));
    }

    #[test]
    fn evaluate_collects_every_metric() {
        let scores = [0.9, 0.8, 0.7, 0.1];
        let labels = [true, false, true, false];
        let metrics = Metrics::evaluate(&scores, &labels).expect("metrics");
        assert_close(metrics.roc_auc, 0.75);
        assert_close(metrics.pr_auc, 0.5 + 1.0 / 3.0);
        assert_eq!((metrics.rows, metrics.positives), (4, 2));
        assert_eq!(metrics.calibration.len(), 4);
        assert!(Metrics::evaluate(&[0.5], &[true]).is_err());
    }
}
