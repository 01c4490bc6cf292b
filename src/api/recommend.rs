//! `RecommendRecovery`: gathers the facts about a stored customer (history, health score,
//! retention estimates from the uplift model or the prior), applies the program's policy,
//! stores the decision and answers with it.

use std::sync::Arc;

use super::convert::{self, RecommendRequest, RecordParser};
use super::error::ApiError;
use crate::decision::{
    self, Estimates, Facts, Retention, TriggerError, TriggerRequest, UpliftSource, prior,
};
use crate::domain::{RecordKind, Timestamp, Violations};
use crate::program_file::{LoadedProgram, ProgramSource};
use crate::proto::v1 as proto;
use crate::scoring::{Bands, ModelSlot};
use crate::store::Store;
use crate::uplift::{ExpectedQuality, UpliftSlot};

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

    /// The program serving now: whose vocabulary scoring requests are checked against too.
    pub fn program(&self) -> Arc<LoadedProgram> {
        self.programs.current()
    }

    pub async fn recommend(
        &self,
        request: proto::RecommendRecoveryRequest,
    ) -> Result<proto::RecoveryRecommendation, ApiError> {
        let decided_at = Timestamp::now();
        // Each taken once, so a promotion or a reload during the request cannot mix versions.
        let program = self.programs.current();
        let request = RecordParser::received_at(decided_at, &program.program.vocabulary)
            .recommend_request(request)
            .map_err(ApiError::InvalidArgument)?;
        let model = self
            .health
            .current()
            .ok_or_else(|| ApiError::Unavailable("no health model is active yet".into()))?;
        let records = self
            .store
            .customer_records(&request.customer_id)
            .await?
            .ok_or_else(|| {
                ApiError::NotFound(format!("no customer {:?}", request.customer_id.as_str()))
            })?;
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
            Err(error) => return Err(self.trigger_error(&request, error).await),
        };
        if request.what_if {
            let mut answer = proto::RecoveryRecommendation::from(decision);
            answer.decision_id.clear();
            return Ok(answer);
        }
        self.store.insert_decision(&decision).await?;
        Ok(decision.into())
    }

    /// Why a named trigger cannot be used: another customer's (INVALID_ARGUMENT), unknown
    /// (NOT_FOUND), or later than `as_of` (INVALID_ARGUMENT).
    async fn trigger_error(&self, request: &RecommendRequest, error: TriggerError) -> ApiError {
        let (field, kind, id) = match &request.trigger {
            TriggerRequest::Interaction(id) => {
                ("interaction_id", RecordKind::Interaction, id.as_str())
            }
            TriggerRequest::Survey(id) => ("survey_id", RecordKind::Survey, id.as_str()),
            TriggerRequest::Latest => return ApiError::NotFound(error.to_string()),
        };
        let mut violations = Violations::default();
        match error {
            TriggerError::AfterAsOf { .. } => violations.push(field, error.to_string()),
            TriggerError::NotFound(_) => match self.store.record_owner(kind, id).await {
                Err(store) => return store.into(),
                Ok(None) => {
                    return ApiError::NotFound(format!("no {} {id:?}", kind.field_name()));
                }
                Ok(Some(owner)) if owner != request.customer_id => violations.push(
                    field,
                    format!(
                        "{} {id:?} belongs to another customer, not {:?}",
                        kind.field_name(),
                        request.customer_id.as_str()
                    ),
                ),
                Ok(Some(_)) => return ApiError::NotFound(error.to_string()),
            },
        }
        ApiError::InvalidArgument(violations)
    }
}

/// The funnel of a window, from the stored decisions, cases and churn outcomes.
pub async fn funnel(
    store: &dyn Store,
    programs: &ProgramSource,
    request: proto::RecoveryFunnelRequest,
) -> Result<proto::RecoveryFunnelResponse, ApiError> {
    let program = programs.current();
    let (from, to) = RecordParser::received_at(Timestamp::now(), &program.program.vocabulary)
        .funnel_window(request)
        .map_err(ApiError::InvalidArgument)?;
    let threshold = program.program.recovered_at_or_above;
    let input = store.funnel_input(from, to).await?;
    let funnel = decision::funnel::compute(&input, threshold);
    Ok(convert::funnel(funnel, from, to, threshold))
}
