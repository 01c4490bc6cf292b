//! A recovery outcome request to its domain value.

use super::{RecordParser, optional};
use crate::domain::{CaseId, Rating, RecoveryOutcome, SpendChange, Violations};
use crate::proto::v1 as proto;

impl RecordParser<'_> {
    pub fn recovery_outcome(
        &self,
        request: proto::RecordRecoveryOutcomeRequest,
    ) -> Result<RecoveryOutcome, Violations> {
        let proto::RecordRecoveryOutcomeRequest {
            case_id,
            recorded_at,
            resurvey_score,
            retained,
            spend_change_pct,
            resolved_at,
        } = request;
        let mut v = Violations::default();
        if resurvey_score.is_none()
            && retained.is_none()
            && spend_change_pct.is_none()
            && resolved_at.is_none()
        {
            v.push("resurvey_score", "at least one of resurvey_score, retained, spend_change_pct and resolved_at is required");
        }
        let case_id = v.check("case_id", CaseId::parse(case_id));
        let recorded_at = v.check("recorded_at", self.required_time(recorded_at));
        let resurvey_score = v.check("resurvey_score", optional(resurvey_score, Rating::parse));
        let spend_change_pct = v.check(
            "spend_change_pct",
            optional(spend_change_pct, SpendChange::parse),
        );
        let resolved_at = v.check("resolved_at", self.optional_time(resolved_at));
        v.finish(|| {
            Some(RecoveryOutcome {
                case_id: case_id?,
                recorded_at: recorded_at?,
                resurvey_score: resurvey_score?,
                retained,
                spend_change_pct: spend_change_pct?,
                resolved_at: resolved_at?,
            })
        })
    }
}
