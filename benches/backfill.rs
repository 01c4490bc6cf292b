//! `rescue-client` end to end against references measured in the same run:
//!
//! 1. Backfill throughput: the usage events of simulated customers (about 200,000 rows) as a
//!    CSV file, through `rescue-client backfill` -> gRPC -> `rescue serve` -> PostgreSQL, against
//!    `psql \copy` of the same file into the same, freshly migrated table.
//! 2. Batch scoring memory: `rescue-client score` over 10,000 and then 100,000 stored
//!    customers, with the peak resident memory (VmHWM) of the client and of a freshly started
//!    server for each, so constant memory shows as equal peaks.
//! 3. Batch recommendations, on the same stored customers: `rescue-client recommend --file`
//!    (one `RecommendRecoveries` stream) over 10,000 and then 100,000 of them, peaks measured
//!    the same way, and its rate against single `RecommendRecovery` calls, one at a time, over
//!    the first 2,000 customers in the same run.
//!
//! Run: `cargo bench --bench backfill` (PostgreSQL at `RESCUE_BENCH_POSTGRES_URL`, default
//! `postgres://postgres@127.0.0.1:5432/postgres`; each run creates its databases and drops
//! them). `RESCUE_BENCH_PARTS=backfill` (or `score`, `recommend`, comma-separated) runs only
//! those parts. Real processes are
//! measured — the release binaries built with the benchmark — on the same machine as the
//! database, so absolute rates depend on its load; the ratio is what to compare.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use rescue::client::{FileKind, Format};
use rescue::simulate::{self, SimulationParams};
use sqlx::Connection;

const RESCUE: &str = env!("CARGO_BIN_EXE_rescue");
const CLIENT: &str = env!("CARGO_BIN_EXE_rescue-client");
/// About 90 usage events per simulated customer: 2,250 customers give about 200,000 rows.
const BACKFILL_CUSTOMERS: usize = 2_250;
/// Each backfill figure is the best of this many runs, each on fresh databases.
const RUNS: usize = 3;
/// Customer counts scored for the memory comparison.
const SCORE_SIZES: [usize; 2] = [10_000, 100_000];
/// Single `RecommendRecovery` calls timed against the batch.
const SINGLE_RECOMMENDATIONS: usize = 2_000;
/// Every decision is made as of the simulated world's end.
const AS_OF: &str = "2025-12-31T00:00:00Z";

/// A database created for one measurement, dropped with [`Fresh::remove`].
struct Fresh {
    admin: String,
    name: String,
    url: String,
}

impl Fresh {
    async fn create(admin: &str) -> anyhow::Result<Self> {
        let name = format!("rescue_bench_{}", uuid::Uuid::new_v4().simple());
        let mut connection = sqlx::PgConnection::connect(admin).await?;
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut connection)
            .await?;
        let base = admin.rsplit_once('/').map_or(admin, |(base, _)| base);
        Ok(Self {
            admin: admin.to_owned(),
            url: format!("{base}/{name}"),
            name,
        })
    }

    async fn remove(self) -> anyhow::Result<()> {
        let mut connection = sqlx::PgConnection::connect(&self.admin).await?;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE {} WITH (FORCE)",
            self.name
        )))
        .execute(&mut connection)
        .await?;
        Ok(())
    }
}

/// A `rescue serve` process on an ephemeral port; killed when dropped.
struct Server {
    child: Child,
    address: String,
}

impl Server {
    fn start(database_url: &str) -> anyhow::Result<Self> {
        let mut child = Command::new(RESCUE)
            .args(["serve", "--listen", "127.0.0.1:0", "--log-format", "json"])
            .env("RESCUE_DATABASE_URL", database_url)
            .env("RESCUE_LOG", "warn,rescue::server=info")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("Failed to start rescue serve")?;
        let stdout = child.stdout.take().context("no stdout")?;
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                let Ok(event) = serde_json::from_str::<serde_json::Value>(&line) else {
                    continue;
                };
                if event["message"] == "rescue is serving gRPC"
                    && let Some(address) = event["address"].as_str()
                {
                    sender.send(address.to_owned()).ok();
                }
            }
        });
        let address = receiver
            .recv_timeout(Duration::from_secs(60))
            .context("rescue serve did not start")?;
        Ok(Self { child, address })
    }

    /// Peak resident memory so far, in KiB.
    fn peak_kib(&self) -> anyhow::Result<u64> {
        peak_kib(self.child.id())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

/// `VmHWM` of process `pid`: its peak resident set, in KiB.
fn peak_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmHWM line")
}

