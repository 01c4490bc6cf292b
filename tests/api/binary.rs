//! The `rescue` binary as an operator runs it: `rescue serve` answers health checks, and
//! SIGTERM stops it cleanly.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::helpers::TestDatabase;

#[tokio::test]
async fn rescue_serve_answers_health_checks_and_stops_on_sigterm() {
    let database = TestDatabase::sqlite();
    let mut child = Command::new(env!("CARGO_BIN_EXE_rescue"))
        .args(["serve", "--listen", "127.0.0.1:0", "--log-format", "json"])
        .env("RESCUE_DATABASE_URL", database.url.expose())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start rescue serve");
    let stdout = child.stdout.take().expect("stdout");
    let (lines_tx, mut lines) = tokio::sync::mpsc::unbounded_channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });

    let address = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.recv().await {
            let event: serde_json::Value =
                serde_json::from_str(&line).expect("every log line is JSON");
            if event["message"] == "rescue is serving gRPC" {
                return event["address"].as_str().expect("address field").to_owned();
            }
        }
        panic!("rescue serve exited before serving");
    })
    .await
    .expect("rescue serve starts within a minute");

    let channel = tonic::transport::Channel::from_shared(format!("http://{address}"))
        .expect("endpoint")
        .connect()
        .await
        .expect("connect");
    let mut health = HealthClient::new(channel);
    let status = health
        .check(HealthCheckRequest {
            service: "rescue.v1.Ingest".into(),
        })
        .await
        .expect("health check")
        .into_inner()
        .status();
    assert_eq!(status, ServingStatus::Serving);

    // Each RPC ends with one structured line naming its method, status code and latency.
    let rpc_line = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(line) = lines.recv().await {
            let event: serde_json::Value =
                serde_json::from_str(&line).expect("every log line is JSON");
            if event["message"] == "rpc finished" {
                return event;
            }
        }
        panic!("no rpc line before rescue exited");
    })
    .await
    .expect("the RPC is logged");
    assert_eq!(rpc_line["code"], "Ok", "{rpc_line}");
    assert_eq!(
        rpc_line["span"]["method"], "/grpc.health.v1.Health/Check",
        "{rpc_line}"
    );
    assert!(rpc_line["latency_ms"].as_f64().is_some(), "{rpc_line}");

    let terminated = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("send SIGTERM");
    assert!(terminated.success());
    let exit = tokio::task::spawn_blocking(move || child.wait())
        .await
        .expect("wait task")
        .expect("wait for rescue");
    assert!(exit.success(), "rescue exited with {exit}");
}

#[test]
fn rescue_migrate_prepares_a_database_and_refuses_an_unknown_scheme() {
    let database = TestDatabase::sqlite();
    let output = Command::new(env!("CARGO_BIN_EXE_rescue"))
        .args(["migrate", "--database", database.url.expose()])
        .output()
        .expect("run rescue migrate");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let file = database
        .url
        .expose()
        .trim_start_matches("sqlite://")
        .to_owned();
    assert!(
        std::path::Path::new(&file).exists(),
        "{file} was not created"
    );
    // Its log went to a pipe: plain lines, no colour codes.
    let log = String::from_utf8_lossy(&output.stdout);
    assert!(log.contains("INFO"), "{log}");
    assert!(!log.contains('\u{1b}'), "escape codes in {log:?}");

    let output = Command::new(env!("CARGO_BIN_EXE_rescue"))
        .args(["migrate", "--database", "mysql://localhost/rescue"])
        .output()
        .expect("run rescue migrate");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("unsupported database URL"), "{stderr}");
}

#[test]
fn rescue_simulate_then_rescue_train_registers_and_promotes_a_model() {
    let database = TestDatabase::sqlite();
    let simulate = Command::new(env!("CARGO_BIN_EXE_rescue"))
        .args([
            "simulate",
            "--customers",
            "400",
            "--seed",
            "9",
            "--database",
            database.url.expose(),
        ])
        .output()
        .expect("run rescue simulate");
    assert!(
        simulate.status.success(),
        "{}",
        String::from_utf8_lossy(&simulate.stderr)
    );

    let artifact = std::env::temp_dir().join(format!("rescue-train-{}.json", std::process::id()));
    let train = Command::new(env!("CARGO_BIN_EXE_rescue"))
        .args(["train", "--database", database.url.expose(), "--export"])
        .arg(&artifact)
        .output()
        .expect("run rescue train");
    let stdout = String::from_utf8_lossy(&train.stdout);
    assert!(
        train.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&train.stderr)
    );
    assert!(stdout.contains("status       active"), "{stdout}");
    assert!(stdout.contains("ROC-AUC"), "{stdout}");
    let exported = std::fs::read_to_string(&artifact).expect("the exported artifact");
    rescue::model::ModelArtifact::from_json(&exported).expect("the exported artifact loads");
    std::fs::remove_file(&artifact).ok();

    let bad = Command::new(env!("CARGO_BIN_EXE_rescue"))
        .args([
            "train",
            "--database",
            database.url.expose(),
            "--as-of",
            "yesterday",
        ])
        .output()
        .expect("run rescue train");
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("RFC 3339"));
}

