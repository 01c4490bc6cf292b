//! Which features a health model reads, as data: every feature is one entry — its name, how
//! it is computed and how a driver puts it into words — and the list is chosen at training
//! from what the data holds, then stored in the model's artifact. Serving computes exactly
//! the artifact's list, so a model keeps loading and scoring the same way when this build
//! adds built-in features, and a company's own attributes and activities become features
//! without a line of code.
//!
//! The families:
//! - the built-in features of [`super::FEATURE_NAMES`] (who / what they did / how they
//!   feel), referred to by name;
//! - each customer attribute: a number (with a missing indicator when some customers lack
//!   it), a flag, or a category one-hot per level that enough customers share (the rare
//!   levels together as "other");
//! - each usage activity enough customers use: its amount over 30 and 90 days and the days
//!   since it was last used;
//! - contacts by issue tag over 90 days, for the tags enough customers raised.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use super::window::{Window, days_between};
use super::{FEATURE_NAMES, FeatureVector, History, MAX_DAYS};
use crate::domain::{AttributeValue, Timestamp};

/// A category level, an activity or a tag becomes a feature only when at least this share
/// of the customers has it (and at least [`MIN_CUSTOMERS`]): rarer ones cannot be learnt
/// and would only add noise.
const MIN_SHARE: f64 = 0.01;
const MIN_CUSTOMERS: usize = 10;
/// At most this many levels of one category, activities or tags, the most common first:
/// keeps a high-cardinality column (a city, a product code) from flooding the model.
const MAX_LEVELS: usize = 30;

/// The features of one model, in vector order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FeatureSpec {
    pub features: Vec<Feature>,
}

/// One feature: what it is called, how it is computed, how it is said.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Feature {
    /// Unique within the spec; shown as the driver's `feature`.
    pub name: String,
    pub computation: Computation,
    pub wording: Wording,
    /// The least and greatest value seen in the training rows; serving holds values within
    /// them, so a customer unlike any seen in training is not extrapolated to extremes.
    #[serde(default)]
    pub range: Option<(f64, f64)>,
}

/// How a feature's value is computed from a history as of a moment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Computation {
    /// The built-in feature of this name (one of [`FEATURE_NAMES`]).
    BuiltIn { name: String },
    /// A number attribute's value; `fill` (the training median) when the customer has none.
    AttributeNumber { attribute: String, fill: f64 },
    /// 1 when the customer's profile lacks the attribute (or has it of another type).
    AttributeMissing { attribute: String },
    /// 1 when a flag attribute is true.
    AttributeFlag { attribute: String },
    /// 1 when a category attribute has this level.
    AttributeLevel { attribute: String, level: String },
    /// 1 when a category attribute has a level other than `known` ones.
    AttributeOtherLevel {
        attribute: String,
        known: Vec<String>,
    },
    /// ln(1 + the activity's total quantity in the last `days` days).
    ActivityAmount { activity: String, days: u32 },
    /// Days since the activity was last used with a positive quantity, capped at a year.
    ActivityDaysSince { activity: String },
    /// Contacts with service about this tag in the last `days` days.
    ContactsByTag { tag: String, days: u32 },
}

/// How a driver says the customer's value of a feature.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Wording {
    /// The built-in feature's own sentence.
    BuiltIn,
    /// `template` with `{value}` replaced by the value (up to two decimals).
    Value { template: String },
    /// `template` with `{value}` replaced by e^value − 1, rounded: for amounts kept as logs.
    LogAmount { template: String },
    /// Said only when the feature is on (1).
    WhenSet { text: String },
    /// "N days since …", or `never` when capped at a year.
    Days { template: String, never: String },
}

impl FeatureSpec {
    /// The spec of a model trained before specs were stored: the built-in features by name.
    pub fn built_in(names: &[String]) -> Self {
        Self {
            features: names
                .iter()
                .map(|name| Feature {
                    name: name.clone(),
                    computation: Computation::BuiltIn { name: name.clone() },
                    wording: Wording::BuiltIn,
                    range: None,
                })
                .collect(),
        }
    }

    /// Every built-in feature, in [`FEATURE_NAMES`] order.
    pub fn every_built_in() -> Self {
        Self::built_in(
            &FEATURE_NAMES
                .iter()
                .map(|n| (*n).to_owned())
                .collect::<Vec<_>>(),
        )
    }

    pub fn len(&self) -> usize {
        self.features.len()
    }

