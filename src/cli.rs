//! The `rescue` command line: `serve` runs the service, `migrate` prepares a database,
//! `simulate` fills one with a reproducible simulated customer base, `train` trains a model.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::config::ServeArgs;
use crate::domain::Timestamp;
use crate::model::ModelKind;
use crate::registry::ServingModels;
use crate::scoring::HealthModel;
use crate::server::{Application, shutdown_signal};
use crate::simulate::{self, SimulationParams};
use crate::store::{self, DatabaseUrl, PoolOptions};
use crate::telemetry::{self, LogFormat};
use crate::training::{self, TrainingPlan};
use crate::uplift::UpliftModel;

#[derive(Debug, Parser)]
#[command(
    name = "rescue",
    version,
    about = "Customer-health and service-recovery decision service"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the gRPC API (creates and migrates the database if needed).
    Serve(Box<ServeArgs>),
    /// Apply the database migrations and exit.
    Migrate {
        /// sqlite://FILE or postgres://…
        #[arg(long = "database", env = "RESCUE_DATABASE_URL", default_value = crate::config::DEFAULT_DATABASE_URL)]
        database_url: String,
    },
    /// Generate a reproducible simulated customer base into the database, or into backfill
    /// files with --out-dir (and, optionally, the true churn and recovery probabilities
    /// behind it as CSV files).
    Simulate {
        /// How many customers to generate.
        #[arg(long)]
        customers: usize,
        /// The same seed always generates the same customers.
        #[arg(long)]
        seed: u64,
        /// sqlite://FILE or postgres://…
        #[arg(long = "database", env = "RESCUE_DATABASE_URL", default_value = crate::config::DEFAULT_DATABASE_URL)]
        database_url: String,
        /// Directory for churn_oracle.csv and recovery_oracle.csv.
        #[arg(long, conflicts_with = "out_dir")]
        oracle_out: Option<PathBuf>,
        /// Write one backfill file per record kind into this directory (customers.csv,
        /// usage_events.csv, …) instead of the database, for `rescue-client backfill`.
        #[arg(long)]
        out_dir: Option<PathBuf>,
        /// Format of the files written with --out-dir.
        #[arg(long, value_enum, default_value = "csv", requires = "out_dir")]
        format: crate::client::Format,
        /// Compress the files written with --out-dir (adds .gz to their names).
        #[arg(long, requires = "out_dir")]
        gzip: bool,
    },
    /// Train a health or recovery uplift model on the stored data, register it, and promote
    /// it if it is not worse than the active model of its kind on the same hold-out (by more
    /// than the margin).
    Train(TrainArgs),
    /// Manage API keys.
    #[command(subcommand)]
    Keys(KeysCommand),
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Make a new API key: prints the key once on standard output (give it to its caller;
    /// it is not stored) and adds its digest, name and roles to the key file, which a
    /// running server reads again by itself.
    New {
        /// Who the key is for, as the audit trail will name it (key:NAME).
        #[arg(long)]
        name: String,
        /// A role the key grants (repeat the flag for several).
        #[arg(long = "role", value_enum, required = true)]
        roles: Vec<crate::auth::Role>,
        /// The key file to add the key to (created if missing).
        #[arg(long = "file", env = "RESCUE_API_KEYS")]
        file: PathBuf,
    },
}

