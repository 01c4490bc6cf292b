//! `rescue-client backfill`: a file of one record kind into the server, in chunks.
//!
//! `IngestRecords` answers only once everything in its stream is committed, so the file is
//! sent as a sequence of bounded calls ("chunks") and the checkpoint advances after each
//! answered one: a crash, a kill or Ctrl-C loses at most the chunks in flight, and running
//! the same command again resumes after the last confirmed one. A chunk that fails for a
//! passing reason is sent again whole (its records that were committed come back as
//! duplicates). The file is read on a thread of its own, a bounded number of chunks ahead, so
//! memory stays flat however large the file is.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use super::connection::Connection;
use anyhow::Context;
use futures::StreamExt;
use futures::stream::FuturesOrdered;
use prost::Message;
use tokio::sync::mpsc;

use super::checkpoint::{self, Checkpoint, FileIdentity};
use super::columns::FileKind;
use super::format::Format;
use super::progress::Progress;
use super::reader::{Position, RecordReader, Row};
use super::rejects::{Reject, RejectFile};
use super::retry::{DEFAULT_RETRIES, RetryPolicy, call_error};
use super::summary::{BackfillSummary, Totals};
use crate::proto::v1::{self as proto, ingest_client::IngestClient};

/// Rows per `IngestRecords` call: a few of the server's 5,000-record transactions, so a call
/// is answered within a second or two and an interruption re-sends little.
pub const DEFAULT_CHUNK_ROWS: u64 = 20_000;
/// Records per request message within a call, as the server's batch rules expect them.
const MESSAGE_RECORDS: usize = 1_000;
/// Encoded bytes per request message, well under the server's 4 MiB limit even for rows with
/// long comments.
const MESSAGE_BYTES: usize = 1 << 20;
/// Calls in flight at once: while one chunk is being committed the next is already on its
/// way, so the server never waits for the client between chunks.
const CHUNKS_IN_FLIGHT: usize = 2;
/// Chunks read ahead of the sender.
const CHUNKS_AHEAD: usize = 2;

/// `rescue-client backfill` options.
#[derive(Debug, Clone, clap::Args)]
pub struct BackfillArgs {
    /// The kind of records in the file.
    #[arg(value_enum)]
    pub kind: FileKind,
    /// A CSV or JSON Lines file, optionally gzip-compressed.
    pub file: PathBuf,
    /// The file's format [default: from its name: .csv, .jsonl or .ndjson, before any .gz].
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Where the run's progress is kept for resuming [default: FILE.checkpoint].
    #[arg(long)]
    pub checkpoint: Option<PathBuf>,
    /// Where rejected rows are listed [default: FILE.rejects.csv].
    #[arg(long)]
    pub rejects: Option<PathBuf>,
    #[command(flatten)]
    pub sending: SendOptions,
}

/// How rows are sent: shared by every command that stores a file.
#[derive(Debug, Clone, clap::Args)]
pub struct SendOptions {
    /// Rows per IngestRecords call; a backfill's checkpoint advances after each.
    #[arg(long, default_value_t = DEFAULT_CHUNK_ROWS, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub chunk_rows: u64,
    /// Retries of a chunk after UNAVAILABLE or a broken connection, with backoff.
    #[arg(long, env = "RESCUE_RETRIES", default_value_t = DEFAULT_RETRIES)]
    pub retries: u32,
}

impl BackfillArgs {
    pub fn checkpoint_path(&self) -> PathBuf {
        self.checkpoint
            .clone()
            .unwrap_or_else(|| checkpoint::default_path(&self.file))
    }

    pub fn rejects_path(&self) -> PathBuf {
        self.rejects
            .clone()
            .unwrap_or_else(|| checkpoint::with_suffix(&self.file, ".rejects.csv"))
    }
}

/// A run of rows sent in one call, and what is needed to account for it once answered.
#[derive(Debug, Default)]
struct Chunk {
    messages: Vec<proto::IngestRecordsRequest>,
    /// The line of each sent record, by its index in the call.
    lines: Vec<u64>,
    /// Rows that could not be read, so were never sent.
    unreadable: Vec<Reject>,
    rows: u64,
    /// Where the row after the chunk starts.
    end: Position,
    /// File bytes consumed once the chunk was read, for progress.
    consumed: u64,
    /// Encoded size of the last message, to know when to start a new one.
    message_bytes: usize,
}

impl Chunk {
    fn push(&mut self, row: Row) {
        self.rows += 1;
        match row.record {
            Ok(record) => {
                let size = record.encoded_len();
                let full = self.messages.last().is_none_or(|m| {
                    m.records.len() >= MESSAGE_RECORDS || self.message_bytes + size > MESSAGE_BYTES
                });
                if full {
                    self.messages.push(proto::IngestRecordsRequest::default());
                    self.message_bytes = 0;
                }
                self.message_bytes += size;
                if let Some(message) = self.messages.last_mut() {
                    message.records.push(record);
                }
                self.lines.push(row.line);
            }
            Err(error) => self.unreadable.push(Reject {
                line: row.line,
                record_id: error.id,
                field: error.field,
                reason: error.reason,
            }),
        }
    }
}

