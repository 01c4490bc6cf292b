//! Scoring throughput and latency over gRPC, against the standard health check RPC measured
//! in the same run on the same server: `ScoreCustomer` with an inline snapshot, and by id
//! from stored data; and `RecommendRecovery` for stored customers (each answer is stored as a
//! decision).
//!
//! Run: `cargo bench --bench scoring`. The server, its SQLite store and the load generator
//! share this process and the machine's cores, as the reference does; absolute rates depend
//! on the machine and its load, the ratios are what to compare.

use std::future::Future;
use std::marker::PhantomData;
use std::time::{Duration, Instant};

use http::uri::PathAndQuery;
use prost::Message;
use prost::bytes::{BufMut, Bytes};
use rescue::api::timestamp;
use rescue::config::Settings;
use rescue::domain::{Record, Timestamp};
use rescue::proto::codec::SliceDecoder;
use rescue::proto::v1::{
    self as proto, record::Kind, score_customer_request::Subject, scoring_client::ScoringClient,
};
use rescue::server::Application;
use rescue::simulate::{self, SimulationParams};
use rescue::store::DatabaseUrl;
use tonic::codec::{Codec, EncodeBuf, Encoder};
use tonic::transport::Channel;
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};

/// Simulated customers stored and scored.
const CUSTOMERS: usize = 2_000;
/// Requests kept in flight: enough to keep both cores busy.
const CONCURRENCY: usize = 32;
/// HTTP/2 connections the requests are spread over, as a client pool would.
const CONNECTIONS: usize = 4;
/// Rounds of measurement. The machine's speed swings within a run, so each round measures
/// the reference and then every line, each line's ratio is taken against its own round's
/// reference, and the median of the rounds' ratios is reported.
const ROUNDS: usize = 9;
/// How long each line runs in each round: long enough that a scheduler hiccup is a small
/// part of it, short enough that the reference and the lines see the same machine.
const LINE_DURATION: Duration = Duration::from_secs(1);
/// Distinct requests each worker cycles through (32 × 64 covers the stored customers).
const PREPARED_PER_WORKER: usize = 64;
/// The features look back at most a year, so a year of history scores exactly like the
/// stored customer.
const FULL_SNAPSHOT_DAYS: i64 = 365;
/// The last quarter: every 7/30/90-day window complete, the lighter message a CRM would send
/// from its recent-activity view.
const RECENT_SNAPSHOT_DAYS: i64 = 90;

const HEALTH_CHECK: &str = "/grpc.health.v1.Health/Check";
const SCORE_CUSTOMER: &str = "/rescue.v1.Scoring/ScoreCustomer";

/// Requests go out as bytes encoded before the clock starts, and replies are decoded as
/// rescue's own clients do. The load generator shares the server's two cores: encoding a snapshot per
/// request, a cost of the client that grows with the snapshot, would be counted against the
/// server, while the health check's empty request costs nothing to encode.
#[derive(Debug)]
struct PreEncoded<Reply>(PhantomData<Reply>);

impl<Reply: Message + Default + Send + 'static> Codec for PreEncoded<Reply> {
    type Encode = Bytes;
    type Decode = Reply;
    type Encoder = EncodedBytes;
    type Decoder = SliceDecoder<Reply>;

    fn encoder(&mut self) -> Self::Encoder {
        EncodedBytes
    }

    fn decoder(&mut self) -> Self::Decoder {
        SliceDecoder::default()
    }
}

#[derive(Debug)]
struct EncodedBytes;

impl Encoder for EncodedBytes {
    type Item = Bytes;
    type Error = tonic::Status;

    fn encode(&mut self, item: Bytes, buf: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        buf.put_slice(&item);
        Ok(())
    }
}

/// One unary call of `method` with an encoded request; the reply is decoded and dropped.
async fn call<Reply: Message + Default + Send + 'static>(
    channel: Channel,
    method: &'static str,
    request: Bytes,
) -> anyhow::Result<()> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await?;
    let reply: tonic::Response<Reply> = grpc
        .unary(
            tonic::Request::new(request),
            PathAndQuery::from_static(method),
            PreEncoded(PhantomData),
        )
        .await?;
    drop(reply);
    Ok(())
}

/// One line measured in one round.
struct Measured {
    elapsed: Duration,
    latencies: Vec<Duration>,
}

impl Measured {
    fn per_second(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64()
    }
}

