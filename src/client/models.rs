//! `rescue-client train` and `rescue-client models list|show|promote|rollback`: the Models
//! service from a terminal, as text for people and as JSON (`--json`) for scripts.

use std::fmt::Write as _;

use super::connection::Connection;

use super::columns::{enum_name, format_time, parse_model_kind, parse_time};
use super::retry::call_error;
use crate::proto::v1::{self as proto, models_client::ModelsClient, train_progress::Event};

/// `rescue-client train` options.
#[derive(Debug, Clone, clap::Args)]
pub struct TrainArgs {
    /// The kind of model to train.
    #[arg(long, value_parser = parse_model_kind, default_value = "health")]
    pub kind: i32,
    /// Days after each as-of time within which churn counts [server default: 90].
    #[arg(long)]
    pub horizon_days: Option<u32>,
    /// As-of times of the training rows (RFC 3339, ascending; repeat the flag); rows at the
    /// last one are the hold-out [server default: 4 times one horizon apart].
    #[arg(long = "as-of", value_parser = parse_time)]
    pub as_of: Vec<prost_types::Timestamp>,
    /// Keep the new model a candidate whatever its metrics.
    #[arg(long)]
    pub no_promote: bool,
    /// Uplift: the fewest recovered, and the fewest unrecovered, training failures with a
    /// known outcome; below it training is refused [server default: 200].
    #[arg(long)]
    pub min_outcomes: Option<u32>,
}

/// `rescue-client models` subcommands.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum ModelsCommand {
    /// Every version of a kind, newest first.
    List {
        #[arg(long, value_parser = parse_model_kind, default_value = "health")]
        kind: i32,
    },
    /// One version in full: metrics, calibration, training window.
    Show { version: String },
    /// Make a version the active one.
    Promote { version: String },
    /// Re-activate the version of a kind that was active before the current one.
    Rollback {
        #[arg(long, value_parser = parse_model_kind, default_value = "health")]
        kind: i32,
    },
}

/// Trains a model, showing the server's progress lines on stderr, and returns the result as
/// text or JSON.
pub async fn train(channel: Connection, args: &TrainArgs, json: bool) -> anyhow::Result<String> {
    let mut client = ModelsClient::new(channel);
    let request = proto::TrainRequest {
        kind: args.kind,
        horizon_days: args.horizon_days,
        auto_promote: args.no_promote.then_some(false),
        as_of: args.as_of.clone(),
        min_outcomes: args.min_outcomes,
    };
    let mut progress = client
        .train(request)
        .await
        .map_err(|status| call_error("Train", &status))?
        .into_inner();
    while let Some(step) = progress
        .message()
        .await
        .map_err(|status| call_error("Train", &status))?
    {
        match step.event {
            Some(Event::Stage(stage)) => tracing::info!("{stage}"),
            Some(Event::Result(result)) => {
                return Ok(if json {
                    train_result_json(&result).to_string()
                } else {
                    train_result_text(&result)
                });
            }
            None => {}
        }
    }
    anyhow::bail!("the training stream ended without a result")
}

/// Runs a `models` subcommand and returns its output as text or JSON.
pub async fn models(
    channel: Connection,
    command: &ModelsCommand,
    json: bool,
) -> anyhow::Result<String> {
    let mut client = ModelsClient::new(channel);
    let one = |model: proto::ModelInfo| {
        if json {
            model_json(&model).to_string()
        } else {
            model_text(&model)
        }
    };
    Ok(match command {
        ModelsCommand::List { kind } => {
            let models = client
                .list_models(proto::ListModelsRequest { kind: *kind })
                .await
                .map_err(|status| call_error("ListModels", &status))?
                .into_inner()
                .models;
            if json {
                serde_json::Value::Array(models.iter().map(model_json).collect()).to_string()
            } else {
                models_table(&models)
            }
        }
        ModelsCommand::Show { version } => one(client
            .get_model(proto::GetModelRequest {
                version: version.clone(),
            })
            .await
            .map_err(|status| call_error("GetModel", &status))?
            .into_inner()),
        ModelsCommand::Promote { version } => one(client
            .promote_model(proto::PromoteModelRequest {
                version: version.clone(),
            })
            .await
            .map_err(|status| call_error("PromoteModel", &status))?
            .into_inner()),
        ModelsCommand::Rollback { kind } => one(client
            .rollback_model(proto::RollbackModelRequest { kind: *kind })
            .await
            .map_err(|status| call_error("RollbackModel", &status))?
            .into_inner()),
    })
}