#[derive(Debug, clap::Args)]
pub struct TrainArgs {
    /// sqlite://FILE or postgres://…
    #[arg(long = "database", env = "RESCUE_DATABASE_URL", default_value = crate::config::DEFAULT_DATABASE_URL)]
    database_url: String,
    /// Which model to train.
    #[arg(long, value_enum, default_value = "health")]
    kind: ModelKind,
    /// Days after each as-of time (health) or failure (uplift) within which churn counts.
    #[arg(long, default_value_t = training::DEFAULT_HORIZON_DAYS)]
    horizon_days: u32,
    /// Health: as-of times of the training rows (RFC 3339, ascending; repeat the flag); rows
    /// at the last one are the hold-out. Default: 4 times one horizon apart, ending one
    /// horizon before the latest churn observation. Uplift: at most one, where the hold-out
    /// starts; default: where the newest 30% of the failures with a known outcome start.
    #[arg(long = "as-of", value_parser = parse_time)]
    as_of: Vec<Timestamp>,
    /// Keep the new model a candidate whatever its metrics.
    #[arg(long)]
    no_promote: bool,
    /// Hold-out ROC-AUC (health) or Qini coefficient (uplift) the new model may lose against
    /// the active one and still be promoted. Default: 0.005 (health), 0.002 (uplift).
    #[arg(long)]
    promotion_margin: Option<f64>,
    /// Uplift: the fewest recovered, and the fewest unrecovered, training failures with a
    /// known outcome; below it training is refused.
    #[arg(long, default_value_t = training::DEFAULT_MIN_OUTCOMES)]
    min_outcomes: usize,
    /// Also write the new model's artifact (JSON) to this file.
    #[arg(long)]
    export: Option<PathBuf>,
}

fn parse_time(text: &str) -> Result<Timestamp, String> {
    let at = chrono::DateTime::parse_from_rfc3339(text)
        .map_err(|e| format!("{text:?}: {e} (use RFC 3339, e.g. 2025-06-30T00:00:00Z)"))?;
    Ok(Timestamp::from_unix_micros(at.timestamp_micros()))
}

async fn train(args: TrainArgs) -> anyhow::Result<()> {
    let url = DatabaseUrl::new(args.database_url);
    let store = store::open(&url, PoolOptions::default()).await?;
    let plan = TrainingPlan {
        horizon_days: args.horizon_days,
        as_of: args.as_of,
        auto_promote: !args.no_promote,
        promotion_margin: args
            .promotion_margin
            .unwrap_or(training::default_promotion_margin(args.kind)),
        min_outcomes: args.min_outcomes,
        ..TrainingPlan::default()
    };
    let serving = ServingModels::default();
    let now = Timestamp::now();
    let log = |stage: String| tracing::info!("{stage}");
    let export = args.export.as_deref();
    let decision = match args.kind {
        ModelKind::Health => {
            let report = training::train::<HealthModel>(&store, &serving, plan, now, &log).await?;
            export_and_name(export, &report.model)?;
            print_health_metrics(&report);
            report.decision
        }
        ModelKind::Uplift => {
            let report = training::train::<UpliftModel>(&store, &serving, plan, now, &log).await?;
            export_and_name(export, &report.model)?;
            print_uplift_metrics(&report);
            report.decision
        }
    };
    println!("decision     {decision}");
    Ok(())
}

/// The new health model's hold-out metrics, and the active one's on the same rows.
fn print_health_metrics(report: &training::TrainingReport<HealthModel>) {
    let metrics = &report.artifact.metrics;
    println!(
        "hold-out     {} rows, {} churned: ROC-AUC {:.4}, PR-AUC {:.4}, Brier {:.4}, log-loss {:.4}, calibration error {:.4}",
        metrics.rows,
        metrics.positives,
        metrics.roc_auc,
        metrics.pr_auc,
        metrics.brier,
        metrics.log_loss,
        metrics.expected_calibration_error
    );
    if let Some((version, active)) = &report.active_on_same_holdout {
        println!(
            "was active   {version}: ROC-AUC {:.4}, Brier {:.4} on the same hold-out",
            active.roc_auc, active.brier
        );
    }
}

/// Writes the new model's artifact to `export`, if asked, and prints its version and status.
fn export_and_name(
    export: Option<&std::path::Path>,
    model: &store::StoredModel,
) -> anyhow::Result<()> {
    if let Some(path) = export {
        std::fs::write(path, &model.artifact)
            .with_context(|| format!("Failed to write the artifact to {}", path.display()))?;
    }
    println!("version      {}", model.version);
    println!("status       {}", model.status);
    Ok(())
}