/// Idle ingest streams cost the server next to nothing: 2,000 open on one connection, none
/// sending a byte, keep it under 200 MiB (each used to reserve a whole batch, ~1 MB, up front).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_idle_ingest_streams_keep_the_server_small() {
    use rescue::proto::v1::{IngestRecordsRequest, ingest_client::IngestClient};
    const STREAMS: usize = 2_000;
    let database = TestDatabase::sqlite();
    let server = crate::helpers::ServeProcess::start(&database, "127.0.0.1:0").await;
    let channel = tonic::transport::Channel::from_shared(format!("http://{}", server.address))
        .expect("endpoint")
        .connect()
        .await
        .expect("connect");
    let idle = server.resident_mib();
    let mut senders = Vec::with_capacity(STREAMS);
    let mut calls = Vec::with_capacity(STREAMS);
    for _ in 0..STREAMS {
        let (sender, requests) = tokio::sync::mpsc::channel::<IngestRecordsRequest>(1);
        let mut client = IngestClient::new(channel.clone());
        calls.push(tokio::spawn(async move {
            client
                .ingest_records(tokio_stream::wrappers::ReceiverStream::new(requests))
                .await
        }));
        senders.push(sender);
    }
    // Every stream open and waiting on the server: give the calls time to arrive.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let open = server.resident_mib();
    eprintln!(
        "server resident memory: {idle:.1} MiB idle, {open:.1} MiB with {STREAMS} idle ingest streams"
    );
    assert!(open < 200.0, "{open:.1} MiB with {STREAMS} idle streams");
    drop(senders);
    for call in calls {
        let verdict = call
            .await
            .expect("the call task")
            .expect("an empty stream succeeds");
        assert_eq!(verdict.into_inner().accepted, 0);
    }
}

/// 100 MB of records with 100 KB ids, every one rejected: the reply names each by 256 bytes
/// at most, so it stays small, and the server's memory stays bounded (it used to build a reply
/// of the whole ids, 1 GB for 191 MB sent).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_megabytes_of_rejected_records_get_a_small_reply() {
    use prost::Message;
    use rescue::proto::v1::{IngestRecordsRequest, ingest_client::IngestClient};
    const RECORDS: usize = 1_000;
    const PER_MESSAGE: usize = 30; // 3 MB, under the 4 MiB message limit
    let database = TestDatabase::sqlite();
    let server = crate::helpers::ServeProcess::start(&database, "127.0.0.1:0").await;
    let mut client = IngestClient::connect(format!("http://{}", server.address))
        .await
        .expect("connect");
    let long = "x".repeat(100_000);
    let messages: Vec<IngestRecordsRequest> = (0..RECORDS)
        .map(|i| crate::fixtures::usage_event(&format!("{i}-{long}"), "c-1"))
        .collect::<Vec<_>>()
        .chunks(PER_MESSAGE)
        .map(|chunk| IngestRecordsRequest {
            records: chunk.to_vec(),
        })
        .collect();
    let sent: usize = messages.iter().map(Message::encoded_len).sum();
    let verdict = client
        .ingest_records(tokio_stream::iter(messages))
        .await
        .expect("the stream is answered")
        .into_inner();
    let reply = verdict.encoded_len();
    let peak = server.peak_resident_mib();
    eprintln!(
        "sent {:.1} MB of rejected records: reply {:.1} KB, server peak {peak:.1} MiB",
        sent as f64 / 1e6,
        reply as f64 / 1e3
    );
    assert!(sent > 100_000_000, "{sent} bytes sent");
    assert_eq!(verdict.rejected, RECORDS as u64);
    assert!(reply < 1_000_000, "a reply of {reply} bytes");
    assert!(peak < 300.0, "server peak {peak:.1} MiB");
}