fn status(model: &proto::ModelInfo) -> String {
    proto::ModelStatus::try_from(model.status)
        .map(|status| enum_name(status.as_str_name(), "MODEL_STATUS_"))
        .unwrap_or_default()
}

fn time(at: Option<prost_types::Timestamp>) -> String {
    at.map(format_time).unwrap_or_default()
}

fn metrics_json(metrics: Option<&proto::Metrics>) -> serde_json::Value {
    let Some(m) = metrics else {
        return serde_json::Value::Null;
    };
    serde_json::json!({
        "roc_auc": m.roc_auc,
        "pr_auc": m.pr_auc,
        "brier": m.brier,
        "log_loss": m.log_loss,
        "expected_calibration_error": m.expected_calibration_error,
        "rows": m.rows,
        "positives": m.positives,
        "calibration": m.calibration.iter().map(|bin| serde_json::json!({
            "lower": bin.lower,
            "upper": bin.upper,
            "count": bin.count,
            "mean_predicted": bin.mean_predicted,
            "observed_rate": bin.observed_rate,
        })).collect::<Vec<_>>(),
    })
}

fn uplift_metrics_json(metrics: Option<&proto::UpliftMetrics>) -> serde_json::Value {
    let Some(m) = metrics else {
        return serde_json::Value::Null;
    };
    serde_json::json!({
        "qini_coefficient": m.qini_coefficient,
        "unweighted_qini_coefficient": m.unweighted_qini_coefficient,
        "rows": m.rows,
        "treated": m.treated,
        "treated_retained": m.treated_retained,
        "control": m.control,
        "control_retained": m.control_retained,
        "uplift_at": m.uplift_at.iter().map(|at| serde_json::json!({
            "fraction": at.fraction,
            "uplift": at.uplift,
            "treated": at.treated,
            "control": at.control,
        })).collect::<Vec<_>>(),
        "qini_curve": m.qini_curve.iter().map(|point| serde_json::json!({
            "units": point.units,
            "qini": point.qini,
        })).collect::<Vec<_>>(),
    })
}

pub fn model_json(model: &proto::ModelInfo) -> serde_json::Value {
    serde_json::json!({
        "version": model.version,
        "kind": proto::ModelKind::try_from(model.kind)
            .map(|kind| enum_name(kind.as_str_name(), "MODEL_KIND_"))
            .unwrap_or_default(),
        "status": status(model),
        "source": model.source,
        "feature_schema_version": model.feature_schema_version,
        "feature_names": model.feature_names,
        "actions": model.actions,
        "uplift_calibration_error": model.uplift_calibration_error,
        "horizon_days": model.horizon_days,
        "created_at": model.created_at.map(format_time),
        "activated_at": model.activated_at.map(format_time),
        "trained_from": model.trained_from.map(format_time),
        "trained_to": model.trained_to.map(format_time),
        "training_rows": model.training_rows,
        "holdout_rows": model.holdout_rows,
        "holdout_metrics": metrics_json(model.holdout_metrics.as_ref()),
        "uplift_metrics": uplift_metrics_json(model.uplift_metrics.as_ref()),
        "holdout_from": model.holdout_from.map(format_time),
        "learner": model.learner,
        "holdout": model.holdout,
        "candidates": model.candidates.iter().map(|c| serde_json::json!({
            "learner": c.learner,
            "holdout_metrics": metrics_json(c.holdout_metrics.as_ref()),
            "uplift_metrics": uplift_metrics_json(c.uplift_metrics.as_ref()),
        })).collect::<Vec<_>>(),
    })
}

