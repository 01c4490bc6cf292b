//! `rescue-client score`: a file of customer ids scored through the `ScoreCustomers` stream,
//! written as CSV or JSON Lines.
//!
//! Memory stays constant however many customers there are: ids are read on a thread of their
//! own a bounded distance ahead, at most `--in-flight` requests are unanswered at a time, and
//! each answer is written out as it arrives (the server answers in request order).

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::sync::{Semaphore, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;

use super::columns::{enum_name, format_time, parse_time};
use super::format::{self, Format, Output};
use super::progress::Progress;
use super::retry::call_error;
use super::summary::thousands;
use crate::proto::v1::{
    self as proto, score_customer_request::Subject, score_customers_response::Result as Answer,
    scoring_client::ScoringClient,
};

/// Requests sent but not answered yet: enough to hide the round trip, few enough that a
/// stream's buffers stay small.
pub const DEFAULT_IN_FLIGHT: u64 = 64;

/// `rescue-client score` options.
#[derive(Debug, Clone, clap::Args)]
pub struct ScoreArgs {
    /// Customer ids, one per line, or a CSV file with a `customer_id` column (optionally
    /// gzip-compressed).
    pub ids: PathBuf,
    /// Where to write the scores: .csv or .jsonl (with .gz to compress).
    #[arg(long)]
    pub out: PathBuf,
    /// The output's format [default: from its name].
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Score as of this time (RFC 3339) [default: now].
    #[arg(long, value_parser = parse_time)]
    pub as_of: Option<prost_types::Timestamp>,
    /// Requests sent ahead of the answers.
    #[arg(long, default_value_t = DEFAULT_IN_FLIGHT, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub in_flight: u64,
}

/// What a scoring run did.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreSummary {
    pub out: PathBuf,
    pub scored: u64,
    pub failed: u64,
    pub elapsed: Duration,
}

impl ScoreSummary {
    pub fn complete(&self) -> bool {
        self.failed == 0
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "out": self.out.display().to_string(),
            "complete": self.complete(),
            "scored": self.scored,
            "failed": self.failed,
            "seconds": self.elapsed.as_secs_f64(),
        })
    }
}

impl std::fmt::Display for ScoreSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let rate = (self.scored + self.failed) as f64 / self.elapsed.as_secs_f64().max(1e-9);
        write!(
            f,
            "scored {} customers into {} ({} failed) in {:.1} s ({} per second)",
            thousands(self.scored),
            self.out.display(),
            thousands(self.failed),
            self.elapsed.as_secs_f64(),
            thousands(rate.round() as u64)
        )
    }
}

/// Reads the ids of `path` on the calling (blocking) thread and sends them on, each with the
/// file bytes consumed so far.
fn read_ids(path: &Path, ids: &mpsc::Sender<anyhow::Result<(String, u64)>>) -> anyhow::Result<()> {
    let failed = || format!("Failed to read {}", path.display());
    let input = format::open(path, 0)?;
    let consumed = input.consumed;
    let mut reader = input.reader;
    let mut first = String::new();
    reader.read_line(&mut first).with_context(failed)?;
    let header: Vec<&str> = first.split(',').map(str::trim).collect();
    let column = header.iter().position(|name| *name == "customer_id");
    anyhow::ensure!(
        column.is_some() || header.len() == 1,
        "{} has several columns but none named customer_id",
        path.display()
    );
    let send = |id: &str| {
        let id = id.trim();
        let at = consumed.load(std::sync::atomic::Ordering::Relaxed);
        id.is_empty() || ids.blocking_send(Ok((id.to_owned(), at))).is_ok()
    };
    match column {
        // One id per line, the first line included.
        None => {
            if !send(&first) {
                return Ok(());
            }
            for line in reader.lines() {
                if !send(&line.with_context(failed)?) {
                    return Ok(());
                }
            }
        }
        Some(column) => {
            let mut rows = csv::ReaderBuilder::new()
                .has_headers(false)
                .flexible(true)
                .from_reader(reader);
            for row in rows.records() {
                let row = row.with_context(failed)?;
                if !send(row.get(column).unwrap_or_default()) {
                    return Ok(());
                }
            }
        }
    }
    Ok(())
}

/// Writes scores as CSV rows or JSON lines.
enum ScoreWriter {
    /// Boxed: a CSV writer carries a large buffer and state.
    Csv(Box<csv::Writer<Output>>),
    Jsonl(Output),
}

const CSV_HEADER: [&str; 9] = [
    "customer_id",
    "health_score",
    "churn_probability",
    "band",
    "drivers",
    "model_version",
    "as_of",
    "error",
    "warnings",
];

impl ScoreWriter {
    fn create(path: &Path, format: Format) -> anyhow::Result<Self> {
        let output = Output::create(path)?;
        Ok(match format {
            Format::Csv => {
                let mut writer = csv::Writer::from_writer(output);
                writer.write_record(CSV_HEADER)?;
                Self::Csv(Box::new(writer))
            }
            Format::Jsonl => Self::Jsonl(output),
        })
    }

    fn write(&mut self, request_id: &str, answer: Option<Answer>) -> anyhow::Result<bool> {
        let scored = matches!(answer, Some(Answer::Score(_)));
        match self {
            Self::Csv(writer) => writer.write_record(csv_row(request_id, answer))?,
            Self::Jsonl(output) => {
                serde_json::to_writer(&mut *output, &json_row(request_id, answer))?;
                output.write_all(b"\n")?;
            }
        }
        Ok(scored)
    }

