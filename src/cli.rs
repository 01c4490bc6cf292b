//! The `rescue` command line: `serve` runs the service, `migrate` prepares a database,
//! `simulate` fills one with a reproducible simulated customer base, `train` trains a model.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::config::ServeArgs;
use crate::domain::Timestamp;
use crate::scoring::ModelSlot;
use crate::server::{Application, shutdown_signal};
use crate::simulate::{self, SimulationParams};
use crate::store::{self, DatabaseUrl, PoolOptions};
use crate::telemetry::{self, LogFormat};
use crate::training::{self, TrainingPlan};

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
    Serve(ServeArgs),
    /// Apply the database migrations and exit.
    Migrate {
        /// sqlite://FILE or postgres://…
        #[arg(long = "database", env = "RESCUE_DATABASE_URL", default_value = crate::config::DEFAULT_DATABASE_URL)]
        database_url: String,
    },
    /// Generate a reproducible simulated customer base into the database (and, optionally,
    /// the true churn and recovery probabilities behind it as CSV files).
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
        #[arg(long)]
        oracle_out: Option<PathBuf>,
    },
    /// Train a health model on the stored data, register it, and promote it if it is not
    /// worse than the active model on the same hold-out (by more than the margin).
    Train(TrainArgs),
}

#[derive(Debug, clap::Args)]
pub struct TrainArgs {
    /// sqlite://FILE or postgres://…
    #[arg(long = "database", env = "RESCUE_DATABASE_URL", default_value = crate::config::DEFAULT_DATABASE_URL)]
    database_url: String,
    /// Days after each as-of time within which churn counts.
    #[arg(long, default_value_t = training::DEFAULT_HORIZON_DAYS)]
    horizon_days: u32,
    /// As-of times of the training rows (RFC 3339, ascending; repeat the flag); rows at the
    /// last one are the hold-out. Default: 4 times one horizon apart, ending one horizon
    /// before the latest churn observation.
    #[arg(long = "as-of", value_parser = parse_time)]
    as_of: Vec<Timestamp>,
    /// Keep the new model a candidate whatever its metrics.
    #[arg(long)]
    no_promote: bool,
    /// Hold-out ROC-AUC the new model may lose against the active one and still be promoted.
    #[arg(long, default_value_t = training::DEFAULT_PROMOTION_MARGIN)]
    promotion_margin: f64,
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
    let slot = ModelSlot::default();
    let plan = TrainingPlan {
        horizon_days: args.horizon_days,
        as_of: args.as_of,
        auto_promote: !args.no_promote,
        promotion_margin: args.promotion_margin,
        ..TrainingPlan::default()
    };
    let report =
        training::train_health_model(&store, &slot, plan, &|stage| tracing::info!("{stage}"))
            .await?;
    if let Some(path) = &args.export {
        std::fs::write(path, &report.model.artifact)
            .with_context(|| format!("Failed to write the artifact to {}", path.display()))?;
    }
    let metrics = &report.artifact.metrics;
    println!("version      {}", report.model.version);
    println!("status       {}", report.model.status);
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
    println!("decision     {}", report.decision);
    Ok(())
}

/// Runs a parsed command line to completion.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => {
            let settings = args.resolve()?;
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
        Command::Simulate {
            customers,
            seed,
            database_url,
            oracle_out,
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
