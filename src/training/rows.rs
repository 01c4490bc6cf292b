//! Point-in-time training rows of the health model and how they are split: by time (rows at
//! the last as-of time are the hold-out) or, for a snapshot of one as-of time, by customer
//! (a seeded, stratified share of the customers is held out).

use ndarray::Array2;

use super::TrainingError;
use crate::domain::{CustomerId, Timestamp};
use crate::features::{self, FeatureSpec};
use crate::model::Dataset;
use crate::model::holdout::stratified_customers;
use crate::store::CustomerRecords;

/// The share of a snapshot's customers held out: scikit-learn's customary 80/20.
pub const SNAPSHOT_HOLDOUT_SHARE: f64 = 0.2;
/// Seeds the snapshot's hold-out draw, so the same data always gives the same split.
pub const SNAPSHOT_HOLDOUT_SEED: u64 = 42;

/// How the hold-out rows are chosen.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Holdout {
    /// Rows at the last as-of time; the earlier ones train.
    LastAsOf,
    /// A stratified `share` of the customers, drawn with `seed`: for a single as-of time.
    Customers { share: f64, seed: u64 },
}

impl Holdout {
    pub fn describe(self) -> String {
        match self {
            Self::LastAsOf => "the rows at the last as-of time".to_owned(),
            Self::Customers { share, seed } => format!(
                "a stratified {:.0}% of the customers (seed {seed})",
                share * 100.0
            ),
        }
    }
}

/// One labelled row before the split.
#[derive(Debug)]
struct PendingRow {
    customer: CustomerId,
    at_last: bool,
    label: bool,
    features: Vec<f64>,
    /// The same row in the comparison spec's features, when one was given.
    compared: Vec<f64>,
}

/// Point-in-time rows at a grid of as-of times. Fed one customer at a time, so any source
/// (the store's pages, the simulator) builds exactly the rows training uses.
#[derive(Debug)]
pub struct RowBuilder {
    as_of: Vec<Timestamp>,
    horizon_days: u32,
    spec: FeatureSpec,
    /// The active model's features, computed for the same rows so it can be judged on the
    /// new model's hold-out whatever features it reads.
    comparison: Option<FeatureSpec>,
    holdout: Holdout,
    rows: Vec<PendingRow>,
    customers: usize,
}

impl RowBuilder {
    /// `as_of` must be ascending; one time is a snapshot, held out by customer. The rows
    /// carry the built-in features until [`Self::with_spec`] says otherwise.
    pub fn new(as_of: Vec<Timestamp>, horizon_days: u32) -> Result<Self, TrainingError> {
        if as_of.is_empty() || as_of.windows(2).any(|w| w[0] >= w[1]) {
            return Err(TrainingError::Invalid(
                "the as-of times must be one or more, ascending".into(),
            ));
        }
        let holdout = if as_of.len() == 1 {
            Holdout::Customers {
                share: SNAPSHOT_HOLDOUT_SHARE,
                seed: SNAPSHOT_HOLDOUT_SEED,
            }
        } else {
            Holdout::LastAsOf
        };
        Ok(Self {
            as_of,
            horizon_days,
            spec: FeatureSpec::every_built_in(),
            comparison: None,
            holdout,
            rows: Vec::new(),
            customers: 0,
        })
    }

    pub fn with_spec(mut self, spec: FeatureSpec) -> Self {
        self.spec = spec;
        self
    }

    /// Also computes every row in `spec`'s features (see [`SplitRows::compared_holdout`]).
    pub fn comparing(mut self, spec: Option<FeatureSpec>) -> Self {
        self.comparison = spec;
        self
    }

    pub fn holdout(&self) -> Holdout {
        self.holdout
    }

    /// Adds a row per as-of time at which the customer had joined and their label is known.
    pub fn add(&mut self, customer: &CustomerRecords) {
        self.customers += 1;
        let last = self.as_of[self.as_of.len() - 1];
        for &at in &self.as_of {
            if customer.history.customer.customer_since > at {
                continue;
            }
            let Some(label) =
                features::churn_label(customer.churn.as_ref(), at, i64::from(self.horizon_days))
            else {
                continue;
            };
            self.rows.push(PendingRow {
                customer: customer.history.customer.customer_id.clone(),
                at_last: at == last,
                label,
                features: self.spec.compute(&customer.history, at).0,
                compared: self
                    .comparison
                    .as_ref()
                    .map(|spec| spec.compute(&customer.history, at).0)
                    .unwrap_or_default(),
            });
        }
    }

    pub fn customers(&self) -> usize {
        self.customers
    }

    /// Rows so far, training and hold-out.
    pub fn rows(&self) -> usize {
        self.rows.len()
    }

