//! `rescue.v1.Models`: training, listing, promoting and rolling back model versions.

use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::audit::Auditor;
use super::convert::{self, RecordParser};
use super::error::ApiError;
use crate::domain::{MAX_ECHOED_BYTES, Timestamp, Vocabulary, shortened};
use crate::model::{Metrics, ModelArtifact, ModelKind};
use crate::proto::v1::{self as proto, models_server::Models};
use crate::registry::{self, ServingModels};
use crate::scoring::HealthModel;
use crate::store::{ModelStatus, Store, StoredModel};
use crate::training::{self, Trainable, TrainingError, TrainingPlan};
use crate::uplift::{UpliftArtifact, UpliftMetrics, UpliftModel};

/// Progress lines buffered for a slow client; training never waits on them.
const PROGRESS_BUFFER: usize = 32;

#[derive(Debug, Clone)]
pub struct ModelsService {
    store: Arc<dyn Store>,
    serving: ServingModels,
    /// The health model's promotion margin (ROC-AUC); other kinds use their default
    /// ([`training::default_promotion_margin`]).
    promotion_margin: f64,
    /// The kinds being trained now: one training of a kind at a time.
    training: Arc<std::sync::Mutex<std::collections::HashSet<ModelKind>>>,
    auditor: Auditor,
}

impl ModelsService {
    pub fn new(store: Arc<dyn Store>, serving: ServingModels, promotion_margin: f64) -> Self {
        Self {
            auditor: Auditor::new(Arc::clone(&store)),
            store,
            serving,
            promotion_margin,
            training: Arc::default(),
        }
    }

    /// The training `request` asks for, checked, with its kind claimed.
    fn plan_training(
        &self,
        request: proto::TrainRequest,
        requested_at: Timestamp,
    ) -> Result<(ModelKind, TrainingPlan, TrainingClaim), Status> {
        let proto::TrainRequest {
            kind: raw_kind,
            horizon_days,
            auto_promote,
            as_of,
            min_outcomes,
        } = request;
        let kind = kind(raw_kind)?;
        if min_outcomes.is_some() && kind != ModelKind::Uplift {
            let mut violations = crate::domain::Violations::default();
            violations.push("min_outcomes", "applies to MODEL_KIND_UPLIFT only");
            return Err(ApiError::InvalidArgument(violations).into());
        }
        // Only times are read here: no tag or action, so no program's vocabulary is needed.
        let parser = RecordParser::received_at(requested_at, Vocabulary::built_in());
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
            promotion_margin: match kind {
                ModelKind::Health => self.promotion_margin,
                other => training::default_promotion_margin(other),
            },
            min_outcomes: min_outcomes.map_or(training::DEFAULT_MIN_OUTCOMES, |n| n as usize),
            ..TrainingPlan::default()
        };
        let claim = self.claim_training(kind)?;
        Ok((kind, plan, claim))
    }

    /// Claims the training of `kind` until the returned guard drops; refused while another
    /// training of it runs. A training takes hundreds of megabytes and both cores: two at once
    /// would only slow each other and risk the server's memory.
    fn claim_training(&self, kind: ModelKind) -> Result<TrainingClaim, Status> {
        let mut running = self
            .training
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !running.insert(kind) {
            return Err(ApiError::ResourceExhausted(format!(
                "a training of {kind} models is already running on this server; wait for it to finish"
            ))
            .into());
        }
        Ok(TrainingClaim {
            kind,
            running: Arc::clone(&self.training),
        })
    }
}

/// A kind's training slot, given back when dropped.
#[derive(Debug)]
struct TrainingClaim {
    kind: ModelKind,
    running: Arc<std::sync::Mutex<std::collections::HashSet<ModelKind>>>,
}

impl Drop for TrainingClaim {
    fn drop(&mut self) {
        self.running
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&self.kind);
    }
}

