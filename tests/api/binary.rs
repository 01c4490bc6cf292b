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
