//! `rescue simulate`: streams simulated customers into a store in batches of whole customers,
//! writes the oracle files, and summarises what was generated.
//!
//! Generation is CPU work, so it runs on a thread of its own and hands batches over a small
//! bounded channel: memory stays flat in the number of customers, and generating the next
//! batch overlaps writing this one.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;

use super::{
    SimulatedCustomer, SimulationParams, simulate, snapshot_dates, write_churn_oracle,
    write_recovery_oracle,
};
use crate::domain::{Record, RecordKind, Timestamp};
use crate::store::{Outcome, Store};

/// Records per write: the size of the store's own transactions (README: "Records are written
/// in transactions of 5,000"), rounded up to whole customers.
pub const BATCH_RECORDS: usize = 5_000;
/// Batches generated ahead of the writer: enough to keep both cores busy, few enough that
/// memory stays small.
const BATCHES_AHEAD: usize = 2;
/// Progress is logged every this many batches (about 150,000 records).
const PROGRESS_EVERY: u64 = 30;

/// What one run generated and what the store made of it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunSummary {
    pub customers: u64,
    pub records_by_kind: BTreeMap<RecordKind, u64>,
    pub accepted: u64,
    pub duplicates: u64,
    /// Per snapshot: customers at risk and customers who churned within the horizon.
    pub snapshots: Vec<(Timestamp, u64, u64)>,
    pub churn_oracle_rows: u64,
    pub recovery_oracle_rows: u64,
}

impl RunSummary {
    fn new() -> Self {
        Self {
            snapshots: snapshot_dates().into_iter().map(|at| (at, 0, 0)).collect(),
            ..Self::default()
        }
    }

    fn add(&mut self, customer: &SimulatedCustomer) {
        self.customers += 1;
        for record in &customer.records {
            *self.records_by_kind.entry(record.kind()).or_default() += 1;
        }
        for row in &customer.churn_oracle {
            if let Some(snapshot) = self.snapshots.iter_mut().find(|s| s.0 == row.as_of) {
                snapshot.1 += 1;
                snapshot.2 += u64::from(row.churned);
            }
        }
        self.churn_oracle_rows += customer.churn_oracle.len() as u64;
        self.recovery_oracle_rows += customer.recovery_oracle.len() as u64;
    }

    pub fn records(&self) -> u64 {
        self.records_by_kind.values().sum()
    }
}

impl fmt::Display for RunSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "customers: {}\nrecords: {} (accepted {}, duplicates {})",
            self.customers,
            self.records(),
            self.accepted,
            self.duplicates
        )?;
        for (kind, count) in &self.records_by_kind {
            writeln!(f, "  {:<15} {count}", kind.field_name())?;
        }
        writeln!(f, "churn within 90 days of each snapshot:")?;
        for (at, at_risk, churned) in &self.snapshots {
            let rate = if *at_risk == 0 {
                0.0
            } else {
                100.0 * *churned as f64 / *at_risk as f64
            };
            writeln!(f, "  {at}  {churned:>8} of {at_risk:>8}  {rate:5.2}%")?;
        }
        write!(
            f,
            "oracle rows: churn {}, recovery {}",
            self.churn_oracle_rows, self.recovery_oracle_rows
        )
    }
}

/// The two oracle files, written as customers are generated.
struct OracleFiles {
    churn: BufWriter<File>,
    recovery: BufWriter<File>,
}

impl OracleFiles {
    fn create(directory: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(directory)
            .with_context(|| format!("Failed to create {}", directory.display()))?;
        let open = |name: &str| -> anyhow::Result<BufWriter<File>> {
            let path = directory.join(name);
            let file = File::create(&path)
                .with_context(|| format!("Failed to create {}", path.display()))?;
            Ok(BufWriter::new(file))
        };
        let mut files = Self {
            churn: open("churn_oracle.csv")?,
            recovery: open("recovery_oracle.csv")?,
        };
        write_churn_oracle(&mut files.churn, &[], true)?;
        write_recovery_oracle(&mut files.recovery, &[], true)?;
        Ok(files)
    }

    fn write(&mut self, customer: &SimulatedCustomer) -> anyhow::Result<()> {
        write_churn_oracle(&mut self.churn, &customer.churn_oracle, false)
            .context("Failed to write churn_oracle.csv")?;
        write_recovery_oracle(&mut self.recovery, &customer.recovery_oracle, false)
            .context("Failed to write recovery_oracle.csv")
    }

