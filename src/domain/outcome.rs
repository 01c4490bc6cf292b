//! What came of a recovery case, learnt after the case was recorded, and how it updates the
//! stored case.

use super::{CaseId, FieldViolation, Rating, RecoveryCase, SpendChange, Timestamp};

/// An outcome with at least one of its facts present.
#[derive(Debug, Clone, PartialEq)]
pub struct RecoveryOutcome {
    pub case_id: CaseId,
    pub recorded_at: Timestamp,
    pub resurvey_score: Option<Rating<1, 7>>,
    pub retained: Option<bool>,
    pub spend_change_pct: Option<SpendChange>,
    pub resolved_at: Option<Timestamp>,
}

impl RecoveryCase {
    /// This case with `outcome`'s facts replacing its own, as a new version at
    /// `outcome.recorded_at`. Refused when it would not be newer than this version, or when
    /// the resolution time would precede the opening. The same outcome sent again (a client
    /// retrying a reply it lost) is this case itself: already recorded, nothing changes.
    pub fn with_outcome(&self, outcome: &RecoveryOutcome) -> Result<RecoveryCase, FieldViolation> {
        if self.already_records(outcome) {
            return Ok(self.clone());
        }
        if outcome.recorded_at <= self.updated_at {
            return Err(FieldViolation::new(
                "recorded_at",
                format!(
                    "{} is not after the stored case's updated_at {}; record the outcome with a later time",
                    outcome.recorded_at, self.updated_at
                ),
            ));
        }
        if let Some(resolved) = outcome.resolved_at
            && resolved < self.opened_at
        {
            return Err(FieldViolation::new(
                "resolved_at",
                format!(
                    "{resolved} is before the case was opened ({})",
                    self.opened_at
                ),
            ));
        }
        let mut updated = self.clone();
        updated.updated_at = outcome.recorded_at;
        updated.resurvey_score = outcome.resurvey_score.or(self.resurvey_score);
        updated.retained = outcome.retained.or(self.retained);
        updated.spend_change_pct = outcome.spend_change_pct.or(self.spend_change_pct);
        updated.resolved_at = outcome.resolved_at.or(self.resolved_at);
        Ok(updated)
    }

    /// Whether this version is what `outcome` made: recorded at its time, with every fact it
    /// gives.
    fn already_records(&self, outcome: &RecoveryOutcome) -> bool {
        fn given<T: PartialEq>(fact: Option<T>, stored: Option<T>) -> bool {
            fact.is_none() || fact == stored
        }
        outcome.recorded_at == self.updated_at
            && given(outcome.resurvey_score, self.resurvey_score)
            && given(outcome.retained, self.retained)
            && given(outcome.spend_change_pct, self.spend_change_pct)
            && given(outcome.resolved_at, self.resolved_at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Record, examples};

    fn stored_case() -> RecoveryCase {
        examples::one_of_each_kind()
            .into_iter()
            .find_map(|r| match r {
                Record::RecoveryCase(case) => Some(case),
                _ => None,
            })
            .expect("an example case")
    }

    fn outcome(case: &RecoveryCase, seconds_later: i64) -> RecoveryOutcome {
        RecoveryOutcome {
            case_id: case.case_id.clone(),
            recorded_at: Timestamp::from_unix_micros(
                case.updated_at.unix_micros() + seconds_later * 1_000_000,
            ),
            resurvey_score: None,
            retained: Some(false),
            spend_change_pct: None,
            resolved_at: None,
        }
    }

    #[test]
    fn given_facts_replace_stored_ones_and_the_rest_stay() {
        let case = stored_case();
        let updated = case
            .with_outcome(&outcome(&case, 60))
            .expect("newer outcome");
        assert_eq!(updated.retained, Some(false));
        assert_eq!(updated.resurvey_score, case.resurvey_score);
        assert_eq!(
            updated.updated_at.unix_micros(),
            case.updated_at.unix_micros() + 60_000_000
        );
    }

    #[test]
    fn an_outcome_not_newer_than_the_case_is_refused() {
        let case = stored_case();
        let mut different = outcome(&case, 0);
        different.retained = Some(case.retained != Some(true));
        let violation = case.with_outcome(&different).expect_err("same time");
        assert_eq!(violation.field, "recorded_at");
    }

    #[test]
    fn the_same_outcome_sent_again_is_already_recorded() {
        let case = stored_case();
        let sent = outcome(&case, 60);
        let recorded = case.with_outcome(&sent).expect("newer outcome");
        assert_eq!(recorded.with_outcome(&sent), Ok(recorded.clone()));
        // The same time with another fact is not a re-send: it is refused.
        let changed = RecoveryOutcome {
            retained: Some(true),
            ..sent
        };
        assert_eq!(
            recorded.with_outcome(&changed).expect_err("changed").field,
            "recorded_at"
        );
    }

    #[test]
    fn a_resolution_before_the_opening_is_refused() {
        let case = stored_case();
        let mut early = outcome(&case, 60);
        early.resolved_at = Some(Timestamp::from_unix_micros(
            case.opened_at.unix_micros() - 1,
        ));
        assert_eq!(
            case.with_outcome(&early).expect_err("early").field,
            "resolved_at"
        );
    }
}
