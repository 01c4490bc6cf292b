//! Ingest throughput: 100,000 usage events streamed over gRPC into a running `rescue`, against
//! writing the same rows straight into the same table in the same run — a plain batched sqlx
//! INSERT for both backends, and `psql \copy` for PostgreSQL.
//!
//! Run: `cargo bench --bench ingest`. PostgreSQL is measured when a server answers at
//! `RESCUE_BENCH_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`).
//! `RESCUE_BENCH_BACKENDS=postgres` (or `sqlite`) measures one backend only.
//! Absolute rates depend on the machine and its load; the ratios are what to compare.

use std::time::{Duration, Instant};

use rescue::config::Settings;
use rescue::proto::v1::{self as proto, ingest_client::IngestClient, record::Kind};
use rescue::server::Application;
use sqlx::{Connection, QueryBuilder};

#[path = "support/databases.rs"]
mod databases;
use databases::{Backend, Fresh};

const EVENTS: usize = 100_000;
const CUSTOMERS: usize = 1_000;
/// Records per gRPC message, as a batch client would send them.
const PER_MESSAGE: usize = 1_000;
/// Rows per transaction in the reference inserts: the server's own batch size.
const PER_TRANSACTION: usize = rescue::api::BATCH_RECORDS;
/// Each figure is the best of this many runs, each on a fresh database.
const RUNS: usize = 3;
/// 2026-01-01T00:00:00Z.
const BASE_SECONDS: i64 = 1_767_225_600;