    pub fn is_empty(&self) -> bool {
        self.features.is_empty()
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.features.iter().map(|f| f.name.as_str())
    }

    /// Refuses a spec this build cannot compute: an unknown built-in feature (one a later
    /// build removed), or two features of one name.
    pub fn check(&self) -> Result<(), String> {
        let mut seen = std::collections::HashSet::new();
        for feature in &self.features {
            if !seen.insert(feature.name.as_str()) {
                return Err(format!("feature {:?} is listed twice", feature.name));
            }
            if let Computation::BuiltIn { name } = &feature.computation
                && !FEATURE_NAMES.contains(&name.as_str())
            {
                return Err(format!(
                    "built-in feature {name:?} is not computed by this build"
                ));
            }
        }
        Ok(())
    }

    /// The spec's values for `history` as of `as_of`, each held within its training range.
    pub fn compute(&self, history: &History, as_of: Timestamp) -> FeatureVector {
        self.compute_checked(history, as_of).0
    }

    /// [`Self::compute`], and the positions of the features whose value lay outside their
    /// training range and was held at its edge.
    pub fn compute_checked(
        &self,
        history: &History,
        as_of: Timestamp,
    ) -> (FeatureVector, Vec<usize>) {
        let built_in = super::compute(history, as_of);
        let mut held = Vec::new();
        let values = self
            .features
            .iter()
            .enumerate()
            .map(|(index, feature)| {
                let value = feature.computation.value(history, as_of, &built_in);
                match feature.range {
                    Some((low, high)) if value < low || value > high => {
                        held.push(index);
                        value.clamp(low, high)
                    }
                    _ => value,
                }
            })
            .collect();
        (FeatureVector(values), held)
    }

    /// Whether any feature reads what a customer did or said (usage, contacts, surveys,
    /// recoveries) rather than only who they are: only then does a customer without recent
    /// records get a score worth a warning.
    pub fn reads_activity(&self) -> bool {
        let profile = &FEATURE_NAMES[..super::PROFILE_FEATURES];
        self.features
            .iter()
            .any(|feature| match &feature.computation {
                Computation::BuiltIn { name } => !profile.contains(&name.as_str()),
                Computation::ActivityAmount { .. }
                | Computation::ActivityDaysSince { .. }
                | Computation::ContactsByTag { .. } => true,
                _ => false,
            })
    }

    /// Records every feature's training range from the training rows (row-major, one value
    /// per feature per row).
    pub fn record_ranges(&mut self, rows: &[f64]) {
        let width = self.features.len();
        if width == 0 {
            return;
        }
        for (j, feature) in self.features.iter_mut().enumerate() {
            let column = rows.iter().skip(j).step_by(width).copied();
            let (low, high) = column.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
                (lo.min(v), hi.max(v))
            });
            feature.range = (low <= high).then_some((low, high));
        }
    }

    /// The features whose column in `rows` takes more than one value: a constant column
    /// teaches a model nothing, and only lets a different value at serving time swing the
    /// score. Returns the kept spec and the kept column positions.
    pub fn without_constant_columns(&self, rows: &[f64]) -> (Self, Vec<usize>) {
        let width = self.features.len();
        let kept: Vec<usize> = (0..width)
            .filter(|&j| {
                let mut column = rows.iter().skip(j).step_by(width);
                let first = column.next();
                first.is_some_and(|first| column.any(|v| v != first))
            })
            .collect();
        let features = kept.iter().map(|&j| self.features[j].clone()).collect();
        (Self { features }, kept)
    }

    /// A driver's sentence for feature `index` at `value`, or `None` when there is nothing
    /// worth saying (an absent level, a neutral default).
    pub fn describe(&self, index: usize, value: f64) -> Option<String> {
        let feature = self.features.get(index)?;
        match (&feature.wording, &feature.computation) {
            (Wording::BuiltIn, Computation::BuiltIn { name }) => {
                let position = FEATURE_NAMES.iter().position(|n| n == name)?;
                super::describe(position, value)
            }
            (Wording::BuiltIn, _) => None,
            (Wording::Value { template }, _) => {
                Some(template.replace("{value}", &format_number(value)))
            }
            (Wording::LogAmount { template }, _) => {
                Some(template.replace("{value}", &format_number(value.exp_m1().round())))
            }
            (Wording::WhenSet { text }, _) => (value >= 0.5).then(|| text.clone()),
            (Wording::Days { template, never }, _) => Some(if value >= MAX_DAYS {
                never.clone()
            } else {
                template.replace("{value}", &format_number(value.round()))
            }),
        }
    }
}