/// One line per learner the run fitted, with its hold-out metrics.
fn candidates_text(text: &mut String, model: &proto::ModelInfo) {
    for candidate in &model.candidates {
        let kept = if candidate.learner == model.learner {
            "  (kept)"
        } else {
            ""
        };
        if let Some(metrics) = &candidate.holdout_metrics {
            let _ = writeln!(
                text,
                "  {:<10} ROC-AUC {:.4}, Brier {:.4}, calibration error {:.4}{kept}",
                candidate.learner,
                metrics.roc_auc,
                metrics.brier,
                metrics.expected_calibration_error,
            );
        }
        if let Some(metrics) = &candidate.uplift_metrics {
            let _ = writeln!(
                text,
                "  {:<19} Qini coefficient {:.4} (unweighted {:.4}), {}{kept}",
                candidate.learner,
                metrics.qini_coefficient,
                metrics.unweighted_qini_coefficient,
                uplift_at_text(metrics),
            );
        }
    }
}

fn train_result_json(result: &proto::TrainResult) -> serde_json::Value {
    serde_json::json!({
        "model": result.model.as_ref().map(model_json),
        "active_version": result.active_version,
        "active_on_same_holdout": metrics_json(result.active_on_same_holdout.as_ref()),
        "active_uplift_on_same_holdout": uplift_metrics_json(result.active_uplift_on_same_holdout.as_ref()),
        "promoted": result.promoted,
        "decision": result.decision,
    })
}

fn metrics_line(m: &proto::Metrics) -> String {
    format!(
        "{} rows, {} churned: ROC-AUC {:.4}, PR-AUC {:.4}, Brier {:.4}, log-loss {:.4}, calibration error {:.4}",
        m.rows, m.positives, m.roc_auc, m.pr_auc, m.brier, m.log_loss, m.expected_calibration_error
    )
}

fn uplift_at_text(m: &proto::UpliftMetrics) -> String {
    crate::model::qini::uplift_at_text(m.uplift_at.iter().map(|at| (at.fraction, at.uplift)))
}

fn uplift_metrics_line(m: &proto::UpliftMetrics) -> String {
    format!(
        "{} failures, {} recovered ({} retained), {} not ({} retained): Qini coefficient {:.4} (unweighted {:.4}), {}",
        m.rows,
        m.treated,
        m.treated_retained,
        m.control,
        m.control_retained,
        m.qini_coefficient,
        m.unweighted_qini_coefficient,
        uplift_at_text(m)
    )
}

fn model_text(model: &proto::ModelInfo) -> String {
    let mut text = String::new();
    let _ = writeln!(text, "version      {}", model.version);
    let _ = writeln!(text, "status       {} ({})", status(model), model.source);
    let _ = writeln!(text, "created      {}", time(model.created_at));
    if model.activated_at.is_some() {
        let _ = writeln!(text, "activated    {}", time(model.activated_at));
    }
    let _ = writeln!(
        text,
        "trained on   {} rows as of {} to {}, horizon {} days",
        model.training_rows,
        time(model.trained_from),
        time(model.trained_to),
        model.horizon_days
    );
    if !model.learner.is_empty() {
        let _ = writeln!(text, "learner      {}", model.learner);
    }
    if !model.holdout.is_empty() {
        let _ = writeln!(text, "held out     {}", model.holdout);
    }
    candidates_text(&mut text, model);
    if let Some(from) = model.holdout_from {
        let _ = writeln!(text, "held out     failures from {}", format_time(from));
    }
    if let Some(metrics) = &model.uplift_metrics {
        let _ = writeln!(text, "hold-out     {}", uplift_metrics_line(metrics));
        for point in &metrics.qini_curve {
            let _ = writeln!(text, "  top {:>7}  Qini {:.1}", point.units, point.qini);
        }
    }
    if let Some(error) = model.uplift_calibration_error {
        let _ = writeln!(
            text,
            "calibration  uplift off by {error:.4} beyond chance on the hold-out (intervals widen by it)"
        );
    }
    if let Some(metrics) = &model.holdout_metrics {
        let _ = writeln!(text, "hold-out     {}", metrics_line(metrics));
        for bin in &metrics.calibration {
            let _ = writeln!(
                text,
                "  {:.1}-{:.1}  {:>7} rows  predicted {:.3}  observed {:.3}",
                bin.lower, bin.upper, bin.count, bin.mean_predicted, bin.observed_rate
            );
        }
    }
    if !model.actions.is_empty() {
        let _ = writeln!(text, "actions      {}", model.actions.join(", "));
    }
    let _ = write!(
        text,
        "features     schema {}: {}",
        model.feature_schema_version,
        model.feature_names.join(", ")
    );
    text
}

