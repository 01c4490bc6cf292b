//! `rescue.v1.Models`: training, listing, promoting and rolling back model versions.

use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::convert::{self, RecordParser};
use super::error::ApiError;
use crate::domain::Timestamp;
use crate::model::artifact::HEALTH_MODEL_KIND;
use crate::model::{Metrics, ModelArtifact};
use crate::proto::v1::{self as proto, models_server::Models};
use crate::registry::{self, RegistryError, ServingModels};
use crate::store::{ModelStatus, Store, StoredModel};
use crate::training::{self, TrainingError, TrainingPlan};
use crate::uplift::{UPLIFT_MODEL_KIND, UpliftArtifact, UpliftMetrics};

/// Progress lines buffered for a slow client; training never waits on them.
const PROGRESS_BUFFER: usize = 32;

#[derive(Debug, Clone)]
pub struct ModelsService {
    store: Arc<dyn Store>,
    serving: ServingModels,
    /// The health model's promotion margin (ROC-AUC); the uplift model's is
    /// [`training::DEFAULT_UPLIFT_PROMOTION_MARGIN`].
    promotion_margin: f64,
}

impl ModelsService {
    pub fn new(store: Arc<dyn Store>, serving: ServingModels, promotion_margin: f64) -> Self {
        Self {
            store,
            serving,
            promotion_margin,
        }
    }
}

fn kind(raw: i32) -> Result<&'static str, ApiError> {
    match proto::ModelKind::try_from(raw) {
        Ok(proto::ModelKind::Health) => Ok(HEALTH_MODEL_KIND),
        Ok(proto::ModelKind::Uplift) => Ok(UPLIFT_MODEL_KIND),
        Ok(proto::ModelKind::Unspecified) => {
            Err(ApiError::InvalidArgument(convert::missing("kind")))
        }
        Err(_) => {
            let mut violations = crate::domain::Violations::default();
            violations.push("kind", format!("unknown value {raw}"));
            Err(ApiError::InvalidArgument(violations))
        }
    }
}

fn metrics(metrics: &Metrics) -> proto::Metrics {
    proto::Metrics {
        roc_auc: metrics.roc_auc,
        pr_auc: metrics.pr_auc,
        brier: metrics.brier,
        log_loss: metrics.log_loss,
        expected_calibration_error: metrics.expected_calibration_error,
        rows: metrics.rows,
        positives: metrics.positives,
        calibration: metrics
            .calibration
            .iter()
            .map(|bin| proto::CalibrationBin {
                lower: bin.lower,
                upper: bin.upper,
                count: bin.count,
                mean_predicted: bin.mean_predicted,
                observed_rate: bin.observed_rate,
            })
            .collect(),
    }
}

fn uplift_metrics(metrics: &UpliftMetrics) -> proto::UpliftMetrics {
    proto::UpliftMetrics {
        qini_coefficient: metrics.qini_coefficient,
        qini_curve: metrics
            .qini_curve
            .iter()
            .map(|point| proto::QiniPoint {
                units: point.units,
                qini: point.qini,
            })
            .collect(),
        uplift_at: metrics
            .uplift_at
            .iter()
            .map(|at| proto::UpliftAtK {
                fraction: at.fraction,
                uplift: at.uplift,
                treated: at.treated,
                control: at.control,
            })
            .collect(),
        rows: metrics.rows,
        treated: metrics.treated,
        treated_retained: metrics.treated_retained,
        control: metrics.control,
        control_retained: metrics.control_retained,
        unweighted_qini_coefficient: metrics.unweighted_qini_coefficient,
    }
}

fn status(status: ModelStatus) -> proto::ModelStatus {
    match status {
        ModelStatus::Candidate => proto::ModelStatus::Candidate,
        ModelStatus::Active => proto::ModelStatus::Active,
        ModelStatus::Retired => proto::ModelStatus::Retired,
    }
}

