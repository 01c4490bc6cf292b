//! The program's recovery mix, learnt from the training cases: how well its recoveries
//! usually go (the share of each re-survey score, with the mean C.A.R.E.S. ratings at that
//! score), overall and for each customer segment, and which actions it takes. A decision is
//! made before the recovery, so its quality is not known yet: the model predicts at this mix,
//! or at a rating the caller names.

use serde::{Deserialize, Serialize};

use super::treatment::Quality;
use crate::domain::{RecoveryAction, Segment};

/// A segment gets a quality mix of its own once the program re-surveyed this many of its
/// recoveries: programs route valuable customers to their best teams, so a segment's mix can
/// differ from the program's, but a few dozen cases would make it noise.
pub const MIN_SEGMENT_CASES: usize = 100;

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
    #[serde(with = "by_name")]
    pub action: RecoveryAction,
    pub share: f64,
}

/// A segment's own quality mix.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentQualities {
    #[serde(with = "by_name")]
    pub segment: Segment,
    /// By ascending score.
    pub qualities: Vec<QualityShare>,
}

/// The quality a recovery decided now is expected to have: it is only known afterwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpectedQuality {
    /// The program's own mix, learnt from its past recoveries of customers of this segment
    /// (of all customers when it had too few): each re-survey score with its share, averaged
    /// over.
    ProgramMix,
    /// A 1–7 rating (clamped to that range), e.g. the team's typical quality.
    Rating(u8),
}

/// The program's quality and action mix.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ProgramMix {
    /// Over every case, by ascending score.
    pub qualities: Vec<QualityShare>,
    /// Segments with at least [`MIN_SEGMENT_CASES`] re-surveyed cases. Absent from artifacts
    /// trained before segments had mixes of their own: those predict at the program's mix.
    #[serde(default)]
    pub segments: Vec<SegmentQualities>,
    /// By action name; actions never taken are left out.
    pub actions: Vec<ActionShare>,
}

/// Cases of one score: how many, the sums of their C.A.R.E.S. ratings, how many were rated.
#[derive(Debug, Clone, Copy, Default)]
struct ScoreTally {
    cases: usize,
    cares_sums: [f64; 5],
    rated: usize,
}

/// Per score 1–7, at index 0 the cases without a re-survey.
type Tallies = [ScoreTally; 8];

fn tally(tallies: &mut Tallies, quality: &Quality) {
    let entry = &mut tallies[usize::from(quality.resurvey.unwrap_or(0).min(7))];
    entry.cases += 1;
    if let Some(cares) = quality.cares {
        entry.rated += 1;
        for (sum, value) in entry.cares_sums.iter_mut().zip(cares) {
            *sum += value;
        }
    }
}

fn re_surveyed(tallies: &Tallies) -> usize {
    tallies[1..].iter().map(|t| t.cases).sum()
}

/// The shares of `tallies`: over the re-surveyed cases, or, without any, the one unknown
/// quality.
fn shares(tallies: &Tallies) -> Vec<QualityShare> {
    let scores: Vec<usize> = if re_surveyed(tallies) > 0 {
        (1..8).filter(|&s| tallies[s].cases > 0).collect()
    } else if tallies[0].cases > 0 {
        vec![0]
    } else {
        Vec::new()
    };
    let counted: usize = scores.iter().map(|&s| tallies[s].cases).sum();
    scores
        .into_iter()
        .map(|s| {
            let t = &tallies[s];
            QualityShare {
                resurvey_score: (s > 0).then_some(s as u8),
                share: t.cases as f64 / counted as f64,
                cares: (t.rated > 0).then(|| t.cares_sums.map(|sum| sum / t.rated as f64)),
            }
        })
        .collect()
}

const SEGMENTS: [Segment; 4] = [
    Segment::Consumer,
    Segment::SmallBusiness,
    Segment::MidMarket,
    Segment::Enterprise,
];

