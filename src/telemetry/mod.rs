//! Structured logs with `tracing`: human-readable lines by default, JSON objects for log
//! pipelines. The level filter comes from `RESCUE_LOG` (e.g. `info`, `rescue=debug`).
//! Prometheus metrics live in [`metrics`].

pub mod metrics;
mod rpc;

use serde::{Deserialize, Serialize};
use tracing_subscriber::EnvFilter;

pub use rpc::{RpcLog, RpcLogLayer};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Human,
    Json,
}

/// Installs the global subscriber; call once, first thing in `main`. Human lines are coloured
/// only on a terminal: a file or a pipe gets plain text, not escape codes.
pub fn init(format: LogFormat) {
    use std::io::IsTerminal;
    let filter = EnvFilter::try_from_env("RESCUE_LOG")
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,h2=warn,tower=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stdout().is_terminal());
    match format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .init(),
    }
}