/// The list of versions, with the headline metrics of their kind: ROC-AUC and Brier for a
/// health model, the Qini coefficient and uplift@10% for an uplift model.
fn models_table(models: &[proto::ModelInfo]) -> String {
    let uplift = models
        .first()
        .is_some_and(|model| model.kind() == proto::ModelKind::Uplift);
    let (first, second) = if uplift {
        ("Qini", "uplift@10%")
    } else {
        ("ROC-AUC", "Brier")
    };
    let mut text = format!(
        "{:<32} {:<10} {:<9} {:<27} {:<19} {first:>10} {second:>10}",
        "version", "status", "source", "created", "learner"
    );
    for model in models {
        let headline = |value: Option<f64>| value.map_or("-".to_owned(), |v| format!("{v:.4}"));
        let (first, second) = match (&model.uplift_metrics, &model.holdout_metrics) {
            (Some(m), _) => (
                headline(Some(m.qini_coefficient)),
                headline(m.uplift_at.first().and_then(|at| at.uplift)),
            ),
            (None, Some(m)) => (headline(Some(m.roc_auc)), headline(Some(m.brier))),
            (None, None) => (headline(None), headline(None)),
        };
        let learner = if model.learner.is_empty() {
            "-"
        } else {
            &model.learner
        };
        let _ = write!(
            text,
            "\n{:<32} {:<10} {:<9} {:<27} {learner:<19} {first:>10} {second:>10}",
            model.version,
            status(model),
            model.source,
            time(model.created_at),
        );
    }
    text
}

fn train_result_text(result: &proto::TrainResult) -> String {
    let mut text = String::new();
    if let Some(model) = &result.model {
        let _ = writeln!(text, "version      {}", model.version);
        let _ = writeln!(text, "status       {}", status(model));
        if !model.holdout.is_empty() {
            let _ = writeln!(text, "held out     {}", model.holdout);
        }
        candidates_text(&mut text, model);
        if let Some(metrics) = &model.holdout_metrics {
            let _ = writeln!(
                text,
                "hold-out     {} ({})",
                metrics_line(metrics),
                model.learner
            );
        }
        if let Some(metrics) = &model.uplift_metrics {
            let _ = writeln!(
                text,
                "hold-out     {} ({})",
                uplift_metrics_line(metrics),
                model.learner
            );
        }
    }
    if let Some(active) = &result.active_on_same_holdout {
        let _ = writeln!(
            text,
            "was active   {}: ROC-AUC {:.4}, Brier {:.4} on the same hold-out",
            result.active_version, active.roc_auc, active.brier
        );
    }
    if let Some(active) = &result.active_uplift_on_same_holdout {
        let _ = writeln!(
            text,
            "was active   {}: Qini coefficient {:.4}, {} on the same hold-out",
            result.active_version,
            active.qini_coefficient,
            uplift_at_text(active)
        );
    }
    let _ = write!(text, "decision     {}", result.decision);
    text
}
