//! The program's recovery mix, learnt from the training cases: how well its recoveries
//! usually go (the share of each re-survey score, with the mean C.A.R.E.S. ratings at that
//! score) and which actions it takes. A decision is made before the recovery, so its quality
//! is not known yet: the model predicts at this mix, or at a rating the caller names.

use serde::{Deserialize, Serialize};

use super::treatment::Quality;
use crate::domain::RecoveryAction;

/// One re-survey score of the mix.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct QualityShare {
    /// The 1–7 score; `None` only in a mix learnt from cases none of which was re-surveyed.
    pub resurvey_score: Option<u8>,
    /// Share of the cases with this score; the shares of a mix sum to 1.
    pub share: f64,
    /// Mean C.A.R.E.S. ratings of those cases; `None` when none was rated.
    pub cares: Option<[f64; 5]>,
}

impl QualityShare {
    pub fn quality(&self) -> Quality {
        Quality {
            resurvey: self.resurvey_score,
            cares: self.cares,
        }
    }
}

/// One action of the mix.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ActionShare {
    #[serde(with = "action_name")]
    pub action: RecoveryAction,
    pub share: f64,
}

/// The program's quality and action mix.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ProgramMix {
    /// By ascending score.
    pub qualities: Vec<QualityShare>,
    /// In [`RecoveryAction::ALL`] order; actions never taken are left out.
    pub actions: Vec<ActionShare>,
}

impl ProgramMix {
    /// The mix of `cases` (action and quality of each recovery). Only re-surveyed cases
    /// count towards the quality mix: a case goes without a re-survey mostly when the
    /// customer left before it was resolved, so counting those would predict every future
    /// recovery as partly one that came too late. Without any re-surveyed case, the mix is
    /// the one quality the cases had.
    pub fn learn<'a>(cases: impl Iterator<Item = (RecoveryAction, &'a Quality)>) -> Self {
        let mut actions = vec![0usize; RecoveryAction::ALL.len()];
        // Per score 1–7 (index 0: not re-surveyed): cases, C.A.R.E.S. sums, rated cases.
        let mut counts = [0usize; 8];
        let mut cares_sums = [[0.0f64; 5]; 8];
        let mut rated = [0usize; 8];
        for (action, quality) in cases {
            if let Some(i) = RecoveryAction::ALL.iter().position(|a| *a == action) {
                actions[i] += 1;
            }
            let slot = usize::from(quality.resurvey.unwrap_or(0).min(7));
            counts[slot] += 1;
            if let Some(cares) = quality.cares {
                rated[slot] += 1;
                for (sum, value) in cares_sums[slot].iter_mut().zip(cares) {
                    *sum += value;
                }
            }
        }
        let surveyed: usize = counts[1..].iter().sum();
        let slots: Vec<usize> = if surveyed > 0 {
            (1..8).filter(|&s| counts[s] > 0).collect()
        } else if counts[0] > 0 {
            vec![0]
        } else {
            Vec::new()
        };
        let counted: usize = slots.iter().map(|&s| counts[s]).sum();
        let qualities = slots
            .into_iter()
            .map(|s| QualityShare {
                resurvey_score: (s > 0).then_some(s as u8),
                share: counts[s] as f64 / counted as f64,
                cares: (rated[s] > 0).then(|| cares_sums[s].map(|sum| sum / rated[s] as f64)),
            })
            .collect();
        let taken: usize = actions.iter().sum();
        let actions = RecoveryAction::ALL
            .iter()
            .zip(actions)
            .filter(|(_, count)| *count > 0)
            .map(|(action, count)| ActionShare {
                action: *action,
                share: count as f64 / taken as f64,
            })
            .collect();
        Self { qualities, actions }
    }

    /// The quality of a recovery rated `score` (clamped to 1–7): the mix's mean C.A.R.E.S.
    /// ratings at that score, or, if the program never had it, that score for every element.
    pub fn quality_at(&self, score: u8) -> Quality {
        let score = score.clamp(1, 7);
        let cares = self
            .qualities
            .iter()
            .find(|q| q.resurvey_score == Some(score))
            .and_then(|q| q.cares)
            .unwrap_or([f64::from(score); 5]);
        Quality {
            resurvey: Some(score),
            cares: Some(cares),
        }
    }

    /// Every number of the mix, for the artifact's finiteness check.
    pub(crate) fn values(&self) -> impl Iterator<Item = f64> + '_ {
        self.qualities
            .iter()
            .flat_map(|q| std::iter::once(q.share).chain(q.cares.into_iter().flatten()))
            .chain(self.actions.iter().map(|a| a.share))
    }
}

/// Actions by their stable name, as everywhere else they are stored.
mod action_name {
    use serde::{Deserialize, Deserializer, Serializer, de::Error as _};

    use crate::domain::RecoveryAction;

    pub fn serialize<S: Serializer>(
        action: &RecoveryAction,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(action.as_str())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<RecoveryAction, D::Error> {
        let name = String::deserialize(deserializer)?;
        name.parse().map_err(D::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rated(score: u8, cares: f64) -> Quality {
        Quality {
            resurvey: Some(score),
            cares: Some([cares; 5]),
        }
    }

    #[test]
    fn the_mix_counts_re_surveyed_cases_and_averages_their_cares() {
        let cases = [
            (RecoveryAction::Refund, rated(6, 5.0)),
            (RecoveryAction::Refund, rated(6, 7.0)),
            (RecoveryAction::Apology, rated(2, 2.0)),
            (
                RecoveryAction::Apology,
                Quality {
                    resurvey: None,
                    cares: None,
                },
            ),
        ];
        let mix = ProgramMix::learn(cases.iter().map(|(a, q)| (*a, q)));
        assert_eq!(mix.qualities.len(), 2);
        assert_eq!(mix.qualities[0].resurvey_score, Some(2));
        assert!((mix.qualities[0].share - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(mix.qualities[1].cares, Some([6.0; 5]));
        // Actions count every case, re-surveyed or not.
        assert_eq!(
            mix.actions,
            vec![
                ActionShare {
                    action: RecoveryAction::Apology,
                    share: 0.5
                },
                ActionShare {
                    action: RecoveryAction::Refund,
                    share: 0.5
                },
            ]
        );
        assert_eq!(mix.quality_at(6).cares, Some([6.0; 5]));
        // A score the program never had: the score stands in for every element.
        assert_eq!(mix.quality_at(9), rated(7, 7.0));
    }

    #[test]
    fn without_any_re_survey_the_mix_is_the_unknown_quality() {
        let unknown = Quality {
            resurvey: None,
            cares: Some([4.0; 5]),
        };
        let mix = ProgramMix::learn([(RecoveryAction::Callback, &unknown)].into_iter());
        assert_eq!(mix.qualities.len(), 1);
        assert_eq!(mix.qualities[0].quality(), unknown);
        assert_eq!(mix.qualities[0].share, 1.0);
    }

    #[test]
    fn actions_are_stored_by_name() {
        let share = ActionShare {
            action: RecoveryAction::StoreCredit,
            share: 1.0,
        };
        let json = serde_json::to_string(&share).expect("json");
        assert_eq!(json, r#"{"action":"store_credit","share":1.0}"#);
        assert_eq!(
            serde_json::from_str::<ActionShare>(&json).expect("parses"),
            share
        );
        assert!(serde_json::from_str::<ActionShare>(r#"{"action":"gold","share":1}"#).is_err());
    }
}