fn model_info(model: &StoredModel) -> proto::ModelInfo {
    if model.kind == UPLIFT_MODEL_KIND {
        return uplift_model_info(model);
    }
    // Listing shows every version, even one this build could not serve, so the artifact is
    // read without the serving checks.
    let artifact = ModelArtifact::from_json(&model.artifact).ok();
    proto::ModelInfo {
        version: model.version.clone(),
        kind: proto::ModelKind::Health.into(),
        status: status(model.status).into(),
        feature_schema_version: crate::features::FEATURE_SCHEMA_VERSION,
        feature_names: artifact
            .as_ref()
            .map(|a| a.features.names().map(str::to_owned).collect())
            .unwrap_or_default(),
        holdout_metrics: artifact.as_ref().map(|a| metrics(&a.metrics)),
        created_at: Some(convert::timestamp(model.created_at)),
        trained_from: artifact
            .as_ref()
            .map(|a| convert::timestamp(a.trained_from)),
        trained_to: artifact.as_ref().map(|a| convert::timestamp(a.trained_to)),
        training_rows: artifact.as_ref().map_or(0, |a| a.training_rows),
        holdout_rows: artifact.as_ref().map_or(0, |a| a.holdout_rows),
        horizon_days: artifact.as_ref().map_or(0, |a| a.horizon_days),
        activated_at: model.activated_at.map(convert::timestamp),
        source: model.source.clone(),
        uplift_metrics: None,
        learner: artifact
            .as_ref()
            .map(|a| a.model.learner().name().to_owned())
            .unwrap_or_default(),
        holdout_from: None,
        candidates: artifact
            .as_ref()
            .map(|a| {
                a.candidates
                    .iter()
                    .map(|c| proto::LearnerResult {
                        learner: c.learner.clone(),
                        holdout_metrics: Some(metrics(&c.metrics)),
                    })
                    .collect()
            })
            .unwrap_or_default(),
        holdout: artifact.map(|a| a.holdout).unwrap_or_default(),
    }
}

fn uplift_model_info(model: &StoredModel) -> proto::ModelInfo {
    // As for health: read without the serving checks, so every version is listed.
    let artifact: Option<UpliftArtifact> = serde_json::from_str(&model.artifact).ok();
    let a = artifact.as_ref();
    proto::ModelInfo {
        version: model.version.clone(),
        kind: proto::ModelKind::Uplift.into(),
        status: status(model.status).into(),
        feature_schema_version: a.map_or(0, |a| a.feature_schema),
        feature_names: a.map(|a| a.feature_names.clone()).unwrap_or_default(),
        holdout_metrics: None,
        created_at: Some(convert::timestamp(model.created_at)),
        trained_from: a.map(|a| convert::timestamp(a.trained_from)),
        trained_to: a.map(|a| convert::timestamp(a.trained_to)),
        training_rows: a.map_or(0, |a| a.training_rows),
        holdout_rows: a.map_or(0, |a| a.holdout_rows),
        horizon_days: a.map_or(0, |a| a.horizon_days),
        activated_at: model.activated_at.map(convert::timestamp),
        source: model.source.clone(),
        uplift_metrics: a.map(|a| uplift_metrics(&a.metrics)),
        learner: a.map(|a| a.learner.as_str().to_owned()).unwrap_or_default(),
        holdout_from: a.map(|a| convert::timestamp(a.holdout_from)),
        candidates: Vec::new(),
        holdout: String::new(),
    }
}

/// A training's result without the active model's metrics, which depend on the kind.
fn train_result(
    model: &StoredModel,
    active_version: Option<String>,
    promoted: bool,
    decision: String,
) -> proto::TrainResult {
    proto::TrainResult {
        model: Some(model_info(model)),
        active_on_same_holdout: None,
        active_version: active_version.unwrap_or_default(),
        promoted,
        decision,
        active_uplift_on_same_holdout: None,
    }
}

impl From<RegistryError> for ApiError {
    fn from(error: RegistryError) -> Self {
        match error {
            RegistryError::UnknownVersion(version) => {
                ApiError::NotFound(format!("no model version {version:?}"))
            }
            RegistryError::NothingToRollBackTo(_)
            | RegistryError::Unloadable { .. }
            | RegistryError::WrongKind { .. }
            | RegistryError::UnknownKind(_) => ApiError::FailedPrecondition(
                crate::domain::FieldViolation::new("version", error.to_string()),
            ),
            RegistryError::Store(error) => ApiError::Store(error),
        }
    }
}

fn training_status(error: TrainingError) -> Status {
    match error {
        TrainingError::Invalid(reason) => Status::invalid_argument(reason),
        TrainingError::NotEnoughData(reason) => {
            Status::failed_precondition(format!("not enough data to train: {reason}"))
        }
        TrainingError::Store(error) => ApiError::Store(error).into(),
        TrainingError::Registry(error) => ApiError::from(error).into(),
        TrainingError::Model(error) => {
            tracing::error!(error = %super::error_chain(&error), "training failed");
            Status::internal(format!("training failed: {error}"))
        }
        TrainingError::Task(reason) => {
            tracing::error!(%reason, "training task failed");
            Status::internal("training failed; the server log has details")
        }
    }
}

#[tonic::async_trait]
impl Models for ModelsService {
    type TrainStream = ReceiverStream<Result<proto::TrainProgress, Status>>;