/// The records after stream index `index`, as messages: for asking again about rejections
/// the server counted but did not list.
fn messages_after(
    messages: &[proto::IngestRecordsRequest],
    index: u64,
) -> Vec<proto::IngestRecordsRequest> {
    let records: Vec<proto::Record> = messages
        .iter()
        .flat_map(|m| m.records.iter())
        .skip(index as usize + 1)
        .cloned()
        .collect();
    records
        .chunks(MESSAGE_RECORDS)
        .map(|chunk| proto::IngestRecordsRequest {
            records: chunk.to_vec(),
        })
        .collect()
}

/// Rows to send, one at a time, with where the reading stands.
pub(super) trait RowSource: Send + 'static {
    /// The next row, or `None` at the end.
    fn next_row(&mut self) -> anyhow::Result<Option<Row>>;
    /// Where the row after the last one read starts.
    fn position(&self) -> Position;
    /// Input bytes consumed so far, for progress.
    fn consumed(&self) -> u64;
}

impl RowSource for RecordReader {
    fn next_row(&mut self) -> anyhow::Result<Option<Row>> {
        RecordReader::next_row(self)
    }

    fn position(&self) -> Position {
        RecordReader::position(self)
    }

    fn consumed(&self) -> u64 {
        RecordReader::consumed(self)
    }
}

/// Reads chunks on the calling (blocking) thread and hands them over until the source ends,
/// the receiver goes away, or reading fails.
fn read_chunks(
    mut reader: impl RowSource,
    chunk_rows: u64,
    chunks: mpsc::Sender<anyhow::Result<Chunk>>,
) {
    loop {
        let mut chunk = Chunk::default();
        while chunk.rows < chunk_rows {
            match reader.next_row() {
                Ok(Some(row)) => chunk.push(row),
                Ok(None) => break,
                Err(error) => {
                    let _ = chunks.blocking_send(Err(error));
                    return;
                }
            }
        }
        if chunk.rows == 0 {
            return;
        }
        chunk.end = reader.position();
        chunk.consumed = reader.consumed();
        if chunks.blocking_send(Ok(chunk)).is_err() {
            return;
        }
    }
}

/// Sends `messages` as one `IngestRecords` call, retrying it whole on passing failures.
async fn ingest(
    client: &IngestClient<Connection>,
    messages: Arc<Vec<proto::IngestRecordsRequest>>,
    policy: RetryPolicy,
) -> Result<proto::IngestRecordsResponse, tonic::Status> {
    policy
        .run("IngestRecords", || {
            let mut client = client.clone();
            let messages = Arc::clone(&messages);
            async move {
                let stream =
                    tokio_stream::iter((0..messages.len()).map(move |i| messages[i].clone()));
                client
                    .ingest_records(stream)
                    .await
                    .map(tonic::Response::into_inner)
            }
        })
        .await
}

/// A chunk the server has answered for: everything before `end` is settled.
#[derive(Debug)]
pub(super) struct Confirmed {
    pub totals: Totals,
    /// Every problem of every rejected row, in line order.
    pub rejects: Vec<Reject>,
    pub end: Position,
    pub consumed: u64,
}

/// Sends a chunk and accounts for the answer, giving every rejection its line (asking again
/// about the records after the last listed one when the server listed fewer than it counted).
async fn send_chunk(
    client: IngestClient<Connection>,
    chunk: Chunk,
    policy: RetryPolicy,
) -> anyhow::Result<Confirmed> {
    let Chunk {
        messages,
        lines,
        unreadable,
        rows,
        end,
        consumed,
        ..
    } = chunk;
    let messages = Arc::new(messages);
    let verdict = ingest(&client, Arc::clone(&messages), policy)
        .await
        .map_err(|status| call_error("IngestRecords", &status))?;
    let totals = Totals {
        rows,
        accepted: verdict.accepted,
        duplicate: verdict.duplicate,
        superseded: verdict.superseded,
        rejected: verdict.rejected + unreadable.len() as u64,
    };
    let mut rejects = unreadable;
    let mut listed = verdict;
    let mut base = 0u64;
    loop {
        for rejection in &listed.rejections {
            let index = (base + rejection.index) as usize;
            rejects.push(Reject {
                line: lines.get(index).copied().unwrap_or_default(),
                record_id: rejection.record_id.clone(),
                field: rejection.field.clone(),
                reason: rejection.reason.clone(),
            });
        }
        let last = listed.rejections.last().map(|r| base + r.index);
        let Some(last) = last.filter(|_| listed.rejections_truncated) else {
            break;
        };
        // Only for the listing: these records were judged already, and the good ones among
        // them are stored, so they come back as duplicates and change nothing.
        let again = Arc::new(messages_after(&messages, last));
        listed = ingest(&client, again, policy)
            .await
            .map_err(|status| call_error("IngestRecords", &status))?;
        base = last + 1;
    }
    rejects.sort();
    Ok(Confirmed {
        totals,
        rejects,
        end,
        consumed,
    })
}

