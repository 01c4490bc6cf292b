//! `rescue-client`: batch backfills from CSV and JSON Lines files, batch scoring, and model
//! administration against a running server, over the same gRPC contract as any client.
//!
//! # Layout
//! - [`cli`]: the command line, what each command prints, and its exit code.
//! - [`connection`]: server address and timeouts, turned into a tonic endpoint.
//! - [`attributes`]: attribute columns (`attr.NAME`) and typing a cell as an attribute value.
//! - [`columns`]: the columns of every record kind — the one definition that file readers
//!   and writers (including `rescue simulate --out-dir`) share.
//! - [`format`]: CSV or JSON Lines, optionally gzip-compressed; inputs opened at an offset.
//! - [`reader`], [`writer`]: file rows to proto records with line numbers, and back.
//! - [`backfill`]: chunked, pipelined `IngestRecords` calls with retries, advancing the
//!   [`checkpoint`] after each confirmed chunk and listing bad rows in the [`rejects`] file.
//! - [`import`]: a one-row-per-customer table as customers with attributes and outcomes.
//! - [`retry`]: which failures pass, and the backoff between attempts.
//! - [`progress`], [`summary`]: what a long run shows while it runs and when it ends.
//! - [`batch`]: a file of ids through a streaming RPC, in constant memory, to CSV or JSONL.
//! - [`score`]: ids through the `ScoreCustomers` stream.
//! - [`models`]: training and the model registry, as text or JSON.
//! - [`program`]: recovery decisions (one, or a file of ids through `RecommendRecoveries`)
//!   and the program's funnel, as text or JSON.

pub mod attributes;
pub mod audit;
pub mod backfill;
pub mod batch;
pub mod checkpoint;
pub mod cli;
pub mod columns;
pub mod connection;
pub mod format;
pub mod import;
pub mod models;
pub mod program;
pub mod progress;
pub mod reader;
pub mod rejects;
pub mod retry;
pub mod score;
pub mod summary;
pub mod writer;

pub use cli::{Cli, Finished, init_logging, run};
pub use columns::FileKind;
pub use connection::ConnectionOptions;
pub use format::Format;
pub use writer::RecordWriter;
