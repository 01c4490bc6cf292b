//! The `rescue` command line: `serve` runs the service, `migrate` prepares a database.

use clap::{Parser, Subcommand};

use crate::config::ServeArgs;
use crate::server::{Application, shutdown_signal};
use crate::store::{self, DatabaseUrl, PoolOptions};
use crate::telemetry::{self, LogFormat};

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
    }
}