/// The rows every contender writes: ids in random order, as ids from another system arrive.
struct Event {
    id: String,
    customer: String,
    seconds: i64,
    activity: &'static str,
    quantity: f64,
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn events() -> Vec<Event> {
    const ACTIVITIES: [&str; 4] = ["login", "report.export", "api.call", "dashboard.view"];
    (0..EVENTS as u64)
        .map(|i| {
            let random = splitmix(i);
            Event {
                id: format!("ev-{random:016x}"),
                customer: format!("c-{}", random % CUSTOMERS as u64),
                seconds: BASE_SECONDS + (random % (90 * 86_400)) as i64,
                activity: ACTIVITIES[(random >> 32) as usize % ACTIVITIES.len()],
                quantity: ((random >> 40) % 50) as f64,
            }
        })
        .collect()
}

fn customer_records() -> Vec<proto::Record> {
    (0..CUSTOMERS)
        .map(|i| proto::Record {
            kind: Some(Kind::Customer(proto::Customer {
                customer_id: format!("c-{i}"),
                segment: proto::Segment::SmallBusiness.into(),
                plan: proto::PlanTier::Standard.into(),
                persona: String::new(),
                region: "EMEA".into(),
                annual_value: 1_000.0,
                customer_since: Some(prost_types::Timestamp {
                    seconds: BASE_SECONDS - 86_400 * 400,
                    nanos: 0,
                }),
                updated_at: Some(prost_types::Timestamp {
                    seconds: BASE_SECONDS,
                    nanos: 0,
                }),
                attributes: Default::default(),
            })),
        })
        .collect()
}

fn event_messages(events: &[Event]) -> Vec<proto::IngestRecordsRequest> {
    events
        .chunks(PER_MESSAGE)
        .map(|chunk| proto::IngestRecordsRequest {
            records: chunk
                .iter()
                .map(|e| proto::Record {
                    kind: Some(Kind::UsageEvent(proto::UsageEvent {
                        event_id: e.id.clone(),
                        customer_id: e.customer.clone(),
                        occurred_at: Some(prost_types::Timestamp {
                            seconds: e.seconds,
                            nanos: 0,
                        }),
                        activity: e.activity.into(),
                        quantity: e.quantity,
                    })),
                })
                .collect(),
        })
        .collect()
}

/// Events per second through `rescue`: gRPC client stream -> server -> store.
async fn through_rescue(backend: &Backend, events: &[Event]) -> anyhow::Result<f64> {
    let (fresh, url) = Fresh::create(backend).await?;
    let mut settings = Settings::with_database(url);
    settings.listen = "127.0.0.1:0".parse()?;
    let application = Application::build(&settings).await?;
    let address = application.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(application.run_until_stopped(async {
        stopped.await.ok();
    }));
    let mut client = IngestClient::connect(format!("http://{address}")).await?;
    let customers = proto::IngestRecordsRequest {
        records: customer_records(),
    };
    client
        .ingest_records(tokio_stream::iter(vec![customers]))
        .await?;

    let messages = event_messages(events);
    let started = Instant::now();
    let verdict = client
        .ingest_records(tokio_stream::iter(messages))
        .await?
        .into_inner();
    let elapsed = started.elapsed();
    anyhow::ensure!(
        verdict.accepted == events.len() as u64,
        "rescue accepted only {verdict:?}"
    );

    drop(client);
    stop.send(()).ok();
    serving.await??;
    fresh.remove().await?;
    Ok(rate(events.len(), elapsed))
}

/// Events per second through the store alone, in the server's batch size: the cost of the
/// service's write rules without the network.
async fn through_store(backend: &Backend, events: &[Event]) -> anyhow::Result<f64> {
    let (fresh, url) = Fresh::create(backend).await?;
    let store = rescue::store::open(&url, rescue::store::PoolOptions::default()).await?;
    let parser = rescue::api::RecordParser::received_at(
        rescue::domain::Timestamp::now(),
        rescue::domain::Vocabulary::built_in(),
    );
    let parse = |records: Vec<proto::Record>| -> anyhow::Result<Vec<rescue::domain::Record>> {
        records
            .into_iter()
            .map(|r| parser.record(r).map_err(|v| anyhow::anyhow!("{v}")))
            .collect()
    };
    store.write_batch(&parse(customer_records())?).await?;
    let batches: Vec<Vec<rescue::domain::Record>> = event_messages(events)
        .into_iter()
        .flat_map(|m| m.records)
        .collect::<Vec<_>>()
        .chunks(PER_TRANSACTION)
        .map(|chunk| parse(chunk.to_vec()))
        .collect::<anyhow::Result<_>>()?;
    let started = Instant::now();
    for batch in &batches {
        store.write_batch(batch).await?;
    }
    let elapsed = started.elapsed();
    drop(store);
    fresh.remove().await?;
    Ok(rate(events.len(), elapsed))
}

/// Rows per second for a plain batched INSERT of the same rows into the same table.
async fn plain_insert(backend: &Backend, events: &[Event]) -> anyhow::Result<f64> {
    let (fresh, url) = Fresh::create(backend).await?;
    // Opening through rescue creates the identical schema, with the customers' table.
    let store = rescue::store::open(&url, rescue::store::PoolOptions::default()).await?;
    drop(store);
    let started;
    match backend {
        Backend::Sqlite => {
            let options: sqlx::sqlite::SqliteConnectOptions = url.expose().parse()?;
            let mut connection = sqlx::SqliteConnection::connect_with(
                &options
                    .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
                    .synchronous(sqlx::sqlite::SqliteSynchronous::Full),
            )
            .await?;
            insert_customers_sqlite(&mut connection).await?;
            started = Instant::now();
            for batch in events.chunks(PER_TRANSACTION) {
                let mut tx = connection.begin().await?;
                for rows in batch.chunks(1_000) {
                    let mut query = QueryBuilder::<sqlx::Sqlite>::new(
                        "INSERT INTO usage_events (event_id, customer_id, occurred_at, activity, quantity, fingerprint) ",
                    );
                    query.push_values(rows, |mut row, e| {
                        row.push_bind(e.id.as_str())
                            .push_bind(e.customer.as_str())
                            .push_bind(e.seconds * 1_000_000)
                            .push_bind(e.activity)
                            .push_bind(e.quantity)
                            .push_bind(0_i64);
                    });
                    query.build().execute(&mut *tx).await?;
                }
                tx.commit().await?;
            }
        }
        Backend::Postgres(_) => {
            let mut connection = sqlx::PgConnection::connect(url.expose()).await?;
            insert_customers_postgres(&mut connection).await?;
            started = Instant::now();
            for batch in events.chunks(PER_TRANSACTION) {
                let ids: Vec<&str> = batch.iter().map(|e| e.id.as_str()).collect();
                let customers: Vec<&str> = batch.iter().map(|e| e.customer.as_str()).collect();
                let times: Vec<chrono::DateTime<chrono::Utc>> = batch
                    .iter()
                    .map(|e| chrono::DateTime::from_timestamp(e.seconds, 0).unwrap_or_default())
                    .collect();
                let activities: Vec<&str> = batch.iter().map(|e| e.activity).collect();
                let quantities: Vec<f64> = batch.iter().map(|e| e.quantity).collect();
                let fingerprints = vec![0_i64; batch.len()];
                let mut tx = connection.begin().await?;
                sqlx::query(
                    "INSERT INTO usage_events (event_id, customer_id, occurred_at, activity, quantity, fingerprint) \
                     SELECT * FROM UNNEST($1::text[], $2::text[], $3::timestamptz[], $4::text[], $5::float8[], $6::int8[])",
                )
                .bind(ids)
                .bind(customers)
                .bind(times)
                .bind(activities)
                .bind(quantities)
                .bind(fingerprints)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
            }
        }
    }
    let elapsed = started.elapsed();
    fresh.remove().await?;
    Ok(rate(events.len(), elapsed))
}

async fn insert_customers_sqlite(connection: &mut sqlx::SqliteConnection) -> anyhow::Result<()> {
    let mut query = QueryBuilder::<sqlx::Sqlite>::new(
        "INSERT INTO customers (customer_id, segment, plan, annual_value, customer_since, updated_at, fingerprint) ",
    );
    query.push_values(0..CUSTOMERS, |mut row, i| {
        row.push_bind(format!("c-{i}"))
            .push_bind("small_business")
            .push_bind("standard")
            .push_bind(1_000.0)
            .push_bind(0_i64)
            .push_bind(0_i64)
            .push_bind(0_i64);
    });
    query.build().execute(connection).await?;
    Ok(())
}

async fn insert_customers_postgres(connection: &mut sqlx::PgConnection) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO customers (customer_id, segment, plan, annual_value, customer_since, updated_at, fingerprint) \
         SELECT 'c-' || i, 'small_business', 'standard', 1000, now(), now(), 0 FROM generate_series(0, $1 - 1) AS i",
    )
    .bind(CUSTOMERS as i32)
    .execute(connection)
    .await?;
    Ok(())
}

