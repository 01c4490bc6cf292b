//! What a recovery was, as the uplift model reads it: the action taken and how well it went
//! (the 1–7 re-survey score and the C.A.R.E.S. ratings), encoded as the treatment inputs
//! that follow the customer features in the recovered-branch model. The actions are the
//! program's own: a model has one input for each action its training cases took.

use crate::domain::{RecoveryAction, RecoveryCase};
use crate::model::ModelError;

/// Bumped whenever a treatment input is added, removed, reordered or redefined.
///
/// Schema 1 had one input for each built-in action, in the contract's order; schema 2 one for
/// each action of the training cases, by name. Both read the same way: the names say which.
pub const TREATMENT_SCHEMA_VERSION: u32 = 2;
const READABLE_SCHEMAS: [u32; 2] = [1, TREATMENT_SCHEMA_VERSION];

/// The name of an action's input is this prefix and the action's name.
const ACTION_PREFIX: &str = "action_";

/// The inputs after the actions', in vector order: the re-survey score, then the C.A.R.E.S.
/// ratings.
pub const QUALITY_NAMES: &[&str] = &[
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

/// The treatment inputs of one model: an indicator for each of its actions, then the
/// quality inputs.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Treatments {
    actions: Vec<RecoveryAction>,
}

impl Treatments {
    /// One input per distinct action of `taken`, by name: the same cases give the same inputs.
    pub fn of(taken: impl Iterator<Item = RecoveryAction>) -> Self {
        let mut actions: Vec<RecoveryAction> = taken.collect();
        actions.sort_unstable();
        actions.dedup();
        Self { actions }
    }

    /// The inputs an artifact names, in its schema; refused unless they are actions followed
    /// by exactly the quality inputs this build computes.
    pub fn from_names(schema: u32, names: &[String]) -> Result<Self, ModelError> {
        if !READABLE_SCHEMAS.contains(&schema) {
            return Err(ModelError::FeatureSchemaMismatch {
                expected: TREATMENT_SCHEMA_VERSION,
                found: schema,
            });
        }
        let mismatch =
            |position: usize, expected: Option<String>| ModelError::FeatureNamesMismatch {
                position,
                expected,
                found: names.get(position).cloned(),
            };
        let split = names
            .len()
            .checked_sub(QUALITY_NAMES.len())
            .ok_or_else(|| mismatch(names.len(), Some(QUALITY_NAMES[0].to_owned())))?;
        let mut actions = Vec::with_capacity(split);
        for (position, name) in names[..split].iter().enumerate() {
            let action = name
                .strip_prefix(ACTION_PREFIX)
                .and_then(|action| RecoveryAction::named(action).ok())
                .ok_or_else(|| mismatch(position, Some(format!("{ACTION_PREFIX}<action>"))))?;
            actions.push(action);
        }
        for (offset, expected) in QUALITY_NAMES.iter().enumerate() {
            if names[split + offset] != *expected {
                return Err(mismatch(split + offset, Some((*expected).to_owned())));
            }
        }
        Ok(Self { actions })
    }

    /// Schema 1's inputs: every built-in action in the contract's order, then the quality
    /// inputs (what artifacts of that schema name).
    #[cfg(test)]
    pub(crate) fn built_in() -> Self {
        let names: Vec<String> = crate::domain::BuiltInAction::ALL
            .iter()
            .map(|a| format!("{ACTION_PREFIX}{a}"))
            .chain(QUALITY_NAMES.iter().map(|n| (*n).to_owned()))
            .collect();
        match Self::from_names(1, &names) {
            Ok(treatments) => treatments,
            Err(error) => panic!("schema 1 names: {error}"),
        }
    }

    /// Every input's name, in vector order.
    pub fn names(&self) -> Vec<String> {
        self.actions
            .iter()
            .map(|action| format!("{ACTION_PREFIX}{action}"))
            .chain(QUALITY_NAMES.iter().map(|name| (*name).to_owned()))
            .collect()
    }

    /// The actions with an input of their own, by name.
    pub fn actions(&self) -> &[RecoveryAction] {
        &self.actions
    }

    /// How many inputs there are.
    pub fn width(&self) -> usize {
        self.actions.len() + QUALITY_NAMES.len()
    }

    /// Appends the inputs of `action` at `quality` to `out`, in [`Self::names`] order.
    /// Unknown qualities are 0 with their indicator set; an action without an input of its
    /// own sets no action input (recommendations value such an action by the prior).
    pub fn encode(&self, action: RecoveryAction, quality: &Quality, out: &mut Vec<f64>) {
        out.extend(
            self.actions
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
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::BuiltInAction;

    #[test]
    fn inputs_are_named_by_the_actions_and_read_back_from_their_names() {
        let own = Treatments::of(
            ["voucher", "courier redelivery", "voucher"]
                .into_iter()
                .map(|name| RecoveryAction::named(name).unwrap()),
        );
        let names = own.names();
        assert_eq!(
            &names[..2],
            &["action_courier redelivery", "action_voucher"]
        );
        assert_eq!(names.len(), own.width());
        assert_eq!(
            Treatments::from_names(TREATMENT_SCHEMA_VERSION, &names).unwrap(),
            own
        );
        // Schema 1's names (the built-in actions in the contract's order) read as they were.
        let schema_1 = Treatments::built_in();
        assert_eq!(schema_1.actions()[0], BuiltInAction::Apology);
        assert_eq!(schema_1.actions()[7], BuiltInAction::ExpertSupport);
        assert_eq!(
            schema_1.width(),
            BuiltInAction::ALL.len() + QUALITY_NAMES.len()
        );
        let mut renamed = names.clone();
        renamed[2] = "resurvey".into();
        assert!(Treatments::from_names(TREATMENT_SCHEMA_VERSION, &renamed).is_err());
        assert!(Treatments::from_names(9, &names).is_err());
    }

    #[test]
    fn encoding_fills_every_input_once() {
        let treatments = Treatments::built_in();
        let refund = treatments
            .actions()
            .iter()
            .position(|a| *a == BuiltInAction::Refund)
            .unwrap();
        let actions = treatments.actions().len();
        let mut known = Vec::new();
        let quality = Quality {
            resurvey: Some(6),
            cares: Some([5.0, 6.0, 7.0, 4.0, 6.0]),
        };
        treatments.encode(BuiltInAction::Refund.into(), &quality, &mut known);
        assert_eq!(known.len(), treatments.width());
        assert_eq!(known[..actions].iter().sum::<f64>(), 1.0);
        assert_eq!(known[refund], 1.0);
        assert_eq!(&known[actions..actions + 4], &[6.0, 1.0, 1.0, 0.0]);
        assert_eq!(&known[actions + 4..], &[5.0, 6.0, 7.0, 4.0, 6.0, 0.0]);

        let mut unknown = Vec::new();
        let nothing = Quality {
            resurvey: None,
            cares: None,
        };
        let unseen = RecoveryAction::named("hamper").unwrap();
        treatments.encode(unseen, &nothing, &mut unknown);
        assert_eq!(unknown.len(), treatments.width());
        assert_eq!(unknown[..actions].iter().sum::<f64>(), 0.0);
        assert_eq!(&unknown[actions..actions + 4], &[0.0, 0.0, 0.0, 1.0]);
        assert_eq!(unknown[treatments.width() - 1], 1.0);
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