/// Runs `rescue-client` to completion; answers with its peak memory (KiB, sampled while it
/// runs) and its wall time.
fn run_client(server: &str, args: &[&str]) -> anyhow::Result<(u64, Duration)> {
    let started = Instant::now();
    let mut child = Command::new(CLIENT)
        .env("RESCUE_SERVER", server)
        .env("RESCUE_LOG", "warn")
        .args(args)
        .stdout(Stdio::null())
        .spawn()
        .context("Failed to start rescue-client")?;
    let mut peak = 0;
    loop {
        if let Ok(kib) = peak_kib(child.id()) {
            peak = peak.max(kib);
        }
        if let Some(status) = child.try_wait()? {
            let elapsed = started.elapsed();
            // 3 means "finished, some rows or customers not done", which is a result too.
            anyhow::ensure!(
                matches!(status.code(), Some(0 | 3)),
                "rescue-client {args:?} failed: {status}"
            );
            return Ok((peak, elapsed));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn backfill(server: &str, kind: FileKind, file: &Path) -> anyhow::Result<Duration> {
    let file = file.to_str().context("a UTF-8 path")?;
    Ok(run_client(server, &["backfill", kind.name(), file])?.1)
}

fn data_rows(path: &Path) -> anyhow::Result<u64> {
    let file = std::io::BufReader::new(std::fs::File::open(path)?);
    Ok(file.lines().count() as u64 - 1)
}

/// Rows per second through `rescue-client backfill` into a fresh database.
async fn through_rescue(admin: &str, directory: &Path, rows: u64) -> anyhow::Result<f64> {
    let fresh = Fresh::create(admin).await?;
    let server = Server::start(&fresh.url)?;
    backfill(
        &server.address,
        FileKind::Customers,
        &file(directory, FileKind::Customers),
    )?;
    let elapsed = backfill(
        &server.address,
        FileKind::UsageEvents,
        &file(directory, FileKind::UsageEvents),
    )?;
    drop(server);
    let mut connection = sqlx::PgConnection::connect(&fresh.url).await?;
    let (stored,): (i64,) = sqlx::query_as("SELECT count(*) FROM usage_events")
        .fetch_one(&mut connection)
        .await?;
    connection.close().await?;
    fresh.remove().await?;
    anyhow::ensure!(stored as u64 == rows, "stored {stored} of {rows} rows");
    Ok(rows as f64 / elapsed.as_secs_f64())
}

/// Rows per second for `psql \copy` of the same file into the same table of a freshly
/// migrated database (whose fingerprint column, which the file lacks, defaults to 0).
async fn through_copy(admin: &str, directory: &Path, rows: u64) -> anyhow::Result<f64> {
    let fresh = Fresh::create(admin).await?;
    let migrated = Command::new(RESCUE)
        .args(["migrate", "--database", &fresh.url])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()?;
    anyhow::ensure!(migrated.success(), "rescue migrate failed");
    let mut connection = sqlx::PgConnection::connect(&fresh.url).await?;
    sqlx::query("ALTER TABLE usage_events ALTER COLUMN fingerprint SET DEFAULT 0")
        .execute(&mut connection)
        .await?;
    let copy = format!(
        "\\copy usage_events (event_id, customer_id, occurred_at, activity, quantity) FROM '{}' WITH (FORMAT csv, HEADER true)",
        file(directory, FileKind::UsageEvents).display()
    );
    let started = Instant::now();
    let status = Command::new("psql")
        .args([
            "--quiet",
            "--no-psqlrc",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            &fresh.url,
            "-c",
            &copy,
        ])
        .status()?;
    let elapsed = started.elapsed();
    anyhow::ensure!(status.success(), "psql \\copy failed: {status}");
    let (stored,): (i64,) = sqlx::query_as("SELECT count(*) FROM usage_events")
        .fetch_one(&mut connection)
        .await?;
    connection.close().await?;
    fresh.remove().await?;
    anyhow::ensure!(stored as u64 == rows, "copied {stored} of {rows} rows");
    Ok(rows as f64 / elapsed.as_secs_f64())
}

fn file(directory: &Path, kind: FileKind) -> PathBuf {
    simulate::file_path(directory, kind, Format::Csv, false)
}

fn write_files(customers: usize, directory: &Path, kinds: &[FileKind]) -> anyhow::Result<()> {
    let params = SimulationParams { customers, seed: 1 };
    simulate::write_kinds(params, directory, Format::Csv, false, kinds)?;
    Ok(())
}

async fn measure_backfill(admin: &str, directory: &Path) -> anyhow::Result<()> {
    write_files(
        BACKFILL_CUSTOMERS,
        directory,
        &[FileKind::Customers, FileKind::UsageEvents],
    )?;
    let rows = data_rows(&file(directory, FileKind::UsageEvents))?;
    println!(
        "backfill: {rows} usage events of {BACKFILL_CUSTOMERS} simulated customers from CSV into PostgreSQL, best of {RUNS} runs"
    );
    let (mut rescue, mut copy) = (0.0_f64, 0.0_f64);
    for _ in 0..RUNS {
        rescue = rescue.max(through_rescue(admin, directory, rows).await?);
        copy = copy.max(through_copy(admin, directory, rows).await?);
    }
    println!("{:<58} {:>10}", "path", "rows/s");
    println!(
        "{:<58} {:>10.0}",
        "rescue-client backfill -> gRPC -> rescue serve -> PostgreSQL", rescue
    );
    println!("{:<58} {:>10.0}", "psql \\copy of the same file", copy);
    println!("rescue-client ÷ \\copy: {:.2}", rescue / copy);
    Ok(())
}

/// Stores the largest size's customers once (profiles and their service history; usage
/// events are left out to keep the setup short — they change what a score reads, not
/// whether memory grows with the count), then measures each batch part `parts` names.
async fn measure_batches(admin: &str, directory: &Path, parts: &str) -> anyhow::Result<()> {
    let largest = SCORE_SIZES[SCORE_SIZES.len() - 1];
    let kinds: Vec<FileKind> = FileKind::ALL
        .into_iter()
        .filter(|kind| *kind != FileKind::UsageEvents)
        .collect();
    write_files(largest, directory, &kinds)?;
    let fresh = Fresh::create(admin).await?;
    {
        let server = Server::start(&fresh.url)?;
        for kind in kinds {
            backfill(&server.address, kind, &file(directory, kind))?;
        }
    }
    if parts.contains("score") {
        measure_score_memory(&fresh.url, directory)?;
    }
    if parts.contains("recommend") {
        measure_recommendations(&fresh.url, directory).await?;
    }
    fresh.remove().await
}

/// The first `size` simulated customers' ids, one per line, as a file.
fn id_file(directory: &Path, size: usize) -> anyhow::Result<PathBuf> {
    let ids = directory.join(format!("ids-{size}.txt"));
    let list: String = (0..size)
        .map(|i| format!("{}\n", simulate::customer_id(i)))
        .collect();
    std::fs::write(&ids, list)?;
    Ok(ids)
}

/// `rescue-client` `command` over the first `size` customers' ids (their file, `--out` and the
/// as-of time added) against a freshly started server: the client's and the server's peak
/// memory (KiB) and the wall time, once the output holds a row per customer.
fn batch_on_fresh_server(
    database_url: &str,
    directory: &Path,
    command: &[&str],
    size: usize,
) -> anyhow::Result<(u64, u64, Duration)> {
    let ids = id_file(directory, size)?;
    let out = directory.join(format!("{}-{size}.csv", command[0]));
    let server = Server::start(database_url)?;
    let mut args = command.to_vec();
    args.extend([
        ids.to_str().context("UTF-8 path")?,
        "--out",
        out.to_str().context("UTF-8 path")?,
        "--as-of",
        AS_OF,
    ]);
    let (client_kib, elapsed) = run_client(&server.address, &args)?;
    let server_kib = server.peak_kib()?;
    drop(server);
    anyhow::ensure!(
        data_rows(&out)? == size as u64,
        "{command:?}: not every customer answered"
    );
    Ok((client_kib, server_kib, elapsed))
}

fn measure_score_memory(database_url: &str, directory: &Path) -> anyhow::Result<()> {
    println!(
        "batch scoring memory: peak resident set (VmHWM) of rescue-client and of a fresh rescue serve"
    );
    println!(
        "{:>10} {:>12} {:>16} {:>16}",
        "customers", "seconds", "client MiB", "server MiB"
    );
    for size in SCORE_SIZES {
        let (client_kib, server_kib, elapsed) =
            batch_on_fresh_server(database_url, directory, &["score"], size)?;
        println!(
            "{size:>10} {:>12.1} {:>16.1} {:>16.1}",
            elapsed.as_secs_f64(),
            client_kib as f64 / 1024.0,
            server_kib as f64 / 1024.0
        );
    }
    Ok(())
}

/// `rescue-client recommend --file` over each size, then single calls. Every answer is a
/// decision stored, as an operator's batch stores them; a customer without a failure to
/// recover gets an error row, which is an answer too.
async fn measure_recommendations(database_url: &str, directory: &Path) -> anyhow::Result<()> {
    println!(
        "batch recommendations: peak resident set (VmHWM) of rescue-client and of a fresh rescue serve"
    );
    println!(
        "{:>10} {:>12} {:>12} {:>16} {:>16}",
        "customers", "seconds", "answers/s", "client MiB", "server MiB"
    );
    let mut batch_rate = 0.0;
    for size in SCORE_SIZES {
        let (client_kib, server_kib, elapsed) =
            batch_on_fresh_server(database_url, directory, &["recommend", "--file"], size)?;
        batch_rate = size as f64 / elapsed.as_secs_f64();
        println!(
            "{size:>10} {:>12.1} {batch_rate:>12.0} {:>16.1} {:>16.1}",
            elapsed.as_secs_f64(),
            client_kib as f64 / 1024.0,
            server_kib as f64 / 1024.0
        );
    }
    let server = Server::start(database_url)?;
    let mut client = rescue::proto::v1::scoring_client::ScoringClient::connect(format!(
        "http://{}",
        server.address
    ))
    .await?;
    // AS_OF, 2025-12-31T00:00:00Z.
    let as_of = prost_types::Timestamp {
        seconds: 1_767_139_200,
        nanos: 0,
    };
    let started = Instant::now();
    for i in 0..SINGLE_RECOMMENDATIONS {
        let request = rescue::proto::v1::RecommendRecoveryRequest {
            customer_id: simulate::customer_id(i),
            as_of: Some(as_of),
            ..Default::default()
        };
        // An error (no failure to recover) is an answer, as in the batch.
        let _ = client.recommend_recovery(request).await;
    }
    let single_rate = SINGLE_RECOMMENDATIONS as f64 / started.elapsed().as_secs_f64();
    println!(
        "single RecommendRecovery calls, one at a time: {single_rate:.0}/s; the batch of {} ÷ single calls: {:.1}",
        SCORE_SIZES[SCORE_SIZES.len() - 1],
        batch_rate / single_rate
    );
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let admin = std::env::var("RESCUE_BENCH_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    if tokio::time::timeout(Duration::from_secs(3), sqlx::PgConnection::connect(&admin))
        .await
        .map_or(true, |connected| connected.is_err())
    {
        println!("SKIPPED: no PostgreSQL at {admin} (set RESCUE_BENCH_POSTGRES_URL)");
        return Ok(());
    }
    let parts =
        std::env::var("RESCUE_BENCH_PARTS").unwrap_or_else(|_| "backfill,score,recommend".into());
    let directory =
        std::env::temp_dir().join(format!("rescue-bench-backfill-{}", std::process::id()));
    std::fs::create_dir_all(&directory)?;
    let result = async {
        if parts.contains("backfill") {
            measure_backfill(&admin, &directory).await?;
        }
        if parts.contains("score") || parts.contains("recommend") {
            measure_batches(&admin, &directory, &parts).await?;
        }
        anyhow::Ok(())
    }
    .await;
    std::fs::remove_dir_all(&directory).ok();
    result
}
