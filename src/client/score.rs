//! `rescue-client score`: a file of customer ids scored through the `ScoreCustomers` stream,
//! written as CSV or JSON Lines in constant memory ([`super::batch`]).

use std::path::PathBuf;

use super::connection::Connection;
use tokio_stream::wrappers::ReceiverStream;

use super::batch::{self, BatchCall, BatchFiles, BatchSummary, DEFAULT_IN_FLIGHT};
use super::columns::{enum_name, format_time, parse_time};
use super::format::Format;
use crate::proto::v1::{
    self as proto, score_customer_request::Subject, score_customers_response::Result as Answer,
    scoring_client::ScoringClient,
};

/// `rescue-client score` options.
#[derive(Debug, Clone, clap::Args)]
pub struct ScoreArgs {
    /// Customer ids, one per line, or a CSV file with a `customer_id` column (optionally
    /// gzip-compressed).
    pub ids: PathBuf,
    /// Where to write the scores: .csv or .jsonl (with .gz to compress).
    #[arg(long)]
    pub out: PathBuf,
    /// The output's format [default: from its name].
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Score as of this time (RFC 3339) [default: now].
    #[arg(long, value_parser = parse_time)]
    pub as_of: Option<prost_types::Timestamp>,
    /// Requests sent ahead of the answers.
    #[arg(long, default_value_t = DEFAULT_IN_FLIGHT, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub in_flight: u64,
}

const CSV_HEADER: [&str; 9] = [
    "customer_id",
    "health_score",
    "churn_probability",
    "band",
    "drivers",
    "model_version",
    "as_of",
    "error",
    "warnings",
];

fn band(raw: i32) -> String {
    proto::HealthBand::try_from(raw)
        .map(|band| enum_name(band.as_str_name(), "HEALTH_BAND_"))
        .unwrap_or_default()
}

fn csv_row(request_id: &str, answer: Option<Answer>) -> Vec<String> {
    match answer {
        Some(Answer::Score(score)) => {
            let drivers: Vec<String> = score
                .drivers
                .iter()
                .map(|d| format!("{} {:+.3}", d.feature, d.contribution))
                .collect();
            vec![
                score.customer_id,
                format!("{:.2}", score.health_score),
                format!("{:.4}", score.churn_probability),
                band(score.band),
                drivers.join("; "),
                score.model_version,
                score.as_of.map(format_time).unwrap_or_default(),
                String::new(),
                score.warnings.join("; "),
            ]
        }
        Some(Answer::Error(error)) => {
            let mut row = vec![String::new(); CSV_HEADER.len()];
            row[0] = request_id.to_owned();
            row[7] = batch::error_text(&error);
            row
        }
        None => {
            let mut row = vec![String::new(); CSV_HEADER.len()];
            row[0] = request_id.to_owned();
            row[7] = "the server sent no result".into();
            row
        }
    }
}

fn json_row(request_id: &str, answer: Option<Answer>) -> serde_json::Value {
    match answer {
        Some(Answer::Score(score)) => serde_json::json!({
            "customer_id": score.customer_id,
            "health_score": score.health_score,
            "churn_probability": score.churn_probability,
            "band": band(score.band),
            "drivers": score.drivers.iter().map(|d| serde_json::json!({
                "feature": d.feature,
                "description": d.description,
                "contribution": d.contribution,
            })).collect::<Vec<_>>(),
            "model_version": score.model_version,
            "as_of": score.as_of.map(format_time),
            "warnings": score.warnings,
        }),
        Some(Answer::Error(error)) => batch::error_json(request_id, Some(&error)),
        None => batch::error_json(request_id, None),
    }
}

/// `ScoreCustomers` for stored customers as of one time.
struct ScoreCall {
    as_of: Option<prost_types::Timestamp>,
}

impl BatchCall for ScoreCall {
    type Request = proto::ScoreCustomersRequest;
    type Response = proto::ScoreCustomersResponse;
    const RPC: &'static str = "ScoreCustomers";
    const DONE: &'static str = "scored";
    const CSV_HEADER: &'static [&'static str] = &CSV_HEADER;

    fn request(&self, id: String) -> Self::Request {
        proto::ScoreCustomersRequest {
            request_id: id.clone(),
            request: Some(proto::ScoreCustomerRequest {
                subject: Some(Subject::CustomerId(id)),
                as_of: self.as_of,
            }),
        }
    }

    async fn call(
        channel: Connection,
        requests: ReceiverStream<Self::Request>,
    ) -> Result<tonic::Streaming<Self::Response>, tonic::Status> {
        Ok(ScoringClient::new(channel)
            .score_customers(requests)
            .await?
            .into_inner())
    }

    fn csv_row(response: Self::Response) -> (Vec<String>, bool) {
        let scored = matches!(response.result, Some(Answer::Score(_)));
        (csv_row(&response.request_id, response.result), scored)
    }

    fn json_row(response: Self::Response) -> (serde_json::Value, bool) {
        let scored = matches!(response.result, Some(Answer::Score(_)));
        (json_row(&response.request_id, response.result), scored)
    }
}

/// Scores every id of the file and writes the answers in the file's order.
pub async fn score(channel: Connection, args: &ScoreArgs) -> anyhow::Result<BatchSummary> {
    let files = BatchFiles {
        ids: &args.ids,
        out: &args.out,
        format: args.format,
        in_flight: args.in_flight,
    };
    batch::run(channel, ScoreCall { as_of: args.as_of }, files).await
}
