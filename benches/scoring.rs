//! Scoring throughput and latency over gRPC, against the standard health check RPC measured
//! in the same run on the same server: `ScoreCustomer` with an inline snapshot, and by id
//! from stored data.
//!
//! Run: `cargo bench --bench scoring`. The server, its SQLite store and the load generator
//! share this process and the machine's cores, as the reference does; absolute rates depend
//! on the machine and its load, the ratios are what to compare.

use std::future::Future;
use std::time::{Duration, Instant};

use rescue::config::Settings;
use rescue::domain::{Record, Timestamp};
use rescue::proto::v1::{
    self as proto, score_customer_request::Subject, scoring_client::ScoringClient,
};
use rescue::server::Application;
use rescue::simulate::{self, SimulationParams};
use rescue::store::DatabaseUrl;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

/// Simulated customers stored and scored.
const CUSTOMERS: usize = 2_000;
/// Requests kept in flight: enough to keep both cores busy.
const CONCURRENCY: usize = 32;
/// HTTP/2 connections the requests are spread over, as a client pool would.
const CONNECTIONS: usize = 4;
/// Requests per measurement.
const REQUESTS: usize = 20_000;
/// The features look back at most a year, so a year of history scores exactly like the
/// stored customer.
const FULL_SNAPSHOT_DAYS: i64 = 365;
/// The last quarter: every 7/30/90-day window complete, the lighter message a CRM would send
/// from its recent-activity view.
const RECENT_SNAPSHOT_DAYS: i64 = 90;

struct Measured {
    per_second: f64,
    p50: Duration,
    p99: Duration,
}

/// Sends `REQUESTS` calls, `CONCURRENCY` at a time, and measures them. Each worker's
/// requests are built before the clock starts, so the load generator spends its share of the
/// cores on sending, not on building messages.
async fn measure<R, F, Fut>(requests: impl Fn(usize) -> R, call: F) -> anyhow::Result<Measured>
where
    R: Send + 'static,
    F: Fn(usize, R) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send,
{
    let mut prepared: Vec<Vec<(usize, R)>> = (0..CONCURRENCY).map(|_| Vec::new()).collect();
    for i in 0..REQUESTS {
        prepared[i % CONCURRENCY].push((i, requests(i)));
    }
    let started = Instant::now();
    let mut workers = Vec::with_capacity(CONCURRENCY);
    for batch in prepared {
        let call = call.clone();
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(batch.len());
            for (i, request) in batch {
                let sent = Instant::now();
                call(i, request).await?;
                latencies.push(sent.elapsed());
            }
            Ok::<_, anyhow::Error>(latencies)
        }));
    }
    let mut latencies = Vec::with_capacity(REQUESTS);
    for worker in workers {
        latencies.extend(worker.await??);
    }
    let elapsed = started.elapsed();
    latencies.sort_unstable();
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    Ok(Measured {
        per_second: REQUESTS as f64 / elapsed.as_secs_f64(),
        p50: at(0.50),
        p99: at(0.99),
    })
}

fn snapshot_request(
    records: &[Record],
    as_of: Timestamp,
    days: i64,
) -> proto::ScoreCustomerRequest {
    let since = simulate::add_days(as_of, -days);
    let recent = |at: Timestamp| at >= since && at < as_of;
    let mut snapshot = proto::CustomerSnapshot::default();
    for record in records {
        match record {
            Record::Customer(c) => snapshot.customer = Some(to_proto_customer(c)),
            Record::UsageEvent(e) if recent(e.occurred_at) => {
                snapshot.usage_events.push(proto::UsageEvent {
                    event_id: e.event_id.to_string(),
                    customer_id: e.customer_id.to_string(),
                    occurred_at: Some(time(e.occurred_at)),
                    activity: e.activity.clone(),
                    quantity: e.quantity.get(),
                })
            }
            Record::Interaction(i) if recent(i.occurred_at) => {
                snapshot.interactions.push(proto::Interaction {
                    interaction_id: i.interaction_id.to_string(),
                    customer_id: i.customer_id.to_string(),
                    occurred_at: Some(time(i.occurred_at)),
                    channel: proto::Channel::from(i.channel).into(),
                    tag: proto::IssueTag::from(i.tag).into(),
                    failure: i.failure,
                    resolution: proto::Resolution::from(i.resolution).into(),
                    wait_seconds: i.wait_seconds.get(),
                    first_contact_resolution: i.first_contact_resolution,
                    repeat_contact: i.repeat_contact,
                })
            }
            Record::Survey(s) if recent(s.answered_at) => snapshot.surveys.push(proto::Survey {
                survey_id: s.survey_id.to_string(),
                customer_id: s.customer_id.to_string(),
                answered_at: Some(time(s.answered_at)),
                channel: proto::Channel::from(s.channel).into(),
                interaction_id: s
                    .interaction_id
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default(),
                csat: s.csat.map(|v| u32::from(v.get())),
                nps: s.nps.map(|v| u32::from(v.get())),
                recovery_rating: s.recovery_rating.map(|v| u32::from(v.get())),
                comment: s.comment.clone().unwrap_or_default(),
            }),
            Record::RecoveryCase(c) if recent(c.opened_at) => {
                snapshot.recovery_cases.push(c.clone().into())
            }
            _ => {}
        }
    }
    proto::ScoreCustomerRequest {
        subject: Some(Subject::Snapshot(snapshot)),
        as_of: Some(time(as_of)),
    }
}