fn kind(raw: i32) -> Result<ModelKind, ApiError> {
    match proto::ModelKind::try_from(raw) {
        Ok(proto::ModelKind::Health) => Ok(ModelKind::Health),
        Ok(proto::ModelKind::Uplift) => Ok(ModelKind::Uplift),
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

/// How a model kind appears in the `Models` RPCs beyond what the registry records.
trait Described: Trainable {
    const PROTO_KIND: proto::ModelKind;
    /// `base` (the registry's fields) with the kind's own, read from its artifact.
    fn model_info(artifact: &str, base: proto::ModelInfo) -> proto::ModelInfo;
    /// Puts the active model's metrics on the new model's hold-out into `result`.
    fn set_active_metrics(result: &mut proto::TrainResult, metrics: &Self::Metrics);
}

impl Described for HealthModel {
    const PROTO_KIND: proto::ModelKind = proto::ModelKind::Health;

    fn model_info(artifact: &str, base: proto::ModelInfo) -> proto::ModelInfo {
        // Listing shows every version, even one this build could not serve, so the artifact
        // is read without the serving checks.
        let Ok(a) = ModelArtifact::from_json(artifact) else {
            return base;
        };
        proto::ModelInfo {
            feature_schema_version: crate::features::FEATURE_SCHEMA_VERSION,
            feature_names: a.features.names().map(str::to_owned).collect(),
            holdout_metrics: Some(metrics(&a.metrics)),
            trained_from: Some(convert::timestamp(a.trained_from)),
            trained_to: Some(convert::timestamp(a.trained_to)),
            training_rows: a.training_rows,
            holdout_rows: a.holdout_rows,
            horizon_days: a.horizon_days,
            learner: a.model.learner().name().to_owned(),
            candidates: a
                .candidates
                .iter()
                .map(|c| proto::LearnerResult {
                    learner: c.learner.clone(),
                    holdout_metrics: Some(metrics(&c.metrics)),
                    uplift_metrics: None,
                })
                .collect(),
            holdout: a.holdout,
            ..base
        }
    }

    fn set_active_metrics(result: &mut proto::TrainResult, active: &Metrics) {
        result.active_on_same_holdout = Some(metrics(active));
    }
}

impl Described for UpliftModel {
    const PROTO_KIND: proto::ModelKind = proto::ModelKind::Uplift;

    fn model_info(artifact: &str, base: proto::ModelInfo) -> proto::ModelInfo {
        // As for health: read without the serving checks, so every version is listed.
        let Ok(a) = UpliftArtifact::read(artifact) else {
            return base;
        };
        proto::ModelInfo {
            feature_schema_version: crate::features::FEATURE_SCHEMA_VERSION,
            feature_names: a.features.names().map(str::to_owned).collect(),
            trained_from: Some(convert::timestamp(a.trained_from)),
            trained_to: Some(convert::timestamp(a.trained_to)),
            training_rows: a.training_rows,
            holdout_rows: a.holdout_rows,
            horizon_days: a.horizon_days,
            uplift_metrics: Some(uplift_metrics(&a.metrics)),
            learner: a.learner.name(),
            candidates: a
                .candidates
                .iter()
                .map(|c| proto::LearnerResult {
                    learner: c.learner.name(),
                    holdout_metrics: None,
                    uplift_metrics: Some(uplift_metrics(&c.metrics)),
                })
                .collect(),
            holdout_from: a.holdout_from.map(convert::timestamp),
            holdout: a.holdout,
            actions: a
                .treatments
                .actions()
                .iter()
                .map(ToString::to_string)
                .collect(),
            uplift_calibration_error: Some(a.calibration_error),
            ..base
        }
    }

    fn set_active_metrics(result: &mut proto::TrainResult, active: &UpliftMetrics) {
        result.active_uplift_on_same_holdout = Some(uplift_metrics(active));
    }
}

fn model_info(model: &StoredModel) -> proto::ModelInfo {
    fn of_kind<M: Described>(model: &StoredModel) -> proto::ModelInfo {
        let base = proto::ModelInfo {
            version: model.version.clone(),
            kind: M::PROTO_KIND.into(),
            status: status(model.status).into(),
            created_at: Some(convert::timestamp(model.created_at)),
            activated_at: model.activated_at.map(convert::timestamp),
            source: model.source.clone(),
            ..proto::ModelInfo::default()
        };
        M::model_info(&model.artifact, base)
    }
    match model.kind {
        ModelKind::Health => of_kind::<HealthModel>(model),
        ModelKind::Uplift => of_kind::<UpliftModel>(model),
    }
}

/// Trains a model of kind `M` and describes the result.
async fn train_and_describe<M: Described>(
    store: &Arc<dyn Store>,
    serving: &ServingModels,
    plan: TrainingPlan,
    requested_at: Timestamp,
    progress: &(dyn Fn(String) + Send + Sync),
) -> Result<proto::TrainResult, TrainingError> {
    let report = training::train::<M>(store, serving, plan, requested_at, progress).await?;
    let (active_version, active) = report.active_on_same_holdout.unzip();
    let mut result = proto::TrainResult {
        model: Some(model_info(&report.model)),
        active_version: active_version.unwrap_or_default(),
        promoted: report.promoted,
        decision: report.decision,
        ..proto::TrainResult::default()
    };
    if let Some(active) = &active {
        M::set_active_metrics(&mut result, active);
    }
    Ok(result)
}

#[tonic::async_trait]
impl Models for ModelsService {
    type TrainStream = ReceiverStream<Result<proto::TrainProgress, Status>>;

    async fn train(
        &self,
        request: Request<proto::TrainRequest>,
    ) -> Result<Response<Self::TrainStream>, Status> {
        let audit = self.auditor.call(&request, "Train", "");
        let requested_at = Timestamp::now();
        let (kind, plan, claim) = match self.plan_training(request.into_inner(), requested_at) {
            Ok(planned) => planned,
            Err(status) => {
                audit.finish(Err(&status)).await;
                return Err(status);
            }
        };
        let audit = audit.with_target(format!(
            "kind {kind}, horizon {} days, auto-promote {}",
            plan.horizon_days, plan.auto_promote
        ));
        let cancellation = plan.cancellation.clone();
        let (progress, receiver) = mpsc::channel(PROGRESS_BUFFER);
        let (store, serving) = (Arc::clone(&self.store), self.serving.clone());
        // A caller that goes away (its stream dropped) cancels the training: it stops at the
        // next fit and registers nothing, and the kind's slot is free again.
        let closed = progress.clone();
        let watching = tokio::spawn(async move {
            closed.closed().await;
            cancellation.cancel();
        });
        tokio::spawn(async move {
            // Held for the training, and given back before its last message is sent: a caller
            // that starts the next training on reading it must not find the kind still taken.
            let claim = claim;
            let stage = |message: String| {
                tracing::info!(%message, "training");
                let _ = progress.try_send(Ok(proto::TrainProgress {
                    event: Some(proto::train_progress::Event::Stage(message)),
                }));
            };
            let outcome = match kind {
                ModelKind::Health => {
                    train_and_describe::<HealthModel>(&store, &serving, plan, requested_at, &stage)
                        .await
                }
                ModelKind::Uplift => {
                    train_and_describe::<UpliftModel>(&store, &serving, plan, requested_at, &stage)
                        .await
                }
            };
            let message = match outcome {
                Ok(result) => Ok(proto::TrainProgress {
                    event: Some(proto::train_progress::Event::Result(result)),
                }),
                Err(error) => Err(Status::from(ApiError::from(error))),
            };
            drop(claim);
            match &message {
                Ok(proto::TrainProgress {
                    event: Some(proto::train_progress::Event::Result(result)),
                }) => {
                    let version = result
                        .model
                        .as_ref()
                        .map_or("", |model| model.version.as_str());
                    audit
                        .finish(Ok(format!("registered {version}; {}", result.decision)))
                        .await;
                }
                Ok(_) => audit.finish(Ok(String::new())).await,
                Err(status) => audit.finish(Err(status)).await,
            }
            let _ = progress.send(message).await;
            watching.abort();
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
            .ok_or_else(|| {
                ApiError::NotFound(format!(
                    "no model version {:?}",
                    shortened(&version, MAX_ECHOED_BYTES)
                ))
            })?;
        Ok(Response::new(model_info(&model)))
    }

    async fn promote_model(
        &self,
        request: Request<proto::PromoteModelRequest>,
    ) -> Result<Response<proto::ModelInfo>, Status> {
        let audit = self.auditor.call(
            &request,
            "PromoteModel",
            format!("version {}", request.get_ref().version),
        );
        let version = request.into_inner().version;
        let promoted = if version.is_empty() {
            Err(ApiError::InvalidArgument(convert::missing("version")))
        } else {
            registry::promote(
                self.store.as_ref(),
                &self.serving,
                &version,
                Timestamp::now(),
            )
            .await
            .map_err(ApiError::from)
        };
        let model = audit
            .outcome(promoted, |model| {
                format!("activated {} ({})", model.version, model.kind)
            })
            .await?;
        Ok(Response::new(model_info(&model)))
    }

    async fn rollback_model(
        &self,
        request: Request<proto::RollbackModelRequest>,
    ) -> Result<Response<proto::ModelInfo>, Status> {
        let audit = self.auditor.call(&request, "RollbackModel", "");
        let rolled_back = match kind(request.into_inner().kind) {
            Ok(kind) => {
                let audit = audit.with_target(format!("kind {kind}"));
                let rolled_back =
                    registry::roll_back(self.store.as_ref(), &self.serving, kind, Timestamp::now())
                        .await
                        .map_err(ApiError::from);
                audit
                    .outcome(rolled_back, |model| {
                        format!("activated {} again ({})", model.version, model.kind)
                    })
                    .await
            }
            Err(error) => {
                audit
                    .outcome(Err(error), |_: &StoredModel| String::new())
                    .await
            }
        };
        Ok(Response::new(model_info(&rolled_back?)))
    }
}
