//! Scoring throughput and latency over gRPC, against the standard health check RPC measured
//! in the same run on the same server: `ScoreCustomer` with an inline snapshot, and by id
//! from stored data; and `RecommendRecovery` for stored customers (each answer is stored as a
//! decision).
//!
//! Run: `cargo bench --bench scoring`. Each backend in turn (`RESCUE_BENCH_BACKENDS`, default
//! SQLite then PostgreSQL at `RESCUE_BENCH_POSTGRES_URL`) gets a fresh database holding a
//! world of 100,000 simulated customers with two years of history each
//! (`RESCUE_BENCH_SCORING_CUSTOMERS` for another size); the lines ask about 2,048 of them,
//! spread evenly over the world. The server, its store and the load generator share the
//! machine's cores, as the reference does; absolute rates depend on the machine and its
//! load, the ratios are what to compare. A second server on the same
//! store serves TLS and requires an API key: its own health check (over TLS, with the key)
//! is the reference of its 90-day inline line, whose ratio is compared with the plaintext one.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::header::{CONTENT_TYPE, TE};
use http_body_util::{BodyExt, Full};
use prost::Message;
use prost::bytes::Bytes;
use rescue::api::BATCH_RECORDS;
use rescue::api::timestamp;
use rescue::config::Settings;
use rescue::domain::{Record, Timestamp};
use rescue::model::{FittedModel, TreeParams, train_trees};
use rescue::proto::v1::{self as proto, record::Kind, score_customer_request::Subject};
use rescue::scoring::HealthModel;
use rescue::server::Application;
use rescue::simulate::{self, SimulationParams};
use rescue::store::{CustomerRecords, Store};
use rescue::training::RowBuilder;
use tonic::transport::Channel;
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};
use tower_service::Service;

#[path = "support/databases.rs"]
mod databases;
use databases::{Backend, Fresh};

/// Simulated customers stored, two years of history each; `RESCUE_BENCH_SCORING_CUSTOMERS`
/// sets another number.
const CUSTOMERS: usize = 100_000;
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
/// Distinct requests each worker cycles through.
const PREPARED_PER_WORKER: usize = 64;
/// Customers the lines ask about, spread evenly over the stored world: each worker's own 64.
const REQUESTED: usize = CONCURRENCY * PREPARED_PER_WORKER;
/// The features look back at most a year, so a year of history scores exactly like the
/// stored customer.
const FULL_SNAPSHOT_DAYS: i64 = 365;
/// The last quarter: every 7/30/90-day window complete, the lighter message a CRM would send
/// from its recent-activity view.
const RECENT_SNAPSHOT_DAYS: i64 = 90;

const HEALTH_CHECK: &str = "/grpc.health.v1.Health/Check";
const SCORE_CUSTOMER: &str = "/rescue.v1.Scoring/ScoreCustomer";
const RECOMMEND_RECOVERY: &str = "/rescue.v1.Scoring/RecommendRecovery";
const GRPC_STATUS: &str = "grpc-status";
/// gRPC's prefix of every message: a compression flag and the length, 4 bytes big-endian.
const FRAME_PREFIX: usize = 5;

/// One unary call of `method`, written as most gRPC clients write it (grpc-go, grpc-java and
/// the C core): the HEADERS frame, then one DATA frame holding the whole request and ending
/// the stream. tonic's client ends every request with a further, empty DATA frame; for a
/// request of 256 bytes or more it leaves in a write and a TCP segment of its own, which
/// the server must then receive as well, while the health check's request and its end
/// leave together. The reply is checked (`grpc-status`) and decoded from its one contiguous
/// slice, as rescue's clients do. Request `i` goes out on connection `i mod CONNECTIONS`.
fn call<Reply: Message + Default>(
    target: &Target,
    i: usize,
    method: &'static str,
    request: Framed,
) -> impl Future<Output = anyhow::Result<()>> + use<Reply> {
    let channel = target.channels[i % CONNECTIONS].clone();
    send::<Reply>(channel, target.credential.clone(), method, request)
}

/// Where a line's requests go: the connections to one server, and the credential every
/// request carries there.
#[derive(Debug, Clone)]
struct Target {
    channels: Vec<Channel>,
    credential: Option<http::HeaderValue>,
}

