//! What a recovery was, as the uplift model reads it: the action taken and how well it went
//! (the 1–7 re-survey score and the C.A.R.E.S. ratings), encoded as the treatment inputs
//! that follow the customer features in the recovered-branch model.

use crate::domain::{RecoveryAction, RecoveryCase};

/// Bumped whenever a treatment input is added, removed, reordered or redefined.
pub const TREATMENT_SCHEMA_VERSION: u32 = 1;

/// The treatment inputs, in vector order: the action one-hot (in [`RecoveryAction::ALL`]
/// order), the re-survey score, then the C.A.R.E.S. ratings.
pub const TREATMENT_NAMES: &[&str] = &[
    "action_apology",
    "action_refund",
    "action_discount",
    "action_store_credit",
    "action_fee_waiver",
    "action_replacement",
    "action_callback",
    "action_expert_support",
    // DOMAIN (Temkin): benefits start at 4/7, and 6/7 is where as many customers raise their
    // spend as cut it. The two steps let a linear model bend where the research says the
    // effect bends.
    "resurvey_score",
    "resurvey_4_or_more",
    "resurvey_6_or_more",
    "no_resurvey",
    "cares_communication",
    "cares_accountability",
    "cares_responsiveness",
    "cares_empathy",
    "cares_solution",
    "no_cares",
];

/// How well a recovery went. Unknown facts are kept as unknown: a case closed without a
/// re-survey is common, and the model learns what that absence means.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quality {
    /// The customer's 1–7 rating of the recovery, asked after resolution.
    pub resurvey: Option<u8>,
    /// Communication, accountability, responsiveness, empathy and solution, 1–7 (fractional
    /// for a program mean); `None` when no element was rated.
    pub cares: Option<[f64; 5]>,
}

impl Quality {
    /// What a stored case says. A C.A.R.E.S. element left unrated takes the mean of the rated
    /// ones: one missing box should not read as a failed recovery.
    pub fn of_case(case: &RecoveryCase) -> Self {
        let c = case.cares;
        let ratings = [
            c.communication,
            c.accountability,
            c.responsiveness,
            c.empathy,
            c.solution,
        ]
        .map(|rating| rating.map(|r| f64::from(r.get())));
        let rated: Vec<f64> = ratings.iter().flatten().copied().collect();
        let cares = (!rated.is_empty()).then(|| {
            let mean = rated.iter().sum::<f64>() / rated.len() as f64;
            ratings.map(|rating| rating.unwrap_or(mean))
        });
        Self {
            resurvey: case.resurvey_score.map(|s| s.get()),
            cares,
        }
    }
}

/// Appends the treatment inputs of `action` at `quality` to `out`, in [`TREATMENT_NAMES`]
/// order. Unknown values are 0 with their indicator set.
pub fn encode(action: RecoveryAction, quality: &Quality, out: &mut Vec<f64>) {
    out.extend(
        RecoveryAction::ALL
            .iter()
            .map(|a| if *a == action { 1.0 } else { 0.0 }),
    );
    let flag = |condition: bool| if condition { 1.0 } else { 0.0 };
    match quality.resurvey {
        Some(score) => out.extend([f64::from(score), flag(score >= 4), flag(score >= 6), 0.0]),
        None => out.extend([0.0, 0.0, 0.0, 1.0]),
    }
    match quality.cares {
        Some(cares) => {
            out.extend(cares);
            out.push(0.0);
        }
        None => {
            out.extend([0.0; 5]);
            out.push(1.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_action_names_follow_the_domain_order() {
        for (i, action) in RecoveryAction::ALL.iter().enumerate() {
            assert_eq!(TREATMENT_NAMES[i], format!("action_{}", action.as_str()));
        }
    }

    #[test]
    fn encoding_fills_every_input_once() {
        let mut known = Vec::new();
        let quality = Quality {
            resurvey: Some(6),
            cares: Some([5.0, 6.0, 7.0, 4.0, 6.0]),
        };
        encode(RecoveryAction::Refund, &quality, &mut known);
        assert_eq!(known.len(), TREATMENT_NAMES.len());
        assert_eq!(&known[..8], &[0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]);
        assert_eq!(&known[8..12], &[6.0, 1.0, 1.0, 0.0]);
        assert_eq!(&known[12..], &[5.0, 6.0, 7.0, 4.0, 6.0, 0.0]);

        let mut unknown = Vec::new();
        let nothing = Quality {
            resurvey: None,
            cares: None,
        };
        encode(RecoveryAction::ExpertSupport, &nothing, &mut unknown);
        assert_eq!(unknown.len(), TREATMENT_NAMES.len());
        assert_eq!(unknown[7], 1.0);
        assert_eq!(&unknown[8..12], &[0.0, 0.0, 0.0, 1.0]);
        assert_eq!(unknown[17], 1.0);
    }

    #[test]
    fn an_unrated_cares_element_takes_the_mean_of_the_rated_ones() {
        use crate::domain::{CaresRatings, Rating, Record};
        let mut case = crate::domain::examples::one_of_each_kind()
            .into_iter()
            .find_map(|record| match record {
                Record::RecoveryCase(case) => Some(case),
                _ => None,
            })
            .expect("a recovery case");
        case.cares = CaresRatings {
            communication: Rating::parse(6).ok(),
            responsiveness: Rating::parse(2).ok(),
            ..CaresRatings::default()
        };
        case.resurvey_score = None;
        let quality = Quality::of_case(&case);
        assert_eq!(quality.resurvey, None);
        assert_eq!(quality.cares, Some([6.0, 4.0, 2.0, 4.0, 4.0]));
        case.cares = CaresRatings::default();
        assert_eq!(Quality::of_case(&case).cares, None);
    }
}