    /// The training and hold-out sets. Refuses, saying what to do, when either lacks churned
    /// or retained customers.
    pub fn finish(self) -> Result<SplitRows, TrainingError> {
        let held: Vec<bool> = match self.holdout {
            Holdout::LastAsOf => self.rows.iter().map(|r| r.at_last).collect(),
            Holdout::Customers { share, seed } => held_customers(&self.rows, share, seed),
        };
        let width = self.spec.len();
        let compared_width = self.comparison.as_ref().map_or(0, FeatureSpec::len);
        let mut split = Parts::default();
        for (row, held) in self.rows.into_iter().zip(held) {
            let part = if held {
                &mut split.holdout
            } else {
                &mut split.train
            };
            part.features.extend(row.features);
            part.labels.push(row.label);
            if held {
                split.holdout_customers.push(row.customer);
                split.compared.extend(row.compared);
            }
        }
        for (name, part) in [("training", &split.train), ("hold-out", &split.holdout)] {
            let positives = part.labels.iter().filter(|l| **l).count();
            if positives == 0 || positives == part.labels.len() {
                return Err(TrainingError::NotEnoughData(format!(
                    "the {name} rows need both churned and retained customers ({positives} of {} churned); \
                     check that churn outcomes are stored and observed at least a horizon after the as-of times",
                    part.labels.len()
                )));
            }
        }
        let holdout_rows = split.holdout.labels.len();
        Ok(SplitRows {
            train: dataset(split.train.features, split.train.labels, width)?,
            holdout: dataset(split.holdout.features, split.holdout.labels, width)?,
            holdout_customers: split.holdout_customers,
            compared_holdout: (compared_width > 0)
                .then(|| Array2::from_shape_vec((holdout_rows, compared_width), split.compared))
                .transpose()
                .map_err(|e| TrainingError::Invalid(format!("comparison matrix: {e}")))?,
            spec: self.spec,
            holdout_kind: self.holdout,
        })
    }
}

#[derive(Debug, Default)]
struct Part {
    features: Vec<f64>,
    labels: Vec<bool>,
}

#[derive(Debug, Default)]
struct Parts {
    train: Part,
    holdout: Part,
    holdout_customers: Vec<CustomerId>,
    compared: Vec<f64>,
}

/// Which rows belong to held-out customers: a seeded, stratified `share` of them by their
/// label at the snapshot ([`stratified_customers`]).
fn held_customers(rows: &[PendingRow], share: f64, seed: u64) -> Vec<bool> {
    let held = stratified_customers(rows.iter().map(|r| (&r.customer, r.label)), share, seed);
    rows.iter().map(|r| held.contains(&r.customer)).collect()
}

/// Rows split for training and evaluation.
#[derive(Debug)]
pub struct SplitRows {
    pub train: Dataset,
    pub holdout: Dataset,
    /// The customer of each hold-out row, in row order.
    pub holdout_customers: Vec<CustomerId>,
    /// The hold-out rows in the comparison spec's features, when one was given.
    pub compared_holdout: Option<Array2<f64>>,
    /// The features of `train` and `holdout`.
    pub spec: FeatureSpec,
    pub holdout_kind: Holdout,
}

impl SplitRows {
    /// Drops the features that are constant in the training rows (they teach nothing and
    /// would only let a different value at serving time swing a score) and records every
    /// kept feature's training range.
    pub fn without_constant_features(self) -> Result<Self, TrainingError> {
        let train_values = self.train.features.as_slice().map(<[f64]>::to_vec);
        let train_values =
            train_values.unwrap_or_else(|| self.train.features.iter().copied().collect());
        let (mut spec, kept) = self.spec.without_constant_columns(&train_values);
        if kept.is_empty() {
            return Err(TrainingError::NotEnoughData(
                "every feature has the same value for every training customer".into(),
            ));
        }
        let select = |d: &Dataset| {
            Dataset::new(d.features.select(ndarray::Axis(1), &kept), d.labels.clone())
        };
        let train = select(&self.train)?;
        let holdout = select(&self.holdout)?;
        let narrowed: Vec<f64> = train.features.iter().copied().collect();
        spec.record_ranges(&narrowed);
        Ok(Self {
            train,
            holdout,
            spec,
            ..self
        })
    }
}

fn dataset(features: Vec<f64>, labels: Vec<bool>, width: usize) -> Result<Dataset, TrainingError> {
    let matrix = Array2::from_shape_vec((labels.len(), width), features)
        .map_err(|e| TrainingError::Invalid(format!("feature matrix: {e}")))?;
    Ok(Dataset::new(matrix, labels)?)
}