/// Sends calls `CONCURRENCY` at a time for `LINE_DURATION` and measures them (the calls in
/// flight at the deadline finish and count). Each worker's requests are built before the
/// clock starts, so the load generator spends its share of the cores on sending, not on
/// building messages.
async fn measure<R, F, Fut>(requests: impl Fn(usize) -> R, call: F) -> anyhow::Result<Measured>
where
    R: Clone + Send + 'static,
    F: Fn(usize, R) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send,
{
    let prepared: Vec<Vec<(usize, R)>> = (0..CONCURRENCY)
        .map(|worker| {
            (0..PREPARED_PER_WORKER)
                .map(|k| worker + k * CONCURRENCY)
                .map(|i| (i, requests(i)))
                .collect()
        })
        .collect();
    let started = Instant::now();
    let deadline = started + LINE_DURATION;
    let mut workers = Vec::with_capacity(CONCURRENCY);
    for batch in prepared {
        let call = call.clone();
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            for k in 0.. {
                let sent = Instant::now();
                if sent >= deadline {
                    break;
                }
                let (i, request) = batch[k % batch.len()].clone();
                call(i, request).await?;
                latencies.push(sent.elapsed());
            }
            Ok::<_, anyhow::Error>(latencies)
        }));
    }
    let mut latencies = Vec::new();
    for worker in workers {
        latencies.extend(worker.await??);
    }
    Ok(Measured {
        elapsed: started.elapsed(),
        latencies,
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
        let kept = match record {
            Record::Customer(_) => true,
            Record::UsageEvent(e) => recent(e.occurred_at),
            Record::Interaction(i) => recent(i.occurred_at),
            Record::Survey(s) => recent(s.answered_at),
            Record::RecoveryCase(c) => recent(c.opened_at),
            Record::ChurnOutcome(_) => false,
        };
        if !kept {
            continue;
        }
        match proto::Record::from(record.clone()).kind {
            Some(Kind::Customer(c)) => snapshot.customer = Some(c),
            Some(Kind::UsageEvent(e)) => snapshot.usage_events.push(e),
            Some(Kind::Interaction(i)) => snapshot.interactions.push(i),
            Some(Kind::Survey(s)) => snapshot.surveys.push(s),
            Some(Kind::RecoveryCase(c)) => snapshot.recovery_cases.push(c),
            Some(Kind::ChurnOutcome(_)) | None => {}
        }
    }
    proto::ScoreCustomerRequest {
        subject: Some(Subject::Snapshot(snapshot)),
        as_of: Some(timestamp(as_of)),
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

/// A line over all its rounds: its rate, the median and the range of its rounds' ratios to
/// the reference, and its latency percentiles.
fn report(name: &str, rounds: &[Measured], reference: &[Measured]) {
    let elapsed: Duration = rounds.iter().map(|m| m.elapsed).sum();
    let mut latencies: Vec<Duration> = rounds.iter().flat_map(|m| m.latencies.clone()).collect();
    latencies.sort_unstable();
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    let mut ratios: Vec<f64> = rounds
        .iter()
        .zip(reference)
        .map(|(m, r)| m.per_second() / r.per_second())
        .collect();
    ratios.sort_unstable_by(f64::total_cmp);
    println!(
        "{name:<34} {:>10.0} {:>14.2} {:>11} {:>9.2} {:>9.2}",
        latencies.len() as f64 / elapsed.as_secs_f64(),
        ratios[ratios.len() / 2],
        format!("{:.2}–{:.2}", ratios[0], ratios[ratios.len() - 1]),
        at(0.50).as_secs_f64() * 1e3,
        at(0.99).as_secs_f64() * 1e3
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

    let encode = |requests: &[proto::ScoreCustomerRequest]| -> Vec<Bytes> {
        requests
            .iter()
            .map(|request| Bytes::from(request.encode_to_vec()))
            .collect()
    };
    let encoded = encode(&snapshots);
    let recent_encoded = encode(&recent_snapshots);
    let stored_encoded = encode(
        &ids.iter()
            .map(|id| proto::ScoreCustomerRequest {
                subject: Some(Subject::CustomerId(id.clone())),
                as_of: Some(timestamp(as_of)),
            })
            .collect::<Vec<_>>(),
    );
    let mean_bytes =
        |requests: &[Bytes]| requests.iter().map(Bytes::len).sum::<usize>() / requests.len();
    let (full_bytes, recent_bytes) = (mean_bytes(&encoded), mean_bytes(&recent_encoded));

    // The service's own work per inline request, without the network: decode, check, score.
    let bands = rescue::scoring::Bands::default();
    let started = Instant::now();
    const SERVICE_WORK_REQUESTS: usize = 20_000;
    for bytes in encoded.iter().cycle().take(SERVICE_WORK_REQUESTS) {
        let request = proto::ScoreCustomerRequest::decode(bytes.as_ref())?;
        let parser = rescue::api::RecordParser::received_at(Timestamp::now());
        let (subject, at) = parser
            .score_request(request)
            .map_err(|v| anyhow::anyhow!("{v}"))?;
        let rescue::api::ScoreSubject::Snapshot(history) = subject else {
            anyhow::bail!("a snapshot")
        };
        std::hint::black_box(model.score(&history, at, &bands));
    }
    let service_work = started.elapsed() / SERVICE_WORK_REQUESTS as u32;

    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(application.run_until_stopped(async {
        stopped.await.ok();
    }));
    let channels = channels(address).await?;

    let health_check = Bytes::from(
        HealthCheckRequest {
            service: String::new(),
        }
        .encode_to_vec(),
    );
    let check = |channels: Vec<Channel>| {
        move |i: usize, request: Bytes| {
            call::<HealthCheckResponse>(channels[i % CONNECTIONS].clone(), HEALTH_CHECK, request)
        }
    };
    let score = |channels: Vec<Channel>| {
        move |i: usize, request: Bytes| {
            call::<proto::ScoreCustomerResponse>(
                channels[i % CONNECTIONS].clone(),
                SCORE_CUSTOMER,
                request,
            )
        }
    };

    // Profiling aid: RESCUE_BENCH_SCORING_PROFILE=N repeats the 90-day inline line N times
    // and stops, so a profiler sees little else.
    let repeats = std::env::var("RESCUE_BENCH_SCORING_PROFILE")
        .ok()
        .and_then(|n| n.parse::<usize>().ok());
    if let Some(repeats) = repeats {
        let health = [measure(|_| health_check.clone(), check(channels.clone())).await?];
        for _ in 0..repeats {
            let recent = measure(
                |i| recent_encoded[i % recent_encoded.len()].clone(),
                score(channels.clone()),
            )
            .await?;
            report("ScoreCustomer, inline, 90 days", &[recent], &health);
        }
        return Ok(());
    }

    // A decision per request: read the customer, score, value the protocol's actions with the
    // prior (no uplift model is active here) and store the decision.
    let recommend_call = |channels: Vec<Channel>| {
        move |i: usize, request: proto::RecommendRecoveryRequest| {
            let mut client = ScoringClient::new(channels[i % CONNECTIONS].clone());
            async move {
                client.recommend_recovery(request).await?;
                Ok(())
            }
        }
    };
    let recommend_request = |i: usize| proto::RecommendRecoveryRequest {
        customer_id: ids[i % ids.len()].clone(),
        trigger: None,
        tag: 0,
        as_of: Some(timestamp(as_of)),
        expected_quality: None,
    };
    // One discarded pass over the reference and an inline line first: new connections, cold
    // caches and a cold allocator would otherwise slow round 1's reference alone and inflate
    // its ratios.
    measure(|_| health_check.clone(), check(channels.clone())).await?;
    measure(
        |i| encoded[i % encoded.len()].clone(),
        score(channels.clone()),
    )
    .await?;
    let (mut health, mut inline, mut recent, mut stored, mut recommend) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        health.push(measure(|_| health_check.clone(), check(channels.clone())).await?);
        inline.push(
            measure(
                |i| encoded[i % encoded.len()].clone(),
                score(channels.clone()),
            )
            .await?,
        );
        recent.push(
            measure(
                |i| recent_encoded[i % recent_encoded.len()].clone(),
                score(channels.clone()),
            )
            .await?,
        );
        stored.push(
            measure(
                |i| stored_encoded[i % stored_encoded.len()].clone(),
                score(channels.clone()),
            )
            .await?,
        );
        recommend.push(measure(recommend_request, recommend_call(channels.clone())).await?);
    }

    println!(
        "scoring benchmark: model {}, {ROUNDS} rounds of {LINE_DURATION:?} per line, {CONCURRENCY} in flight over {CONNECTIONS} connections; \
         inline snapshots of a year average {full_records:.0} records ({full_bytes} bytes), of 90 days {recent_records:.0} ({recent_bytes} bytes)",
        model.version
    );
    println!(
        "service work per year-long inline request (decode, check, score; one core, no network): {service_work:?}"
    );
    println!(
        "{:<34} {:>10} {:>14} {:>11} {:>9} {:>9}",
        "rpc", "requests/s", "÷ health check", "range", "p50 ms", "p99 ms"
    );
    report("grpc.health.v1 Check (reference)", &health, &health);
    report("ScoreCustomer, inline, 1 year", &inline, &health);
    report("ScoreCustomer, inline, 90 days", &recent, &health);
    report("ScoreCustomer, stored customer", &stored, &health);
    report("RecommendRecovery, stored customer", &recommend, &health);

    drop(channels);
    stop.send(()).ok();
    serving.await??;
    std::fs::remove_dir_all(&directory).ok();
    Ok(())
}
