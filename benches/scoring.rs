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
/// stored customer; that is what a CRM would send.
const SNAPSHOT_DAYS: i64 = 365;

struct Measured {
    per_second: f64,
    p50: Duration,
    p99: Duration,
}

/// Sends `REQUESTS` calls, `CONCURRENCY` at a time, and measures them.
async fn measure<F, Fut>(call: F) -> anyhow::Result<Measured>
where
    F: Fn(usize) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send,
{
    let started = Instant::now();
    let mut workers = Vec::with_capacity(CONCURRENCY);
    for worker in 0..CONCURRENCY {
        let call = call.clone();
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(REQUESTS / CONCURRENCY);
            let mut i = worker;
            while i < REQUESTS {
                let sent = Instant::now();
                call(i).await?;
                latencies.push(sent.elapsed());
                i += CONCURRENCY;
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

fn snapshot_request(records: &[Record], as_of: Timestamp) -> proto::ScoreCustomerRequest {
    let since = simulate::add_days(as_of, -SNAPSHOT_DAYS);
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
    let mut ids = Vec::with_capacity(CUSTOMERS);
    for customer in simulate::simulate(SimulationParams {
        customers: CUSTOMERS,
        seed: 5,
    }) {
        store.write_batch(&customer.records).await?;
        ids.push(simulate::customer_id(ids.len()));
        snapshots.push(snapshot_request(&customer.records, as_of));
    }
    let records_per_snapshot = snapshots
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
        .sum::<usize>() as f64
        / snapshots.len() as f64;

    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(application.run_until_stopped(async {
        stopped.await.ok();
    }));
    let channels = channels(address).await?;

    let health_channels = channels.clone();
    let health = measure(move |i| {
        let mut client = HealthClient::new(health_channels[i % CONNECTIONS].clone());
        async move {
            client
                .check(HealthCheckRequest {
                    service: String::new(),
                })
                .await?;
            Ok(())
        }
    })
    .await?;

    let snapshots = std::sync::Arc::new(snapshots);
    let inline_channels = channels.clone();
    let inline = measure(move |i| {
        let mut client = ScoringClient::new(inline_channels[i % CONNECTIONS].clone());
        let request = snapshots[i % snapshots.len()].clone();
        async move {
            client.score_customer(request).await?;
            Ok(())
        }
    })
    .await?;

    let ids = std::sync::Arc::new(ids);
    let stored_channels = channels.clone();
    let stored = measure(move |i| {
        let mut client = ScoringClient::new(stored_channels[i % CONNECTIONS].clone());
        let request = proto::ScoreCustomerRequest {
            subject: Some(Subject::CustomerId(ids[i % ids.len()].clone())),
            as_of: Some(time(as_of)),
        };
        async move {
            client.score_customer(request).await?;
            Ok(())
        }
    })
    .await?;

    println!(
        "scoring benchmark: model {}, {REQUESTS} requests per line, {CONCURRENCY} in flight over {CONNECTIONS} connections; \
         inline snapshots average {records_per_snapshot:.0} records",
        model.version
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
    report("ScoreCustomer, inline snapshot", &inline, health.per_second);
    report("ScoreCustomer, stored customer", &stored, health.per_second);

    drop(channels);
    stop.send(()).ok();
    serving.await??;
    std::fs::remove_dir_all(&directory).ok();
    Ok(())
}