/// Rows per second for `psql \copy` of the same rows from a CSV file into the same table.
async fn psql_copy(backend: &Backend, events: &[Event]) -> anyhow::Result<f64> {
    let (fresh, url) = Fresh::create(backend).await?;
    let store = rescue::store::open(&url, rescue::store::PoolOptions::default()).await?;
    drop(store);
    let mut connection = sqlx::PgConnection::connect(url.expose()).await?;
    insert_customers_postgres(&mut connection).await?;
    connection.close().await?;

    let csv_path = std::env::temp_dir().join(format!(
        "rescue-bench-{}.csv",
        uuid::Uuid::new_v4().simple()
    ));
    let mut csv = String::with_capacity(events.len() * 80);
    for e in events {
        let at = chrono::DateTime::from_timestamp(e.seconds, 0)
            .unwrap_or_default()
            .to_rfc3339();
        csv.push_str(&format!(
            "{},{},{at},{},{},0\n",
            e.id, e.customer, e.activity, e.quantity
        ));
    }
    std::fs::write(&csv_path, csv)?;
    let copy = format!(
        "\\copy usage_events (event_id, customer_id, occurred_at, activity, quantity, fingerprint) FROM '{}' WITH (FORMAT csv)",
        csv_path.display()
    );
    let started = Instant::now();
    let status = tokio::process::Command::new("psql")
        .args([
            "--quiet",
            "--no-psqlrc",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            url.expose(),
            "-c",
            &copy,
        ])
        .status()
        .await?;
    let elapsed = started.elapsed();
    std::fs::remove_file(&csv_path).ok();
    anyhow::ensure!(status.success(), "psql \\copy failed: {status}");
    fresh.remove().await?;
    Ok(rate(events.len(), elapsed))
}

fn rate(rows: usize, elapsed: Duration) -> f64 {
    rows as f64 / elapsed.as_secs_f64()
}

async fn best_of<F, Fut>(mut run: F) -> anyhow::Result<f64>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<f64>>,
{
    let mut best = 0.0_f64;
    for _ in 0..RUNS {
        best = best.max(run().await?);
    }
    Ok(best)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let events = events();
    println!(
        "ingest benchmark: {EVENTS} usage events for {CUSTOMERS} customers, best of {RUNS} runs"
    );
    println!(
        "{:<11} {:<38} {:>12} {:>14}",
        "backend", "path", "rows/s", "rescue ÷ this"
    );

    for backend in databases::backends().await {
        match backend {
            Backend::Sqlite => measure_sqlite(&events).await?,
            Backend::Postgres(_) => measure_postgres(&backend, &events).await?,
        }
    }
    Ok(())
}

async fn measure_sqlite(events: &[Event]) -> anyhow::Result<()> {
    let sqlite = Backend::Sqlite;
    let rescue_sqlite = best_of(|| through_rescue(&sqlite, events)).await?;
    let insert_sqlite = best_of(|| plain_insert(&sqlite, events)).await?;
    println!(
        "{:<11} {:<38} {:>12.0} {:>14}",
        "sqlite", "rescue: gRPC stream -> server -> store", rescue_sqlite, "1.00"
    );
    println!(
        "{:<11} {:<38} {:>12.0} {:>14.2}",
        "sqlite",
        "reference: batched sqlx INSERT",
        insert_sqlite,
        rescue_sqlite / insert_sqlite
    );

    Ok(())
}

async fn measure_postgres(postgres: &Backend, events: &[Event]) -> anyhow::Result<()> {
    let rescue_postgres = best_of(|| through_rescue(postgres, events)).await?;
    let store_postgres = best_of(|| through_store(postgres, events)).await?;
    let insert_postgres = best_of(|| plain_insert(postgres, events)).await?;
    let copy_postgres = best_of(|| psql_copy(postgres, events)).await?;
    println!(
        "{:<11} {:<38} {:>12.0} {:>14}",
        postgres.name(),
        "rescue: gRPC stream -> server -> store",
        rescue_postgres,
        "1.00"
    );
    println!(
        "{:<11} {:<38} {:>12.0} {:>14.2}",
        postgres.name(),
        "store alone, no gRPC",
        store_postgres,
        rescue_postgres / store_postgres
    );
    println!(
        "{:<11} {:<38} {:>12.0} {:>14.2}",
        postgres.name(),
        "reference: batched sqlx INSERT (UNNEST)",
        insert_postgres,
        rescue_postgres / insert_postgres
    );
    println!(
        "{:<11} {:<38} {:>12.0} {:>14.2}",
        postgres.name(),
        "reference: psql \\copy",
        copy_postgres,
        rescue_postgres / copy_postgres
    );
    Ok(())
}
