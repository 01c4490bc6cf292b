//! A file of customer ids answered through one of the server's streaming RPCs, written as
//! CSV or JSON Lines in the file's order: what `rescue-client score` and `rescue-client
//! recommend --file` share. A [`BatchCall`] says how an id becomes a request, which stream
//! carries it and how an answer becomes a row.
//!
//! Memory stays constant however many customers there are: ids are read on a thread of their
//! own a bounded distance ahead, at most `in_flight` requests are unanswered at a time, and
//! each answer is written out as it arrives (the server answers in request order).

use std::future::Future;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::connection::Connection;
use anyhow::Context;
use tokio::sync::{Semaphore, mpsc};
use tokio_stream::wrappers::ReceiverStream;

use super::format::{self, Format, Output};
use super::progress::Progress;
use super::retry::call_error;
use super::summary::thousands;
use crate::proto::v1 as proto;

/// Requests sent but not answered yet: enough to hide the round trip, few enough that a
/// stream's buffers stay small.
pub const DEFAULT_IN_FLIGHT: u64 = 64;

/// One kind of batch call.
pub trait BatchCall: Send + 'static {
    type Request: Send + 'static;
    type Response: Send + 'static;
    /// The streaming RPC, as errors name it.
    const RPC: &'static str;
    /// What an answered customer was, in the summary: "scored", "recommended".
    const DONE: &'static str;
    const CSV_HEADER: &'static [&'static str];

    /// The request for customer `id`.
    fn request(&self, id: String) -> Self::Request;

    /// Opens the stream.
    fn call(
        channel: Connection,
        requests: ReceiverStream<Self::Request>,
    ) -> impl Future<Output = Result<tonic::Streaming<Self::Response>, tonic::Status>> + Send;

    /// An answer as a CSV row (in [`Self::CSV_HEADER`]'s columns) and whether it succeeded.
    fn csv_row(response: Self::Response) -> (Vec<String>, bool);

    /// An answer as a JSON object and whether it succeeded.
    fn json_row(response: Self::Response) -> (serde_json::Value, bool);
}

/// Where the ids are, where the rows go, and how far ahead to send.
#[derive(Debug, Clone)]
pub struct BatchFiles<'a> {
    pub ids: &'a Path,
    pub out: &'a Path,
    pub format: Option<Format>,
    pub in_flight: u64,
}

/// What a batch run did.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchSummary {
    pub out: PathBuf,
    /// What an answered customer was: "scored", "recommended".
    pub done: &'static str,
    pub answered: u64,
    pub failed: u64,
    pub elapsed: Duration,
}

impl BatchSummary {
    pub fn complete(&self) -> bool {
        self.failed == 0
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "out": self.out.display().to_string(),
            "complete": self.complete(),
            self.done: self.answered,
            "failed": self.failed,
            "seconds": self.elapsed.as_secs_f64(),
        })
    }
}

impl std::fmt::Display for BatchSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let rate = (self.answered + self.failed) as f64 / self.elapsed.as_secs_f64().max(1e-9);
        write!(
            f,
            "{} {} customers into {} ({} failed) in {:.1} s ({} per second)",
            self.done,
            thousands(self.answered),
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

/// Writes rows as CSV or JSON lines.
enum RowWriter {
    /// Boxed: a CSV writer carries a large buffer and state.
    Csv(Box<csv::Writer<Output>>),
    Jsonl(Output),
}

impl RowWriter {
    fn create(path: &Path, format: Format, header: &[&str]) -> anyhow::Result<Self> {
        let output = Output::create(path)?;
        Ok(match format {
            Format::Csv => {
                let mut writer = csv::Writer::from_writer(output);
                writer.write_record(header)?;
                Self::Csv(Box::new(writer))
            }
            Format::Jsonl => Self::Jsonl(output),
        })
    }

    /// Writes one answer; returns whether it succeeded.
    fn write<C: BatchCall>(&mut self, response: C::Response) -> anyhow::Result<bool> {
        Ok(match self {
            Self::Csv(writer) => {
                let (row, ok) = C::csv_row(response);
                writer.write_record(row)?;
                ok
            }
            Self::Jsonl(output) => {
                let (row, ok) = C::json_row(response);
                serde_json::to_writer(&mut *output, &row)?;
                output.write_all(b"\n")?;
                ok
            }
        })
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

/// A stream error as one line: the code, the message and each field's reason.
pub fn error_text(error: &proto::ScoreError) -> String {
    let code = tonic::Code::from_i32(error.code);
    let mut text = format!("{code:?}: {}", error.message);
    for field in &error.field_errors {
        text.push_str(&format!("; {}: {}", field.field, field.description));
    }
    text
}

/// A stream error as JSON, under the customer it was for.
pub fn error_json(customer_id: &str, error: Option<&proto::ScoreError>) -> serde_json::Value {
    match error {
        Some(error) => serde_json::json!({
            "customer_id": customer_id,
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
            "customer_id": customer_id,
            "error": {"code": "Unknown", "message": "the server sent no result"},
        }),
    }
}

/// Answers every id of `files.ids` through `call` and writes the answers in the file's order.
pub async fn run<C: BatchCall>(
    channel: Connection,
    call: C,
    files: BatchFiles<'_>,
) -> anyhow::Result<BatchSummary> {
    let started = Instant::now();
    let format = Format::resolve(files.format, files.out)?;
    let total_bytes = std::fs::metadata(files.ids)
        .with_context(|| format!("Failed to read {}", files.ids.display()))?
        .len();
    let mut writer = RowWriter::create(files.out, format, C::CSV_HEADER)?;
    let in_flight = usize::try_from(files.in_flight).unwrap_or(64);

    let (id_sender, mut ids) = mpsc::channel(in_flight);
    let path = files.ids.to_owned();
    let reading = tokio::task::spawn_blocking(move || {
        if let Err(error) = read_ids(&path, &id_sender) {
            let _ = id_sender.blocking_send(Err(error));
        }
    });

    // A permit per unanswered request: the sender waits for one, each answer returns one.
    let permits = Arc::new(Semaphore::new(in_flight));
    let (request_sender, requests) = mpsc::channel(in_flight);
    let (position_sender, mut positions) = mpsc::unbounded_channel::<u64>();
    let sending = {
        let permits = Arc::clone(&permits);
        tokio::spawn(async move {
            while let Some(next) = ids.recv().await {
                let (id, at): (String, u64) = next?;
                permits.acquire().await?.forget();
                let _ = position_sender.send(at);
                if request_sender.send(call.request(id)).await.is_err() {
                    break;
                }
            }
            anyhow::Ok(())
        })
    };

    let mut answers = C::call(channel, ReceiverStream::new(requests))
        .await
        .map_err(|status| call_error(C::RPC, &status))?;
    let mut progress = Progress::new(C::DONE, total_bytes, 0);
    let (mut answered, mut failed) = (0u64, 0u64);
    while let Some(answer) = answers
        .message()
        .await
        .map_err(|status| call_error(C::RPC, &status))?
    {
        if writer.write::<C>(answer)? {
            answered += 1;
        } else {
            failed += 1;
        }
        permits.add_permits(1);
        if let Ok(at) = positions.try_recv() {
            progress.update(answered + failed, at);
        }
    }
    progress.finish();
    sending.await.context("the request sender panicked")??;
    reading.await.context("the id reader panicked")?;
    writer.finish()?;
    Ok(BatchSummary {
        out: files.out.to_owned(),
        done: C::DONE,
        answered,
        failed,
        elapsed: started.elapsed(),
    })
}