impl ProgramMix {
    /// The mix of `cases` (the customer's segment, the action and the quality of each
    /// recovery). Only re-surveyed cases count towards a quality mix: a case goes without a
    /// re-survey mostly when the customer left before it was resolved, so counting those
    /// would predict every future recovery as partly one that came too late. Without any
    /// re-surveyed case, the mix is the one quality the cases had.
    pub fn learn<'a>(cases: impl Iterator<Item = (Segment, RecoveryAction, &'a Quality)>) -> Self {
        let mut actions: std::collections::BTreeMap<RecoveryAction, usize> = Default::default();
        let mut overall = Tallies::default();
        let mut by_segment = [Tallies::default(); SEGMENTS.len()];
        for (segment, action, quality) in cases {
            *actions.entry(action).or_default() += 1;
            tally(&mut overall, quality);
            if let Some(i) = SEGMENTS.iter().position(|s| *s == segment) {
                tally(&mut by_segment[i], quality);
            }
        }
        let segments = SEGMENTS
            .iter()
            .zip(&by_segment)
            .filter(|(_, tallies)| re_surveyed(tallies) >= MIN_SEGMENT_CASES)
            .map(|(segment, tallies)| SegmentQualities {
                segment: *segment,
                qualities: shares(tallies),
            })
            .collect();
        let qualities = shares(&overall);
        let taken: usize = actions.values().sum();
        let actions = actions
            .into_iter()
            .map(|(action, count)| ActionShare {
                action,
                share: count as f64 / taken as f64,
            })
            .collect();
        Self {
            qualities,
            segments,
            actions,
        }
    }

    /// The quality mix of `segment` when it has its own, else the program's.
    pub fn qualities_for(&self, segment: Option<Segment>) -> &[QualityShare] {
        self.segments
            .iter()
            .find(|s| Some(s.segment) == segment)
            .map_or(&self.qualities, |s| &s.qualities)
    }

    /// `value` of a recovery of a customer of `segment` at `quality`: at the rating, or
    /// averaged over the segment's quality mix.
    pub fn at_quality(
        &self,
        segment: Segment,
        quality: ExpectedQuality,
        value: impl Fn(&Quality) -> f64,
    ) -> f64 {
        match quality {
            ExpectedQuality::Rating(score) => value(&self.quality_at(score)),
            ExpectedQuality::ProgramMix => self
                .qualities_for(Some(segment))
                .iter()
                .map(|q| q.share * value(&q.quality()))
                .sum(),
        }
    }

    /// `value` of a recovery of a customer of `segment` the way the program recovers: its
    /// actions at its quality mix, averaged over.
    pub fn over_program(
        &self,
        segment: Segment,
        value: impl Fn(RecoveryAction, &Quality) -> f64,
    ) -> f64 {
        self.actions
            .iter()
            .map(|a| {
                a.share
                    * self.at_quality(segment, ExpectedQuality::ProgramMix, |q| value(a.action, q))
            })
            .sum()
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
            .chain(self.segments.iter().flat_map(|s| &s.qualities))
            .flat_map(|q| std::iter::once(q.share).chain(q.cares.into_iter().flatten()))
            .chain(self.actions.iter().map(|a| a.share))
    }
}

/// Domain values by their stable name, as everywhere else they are stored.
mod by_name {
    use std::fmt::Display;
    use std::str::FromStr;

    use serde::{Deserialize, Deserializer, Serializer, de::Error as _};

    pub fn serialize<T: Display, S: Serializer>(
        value: &T,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.collect_str(value)
    }