async fn send<Reply: Message + Default>(
    mut channel: Channel,
    credential: Option<http::HeaderValue>,
    method: &'static str,
    request: Framed,
) -> anyhow::Result<()> {
    let mut http_request = http::Request::post(method)
        .header(CONTENT_TYPE, "application/grpc")
        .header(TE, "trailers");
    if let Some(credential) = credential {
        http_request = http_request.header(http::header::AUTHORIZATION, credential);
    }
    let http_request = http_request.body(tonic::body::Body::new(Full::new(request.0)))?;
    std::future::poll_fn(|cx| channel.poll_ready(cx)).await?;
    let (head, body) = channel.call(http_request).await?.into_parts();
    let body = body.collect().await?;
    // A reply's status is in its trailers, or in its headers when it has no body.
    let status = body
        .trailers()
        .and_then(|trailers| trailers.get(GRPC_STATUS))
        .or_else(|| head.headers.get(GRPC_STATUS));
    anyhow::ensure!(
        status.is_some_and(|s| s == "0"),
        "{method} failed: status {status:?}"
    );
    let body = body.to_bytes();
    let message = body
        .get(FRAME_PREFIX..)
        .ok_or_else(|| anyhow::anyhow!("{method} replied without a message"))?;
    drop(Reply::decode(message)?);
    Ok(())
}

/// A request message in gRPC's length-prefixed framing, encoded before the clock starts: the
/// load generator shares the server's two cores, and encoding a snapshot per request, a cost
/// of the client that grows with the snapshot, would be counted against the server.
#[derive(Debug, Clone)]
struct Framed(Bytes);

impl Framed {
    fn new(message: &impl Message) -> Self {
        let length = message.encoded_len();
        let mut framed = Vec::with_capacity(FRAME_PREFIX + length);
        framed.push(0); // not compressed
        framed.extend_from_slice(
            &u32::try_from(length)
                .expect("a small message")
                .to_be_bytes(),
        );
        message
            .encode(&mut framed)
            .expect("a Vec grows to fit the message");
        Self(Bytes::from(framed))
    }

    /// The message's own size, without the framing.
    fn message_bytes(&self) -> usize {
        self.0.len() - FRAME_PREFIX
    }
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

/// `CONNECTIONS` connections to `address`: plaintext, or TLS trusting `ca` (PEM).
async fn channels(address: std::net::SocketAddr, ca: Option<&str>) -> anyhow::Result<Vec<Channel>> {
    let mut channels = Vec::with_capacity(CONNECTIONS);
    for _ in 0..CONNECTIONS {
        let endpoint = match ca {
            None => Channel::from_shared(format!("http://{address}"))?,
            Some(ca) => Channel::from_shared(format!("https://localhost:{}", address.port()))?
                .tls_config(
                    tonic::transport::ClientTlsConfig::new()
                        .ca_certificate(tonic::transport::Certificate::from_pem(ca)),
                )?,
        };
        channels.push(endpoint.connect().await?);
    }
    Ok(channels)
}

/// A test CA's certificate, and a certificate and key it signed for `localhost` (PEM).
fn certificates() -> anyhow::Result<(String, String, String)> {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate()?)?;
    let key = KeyPair::generate()?;
    let cert = CertificateParams::new(vec!["localhost".to_owned()])?.signed_by(&key, &ca)?;
    Ok((ca.pem(), cert.pem(), key.serialize_pem()))
}

/// A line's ratio to its round's reference, each round, ascending.
fn ratios(rounds: &[Measured], reference: &[Measured]) -> Vec<f64> {
    let mut ratios: Vec<f64> = rounds
        .iter()
        .zip(reference)
        .map(|(m, r)| m.per_second() / r.per_second())
        .collect();
    ratios.sort_unstable_by(f64::total_cmp);
    ratios
}

/// The median over the rounds of a line's ratio to its round's reference.
fn median_ratio(rounds: &[Measured], reference: &[Measured]) -> f64 {
    let ratios = ratios(rounds, reference);
    ratios[ratios.len() / 2]
}

/// A line over all its rounds: its rate, the median and the range of its rounds' ratios to
/// the reference, and its latency percentiles.
fn report(name: &str, rounds: &[Measured], reference: &[Measured]) {
    let elapsed: Duration = rounds.iter().map(|m| m.elapsed).sum();
    let mut latencies: Vec<Duration> = rounds.iter().flat_map(|m| m.latencies.clone()).collect();
    latencies.sort_unstable();
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    let ratios = ratios(rounds, reference);
    println!(
        "{name:<34} {:>10.0} {:>14.2} {:>11} {:>9.2} {:>9.2}",
        latencies.len() as f64 / elapsed.as_secs_f64(),
        ratios[ratios.len() / 2],
        format!("{:.2}–{:.2}", ratios[0], ratios[ratios.len() - 1]),
        at(0.50).as_secs_f64() * 1e3,
        at(0.99).as_secs_f64() * 1e3
    );
}