    fn finish(mut self) -> anyhow::Result<()> {
        self.churn
            .flush()
            .context("Failed to write churn_oracle.csv")?;
        self.recovery
            .flush()
            .context("Failed to write recovery_oracle.csv")
    }
}

/// Generates batches of whole customers on the calling (blocking) thread and sends them on;
/// returns the generation summary once every batch was handed over.
fn generate(
    params: SimulationParams,
    oracle_dir: Option<PathBuf>,
    batches: tokio::sync::mpsc::Sender<Vec<Record>>,
) -> anyhow::Result<RunSummary> {
    let mut oracle = oracle_dir.as_deref().map(OracleFiles::create).transpose()?;
    let mut summary = RunSummary::new();
    let mut batch: Vec<Record> = Vec::with_capacity(BATCH_RECORDS + 500);
    for customer in simulate(params) {
        summary.add(&customer);
        if let Some(oracle) = oracle.as_mut() {
            oracle.write(&customer)?;
        }
        batch.extend(customer.records);
        if batch.len() >= BATCH_RECORDS {
            let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH_RECORDS + 500));
            if batches.blocking_send(full).is_err() {
                // The writer stopped; its error is the one to report.
                return Ok(summary);
            }
        }
    }
    if !batch.is_empty() && batches.blocking_send(batch).is_err() {
        return Ok(summary);
    }
    if let Some(oracle) = oracle {
        oracle.finish()?;
    }
    Ok(summary)
}

/// Refuses a batch in which the store did anything but accept or recognise a record: the
/// generator's output is valid and self-consistent, so anything else is a bug to see.
fn check_outcomes(records: &[Record], outcomes: &[Outcome]) -> anyhow::Result<(u64, u64)> {
    let (mut accepted, mut duplicates) = (0, 0);
    for (record, outcome) in records.iter().zip(outcomes) {
        match outcome {
            Outcome::Accepted => accepted += 1,
            Outcome::Duplicate => duplicates += 1,
            Outcome::Superseded => anyhow::bail!(
                "the store found a newer version of {} {}; was the database written by another seed?",
                record.kind().field_name(),
                record.id()
            ),
            Outcome::Rejected(violation) => anyhow::bail!(
                "the store rejected {} {}: {}: {}",
                record.kind().field_name(),
                record.id(),
                violation.field,
                violation.reason
            ),
        }
    }
    Ok((accepted, duplicates))
}

/// Generates `params`' customers into `store` (and the oracle files into `oracle_dir`), and
/// says what was generated and stored. Re-running with the same parameters stores nothing
/// new: every record comes back a duplicate.
pub async fn run(
    store: &dyn Store,
    params: SimulationParams,
    oracle_dir: Option<&Path>,
) -> anyhow::Result<RunSummary> {
    let (sender, mut batches) = tokio::sync::mpsc::channel(BATCHES_AHEAD);
    let oracle_dir = oracle_dir.map(Path::to_path_buf);
    let generator = tokio::task::spawn_blocking(move || generate(params, oracle_dir, sender));
    let started = Instant::now();
    let (mut accepted, mut duplicates, mut written, mut batch_count) = (0, 0, 0u64, 0u64);
    while let Some(batch) = batches.recv().await {
        let outcomes = store
            .write_batch(&batch)
            .await
            .context("Failed to write a batch of simulated records")?;
        let (a, d) = check_outcomes(&batch, &outcomes)?;
        accepted += a;
        duplicates += d;
        written += batch.len() as u64;
        batch_count += 1;
        if batch_count % PROGRESS_EVERY == 0 {
            let rate = written as f64 / started.elapsed().as_secs_f64().max(1e-3);
            tracing::info!(
                records = written,
                records_per_second = rate.round(),
                "simulating"
            );
        }
    }
    let mut summary = generator.await.context("The generator thread panicked")??;
    summary.accepted = accepted;
    summary.duplicates = duplicates;
    anyhow::ensure!(
        written == summary.records(),
        "generated {} records but wrote {written}",
        summary.records()
    );
    tracing::info!(
        customers = summary.customers,
        records = written,
        seconds = started.elapsed().as_secs_f64(),
        "simulation stored"
    );
    Ok(summary)
}
