//! `rescue.v1.Scoring`: health scores and recovery recommendations, for one customer or a
//! stream of them.

use std::sync::Arc;

use std::future::Future;

use futures::StreamExt;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use super::convert::{self, RecordParser, ScoreSubject};
use super::error::ApiError;
use super::recommend;
use crate::domain::Timestamp;
use crate::proto::v1::{self as proto, scoring_server::Scoring};
use crate::recommendation::Recommender;
use crate::scoring::{Bands, ModelSlot};
use crate::store::Store;
use crate::telemetry::metrics;

/// Responses buffered per stream before the server stops reading requests: enough to keep the
/// pipe full, and what bounds a stream's memory however long it runs.
const STREAM_BUFFER: usize = 64;
/// Requests of one stream answered at once: enough for their store reads to share queries
/// (and, for recommendations, their decisions to share commits), few enough that one stream
/// cannot take every connection of the store's pools for long.
const STREAM_CONCURRENCY: usize = 32;

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
        let program = self.recommender.program();
        let parser = RecordParser::received_at(Timestamp::now(), &program.program.vocabulary);
        let (subject, as_of) = parser
            .score_request(request)
            .map_err(ApiError::InvalidArgument)?;
        // Taken once: a promotion during this request cannot mix two versions into it.
        let model = self
            .slot
            .current()
            .ok_or_else(|| ApiError::Unavailable("no health model is active yet".into()))?;
        let score = match subject {
            ScoreSubject::Stored(customer_id) => {
                let records = self
                    .store
                    .customer_records(&customer_id)
                    .await?
                    .ok_or_else(|| {
                        ApiError::NotFound(format!("no customer {:?}", customer_id.as_str()))
                    })?;
                model.score(&records.history, as_of, &self.bands)
            }
            ScoreSubject::Snapshot(history) => model.score(&history, as_of, &self.bands),
        };
        metrics::scored(score.band.as_str(), &score.model_version);
        Ok(convert::health_score(score))
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
        let answer = recommend::recommend(&self.recommender, request.into_inner()).await?;
        Ok(Response::new(answer))
    }

    type ScoreCustomersStream = ReceiverStream<Result<proto::ScoreCustomersResponse, Status>>;

    async fn score_customers(
        &self,
        request: Request<Streaming<proto::ScoreCustomersRequest>>,
    ) -> Result<Response<Self::ScoreCustomersStream>, Status> {
        let service = self.clone();
        let answers = in_order(request.into_inner(), move |item| {
            let service = service.clone();
            async move {
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
                proto::ScoreCustomersResponse {
                    request_id,
                    result: Some(result),
                }
            }
        });
        Ok(Response::new(answers))
    }

    type RecommendRecoveriesStream =
        ReceiverStream<Result<proto::RecommendRecoveriesResponse, Status>>;

    async fn recommend_recoveries(
        &self,
        request: Request<Streaming<proto::RecommendRecoveriesRequest>>,
    ) -> Result<Response<Self::RecommendRecoveriesStream>, Status> {
        let recommender = self.recommender.clone();
        let answers = in_order(request.into_inner(), move |item| {
            let recommender = recommender.clone();
            async move {
                let proto::RecommendRecoveriesRequest {
                    request_id,
                    request,
                } = item;
                let result = match request {
                    Some(request) => recommend::recommend(&recommender, request).await,
                    None => Err(ApiError::InvalidArgument(convert::missing("request"))),
                };
                let result = match result {
                    Ok(answer) => {
                        proto::recommend_recoveries_response::Result::Recommendation(answer)
                    }
                    Err(error) => proto::recommend_recoveries_response::Result::Error(
                        convert::score_error(Status::from(error)),
                    ),
                };
                proto::RecommendRecoveriesResponse {
                    request_id,
                    result: Some(result),
                }
            }
        });
        Ok(Response::new(answers))
    }
}

/// Answers a stream of requests in request order, each with what `answer` makes of it (a
/// failure included: it never ends the stream). Up to [`STREAM_CONCURRENCY`] requests are
/// answered at once, each in a task of its own, so a stream's store reads are gathered
/// together and its scoring spreads over the cores; at most [`STREAM_BUFFER`] answers wait
/// for a slow client before reading stops, so a stream's memory is bounded however long it
/// runs; a client that goes away stops the reading.
fn in_order<Q, A, F, Fut>(requests: Streaming<Q>, answer: F) -> ReceiverStream<Result<A, Status>>
where
    Q: Send + 'static,
    A: Send + 'static,
    F: Fn(Q) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = A> + Send + 'static,
{
    let (answers, receiver) = mpsc::channel(STREAM_BUFFER);
    tokio::spawn(async move {
        // The requests until the stream ends or fails; a failure is the last item.
        let received = futures::stream::unfold(Some(requests), |requests| async move {
            let mut requests = requests?;
            match requests.message().await {
                Ok(Some(item)) => Some((Ok(item), Some(requests))),
                Ok(None) => None,
                Err(status) => Some((Err(status), None)),
            }
        });
        let answered = received
            .map(|item| {
                let answering = item.map(|item| tokio::spawn(answer(item)));
                async move {
                    match answering {
                        Ok(task) => task
                            .await
                            .map_err(|_| Status::internal("answering a request failed")),
                        Err(status) => Err(status),
                    }
                }
            })
            .buffered(STREAM_CONCURRENCY);
        let mut answered = std::pin::pin!(answered);
        while let Some(answer) = answered.next().await {
            if answers.send(answer).await.is_err() {
                break;
            }
        }
    });
    ReceiverStream::new(receiver)
}