/// The requests of every line, encoded, and the customers' rows for the tree model.
struct World {
    /// Year-long and 90-day inline snapshots of the requested customers.
    year: Vec<Framed>,
    recent: Vec<Framed>,
    /// The requested customers by id: scores, recommendations stored as decisions, and
    /// recommendations in what-if mode (answered, not stored).
    stored: Vec<Framed>,
    recommend: Vec<Framed>,
    what_if: Vec<Framed>,
    /// Mean records in a year-long and a 90-day snapshot.
    year_records: f64,
    recent_records: f64,
    rows: RowBuilder,
    records: usize,
}

/// Simulates `customers` (two years of history each) and stores them through `store` in
/// transactions of the server's batch size; encodes the requests of [`REQUESTED`]
/// customers spread evenly over the world.
async fn store_world(
    store: &dyn Store,
    customers: usize,
    as_of: Timestamp,
) -> anyhow::Result<World> {
    let stride = (customers / REQUESTED).max(1);
    let mut world = World {
        year: Vec::new(),
        recent: Vec::new(),
        stored: Vec::new(),
        recommend: Vec::new(),
        what_if: Vec::new(),
        year_records: 0.0,
        recent_records: 0.0,
        rows: RowBuilder::new(simulate::snapshot_dates(), simulate::HORIZON_DAYS as u32)?,
        records: 0,
    };
    let (mut year_records, mut recent_records) = (0, 0);
    let mut pending: Vec<Record> = Vec::with_capacity(BATCH_RECORDS);
    for (index, customer) in simulate::simulate(SimulationParams { customers, seed: 5 }).enumerate()
    {
        world.records += customer.records.len();
        if index % stride == 0 && world.stored.len() < REQUESTED {
            let id = simulate::customer_id(index);
            if let Some(records) = CustomerRecords::from_records(customer.records.clone()) {
                world.rows.add(&records);
            }
            let (year, recent) = (
                snapshot_request(&customer.records, as_of, FULL_SNAPSHOT_DAYS),
                snapshot_request(&customer.records, as_of, RECENT_SNAPSHOT_DAYS),
            );
            year_records += snapshot_records(&year);
            recent_records += snapshot_records(&recent);
            world.year.push(Framed::new(&year));
            world.recent.push(Framed::new(&recent));
            world.stored.push(Framed::new(&proto::ScoreCustomerRequest {
                subject: Some(Subject::CustomerId(id.clone())),
                as_of: Some(timestamp(as_of)),
            }));
            let recommendation = |what_if| proto::RecommendRecoveryRequest {
                customer_id: id.clone(),
                trigger: None,
                tag: 0,
                tag_name: String::new(),
                as_of: Some(timestamp(as_of)),
                expected_quality: None,
                what_if,
            };
            world.recommend.push(Framed::new(&recommendation(false)));
            world.what_if.push(Framed::new(&recommendation(true)));
        }
        // A customer's records stay in one transaction, so each batch names its customers.
        if pending.len() + customer.records.len() > BATCH_RECORDS {
            store.write_batch(&pending).await?;
            pending.clear();
        }
        pending.extend(customer.records);
    }
    store.write_batch(&pending).await?;
    let requested = world.stored.len() as f64;
    world.year_records = year_records as f64 / requested;
    world.recent_records = recent_records as f64 / requested;
    Ok(world)
}