/// Runs a backfill to the end of the file; the summary says whether every row was stored.
pub async fn backfill(channel: Connection, args: &BackfillArgs) -> anyhow::Result<BackfillSummary> {
    let started = Instant::now();
    let kind = args.kind;
    let format = Format::resolve(args.format, &args.file)?;
    let identity = FileIdentity::of(&args.file)?;
    let checkpoint_path = args.checkpoint_path();
    let mut checkpoint = match Checkpoint::load(&checkpoint_path) {
        Some(found) if found.belongs_to(kind.name(), &identity) => found,
        Some(_) => {
            tracing::warn!(
                checkpoint = %checkpoint_path.display(),
                "the checkpoint was made for another file, a changed file or another kind; starting from the beginning"
            );
            Checkpoint::new(kind.name(), identity)
        }
        None => Checkpoint::new(kind.name(), identity),
    };
    let resumed_at_line =
        (checkpoint.position != Position::START).then_some(checkpoint.position.line);
    if let Some(line) = resumed_at_line {
        tracing::info!(file = %args.file.display(), line, "resuming from the checkpoint");
    }
    let mut rejects = RejectFile::open(&args.rejects_path(), checkpoint.rejects_bytes)?;
    let reader = RecordReader::open(&args.file, kind, format, checkpoint.position)?;
    let mut progress = Progress::new(format!("{kind}"), checkpoint.file.size, reader.consumed());

    let mut rows_confirmed = 0;
    let sent = send_rows(
        channel,
        reader,
        args.sending.chunk_rows,
        RetryPolicy::with_retries(args.sending.retries),
        |confirmed| {
            rejects.append(&confirmed.rejects)?;
            checkpoint.totals.add(&confirmed.totals);
            checkpoint.position = confirmed.end;
            checkpoint.rejects_bytes = rejects.bytes();
            checkpoint.save(&checkpoint_path)?;
            rows_confirmed += confirmed.totals.rows;
            progress.update(rows_confirmed, confirmed.consumed);
            Ok(())
        },
    )
    .await;
    progress.finish();
    let rows_this_run = match sent {
        Ok(rows) => rows,
        Err(error) => {
            let next = checkpoint.position.line;
            let confirmed = if next <= Position::START.line {
                "before any row was confirmed".to_owned()
            } else {
                format!("with the rows up to line {} confirmed", next - 1)
            };
            return Err(error.context(format!(
                "the backfill stopped {confirmed}; run the same command again to resume"
            )));
        }
    };
    Checkpoint::remove(&checkpoint_path)?;
    let totals = checkpoint.totals;
    Ok(BackfillSummary {
        kind,
        file: args.file.clone(),
        totals,
        resumed_at_line,
        rows_this_run,
        elapsed: started.elapsed(),
        rejects: (totals.rejected > 0).then(|| rejects.path().to_owned()),
    })
}

/// Sends every row of `source` as pipelined `IngestRecords` calls of `chunk_rows` rows and
/// hands each answered chunk, in order, to `confirmed`. Returns the rows sent. Ctrl-C, a call
/// that fails for good or a failed `confirmed` stops it with an error.
pub(super) async fn send_rows(
    channel: Connection,
    source: impl RowSource,
    chunk_rows: u64,
    policy: RetryPolicy,
    mut confirmed: impl FnMut(&Confirmed) -> anyhow::Result<()>,
) -> anyhow::Result<u64> {
    let (sender, mut chunks) = mpsc::channel(CHUNKS_AHEAD);
    let reading = tokio::task::spawn_blocking(move || read_chunks(source, chunk_rows, sender));
    let client = IngestClient::new(channel);
    let mut in_flight = FuturesOrdered::new();
    let mut read_all = false;
    let mut rows = 0;
    let interrupted = tokio::signal::ctrl_c();
    tokio::pin!(interrupted);
    while !(read_all && in_flight.is_empty()) {
        tokio::select! {
            chunk = chunks.recv(), if !read_all && in_flight.len() < CHUNKS_IN_FLIGHT => match chunk {
                Some(chunk) => in_flight.push_back(send_chunk(client.clone(), chunk?, policy)),
                None => read_all = true,
            },
            answered = in_flight.next(), if !in_flight.is_empty() => {
                let Some(answered) = answered else { continue };
                let answered = answered?;
                confirmed(&answered)?;
                rows += answered.totals.rows;
            },
            _ = &mut interrupted => anyhow::bail!("interrupted"),
        }
    }
    reading.await.context("the file reader panicked")?;
    Ok(rows)
}
