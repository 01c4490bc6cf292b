//! A client that streams many small `ScoreCustomers` requests — each its own HTTP/2 DATA frame,
//! as grpcio sends them — and reads no answer until it has sent them all gets every answer:
//! the server stops reading while its answers wait, and flow control holds the client back
//! before HTTP/2's protection against small-frame floods would cut the connection.

use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use prost::Message;
use rescue::proto::v1::{
    IngestRecordsRequest, ScoreCustomerRequest, ScoreCustomersRequest, ScoreCustomersResponse,
    score_customer_request::Subject,
};

use crate::fixtures;
use crate::helpers::{TestDatabase, spawn_app};

const REQUESTS: usize = 20_000;

/// One gRPC message as it travels: uncompressed flag, length, bytes.
fn framed(message: &impl Message) -> Bytes {
    let body = message.encode_to_vec();
    let mut framed = BytesMut::with_capacity(body.len() + 5);
    framed.put_u8(0);
    framed.put_u32(u32::try_from(body.len()).expect("small"));
    framed.put_slice(&body);
    framed.freeze()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_does_not_read_its_answers_gets_every_one() {
    let database = TestDatabase::sqlite();
    let app = spawn_app(&database).await;
    let customers: Vec<String> = (0..20).map(|i| format!("bp-{i}")).collect();
    let mut ingest = app.ingest_client().await;
    ingest
        .ingest_records(tokio_stream::iter(vec![IngestRecordsRequest {
            records: customers
                .iter()
                .flat_map(|id| {
                    [
                        fixtures::customer(id),
                        fixtures::usage_event(&format!("{id}-u"), id),
                    ]
                })
                .collect(),
        }]))
        .await
        .expect("customers stored");

    let tcp = tokio::net::TcpStream::connect(app.address)
        .await
        .expect("connect");
    let (client, connection) = h2::client::handshake(tcp).await.expect("HTTP/2 handshake");
    let driving = tokio::spawn(connection);
    let mut client = client.ready().await.expect("ready");
    let request = http::Request::builder()
        .method("POST")
        .uri(format!(
            "http://{}/rescue.v1.Scoring/ScoreCustomers",
            app.address
        ))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(())
        .expect("a request");
    let (answer, mut send) = client.send_request(request, false).expect("a stream");
    // Every request its own DATA frame, queued at once; h2 sends them as the server's flow
    // control lets it.
    for i in 0..REQUESTS {
        let message = ScoreCustomersRequest {
            request_id: i.to_string(),
            request: Some(ScoreCustomerRequest {
                subject: Some(Subject::CustomerId(customers[i % customers.len()].clone())),
                as_of: None,
            }),
        };
        send.send_data(framed(&message), i + 1 == REQUESTS)
            .expect("queue a request");
    }
    // Not reading yet: the answers pile up until the server stops reading requests.
    tokio::time::sleep(Duration::from_secs(2)).await;

    let answer = tokio::time::timeout(Duration::from_secs(60), answer)
        .await
        .expect("answers start")
        .expect("an HTTP/2 response");
    assert_eq!(answer.status(), 200);
    let mut body = answer.into_body();
    let mut pending = BytesMut::new();
    let mut answered = 0usize;
    let mut scored = 0usize;
    while let Some(chunk) = tokio::time::timeout(Duration::from_secs(60), body.data())
        .await
        .expect("answers keep coming")
    {
        let chunk = chunk.expect("the connection stays up");
        body.flow_control()
            .release_capacity(chunk.len())
            .expect("release window");
        pending.extend_from_slice(&chunk);
        while pending.len() >= 5 {
            let length =
                u32::from_be_bytes([pending[1], pending[2], pending[3], pending[4]]) as usize;
            if pending.len() < 5 + length {
                break;
            }
            let frame = pending.split_to(5 + length);
            let response = ScoreCustomersResponse::decode(&frame[5..]).expect("an answer");
            assert_eq!(
                response.request_id,
                answered.to_string(),
                "answers in request order"
            );
            if matches!(
                response.result,
                Some(rescue::proto::v1::score_customers_response::Result::Score(
                    _
                ))
            ) {
                scored += 1;
            }
            answered += 1;
        }
    }
    let trailers = body.trailers().await.expect("trailers").expect("a status");
    assert_eq!(
        trailers.get("grpc-status").map(|v| v.as_bytes()),
        Some(&b"0"[..]),
        "{trailers:?}"
    );
    assert_eq!(answered, REQUESTS);
    assert_eq!(scored, REQUESTS, "every request named a stored customer");
    drop(client);
    driving.abort();
    app.stop().await;
}