    fn finish(self) -> anyhow::Result<()> {
        let output = match self {
            Self::Csv(writer) => (*writer)
                .into_inner()
                .map_err(|error| anyhow::anyhow!("{}", error.error()))?,
            Self::Jsonl(output) => output,
        };
        Ok(output.finish()?)
    }
}

fn band(raw: i32) -> String {
    proto::HealthBand::try_from(raw)
        .map(|band| enum_name(band.as_str_name(), "HEALTH_BAND_"))
        .unwrap_or_default()
}

fn error_text(error: &proto::ScoreError) -> String {
    let code = tonic::Code::from_i32(error.code);
    let mut text = format!("{code:?}: {}", error.message);
    for field in &error.field_errors {
        text.push_str(&format!("; {}: {}", field.field, field.description));
    }
    text
}

fn csv_row(request_id: &str, answer: Option<Answer>) -> Vec<String> {
    match answer {
        Some(Answer::Score(score)) => {
            let drivers: Vec<String> = score
                .drivers
                .iter()
                .map(|d| format!("{} {:+.3}", d.feature, d.contribution))
                .collect();
            vec![
                score.customer_id,
                format!("{:.2}", score.health_score),
                format!("{:.4}", score.churn_probability),
                band(score.band),
                drivers.join("; "),
                score.model_version,
                score.as_of.map(format_time).unwrap_or_default(),
                String::new(),
                score.warnings.join("; "),
            ]
        }
        Some(Answer::Error(error)) => {
            let mut row = vec![String::new(); CSV_HEADER.len()];
            row[0] = request_id.to_owned();
            row[7] = error_text(&error);
            row
        }
        None => {
            let mut row = vec![String::new(); CSV_HEADER.len()];
            row[0] = request_id.to_owned();
            row[7] = "the server sent no result".into();
            row
        }
    }
}

fn json_row(request_id: &str, answer: Option<Answer>) -> serde_json::Value {
    match answer {
        Some(Answer::Score(score)) => serde_json::json!({
            "customer_id": score.customer_id,
            "health_score": score.health_score,
            "churn_probability": score.churn_probability,
            "band": band(score.band),
            "drivers": score.drivers.iter().map(|d| serde_json::json!({
                "feature": d.feature,
                "description": d.description,
                "contribution": d.contribution,
            })).collect::<Vec<_>>(),
            "model_version": score.model_version,
            "as_of": score.as_of.map(format_time),
            "warnings": score.warnings,
        }),
        Some(Answer::Error(error)) => serde_json::json!({
            "customer_id": request_id,
            "error": {
                "code": format!("{:?}", tonic::Code::from_i32(error.code)),
                "message": error.message,
                "fields": error.field_errors.iter().map(|f| serde_json::json!({
                    "field": f.field,
                    "description": f.description,
                })).collect::<Vec<_>>(),
            },
        }),
        None => serde_json::json!({
            "customer_id": request_id,
            "error": {"code": "Unknown", "message": "the server sent no result"},
        }),
    }
}

/// Scores every id of the file and writes the answers in the file's order.
pub async fn score(channel: Channel, args: &ScoreArgs) -> anyhow::Result<ScoreSummary> {
    let started = Instant::now();
    let format = Format::resolve(args.format, &args.out)?;
    let total_bytes = std::fs::metadata(&args.ids)
        .with_context(|| format!("Failed to read {}", args.ids.display()))?
        .len();
    let mut writer = ScoreWriter::create(&args.out, format)?;
    let in_flight = usize::try_from(args.in_flight).unwrap_or(64);

    let (id_sender, mut ids) = mpsc::channel(in_flight);
    let path = args.ids.clone();
    let reading = tokio::task::spawn_blocking(move || {
        if let Err(error) = read_ids(&path, &id_sender) {
            let _ = id_sender.blocking_send(Err(error));
        }
    });

    // A permit per unanswered request: the sender waits for one, each answer returns one.
    let permits = Arc::new(Semaphore::new(in_flight));
    let (request_sender, requests) = mpsc::channel(in_flight);
    let (position_sender, mut positions) = mpsc::unbounded_channel::<u64>();
    let as_of = args.as_of;
    let sending = {
        let permits = Arc::clone(&permits);
        tokio::spawn(async move {
            while let Some(next) = ids.recv().await {
                let (id, at): (String, u64) = next?;
                permits.acquire().await?.forget();
                let _ = position_sender.send(at);
                let request = proto::ScoreCustomersRequest {
                    request_id: id.clone(),
                    request: Some(proto::ScoreCustomerRequest {
                        subject: Some(Subject::CustomerId(id)),
                        as_of,
                    }),
                };
                if request_sender.send(request).await.is_err() {
                    break;
                }
            }
            anyhow::Ok(())
        })
    };

    let mut client = ScoringClient::new(channel);
    let mut answers = client
        .score_customers(ReceiverStream::new(requests))
        .await
        .map_err(|status| call_error("ScoreCustomers", &status))?
        .into_inner();
    let mut progress = Progress::new("score", total_bytes, 0);
    let (mut scored, mut failed) = (0u64, 0u64);
    while let Some(answer) = answers
        .message()
        .await
        .map_err(|status| call_error("ScoreCustomers", &status))?
    {
        if writer.write(&answer.request_id, answer.result)? {
            scored += 1;
        } else {
            failed += 1;
        }
        permits.add_permits(1);
        if let Ok(at) = positions.try_recv() {
            progress.update(scored + failed, at);
        }
    }
    progress.finish();
    sending.await.context("the request sender panicked")??;
    reading.await.context("the id reader panicked")?;
    writer.finish()?;
    Ok(ScoreSummary {
        out: args.out.clone(),
        scored,
        failed,
        elapsed: started.elapsed(),
    })
}