fn to_proto_customer(c: &rescue::domain::Customer) -> proto::Customer {
    proto::Customer {
        customer_id: c.customer_id.to_string(),
        segment: proto::Segment::from(c.segment).into(),
        plan: proto::PlanTier::from(c.plan).into(),
        persona: c.persona.clone().unwrap_or_default(),
        region: c.region.clone().unwrap_or_default(),
        annual_value: c.annual_value.get(),
        customer_since: Some(time(c.customer_since)),
        updated_at: Some(time(c.updated_at)),
    }
}

fn time(at: Timestamp) -> prost_types::Timestamp {
    let (seconds, nanos) = at.to_seconds_nanos();
    prost_types::Timestamp {
        seconds,
        nanos: nanos as i32,
    }
}

async fn channels(address: std::net::SocketAddr) -> anyhow::Result<Vec<Channel>> {
    let mut channels = Vec::with_capacity(CONNECTIONS);
    for _ in 0..CONNECTIONS {
        channels.push(
            Channel::from_shared(format!("http://{address}"))?
                .connect()
                .await?,
        );
    }
    Ok(channels)
}

fn report(name: &str, measured: &Measured, reference: f64) {
    println!(
        "{name:<34} {:>10.0} {:>14.2} {:>9.2} {:>9.2}",
        measured.per_second,
        measured.per_second / reference,
        measured.p50.as_secs_f64() * 1e3,
        measured.p99.as_secs_f64() * 1e3
    );
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let directory =
        std::env::temp_dir().join(format!("rescue-bench-scoring-{}", std::process::id()));
    std::fs::create_dir_all(&directory)?;
    let url = DatabaseUrl::new(format!(
        "sqlite://{}",
        directory.join("rescue.db").display()
    ));
    let mut settings = Settings::with_database(url);
    settings.listen = "127.0.0.1:0".parse()?;
    let application = Application::build(&settings).await?;
    let address = application.local_addr()?;
    let store = application.store();
    let model = application
        .model_slot()
        .current()
        .ok_or_else(|| anyhow::anyhow!("no model is active"))?;

    let as_of = *simulate::snapshot_dates()
        .last()
        .ok_or_else(|| anyhow::anyhow!("no snapshots"))?;
    let mut snapshots = Vec::with_capacity(CUSTOMERS);
    let mut recent_snapshots = Vec::with_capacity(CUSTOMERS);
    let mut ids = Vec::with_capacity(CUSTOMERS);
    for customer in simulate::simulate(SimulationParams {
        customers: CUSTOMERS,
        seed: 5,
    }) {
        store.write_batch(&customer.records).await?;
        ids.push(simulate::customer_id(ids.len()));
        snapshots.push(snapshot_request(
            &customer.records,
            as_of,
            FULL_SNAPSHOT_DAYS,
        ));
        recent_snapshots.push(snapshot_request(
            &customer.records,
            as_of,
            RECENT_SNAPSHOT_DAYS,
        ));
    }
    let records_per_snapshot = |requests: &[proto::ScoreCustomerRequest]| {
        let records: usize = requests
            .iter()
            .map(|r| match &r.subject {
                Some(Subject::Snapshot(s)) => {
                    1 + s.usage_events.len()
                        + s.interactions.len()
                        + s.surveys.len()
                        + s.recovery_cases.len()
                }
                _ => 0,
            })
            .sum();
        records as f64 / requests.len() as f64
    };
    let (full_records, recent_records) = (
        records_per_snapshot(&snapshots),
        records_per_snapshot(&recent_snapshots),
    );

    // The service's own work per inline request, without the network: decode, check, score.
    let encoded: Vec<Vec<u8>> = snapshots
        .iter()
        .map(prost::Message::encode_to_vec)
        .collect();
    let bands = rescue::scoring::Bands::default();
    let started = Instant::now();
    for bytes in encoded.iter().cycle().take(REQUESTS) {
        let request: proto::ScoreCustomerRequest = prost::Message::decode(bytes.as_slice())?;
        let parser = rescue::api::RecordParser::received_at(Timestamp::now());
        let (subject, at) = parser
            .score_request(request)
            .map_err(|v| anyhow::anyhow!("{v}"))?;
        let rescue::api::ScoreSubject::Snapshot(history) = subject else {
            anyhow::bail!("a snapshot")
        };
        std::hint::black_box(model.score(&history, at, &bands));
    }
    let service_work = started.elapsed() / REQUESTS as u32;

    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(application.run_until_stopped(async {
        stopped.await.ok();
    }));
    let channels = channels(address).await?;

    let health_channels = channels.clone();
    let health = measure(
        |_| HealthCheckRequest {
            service: String::new(),
        },
        move |i, request| {
            let mut client = HealthClient::new(health_channels[i % CONNECTIONS].clone());
            async move {
                client.check(request).await?;
                Ok(())
            }
        },
    )
    .await?;

    let score = |channels: Vec<Channel>| {
        move |i: usize, request: proto::ScoreCustomerRequest| {
            let mut client = ScoringClient::new(channels[i % CONNECTIONS].clone());
            async move {
                client.score_customer(request).await?;
                Ok(())
            }
        }
    };
    // Profiling aid: RESCUE_BENCH_SCORING_PROFILE=N repeats the 90-day inline line N times
    // and stops, so a profiler sees little else.
    let repeats = std::env::var("RESCUE_BENCH_SCORING_PROFILE")
        .ok()
        .and_then(|n| n.parse::<usize>().ok());
    if let Some(repeats) = repeats {
        for _ in 0..repeats {
            let recent = measure(
                |i| recent_snapshots[i % recent_snapshots.len()].clone(),
                score(channels.clone()),
            )
            .await?;
            report("ScoreCustomer, inline, 90 days", &recent, health.per_second);
        }
        return Ok(());
    }
    let inline = measure(
        |i| snapshots[i % snapshots.len()].clone(),
        score(channels.clone()),
    )
    .await?;
    let recent = measure(
        |i| recent_snapshots[i % recent_snapshots.len()].clone(),
        score(channels.clone()),
    )
    .await?;

    let stored = measure(
        |i| proto::ScoreCustomerRequest {
            subject: Some(Subject::CustomerId(ids[i % ids.len()].clone())),
            as_of: Some(time(as_of)),
        },
        score(channels.clone()),
    )
    .await?;

    println!(
        "scoring benchmark: model {}, {REQUESTS} requests per line, {CONCURRENCY} in flight over {CONNECTIONS} connections; \
         inline snapshots of a year average {full_records:.0} records, of 90 days {recent_records:.0}",
        model.version
    );
    println!(
        "service work per year-long inline request (decode, check, score; one core, no network): {service_work:?}"
    );
    println!(
        "{:<34} {:>10} {:>14} {:>9} {:>9}",
        "rpc", "requests/s", "÷ health check", "p50 ms", "p99 ms"
    );
    report(
        "grpc.health.v1 Check (reference)",
        &health,
        health.per_second,
    );
    report("ScoreCustomer, inline, 1 year", &inline, health.per_second);
    report("ScoreCustomer, inline, 90 days", &recent, health.per_second);
    report("ScoreCustomer, stored customer", &stored, health.per_second);

    drop(channels);
    stop.send(()).ok();
    serving.await??;
    std::fs::remove_dir_all(&directory).ok();
    Ok(())
}
