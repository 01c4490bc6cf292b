//! Score requests (by id or with an inline snapshot) to domain values, and scores back to
//! the contract.

use super::{RecordParser, timestamp};
use crate::domain::{
    CustomerId, Interaction, RecoveryCase, Survey, Timestamp, UsageEvent, Violations,
};
use crate::features::{FEATURE_SCHEMA_VERSION, History};
use crate::proto::v1 as proto;
use crate::scoring::{Band, HealthScore};

/// Whom a score request is about.
#[derive(Debug)]
pub enum ScoreSubject {
    Stored(CustomerId),
    Snapshot(Box<History>),
}

/// A violation list with one "is required" entry.
pub fn missing(field: &str) -> Violations {
    let mut violations = Violations::default();
    violations.push(field, "is required");
    violations
}

impl RecordParser<'_> {
    /// A caller-given as-of time, checked like any recorded time.
    pub fn as_of_time(
        &self,
        field: &str,
        raw: prost_types::Timestamp,
    ) -> Result<Timestamp, Violations> {
        self.time(raw).map_err(|reason| {
            let mut violations = Violations::default();
            violations.push(field, reason);
            violations
        })
    }

    /// A score request: its subject and the as-of time (default: now).
    pub fn score_request(
        &self,
        request: proto::ScoreCustomerRequest,
    ) -> Result<(ScoreSubject, Timestamp), Violations> {
        let proto::ScoreCustomerRequest { subject, as_of } = request;
        let mut v = Violations::default();
        let as_of = match as_of {
            None => Some(self.now),
            Some(raw) => v.check("as_of", self.time(raw)),
        };
        let subject = match subject {
            None => {
                v.push("subject", "is required: set customer_id or snapshot");
                None
            }
            Some(proto::score_customer_request::Subject::CustomerId(id)) => v
                .check("customer_id", CustomerId::parse(id))
                .map(ScoreSubject::Stored),
            Some(proto::score_customer_request::Subject::Snapshot(snapshot)) => {
                match self.snapshot(snapshot) {
                    Ok(history) => Some(ScoreSubject::Snapshot(Box::new(history))),
                    Err(nested) => {
                        v.extend_nested("snapshot", nested);
                        None
                    }
                }
            }
        };
        v.finish(|| Some((subject?, as_of?)))
    }

    /// A customer's data sent inline: every record checked like an ingested one, and every
    /// record naming the snapshot's customer.
    fn snapshot(&self, snapshot: proto::CustomerSnapshot) -> Result<History, Violations> {
        let proto::CustomerSnapshot {
            customer,
            usage_events,
            interactions,
            surveys,
            recovery_cases,
        } = snapshot;
        let mut v = Violations::default();
        let customer = match customer {
            None => {
                v.push("customer", "is required");
                None
            }
            Some(customer) => match self.customer(customer) {
                Ok(customer) => Some(customer),
                Err(nested) => {
                    v.extend_nested("customer", nested);
                    None
                }
            },
        };
        let owner = customer.as_ref().map(|c| &c.customer_id);
        fn each<P, D>(
            v: &mut Violations,
            owner: Option<&CustomerId>,
            field: &str,
            items: Vec<P>,
            parse: impl Fn(P) -> Result<D, Violations>,
            customer_of: impl Fn(&D) -> &CustomerId,
        ) -> Vec<D> {
            let mut parsed = Vec::with_capacity(items.len());
            for (index, item) in items.into_iter().enumerate() {
                // Formatted only for a violation: for every valid record it cost as much as
                // checking the record.
                let path = || format!("{field}[{index}]");
                match parse(item) {
                    Ok(record) => {
                        if let Some(owner) = owner
                            && customer_of(&record) != owner
                        {
                            v.push(
                                format!("{}.customer_id", path()),
                                format!("must be the snapshot's customer {:?}", owner.as_str()),
                            );
                        }
                        parsed.push(record);
                    }
                    Err(nested) => v.extend_nested(&path(), nested),
                }
            }
            parsed
        }
        let usage = each(
            &mut v,
            owner,
            "usage_events",
            usage_events,
            |r| self.usage_event(r),
            |r: &UsageEvent| &r.customer_id,
        );
        let interactions = each(
            &mut v,
            owner,
            "interactions",
            interactions,
            |r| self.interaction(r),
            |r: &Interaction| &r.customer_id,
        );
        let surveys = each(
            &mut v,
            owner,
            "surveys",
            surveys,
            |r| self.survey(r),
            |r: &Survey| &r.customer_id,
        );
        let recovery_cases = each(
            &mut v,
            owner,
            "recovery_cases",
            recovery_cases,
            |r| self.recovery_case(r),
            |r: &RecoveryCase| &r.customer_id,
        );
        v.finish(|| {
            let mut history = History::new(customer?);
            history.usage = usage;
            history.interactions = interactions;
            history.surveys = surveys;
            history.recovery_cases = recovery_cases;
            Some(history)
        })
    }
}

pub fn health_score(score: HealthScore) -> proto::ScoreCustomerResponse {
    let HealthScore {
        customer_id,
        probability,
        health,
        band,
        drivers,
        model_version,
        horizon_days,
        as_of,
        warnings,
    } = score;
    proto::ScoreCustomerResponse {
        customer_id: customer_id.into_string(),
        health_score: health,
        churn_probability: probability,
        band: match band {
            Band::Healthy => proto::HealthBand::Healthy,
            Band::Watch => proto::HealthBand::Watch,
            Band::AtRisk => proto::HealthBand::AtRisk,
            Band::Critical => proto::HealthBand::Critical,
        }
        .into(),
        drivers: drivers
            .into_iter()
            .map(|d| proto::Driver {
                feature: d.feature,
                description: d.description,
                contribution: d.contribution,
            })
            .collect(),
        model_version,
        feature_schema_version: FEATURE_SCHEMA_VERSION,
        horizon_days,
        as_of: Some(timestamp(as_of)),
        warnings,
    }
}

/// A failed request of a stream, as the unary call's status would have said it.
pub fn score_error(status: tonic::Status) -> proto::ScoreError {
    use tonic_types::StatusExt;
    let field_errors = status
        .get_details_bad_request()
        .map(|bad| {
            bad.field_violations
                .into_iter()
                .map(|v| proto::FieldError {
                    field: v.field,
                    description: v.description,
                })
                .collect()
        })
        .unwrap_or_default();
    proto::ScoreError {
        code: status.code() as i32,
        message: status.message().to_owned(),
        field_errors,
    }
}