/// The records of a snapshot request: the profile and its history.
fn snapshot_records(request: &proto::ScoreCustomerRequest) -> usize {
    match &request.subject {
        Some(Subject::Snapshot(s)) => {
            1 + s.usage_events.len()
                + s.interactions.len()
                + s.surveys.len()
                + s.recovery_cases.len()
        }
        _ => 0,
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let customers = match std::env::var("RESCUE_BENCH_SCORING_CUSTOMERS") {
        Ok(customers) => customers.parse()?,
        Err(_) => CUSTOMERS,
    };
    for backend in databases::backends().await {
        measure_backend(&backend, customers).await?;
    }
    Ok(())
}

/// Every line on a world of `customers` stored on `backend`.
async fn measure_backend(backend: &Backend, customers: usize) -> anyhow::Result<()> {
    let directory =
        std::env::temp_dir().join(format!("rescue-bench-scoring-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&directory)?;
    let (fresh, url) = Fresh::create(backend).await?;
    let mut settings = Settings::with_database(url);
    settings.listen = "127.0.0.1:0".parse()?;
    let application = Application::build(&settings).await?;
    let address = application.local_addr()?;
    let store = application.store();
    let model = application
        .serving_models()
        .health
        .current()
        .ok_or_else(|| anyhow::anyhow!("no model is active"))?;

    let as_of = *simulate::snapshot_dates()
        .last()
        .ok_or_else(|| anyhow::anyhow!("no snapshots"))?;
    let started = Instant::now();
    let world = store_world(store.as_ref(), customers, as_of).await?;
    println!(
        "{}: stored {customers} customers ({} records) in {:.0?}",
        backend.name(),
        world.records,
        started.elapsed()
    );
    let (encoded, recent_encoded, stored_encoded) = (&world.year, &world.recent, &world.stored);
    let (recommend_encoded, what_if_encoded) = (&world.recommend, &world.what_if);
    let mean_bytes = |requests: &[Framed]| {
        requests.iter().map(Framed::message_bytes).sum::<usize>() / requests.len()
    };
    let (full_bytes, recent_bytes) = (mean_bytes(encoded), mean_bytes(recent_encoded));
    let (full_records, recent_records) = (world.year_records, world.recent_records);

    // A tree model on the requested customers' rows, swapped in for its own line of each
    // round.
    let split = world.rows.finish()?;
    let trees = train_trees(&split.train, &TreeParams::default())?;
    let tree_model = Arc::new(HealthModel::new(
        "health-bench-trees".into(),
        model.horizon_days,
        split.spec.clone(),
        FittedModel::Trees(Box::new(trees)),
        model.trained_to,
    ));
    let logistic_model = Arc::clone(&model);
    let slot = application.serving_models().health;

    // The service's own work per inline request, without the network: decode, check, score.
    let bands = rescue::scoring::Bands::default();
    let started = Instant::now();
    const SERVICE_WORK_REQUESTS: usize = 20_000;
    for framed in encoded.iter().cycle().take(SERVICE_WORK_REQUESTS) {
        let request = proto::ScoreCustomerRequest::decode(&framed.0[FRAME_PREFIX..])?;
        let parser = rescue::api::RecordParser::received_at(
            Timestamp::now(),
            rescue::domain::Vocabulary::built_in(),
        );
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
    let plain = Target {
        channels: channels(address, None).await?,
        credential: None,
    };

    // The same store behind TLS and an API key.
    let (ca, cert, key) = certificates()?;
    let api_key = rescue::auth::new_key();
    let file = |name: &str, text: &str| -> anyhow::Result<std::path::PathBuf> {
        let path = directory.join(name);
        std::fs::write(&path, text)?;
        Ok(path)
    };
    let mut secure_settings = settings.clone();
    secure_settings.tls = Some(rescue::config::TlsSettings {
        cert: file("server.pem", &cert)?,
        key: file("server-key.pem", &key)?,
        client_ca: None,
    });
    secure_settings.auth = Some(rescue::auth::AuthSettings {
        api_keys: Some(file(
            "keys.toml",
            &format!(
                "[[keys]]\nname = \"bench\"\nsha256 = \"{}\"\nroles = [\"score\"]\n",
                rescue::auth::key_digest(&api_key)
            ),
        )?),
        jwt: None,
        reload: Duration::from_secs(3_600),
    });
    let secure_application = Application::build(&secure_settings).await?;
    let secure_address = secure_application.local_addr()?;
    secure_application
        .serving_models()
        .health
        .replace(Arc::clone(&model));
    let (secure_stop, secure_stopped) = tokio::sync::oneshot::channel::<()>();
    let secure_serving = tokio::spawn(secure_application.run_until_stopped(async {
        secure_stopped.await.ok();
    }));
    let secure = Target {
        channels: channels(secure_address, Some(&ca)).await?,
        credential: Some(format!("Bearer {api_key}").parse()?),
    };

    let health_check = Framed::new(&HealthCheckRequest {
        service: String::new(),
    });
    let check = |target: Target| {
        move |i, request| call::<HealthCheckResponse>(&target, i, HEALTH_CHECK, request)
    };
    let score = |target: Target| {
        move |i, request| call::<proto::ScoreCustomerResponse>(&target, i, SCORE_CUSTOMER, request)
    };
    let recommend = |target: Target| {
        move |i, request| {
            call::<proto::RecoveryRecommendation>(&target, i, RECOMMEND_RECOVERY, request)
        }
    };

    // Profiling aid: RESCUE_BENCH_SCORING_PROFILE=N repeats one line N times and stops, so a
    // profiler sees little else: the 90-day inline line, or with `N:stored` the stored
    // customer's, with `N:recommend` the recommendation's, with `N:what-if` the what-if
    // recommendation's.
    let profile = std::env::var("RESCUE_BENCH_SCORING_PROFILE").ok();
    if let Some(profile) = profile {
        let (repeats, line) = profile.split_once(':').unwrap_or((&profile, "inline"));
        let repeats: usize = repeats.parse()?;
        let health = [measure(|_| health_check.clone(), check(plain.clone())).await?];
        for _ in 0..repeats {
            let measured = match line {
                "stored" => {
                    measure(
                        |i| stored_encoded[i % stored_encoded.len()].clone(),
                        score(plain.clone()),
                    )
                    .await?
                }
                "recommend" => {
                    measure(
                        |i| recommend_encoded[i % recommend_encoded.len()].clone(),
                        recommend(plain.clone()),
                    )
                    .await?
                }
                "what-if" => {
                    measure(
                        |i| what_if_encoded[i % what_if_encoded.len()].clone(),
                        recommend(plain.clone()),
                    )
                    .await?
                }
                _ => {
                    measure(
                        |i| recent_encoded[i % recent_encoded.len()].clone(),
                        score(plain.clone()),
                    )
                    .await?
                }
            };
            report(line, &[measured], &health);
        }
    } else {
        // One discarded pass over the reference and an inline line first: new connections, cold
        // caches and a cold allocator would otherwise slow round 1's reference alone and inflate
        // its ratios.
        measure(|_| health_check.clone(), check(plain.clone())).await?;
        measure(|i| encoded[i % encoded.len()].clone(), score(plain.clone())).await?;
        measure(|_| health_check.clone(), check(secure.clone())).await?;
        let (mut health, mut inline, mut recent, mut stored, mut recommends, mut recent_trees) = (
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
        );
        let (mut secure_health, mut secure_recent, mut what_ifs) =
            (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..ROUNDS {
            secure_health.push(measure(|_| health_check.clone(), check(secure.clone())).await?);
            secure_recent.push(
                measure(
                    |i| recent_encoded[i % recent_encoded.len()].clone(),
                    score(secure.clone()),
                )
                .await?,
            );
            health.push(measure(|_| health_check.clone(), check(plain.clone())).await?);
            inline
                .push(measure(|i| encoded[i % encoded.len()].clone(), score(plain.clone())).await?);
            recent.push(
                measure(
                    |i| recent_encoded[i % recent_encoded.len()].clone(),
                    score(plain.clone()),
                )
                .await?,
            );
            stored.push(
                measure(
                    |i| stored_encoded[i % stored_encoded.len()].clone(),
                    score(plain.clone()),
                )
                .await?,
            );
            recommends.push(
                measure(
                    |i| recommend_encoded[i % recommend_encoded.len()].clone(),
                    recommend(plain.clone()),
                )
                .await?,
            );
            what_ifs.push(
                measure(
                    |i| what_if_encoded[i % what_if_encoded.len()].clone(),
                    recommend(plain.clone()),
                )
                .await?,
            );
            slot.replace(Arc::clone(&tree_model));
            recent_trees.push(
                measure(
                    |i| recent_encoded[i % recent_encoded.len()].clone(),
                    score(plain.clone()),
                )
                .await?,
            );
            slot.replace(Arc::clone(&logistic_model));
        }

        println!(
            "scoring benchmark on {}, {customers} customers: model {}, {ROUNDS} rounds of {LINE_DURATION:?} per line, {CONCURRENCY} in flight over {CONNECTIONS} connections; \
         inline snapshots of a year average {full_records:.0} records ({full_bytes} bytes), of 90 days {recent_records:.0} ({recent_bytes} bytes)",
            backend.name(),
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
        report("  the same, tree model", &recent_trees, &health);
        report("ScoreCustomer, stored customer", &stored, &health);
        report("RecommendRecovery, stored customer", &recommends, &health);
        report("  the same, what-if (not stored)", &what_ifs, &health);
        report(
            "Check, TLS + API key (reference)",
            &secure_health,
            &secure_health,
        );
        report(
            "ScoreCustomer, 90 days, TLS + key",
            &secure_recent,
            &secure_health,
        );
        println!(
            "90-day inline ratio, TLS + key minus plaintext: {:+.3}",
            median_ratio(&secure_recent, &secure_health) - median_ratio(&recent, &health)
        );
    }

    drop(plain);
    drop(secure);
    stop.send(()).ok();
    secure_stop.send(()).ok();
    serving.await??;
    secure_serving.await??;
    std::fs::remove_dir_all(&directory).ok();
    fresh.remove().await?;
    Ok(())
}