/// Up to two decimals, without trailing zeros: `42`, `0.5`, `197.64`.
fn format_number(value: f64) -> String {
    let rounded = (value * 100.0).round() / 100.0;
    let text = format!("{rounded:.2}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

impl Computation {
    fn value(&self, history: &History, as_of: Timestamp, built_in: &FeatureVector) -> f64 {
        let profile = history.profile_at(as_of);
        let attribute = |name: &str| profile.attributes.get(name);
        let flag = |on: bool| if on { 1.0 } else { 0.0 };
        match self {
            Self::BuiltIn { name } => built_in.get(name).unwrap_or(0.0),
            Self::AttributeNumber { attribute: a, fill } => match attribute(a) {
                Some(AttributeValue::Number(n)) => *n,
                _ => *fill,
            },
            Self::AttributeMissing { attribute: a } => flag(attribute(a).is_none()),
            Self::AttributeFlag { attribute: a } => {
                flag(matches!(attribute(a), Some(AttributeValue::Flag(true))))
            }
            Self::AttributeLevel {
                attribute: a,
                level,
            } => flag(matches!(attribute(a), Some(AttributeValue::Category(c)) if c == level)),
            Self::AttributeOtherLevel {
                attribute: a,
                known,
            } => flag(
                matches!(attribute(a), Some(AttributeValue::Category(c)) if !known.contains(c)),
            ),
            Self::ActivityAmount { activity, days } => {
                let window = Window::before(as_of, i64::from(*days));
                history
                    .usage
                    .iter()
                    .filter(|e| e.activity == *activity && window.contains(e.occurred_at))
                    .map(|e| e.quantity.get())
                    .sum::<f64>()
                    .ln_1p()
            }
            Self::ActivityDaysSince { activity } => history
                .usage
                .iter()
                .filter(|e| {
                    e.activity == *activity && e.occurred_at < as_of && e.quantity.get() > 0.0
                })
                .map(|e| e.occurred_at)
                .max()
                .map_or(MAX_DAYS, |at| days_between(at, as_of).min(MAX_DAYS)),
            Self::ContactsByTag { tag, days } => {
                let window = Window::before(as_of, i64::from(*days));
                history
                    .interactions
                    .iter()
                    .filter(|i| i.tag.as_str() == tag && window.contains(i.occurred_at))
                    .count() as f64
            }
        }
    }
}

/// What the training customers hold, counted one customer at a time, from which
/// [`SpecBuilder::finish`] chooses the spec.
#[derive(Debug, Default)]
pub struct SpecBuilder {
    customers: usize,
    attributes: BTreeMap<String, AttributeStats>,
    /// Customers who used each activity.
    activities: HashMap<String, usize>,
    /// Customers who contacted service about each tag.
    tags: HashMap<String, usize>,
}

#[derive(Debug, Default)]
struct AttributeStats {
    numbers: Vec<f64>,
    flags: usize,
    levels: HashMap<String, usize>,
}

impl AttributeStats {
    fn categories(&self) -> usize {
        self.levels.values().sum()
    }
}

impl SpecBuilder {
    /// Counts what `history` holds before `as_of` (its profile's attributes, the activities
    /// and tags it used).
    pub fn add(&mut self, history: &History, as_of: Timestamp) {
        self.customers += 1;
        for (name, value) in history.profile_at(as_of).attributes.iter() {
            let stats = self.attributes.entry(name.as_str().to_owned()).or_default();
            match value {
                AttributeValue::Number(n) => stats.numbers.push(*n),
                AttributeValue::Flag(_) => stats.flags += 1,
                AttributeValue::Category(c) => *stats.levels.entry(c.clone()).or_default() += 1,
            }
        }
        let mut activities: Vec<&str> = history
            .usage
            .iter()
            .filter(|e| e.occurred_at < as_of)
            .map(|e| e.activity.as_str())
            .collect();
        activities.sort_unstable();
        activities.dedup();
        for activity in activities {
            *self.activities.entry(activity.to_owned()).or_default() += 1;
        }
        let mut tags: Vec<&str> = history
            .interactions
            .iter()
            .filter(|i| i.occurred_at < as_of)
            .map(|i| i.tag.as_str())
            .collect();
        tags.sort_unstable();
        tags.dedup();
        for tag in tags {
            *self.tags.entry(tag.to_owned()).or_default() += 1;
        }
    }

    /// The built-in features, then the families the data holds enough of.
    pub fn finish(self) -> FeatureSpec {
        let enough = MIN_CUSTOMERS.max((MIN_SHARE * self.customers as f64).ceil() as usize);
        let mut spec = FeatureSpec::every_built_in();
        let mut push = |name: String, computation: Computation, wording: Wording| {
            spec.features.push(Feature {
                name,
                computation,
                wording,
                range: None,
            });
        };
        for (attribute, stats) in &self.attributes {
            let label = attribute.replace('_', " ");
            let present = stats.numbers.len().max(stats.flags).max(stats.categories());
            if present < enough {
                continue;
            }
            let missing = Computation::AttributeMissing {
                attribute: attribute.clone(),
            };
            let missing_wording = Wording::WhenSet {
                text: format!("{label} unknown"),
            };
            // The type most customers have; values of another type count as missing.
            let some_missing = present < self.customers;
            if stats.numbers.len() == present {
                push(
                    format!("attr.{attribute}"),
                    Computation::AttributeNumber {
                        attribute: attribute.clone(),
                        fill: median(&stats.numbers),
                    },
                    Wording::Value {
                        template: format!("{label} {{value}}"),
                    },
                );
            } else if stats.flags == present {
                push(
                    format!("attr.{attribute}"),
                    Computation::AttributeFlag {
                        attribute: attribute.clone(),
                    },
                    Wording::WhenSet {
                        text: label.clone(),
                    },
                );
            } else {
                let mut levels: Vec<(&String, &usize)> = stats.levels.iter().collect();
                levels.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
                let known: Vec<String> = levels
                    .iter()
                    .filter(|(_, count)| **count >= enough)
                    .take(MAX_LEVELS)
                    .map(|(level, _)| (*level).clone())
                    .collect();
                for level in &known {
                    push(
                        format!("attr.{attribute}={level}"),
                        Computation::AttributeLevel {
                            attribute: attribute.clone(),
                            level: level.clone(),
                        },
                        Wording::WhenSet {
                            text: format!("{label}: {level}"),
                        },
                    );
                }
                if known.len() < levels.len() {
                    push(
                        format!("attr.{attribute}=other"),
                        Computation::AttributeOtherLevel {
                            attribute: attribute.clone(),
                            known,
                        },
                        Wording::WhenSet {
                            text: format!("{label}: a less common value"),
                        },
                    );
                }
            }
            if some_missing {
                push(
                    format!("attr.{attribute}.missing"),
                    missing,
                    missing_wording,
                );
            }
        }
        for activity in most_common(&self.activities, enough) {
            for days in [30, 90] {
                push(
                    format!("activity.{activity}.{days}d"),
                    Computation::ActivityAmount {
                        activity: activity.clone(),
                        days,
                    },
                    Wording::LogAmount {
                        template: format!("{activity} {{value}} in the last {days} days"),
                    },
                );
            }
            push(
                format!("activity.{activity}.days_since"),
                Computation::ActivityDaysSince {
                    activity: activity.clone(),
                },
                Wording::Days {
                    template: format!("last {activity} {{value}} days ago"),
                    never: format!("no {activity} in the last year"),
                },
            );
        }
        for tag in most_common(&self.tags, enough) {
            push(
                format!("contacts.{tag}.90d"),
                Computation::ContactsByTag {
                    tag: tag.clone(),
                    days: 90,
                },
                Wording::Value {
                    template: format!(
                        "{{value}} {} contacts in the last 90 days",
                        tag.replace('_', " ")
                    ),
                },
            );
        }
        spec
    }
}

/// The names used by at least `enough` customers, most used first, at most [`MAX_LEVELS`].
fn most_common(counts: &HashMap<String, usize>, enough: usize) -> Vec<String> {
    let mut common: Vec<(&String, &usize)> = counts.iter().filter(|(_, c)| **c >= enough).collect();
    common.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    common
        .into_iter()
        .take(MAX_LEVELS)
        .map(|(name, _)| name.clone())
        .collect()
}

fn median(values: &[f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let middle = sorted.len() / 2;
    if sorted.len().is_multiple_of(2) {
        (sorted[middle - 1] + sorted[middle]) / 2.0
    } else {
        sorted[middle]
    }
}
