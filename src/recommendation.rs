//! A recovery recommendation for a stored customer, end to end: reads the customer's history,
//! scores their health, estimates retention with and without each action (the serving uplift
//! model, or the published-figures prior where it has too little to go on), applies the
//! program's policy, and stores the decision (unless only asked "what if"). The gRPC layer
//! parses the request and converts the answer; everything between happens here.

use std::sync::Arc;

use crate::decision::{
    self, Decision, Estimates, Facts, Retention, TriggerError, TriggerRequest, UpliftSource, prior,
};
use crate::domain::{CustomerId, IssueTag, RecordKind, Timestamp};
use crate::program_file::{LoadedProgram, ProgramSource};
use crate::scoring::{Bands, ModelSlot};
use crate::store::{Store, StoreError};
use crate::uplift::{ExpectedQuality, UpliftSlot};

/// A checked `RecommendRecovery` request.
#[derive(Debug, Clone, PartialEq)]
pub struct RecommendRequest {
    pub customer_id: CustomerId,
    pub trigger: TriggerRequest,
    pub tag: Option<IssueTag>,
    pub as_of: Timestamp,
    pub expected_quality: Option<u8>,
    /// Answer without storing the decision.
    pub what_if: bool,
}

/// Why no recommendation could be made.
#[derive(Debug, thiserror::Error)]
pub enum RecommendError {
    #[error("no health model is active yet")]
    NoHealthModel,
    #[error("no customer {:?}", .0.as_str())]
    UnknownCustomer(CustomerId),
    /// The named trigger (the request's `field`) does not exist.
    #[error("no {} {id:?}", kind.field_name())]
    UnknownTrigger {
        field: &'static str,
        kind: RecordKind,
        id: String,
    },
    /// The named trigger is another customer's.
    #[error("{} {id:?} belongs to another customer, not {:?}", kind.field_name(), customer.as_str())]
    ForeignTrigger {
        field: &'static str,
        kind: RecordKind,
        id: String,
        customer: CustomerId,
    },
    /// The named trigger happened after the as-of time.
    #[error("{source}")]
    TriggerAfterAsOf {
        field: &'static str,
        source: TriggerError,
    },
    /// No trigger was named and none qualifies.
    #[error("{0}")]
    NoTrigger(TriggerError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a recommendation needs: the store, the serving health and uplift models, the
/// program.
#[derive(Debug, Clone)]
pub struct Recommender {
    store: Arc<dyn Store>,
    health: Arc<ModelSlot>,
    uplift: Arc<UpliftSlot>,
    programs: Arc<ProgramSource>,
    bands: Bands,
}

impl Recommender {
    pub fn new(
        store: Arc<dyn Store>,
        health: Arc<ModelSlot>,
        uplift: Arc<UpliftSlot>,
        programs: Arc<ProgramSource>,
        bands: Bands,
    ) -> Self {
        Self {
            store,
            health,
            uplift,
            programs,
            bands,
        }
    }

    /// The program serving now: the request is checked against its vocabulary, then decided
    /// under it (the caller passes the one it took back to [`Recommender::recommend`]).
    pub fn program(&self) -> Arc<LoadedProgram> {
        self.programs.current()
    }

    /// Decides `request` under `program` at `decided_at`, and stores the decision unless the
    /// request only asks what would be decided.
    pub async fn recommend(
        &self,
        request: &RecommendRequest,
        program: &LoadedProgram,
        decided_at: Timestamp,
    ) -> Result<Decision, RecommendError> {
        // Each taken once, so a promotion during the request cannot mix versions.
        let model = self.health.current().ok_or(RecommendError::NoHealthModel)?;
        let records = self
            .store
            .customer_records(&request.customer_id)
            .await?
            .ok_or_else(|| RecommendError::UnknownCustomer(request.customer_id.clone()))?;
        let history = &records.history;
        let score = model.score(history, request.as_of, &self.bands);
        let p_churn = score.probability;
        // The uplift model once one is active; until then the docs/domain.md prior.
        let uplift = self.uplift.current();
        let features = uplift
            .as_ref()
            .map(|model| model.features(history, request.as_of));
        let quality = request.expected_quality;
        let prior_quality = quality.unwrap_or(program.program.prior_quality);
        // An action the model saw too few recoveries with is valued by the prior: the model
        // would only extrapolate its one-hot column from nothing.
        let retention = |action| -> (Retention, UpliftSource) {
            match (&uplift, &features) {
                (Some(model), Some(features)) if model.knows(action) => (
                    model.retention(
                        features,
                        history.customer.segment,
                        action,
                        quality.map_or(ExpectedQuality::ProgramMix, ExpectedQuality::Rating),
                    ),
                    UpliftSource::Model,
                ),
                _ => (
                    prior::retention(p_churn, prior_quality),
                    UpliftSource::Prior,
                ),
            }
        };
        let estimates = Estimates {
            source: if uplift.is_some() {
                UpliftSource::Model
            } else {
                UpliftSource::Prior
            },
            version: uplift
                .as_ref()
                .map_or_else(|| prior::PRIOR_NAME.to_owned(), |m| m.version().to_owned()),
            retention: &retention,
        };
        let facts = Facts {
            history,
            decided_at,
            as_of: request.as_of,
            trigger: request.trigger.clone(),
            tag: request.tag,
            churn_probability: score.probability,
            health_score: score.health,
            health_model_version: score.model_version.clone(),
        };
        let decision = match decision::decide(&program.program, &facts, &estimates) {
            Ok(decision) => decision,
            Err(error) => return Err(self.trigger_error(request, error).await),
        };
        if !request.what_if {
            self.store.insert_decision(&decision).await?;
        }
        Ok(decision)
    }

    /// Why a named trigger cannot be used: another customer's, unknown, or later than
    /// `as_of`.
    async fn trigger_error(
        &self,
        request: &RecommendRequest,
        error: TriggerError,
    ) -> RecommendError {
        let (field, kind, id) = match &request.trigger {
            TriggerRequest::Interaction(id) => {
                ("interaction_id", RecordKind::Interaction, id.as_str())
            }
            TriggerRequest::Survey(id) => ("survey_id", RecordKind::Survey, id.as_str()),
            TriggerRequest::Latest => return RecommendError::NoTrigger(error),
        };
        match error {
            TriggerError::AfterAsOf { .. } => RecommendError::TriggerAfterAsOf {
                field,
                source: error,
            },
            TriggerError::NotFound(_) => match self.store.record_owner(kind, id).await {
                Err(store) => store.into(),
                Ok(Some(owner)) if owner != request.customer_id => RecommendError::ForeignTrigger {
                    field,
                    kind,
                    id: id.to_owned(),
                    customer: request.customer_id.clone(),
                },
                // Known and the customer's, yet not found as a trigger before the as-of time.
                Ok(Some(_)) => RecommendError::NoTrigger(error),
                Ok(None) => RecommendError::UnknownTrigger {
                    field,
                    kind,
                    id: id.to_owned(),
                },
            },
        }
    }
}