/// The new uplift model's hold-out metrics, and the active one's on the same rows.
fn print_uplift_metrics(report: &training::TrainingReport<UpliftModel>) {
    let metrics = &report.artifact.metrics;
    let uplift_at = |m: &crate::uplift::UpliftMetrics| {
        crate::model::qini::uplift_at_text(m.uplift_at.iter().map(|at| (at.fraction, at.uplift)))
    };
    println!(
        "hold-out     {} failures, {} recovered ({} retained), {} not ({} retained): Qini coefficient {:.4}, {}",
        metrics.rows,
        metrics.treated,
        metrics.treated_retained,
        metrics.control,
        metrics.control_retained,
        metrics.qini_coefficient,
        uplift_at(metrics)
    );
    if let Some((version, active)) = &report.active_on_same_holdout {
        println!(
            "was active   {version}: Qini coefficient {:.4}, {} on the same hold-out",
            active.qini_coefficient,
            uplift_at(active)
        );
    }
}

/// Makes a key and appends its entry to `file`, checking the file still parses with it (so
/// a duplicate name is refused before anything is written).
fn new_api_key(name: &str, roles: &[crate::auth::Role], file: &Path) -> anyhow::Result<String> {
    use std::io::Write;
    let key = crate::auth::new_key();
    let mut unique = roles.to_vec();
    unique.dedup();
    let entry = format!(
        "\n[[keys]]\nname = {}\nsha256 = \"{}\"\nroles = [{}]\n",
        // A JSON string is a valid TOML basic string (same escapes).
        serde_json::to_string(name)?,
        crate::auth::key_digest(&key),
        unique
            .iter()
            .map(|role| format!("\"{role}\""))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let before = match std::fs::read(file) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(error) => {
            return Err(error).with_context(|| format!("Cannot read {}", file.display()));
        }
    };
    let mut after = before.clone();
    after.extend_from_slice(entry.as_bytes());
    crate::auth::ApiKeys::parse(&after)
        .map_err(anyhow::Error::msg)
        .with_context(|| format!("The key cannot be added to {}", file.display()))?;
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(file)
        .and_then(|mut out| out.write_all(entry.as_bytes()))
        .with_context(|| format!("Cannot write {}", file.display()))?;
    Ok(key)
}

/// Runs a parsed command line to completion.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => {
            let settings = (*args).resolve()?;
            telemetry::init(settings.log_format);
            tracing::info!(database = %settings.database, "opening the database");
            let application = Application::build(&settings).await?;
            application.run_until_stopped(shutdown_signal()).await
        }
        Command::Migrate { database_url } => {
            telemetry::init(LogFormat::Human);
            let url = DatabaseUrl::new(database_url);
            store::open(&url, PoolOptions::default()).await?;
            tracing::info!(database = %url, "migrations applied");
            Ok(())
        }
        Command::Train(args) => {
            telemetry::init(LogFormat::Human);
            train(args).await
        }
        Command::Keys(KeysCommand::New { name, roles, file }) => {
            let key = new_api_key(&name, &roles, &file)?;
            println!("{key}");
            eprintln!(
                "added key:{name} ({}) to {}",
                roles
                    .iter()
                    .map(|r| r.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                file.display()
            );
            Ok(())
        }
        Command::Simulate {
            customers,
            seed,
            out_dir: Some(directory),
            format,
            gzip,
            ..
        } => {
            telemetry::init(LogFormat::Human);
            tracing::info!(directory = %directory.display(), customers, seed, "simulating customers into files");
            let params = SimulationParams { customers, seed };
            let summary = tokio::task::spawn_blocking(move || {
                simulate::write_files(params, &directory, format, gzip)
            })
            .await
            .context("The simulation thread panicked")??;
            println!("{summary}");
            Ok(())
        }
        Command::Simulate {
            customers,
            seed,
            database_url,
            oracle_out,
            out_dir: None,
            ..
        } => {
            telemetry::init(LogFormat::Human);
            let url = DatabaseUrl::new(database_url);
            tracing::info!(database = %url, customers, seed, "simulating customers");
            let store = store::open(&url, PoolOptions::default()).await?;
            let params = SimulationParams { customers, seed };
            let summary = simulate::run(store.as_ref(), params, oracle_out.as_deref()).await?;
            println!("{summary}");
            Ok(())
        }
    }
}
