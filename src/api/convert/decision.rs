//! Recovery requests to domain values, and decisions and funnels back to the contract.

use super::{RecordParser, action_number, tag_number, timestamp};
use crate::decision::funnel::{Funnel, FunnelCounts};
use crate::decision::{Approval, Decision, TriggerRequest, UpliftSource, ValuedAction};
use crate::domain::{CustomerId, InteractionId, SurveyId, Timestamp, Violations};
use crate::proto::v1 as proto;
use crate::recommendation::RecommendRequest;

impl RecordParser<'_> {
    pub fn recommend_request(
        &self,
        request: proto::RecommendRecoveryRequest,
    ) -> Result<RecommendRequest, Violations> {
        use proto::recommend_recovery_request::Trigger;
        let proto::RecommendRecoveryRequest {
            customer_id,
            trigger,
            tag,
            tag_name,
            as_of,
            expected_quality,
            what_if,
        } = request;
        let mut v = Violations::default();
        let customer_id = v.check("customer_id", CustomerId::parse(customer_id));
        let trigger = match trigger {
            None => Some(TriggerRequest::Latest),
            Some(Trigger::InteractionId(id)) => v
                .check("interaction_id", InteractionId::parse(id))
                .map(TriggerRequest::Interaction),
            Some(Trigger::SurveyId(id)) => v
                .check("survey_id", SurveyId::parse(id))
                .map(TriggerRequest::Survey),
        };
        // Neither set means "the trigger's tag".
        let tag = if tag == 0 && tag_name.is_empty() {
            Some(None)
        } else {
            v.check("tag", self.tag(tag, &tag_name)).map(Some)
        };
        let as_of = match as_of {
            None => Some(self.now),
            Some(raw) => v.check("as_of", self.time(raw)),
        };
        let expected_quality = match expected_quality {
            None => Some(None),
            Some(q @ 1..=7) => Some(Some(q as u8)),
            Some(q) => {
                v.push("expected_quality", format!("must be from 1 to 7, not {q}"));
                None
            }
        };
        v.finish(|| {
            Some(RecommendRequest {
                customer_id: customer_id?,
                trigger: trigger?,
                tag: tag?,
                as_of: as_of?,
                expected_quality: expected_quality?,
                what_if,
            })
        })
    }

    /// A funnel window: both ends required, `from` before `to`.
    pub fn funnel_window(
        &self,
        request: proto::RecoveryFunnelRequest,
    ) -> Result<(Timestamp, Timestamp), Violations> {
        let mut v = Violations::default();
        let mut end = |field: &str, raw: Option<prost_types::Timestamp>| match raw {
            None => {
                v.push(field, "is required");
                None
            }
            Some(raw) => v.check(field, self.time(raw)),
        };
        let from = end("from", request.from);
        let to = end("to", request.to);
        if let (Some(from), Some(to)) = (from, to)
            && from >= to
        {
            v.push("to", "must be after from");
        }
        v.finish(|| Some((from?, to?)))
    }
}

fn approval(level: Approval) -> proto::ApprovalLevel {
    match level {
        Approval::Frontline => proto::ApprovalLevel::Frontline,
        Approval::Manager => proto::ApprovalLevel::Manager,
    }
}

fn option(valued: &ValuedAction) -> proto::RecoveryOption {
    proto::RecoveryOption {
        action_name: valued.action.to_string(),
        action: action_number(valued.action),
        cost: valued.cost,
        retention_if_recovered: valued.retention.if_recovered,
        retention_if_not: valued.retention.if_not,
        expected_uplift: valued.retention.uplift(),
        expected_value: valued.expected_value,
        net_value: valued.net_value,
        approval: approval(valued.approval).into(),
        uplift_source: uplift_source(valued.source).into(),
        uplift_low: valued.retention.interval.map(|i| i.low),
        uplift_high: valued.retention.interval.map(|i| i.high),
    }
}

fn uplift_source(source: UpliftSource) -> proto::UpliftSource {
    match source {
        UpliftSource::Prior => proto::UpliftSource::Prior,
        UpliftSource::Model => proto::UpliftSource::Model,
    }
}

impl From<Decision> for proto::RecoveryRecommendation {
    fn from(d: Decision) -> Self {
        let trigger = d.trigger.as_ref();
        Self {
            decision_id: d.decision_id.clone(),
            customer_id: d.customer_id.as_str().to_owned(),
            as_of: Some(timestamp(d.as_of)),
            eligible: d.eligible,
            invest: d.invest,
            holdout: d.holdout,
            trigger_interaction_id: trigger
                .and_then(|t| t.interaction_id.as_ref())
                .map_or_else(String::new, |id| id.as_str().to_owned()),
            trigger_survey_id: trigger
                .and_then(|t| t.survey_id.as_ref())
                .map_or_else(String::new, |id| id.as_str().to_owned()),
            trigger_at: trigger.map(|t| timestamp(t.at)),
            tag_name: d.tag.map_or_else(String::new, |tag| tag.to_string()),
            tag: d.tag.map_or(0, tag_number),
            recommended: d.recommended().map(option),
            options: d.options.iter().map(option).collect(),
            respond_by: d.respond_by.map(timestamp),
            approval: d
                .recommended()
                .map_or(proto::ApprovalLevel::Unspecified, |r| approval(r.approval))
                .into(),
            checklist: d
                .checklist
                .iter()
                .map(|item| proto::CaresItem {
                    element: item.element.as_str().to_owned(),
                    instruction: item.instruction.clone(),
                })
                .collect(),
            churn_probability: d.churn_probability,
            health_score: d.health_score,
            customer_value: d.customer_value,
            health_model_version: d.health_model_version,
            uplift_source: uplift_source(d.uplift_source).into(),
            uplift_model_version: d.uplift_version,
            program_version: d.program_version,
            reasons: d.reasons,
        }
    }
}

fn counts(c: FunnelCounts) -> proto::FunnelCounts {
    proto::FunnelCounts {
        decided: c.decided,
        eligible: c.eligible,
        invested: c.invested,
        attempted: c.attempted,
        recovered: c.recovered,
        retained: c.retained,
        holdout: c.holdout,
        holdout_would_invest: c.holdout_would_invest,
        mean_spend_change_pct: c.mean_spend_change_pct,
        cost: c.cost,
        invested_retention: c.invested_retention,
        holdout_retention: c.holdout_retention,
        measured_uplift: c.measured_uplift,
        revenue_kept: c.revenue_kept,
        roi: c.roi,
    }
}

fn groups(groups: std::collections::BTreeMap<String, FunnelCounts>) -> Vec<proto::FunnelGroup> {
    groups
        .into_iter()
        .map(|(name, c)| proto::FunnelGroup {
            name,
            counts: Some(counts(c)),
        })
        .collect()
}

/// The funnel of a window, as answered.
pub fn funnel(
    funnel: Funnel,
    from: Timestamp,
    to: Timestamp,
    recovered_at_or_above: u8,
) -> proto::RecoveryFunnelResponse {
    proto::RecoveryFunnelResponse {
        from: Some(timestamp(from)),
        to: Some(timestamp(to)),
        total: Some(counts(funnel.total)),
        by_segment: groups(funnel.by_segment),
        by_tag: groups(funnel.by_tag),
        recovered_at_or_above: u32::from(recovered_at_or_above),
    }
}
