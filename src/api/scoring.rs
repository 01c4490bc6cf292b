//! `rescue.v1.Scoring`: health scores for one customer or a stream of them.

use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use super::convert::{self, RecordParser, ScoreSubject};
use super::error::ApiError;
use super::recommend::Recommender;
use crate::domain::Timestamp;
use crate::proto::v1::{self as proto, scoring_server::Scoring};
use crate::scoring::{Bands, ModelSlot};
use crate::store::Store;

/// Responses buffered per stream before the server stops reading requests: enough to keep the
/// pipe full, and what bounds a stream's memory however long it runs.
const STREAM_BUFFER: usize = 64;

#[derive(Debug, Clone)]
pub struct ScoringService {
    store: Arc<dyn Store>,
    slot: Arc<ModelSlot>,
    bands: Bands,
    recommender: Recommender,
}

impl ScoringService {
    pub fn new(
        store: Arc<dyn Store>,
        slot: Arc<ModelSlot>,
        bands: Bands,
        recommender: Recommender,
    ) -> Self {
        Self {
            store,
            slot,
            bands,
            recommender,
        }
    }

    async fn score(
        &self,
        request: proto::ScoreCustomerRequest,
    ) -> Result<proto::ScoreCustomerResponse, ApiError> {
        let parser = RecordParser::received_at(Timestamp::now());
        let (subject, as_of) = parser
            .score_request(request)
            .map_err(ApiError::InvalidArgument)?;
        // Taken once: a promotion during this request cannot mix two versions into it.
        let model = self
            .slot
            .current()
            .ok_or_else(|| ApiError::Unavailable("no health model is active yet".into()))?;
        let history = match subject {
            ScoreSubject::Stored(customer_id) => {
                self.store
                    .customer_records(&customer_id)
                    .await?
                    .ok_or_else(|| {
                        ApiError::NotFound(format!("no customer {:?}", customer_id.as_str()))
                    })?
                    .history
            }
            ScoreSubject::Snapshot(history) => *history,
        };
        Ok(convert::health_score(model.score(
            &history,
            as_of,
            &self.bands,
        )))
    }
}

#[tonic::async_trait]
impl Scoring for ScoringService {
    async fn score_customer(
        &self,
        request: Request<proto::ScoreCustomerRequest>,
    ) -> Result<Response<proto::ScoreCustomerResponse>, Status> {
        Ok(Response::new(self.score(request.into_inner()).await?))
    }

    async fn recommend_recovery(
        &self,
        request: Request<proto::RecommendRecoveryRequest>,
    ) -> Result<Response<proto::RecoveryRecommendation>, Status> {
        let answer = self.recommender.recommend(request.into_inner()).await?;
        Ok(Response::new(answer))
    }

    type ScoreCustomersStream = ReceiverStream<Result<proto::ScoreCustomersResponse, Status>>;

    async fn score_customers(
        &self,
        request: Request<Streaming<proto::ScoreCustomersRequest>>,
    ) -> Result<Response<Self::ScoreCustomersStream>, Status> {
        let mut requests = request.into_inner();
        let (responses, receiver) = mpsc::channel(STREAM_BUFFER);
        let service = self.clone();
        tokio::spawn(async move {
            loop {
                let item = match requests.message().await {
                    Ok(Some(item)) => item,
                    Ok(None) => break,
                    Err(status) => {
                        let _ = responses.send(Err(status)).await;
                        break;
                    }
                };
                let proto::ScoreCustomersRequest {
                    request_id,
                    request,
                } = item;
                let result = match request {
                    Some(request) => service.score(request).await,
                    None => Err(ApiError::InvalidArgument(convert::missing("request"))),
                };
                let result = match result {
                    Ok(score) => proto::score_customers_response::Result::Score(score),
                    Err(error) => proto::score_customers_response::Result::Error(
                        convert::score_error(Status::from(error)),
                    ),
                };
                let response = proto::ScoreCustomersResponse {
                    request_id,
                    result: Some(result),
                };
                // The client went away: stop reading its requests.
                if responses.send(Ok(response)).await.is_err() {
                    break;
                }
            }
        });
        Ok(Response::new(ReceiverStream::new(receiver)))
    }
}
