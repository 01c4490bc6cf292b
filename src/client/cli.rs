//! The `rescue-client` command line: every command, its options, and what each run
//! prints and exits with.

use std::io::Write;

use clap::{Parser, Subcommand};

use super::audit::{self, AuditArgs};
use super::backfill::{self, BackfillArgs};
use super::connection::ConnectionOptions;
use super::import::{self, ImportArgs};
use super::models::{self, ModelsCommand, TrainArgs};
use super::program::{self, FunnelArgs, RecommendArgs};
use super::score::{self, ScoreArgs};

#[derive(Debug, Parser)]
#[command(
    name = "rescue-client",
    version,
    about = "Backfills, batch scoring and model administration against a rescue server"
)]
pub struct Cli {
    #[command(flatten)]
    pub connection: ConnectionOptions,
    /// Print results as JSON on stdout, for scripts (logs and progress stay on stderr).
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Store a CSV or JSON Lines file (optionally gzip-compressed) of one record kind;
    /// resumable: after a crash or Ctrl-C the same command continues where it stopped.
    Backfill(BackfillArgs),
    /// Store a customer table (one row per customer: an id, a churn label, any other columns
    /// as attributes) as customers and churn outcomes, ready to train on.
    Import(ImportArgs),
    /// Score a file of customer ids into a CSV or JSON Lines file.
    Score(ScoreArgs),
    /// Train a health model on the stored data; promoted if not worse than the active one.
    Train(TrainArgs),
    /// List, show, promote and roll back model versions.
    #[command(subcommand)]
    Models(ModelsCommand),
    /// Decide whether to invest in recovering a customer, and how.
    Recommend(RecommendArgs),
    /// The recovery funnel of the decisions made in a time window.
    Funnel(FunnelArgs),
    /// The audit trail: who promoted, rolled back, trained, reloaded or ingested what, newest
    /// first (needs an admin credential).
    Audit(AuditArgs),
}

/// How a run that did not fail ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finished {
    /// Everything was done: every row stored, every customer scored.
    Complete,
    /// The run reached the end, but some rows were rejected or some customers not scored.
    Incomplete,
}

impl Finished {
    /// The process exit code: 0 complete, 3 incomplete (1 is a failure, 2 a usage error).
    pub fn exit_code(self) -> u8 {
        match self {
            Self::Complete => 0,
            Self::Incomplete => 3,
        }
    }
}

/// Runs a parsed command line; what it prints goes to stdout. A failure that a setting of
/// the connection likely explains says which.
pub async fn run(cli: Cli) -> anyhow::Result<Finished> {
    let connection = cli.connection.clone();
    run_command(cli)
        .await
        .map_err(|error| match connection.hint(&format!("{error:#}")) {
            Some(hint) => error.context(hint),
            None => error,
        })
}

async fn run_command(cli: Cli) -> anyhow::Result<Finished> {
    let channel = cli.connection.channel()?;
    let json = cli.json;
    let (output, complete) = match &cli.command {
        Command::Backfill(args) => {
            let summary = backfill::backfill(channel, args).await?;
            (render(&summary, summary.json(), json), summary.complete())
        }
        Command::Import(args) => {
            let summary = import::import(channel, args).await?;
            (render(&summary, summary.json(), json), summary.complete())
        }
        Command::Score(args) => {
            let summary = score::score(channel, args).await?;
            (render(&summary, summary.json(), json), summary.complete())
        }
        Command::Train(args) => (models::train(channel, args, json).await?, true),
        Command::Models(command) => (models::models(channel, command, json).await?, true),
        Command::Recommend(args) if args.file.is_some() => {
            let summary = program::recommend_file(channel, args).await?;
            (render(&summary, summary.json(), json), summary.complete())
        }
        Command::Recommend(args) => (program::recommend(channel, args, json).await?, true),
        Command::Funnel(args) => (program::funnel(channel, args, json).await?, true),
        Command::Audit(args) => (audit::audit(channel, args, json).await?, true),
    };
    let written = writeln!(std::io::stdout().lock(), "{output}");
    // A reader that stopped early (`| head`) is no failure of the run.
    if let Err(error) = written
        && error.kind() != std::io::ErrorKind::BrokenPipe
    {
        return Err(anyhow::Error::new(error).context("Failed to write the output"));
    }
    Ok(if complete {
        Finished::Complete
    } else {
        Finished::Incomplete
    })
}

/// A summary as text, or as JSON for scripts.
fn render(summary: &impl std::fmt::Display, value: serde_json::Value, json: bool) -> String {
    if json {
        value.to_string()
    } else {
        summary.to_string()
    }
}

/// Logs and progress go to stderr, so stdout carries only results; coloured only when stderr
/// is a terminal.
pub fn init_logging() {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_env("RESCUE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,h2=warn,tower=warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        <Cli as clap::CommandFactory>::command().debug_assert();
    }

    #[test]
    fn connection_flags_come_before_or_after_the_command() {
        let cli = Cli::try_parse_from([
            "rescue-client",
            "models",
            "list",
            "--server",
            "localhost:1",
            "--json",
        ])
        .expect("parses");
        assert_eq!(cli.connection.server, "localhost:1");
        assert!(cli.json);
    }
}