    pub fn deserialize<'de, T, D>(deserializer: D) -> Result<T, D::Error>
    where
        T: FromStr,
        T::Err: Display,
        D: Deserializer<'de>,
    {
        let name = String::deserialize(deserializer)?;
        name.parse().map_err(D::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::BuiltInAction;

    fn rated(score: u8, cares: f64) -> Quality {
        Quality {
            resurvey: Some(score),
            cares: Some([cares; 5]),
        }
    }

    #[test]
    fn the_mix_counts_re_surveyed_cases_and_averages_their_cares() {
        let cases = [
            (RecoveryAction::from(BuiltInAction::Refund), rated(6, 5.0)),
            (RecoveryAction::from(BuiltInAction::Refund), rated(6, 7.0)),
            (RecoveryAction::from(BuiltInAction::Apology), rated(2, 2.0)),
            (
                RecoveryAction::from(BuiltInAction::Apology),
                Quality {
                    resurvey: None,
                    cares: None,
                },
            ),
        ];
        let mix = ProgramMix::learn(cases.iter().map(|(a, q)| (Segment::Consumer, *a, q)));
        assert_eq!(mix.qualities.len(), 2);
        assert_eq!(mix.qualities[0].resurvey_score, Some(2));
        assert!((mix.qualities[0].share - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(mix.qualities[1].cares, Some([6.0; 5]));
        // Actions count every case, re-surveyed or not.
        assert_eq!(
            mix.actions,
            vec![
                ActionShare {
                    action: RecoveryAction::from(BuiltInAction::Apology),
                    share: 0.5
                },
                ActionShare {
                    action: RecoveryAction::from(BuiltInAction::Refund),
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
        let mix = ProgramMix::learn(
            [(
                Segment::Consumer,
                RecoveryAction::from(BuiltInAction::Callback),
                &unknown,
            )]
            .into_iter(),
        );
        assert_eq!(mix.qualities.len(), 1);
        assert_eq!(mix.qualities[0].quality(), unknown);
        assert_eq!(mix.qualities[0].share, 1.0);
    }

    #[test]
    fn actions_are_stored_by_name() {
        let share = ActionShare {
            action: RecoveryAction::from(BuiltInAction::StoreCredit),
            share: 1.0,
        };
        let json = serde_json::to_string(&share).expect("json");
        assert_eq!(json, r#"{"action":"store_credit","share":1.0}"#);
        assert_eq!(
            serde_json::from_str::<ActionShare>(&json).expect("parses"),
            share
        );
        assert!(serde_json::from_str::<ActionShare>(r#"{"action":"","share":1}"#).is_err());
    }

    #[test]
    fn a_mix_written_before_segment_mixes_reads_as_the_program_mix_alone() {
        let mix: ProgramMix = serde_json::from_str(
            r#"{"qualities":[{"resurvey_score":5,"share":1.0,"cares":null}],"actions":[]}"#,
        )
        .expect("an older mix");
        assert!(mix.segments.is_empty());
        assert_eq!(
            mix.qualities_for(Some(Segment::Enterprise)),
            &mix.qualities[..]
        );
    }

    #[test]
    fn a_segment_with_enough_re_surveyed_cases_gets_its_own_mix() {
        let good = rated(6, 6.0);
        let poor = rated(3, 3.0);
        let cases = std::iter::repeat_n(
            (
                Segment::Enterprise,
                RecoveryAction::from(BuiltInAction::Callback),
                &good,
            ),
            100,
        )
        .chain(std::iter::repeat_n(
            (
                Segment::Consumer,
                RecoveryAction::from(BuiltInAction::Callback),
                &poor,
            ),
            98,
        ))
        .chain(std::iter::once((
            Segment::Consumer,
            RecoveryAction::from(BuiltInAction::Callback),
            &good,
        )));
        let mix = ProgramMix::learn(cases);
        assert_eq!(mix.segments.len(), 1);
        let enterprise = mix.qualities_for(Some(Segment::Enterprise));
        assert_eq!(enterprise.len(), 1);
        assert_eq!(enterprise[0].resurvey_score, Some(6));
        // Consumers have 99 cases, too few of their own: the program's mix.
        assert_eq!(
            mix.qualities_for(Some(Segment::Consumer)),
            &mix.qualities[..]
        );
        assert_eq!(mix.qualities.len(), 2);
        assert!((mix.qualities[1].share - 101.0 / 199.0).abs() < 1e-12);
        assert_eq!(mix.qualities_for(None), &mix.qualities[..]);
    }
}