    async fn train(
        &self,
        request: Request<proto::TrainRequest>,
    ) -> Result<Response<Self::TrainStream>, Status> {
        let proto::TrainRequest {
            kind: raw_kind,
            horizon_days,
            auto_promote,
            as_of,
            min_outcomes,
        } = request.into_inner();
        let kind = kind(raw_kind)?;
        if min_outcomes.is_some() && kind != UPLIFT_MODEL_KIND {
            let mut violations = crate::domain::Violations::default();
            violations.push("min_outcomes", "applies to MODEL_KIND_UPLIFT only");
            return Err(ApiError::InvalidArgument(violations).into());
        }
        let parser = RecordParser::received_at(Timestamp::now());
        let as_of = as_of
            .into_iter()
            .enumerate()
            .map(|(i, t)| parser.as_of_time(&format!("as_of[{i}]"), t))
            .collect::<Result<Vec<_>, _>>()
            .map_err(ApiError::InvalidArgument)?;
        let plan = TrainingPlan {
            horizon_days: horizon_days.unwrap_or(training::DEFAULT_HORIZON_DAYS),
            as_of,
            auto_promote: auto_promote.unwrap_or(true),
            promotion_margin: if kind == UPLIFT_MODEL_KIND {
                training::DEFAULT_UPLIFT_PROMOTION_MARGIN
            } else {
                self.promotion_margin
            },
            min_outcomes: min_outcomes.map_or(training::DEFAULT_MIN_OUTCOMES, |n| n as usize),
            ..TrainingPlan::default()
        };
        let (progress, receiver) = mpsc::channel(PROGRESS_BUFFER);
        let (store, serving) = (Arc::clone(&self.store), self.serving.clone());
        // Training goes on even if the caller disconnects: its result is registered either way.
        tokio::spawn(async move {
            let stage = |message: String| {
                tracing::info!(%message, "training");
                let _ = progress.try_send(Ok(proto::TrainProgress {
                    event: Some(proto::train_progress::Event::Stage(message)),
                }));
            };
            let outcome = if kind == UPLIFT_MODEL_KIND {
                training::train_uplift_model(&store, &serving.uplift, plan, &stage)
                    .await
                    .map(|report| {
                        let (version, active) = report.active_on_same_holdout.unzip();
                        proto::TrainResult {
                            active_uplift_on_same_holdout: active.as_ref().map(uplift_metrics),
                            ..train_result(&report.model, version, report.promoted, report.decision)
                        }
                    })
            } else {
                training::train_health_model(&store, &serving.health, plan, &stage)
                    .await
                    .map(|report| {
                        let (version, active) = report.active_on_same_holdout.unzip();
                        proto::TrainResult {
                            active_on_same_holdout: active.as_ref().map(metrics),
                            ..train_result(&report.model, version, report.promoted, report.decision)
                        }
                    })
            };
            let message = match outcome {
                Ok(result) => Ok(proto::TrainProgress {
                    event: Some(proto::train_progress::Event::Result(result)),
                }),
                Err(error) => Err(training_status(error)),
            };
            let _ = progress.send(message).await;
        });
        Ok(Response::new(ReceiverStream::new(receiver)))
    }

    async fn list_models(
        &self,
        request: Request<proto::ListModelsRequest>,
    ) -> Result<Response<proto::ListModelsResponse>, Status> {
        let kind = kind(request.into_inner().kind)?;
        let models = self.store.models(kind).await.map_err(ApiError::from)?;
        Ok(Response::new(proto::ListModelsResponse {
            models: models.iter().map(model_info).collect(),
        }))
    }

    async fn get_model(
        &self,
        request: Request<proto::GetModelRequest>,
    ) -> Result<Response<proto::ModelInfo>, Status> {
        let version = request.into_inner().version;
        let model = self
            .store
            .model(&version)
            .await
            .map_err(ApiError::from)?
            .ok_or_else(|| ApiError::NotFound(format!("no model version {version:?}")))?;
        Ok(Response::new(model_info(&model)))
    }

    async fn promote_model(
        &self,
        request: Request<proto::PromoteModelRequest>,
    ) -> Result<Response<proto::ModelInfo>, Status> {
        let version = request.into_inner().version;
        if version.is_empty() {
            return Err(ApiError::InvalidArgument(convert::missing("version")).into());
        }
        let model = registry::promote(self.store.as_ref(), &self.serving, &version)
            .await
            .map_err(ApiError::from)?;
        Ok(Response::new(model_info(&model)))
    }

    async fn rollback_model(
        &self,
        request: Request<proto::RollbackModelRequest>,
    ) -> Result<Response<proto::ModelInfo>, Status> {
        let kind = kind(request.into_inner().kind)?;
        let model = registry::roll_back(self.store.as_ref(), &self.serving, kind)
            .await
            .map_err(ApiError::from)?;
        Ok(Response::new(model_info(&model)))
    }
}
