//! `rescue.v1.Ingest`: streams of records in, one verdict per record out.
//!
//! Records are parsed as they arrive and written in batches, each batch in one transaction.
//! One batch is written while the next is being received and parsed, so the network, the
//! parsing and the database work side by side. The response goes out only after the last
//! batch is committed, so every record it counts as accepted is durably stored.

use std::sync::Arc;

use tokio::task::JoinHandle;
use tonic::{Request, Response, Status, Streaming};

use super::audit::Auditor;
use super::convert::RecordParser;
use super::error::ApiError;
use crate::domain::{
    FieldViolation, MAX_ECHOED_BYTES, Record, RecordKind, RecoveryCase, Timestamp, shortened,
};
use crate::program_file::ProgramSource;
use crate::proto::v1::{self as proto, ingest_server::Ingest};
use crate::store::{Outcome, Store, StoreError};
use crate::telemetry::metrics;

/// Records per transaction. Large enough that commit (fsync) cost is shared by thousands of
/// rows, small enough that a failed stream loses little work and memory stays bounded.
pub const BATCH_RECORDS: usize = 5_000;
/// The most rejections one response lists; more are counted but not listed, so a stream of
/// garbage cannot produce a response too large for the client to receive.
pub const MAX_LISTED_REJECTIONS: usize = 10_000;

#[derive(Debug, Clone)]
pub struct IngestService {
    store: Arc<dyn Store>,
    auditor: Auditor,
    /// Whose vocabulary records are checked against.
    programs: Arc<ProgramSource>,
}

impl IngestService {
    pub fn new(store: Arc<dyn Store>, programs: Arc<ProgramSource>) -> Self {
        Self {
            auditor: Auditor::new(Arc::clone(&store)),
            store,
            programs,
        }
    }

    /// Records a recovery's outcome on its stored case; the case as stored afterwards.
    async fn record_outcome(
        &self,
        request: proto::RecordRecoveryOutcomeRequest,
    ) -> Result<RecoveryCase, ApiError> {
        let program = self.programs.current();
        let outcome = RecordParser::received_at(Timestamp::now(), &program.program.vocabulary)
            .recovery_outcome(request)
            .map_err(ApiError::InvalidArgument)?;
        let stored = self
            .store
            .recovery_case(&outcome.case_id)
            .await?
            .ok_or_else(|| {
                ApiError::NotFound(format!("no recovery case {:?}", outcome.case_id.as_str()))
            })?;
        let updated = stored
            .with_outcome(&outcome)
            .map_err(ApiError::FailedPrecondition)?;
        // Written through the ordinary batch rules, so the newest-version-wins guard applies
        // even if another writer updated the case since it was read.
        let verdict = self
            .store
            .write_batch(&[Record::RecoveryCase(updated.clone())])
            .await?;
        match verdict.as_slice() {
            [Outcome::Accepted | Outcome::Duplicate] => {}
            _ => {
                return Err(ApiError::Aborted(format!(
                    "recovery case {:?} changed while the outcome was being recorded; send it again",
                    outcome.case_id.as_str()
                )));
            }
        }
        tracing::info!(case_id = %outcome.case_id, "recovery outcome recorded");
        Ok(updated)
    }

    /// Stores a stream's records batch by batch and counts their verdicts.
    async fn ingest_stream(
        &self,
        mut stream: Streaming<proto::IngestRecordsRequest>,
    ) -> Result<proto::IngestRecordsResponse, Status> {
        let mut tally = Tally::default();
        let mut next_index: u64 = 0;
        // Grown as records arrive, not reserved: an idle stream costs next to nothing, however
        // many a client opens.
        let mut pending: Vec<(u64, Record)> = Vec::new();
        let mut in_flight: Option<JoinHandle<WrittenBatch>> = None;

        while let Some(message) = stream.message().await? {
            // Judged against the time each message arrives: a long stream must not start
            // refusing recent events because it began a while ago.
            let program = self.programs.current();
            let parser = RecordParser::received_at(Timestamp::now(), &program.program.vocabulary);
            for record in message.records {
                let index = next_index;
                next_index += 1;
                let (kind, id) = (raw_kind(&record), raw_id(&record).to_owned());
                match parser.record(record) {
                    Ok(record) => pending.push((index, record)),
                    Err(violations) => {
                        for violation in violations.into_vec() {
                            tally.reject(index, kind, &id, violation);
                        }
                    }
                }
            }
            // Batches end on message boundaries, so a customer and its events sent in one
            // message always land in the same transaction.
            if pending.len() >= BATCH_RECORDS {
                if let Some(write) = in_flight.take() {
                    finish_write(write, &mut tally).await?;
                }
                let batch = std::mem::take(&mut pending);
                in_flight = Some(self.start_write(batch));
            }
        }
        if let Some(write) = in_flight.take() {
            finish_write(write, &mut tally).await?;
        }
        if !pending.is_empty() {
            finish_write(self.start_write(pending), &mut tally).await?;
        }
        // Parse rejections are counted as records arrive, store rejections as batches commit.
        tally
            .response
            .rejections
            .sort_by_key(|rejection| rejection.index);
        tracing::info!(
            records = next_index,
            accepted = tally.response.accepted,
            duplicate = tally.response.duplicate,
            superseded = tally.response.superseded,
            rejected = tally.response.rejected,
            "ingest stream stored"
        );
        Ok(tally.response)
    }

    fn start_write(&self, batch: Vec<(u64, Record)>) -> JoinHandle<WrittenBatch> {
        let store = Arc::clone(&self.store);
        // A task of its own, so a committed batch's verdicts are never dropped half-way if the
        // client goes away: the transaction either commits or rolls back as a whole.
        tokio::spawn(async move {
            let (indices, records): (Vec<u64>, Vec<Record>) = batch.into_iter().unzip();
            let outcomes = store.write_batch(&records).await?;
            Ok(indices.into_iter().zip(records).zip(outcomes).collect())
        })
    }
}

type WrittenBatch = Result<Vec<((u64, Record), Outcome)>, StoreError>;

async fn finish_write(write: JoinHandle<WrittenBatch>, tally: &mut Tally) -> Result<(), Status> {
    let written = write
        .await
        .map_err(|error| ApiError::Internal(format!("the batch writer failed: {error}")))?
        .map_err(ApiError::from)?;
    for ((index, record), outcome) in written {
        tally.count(index, &record, outcome);
    }
    Ok(())
}

#[tonic::async_trait]
impl Ingest for IngestService {
    async fn ingest_records(
        &self,
        request: Request<Streaming<proto::IngestRecordsRequest>>,
    ) -> Result<Response<proto::IngestRecordsResponse>, Status> {
        let audit = self
            .auditor
            .call(&request, "IngestRecords", "a stream of records");
        let stored = self.ingest_stream(request.into_inner()).await;
        match &stored {
            Ok(response) => {
                let received = response.accepted
                    + response.duplicate
                    + response.superseded
                    + response.rejected;
                audit
                    .finish(Ok(format!(
                        "{received} records: {} accepted, {} duplicate, {} superseded, {} rejected",
                        response.accepted,
                        response.duplicate,
                        response.superseded,
                        response.rejected
                    )))
                    .await;
            }
            Err(status) => audit.finish(Err(status)).await,
        }
        stored.map(Response::new)
    }

    async fn record_recovery_outcome(
        &self,
        request: Request<proto::RecordRecoveryOutcomeRequest>,
    ) -> Result<Response<proto::RecordRecoveryOutcomeResponse>, Status> {
        let audit = self.auditor.call(
            &request,
            "RecordRecoveryOutcome",
            format!("recovery case {:?}", request.get_ref().case_id),
        );
        let recorded = self.record_outcome(request.into_inner()).await;
        audit
            .outcome(recorded, |case: &RecoveryCase| {
                format!(
                    "outcome recorded: retained {}, re-survey {}",
                    case.retained.map_or("unknown".into(), |r| r.to_string()),
                    case.resurvey_score
                        .map_or("none".into(), |score| score.get().to_string())
                )
            })
            .await
            .map(|case| {
                Response::new(proto::RecordRecoveryOutcomeResponse {
                    recovery_case: Some(case.into()),
                })
            })
    }
}

/// The kind of a record as sent, for counting it; `unknown` when it names none.
fn raw_kind(record: &proto::Record) -> &'static str {
    use proto::record::Kind;
    let kind = match &record.kind {
        None => return "unknown",
        Some(Kind::Customer(_)) => RecordKind::Customer,
        Some(Kind::UsageEvent(_)) => RecordKind::UsageEvent,
        Some(Kind::Interaction(_)) => RecordKind::Interaction,
        Some(Kind::Survey(_)) => RecordKind::Survey,
        Some(Kind::ChurnOutcome(_)) => RecordKind::ChurnOutcome,
        Some(Kind::RecoveryCase(_)) => RecordKind::RecoveryCase,
    };
    kind.field_name()
}

/// The caller id of a record as sent, before any check, for naming it in a rejection.
fn raw_id(record: &proto::Record) -> &str {
    use proto::record::Kind;
    match &record.kind {
        None => "",
        Some(Kind::Customer(r)) => &r.customer_id,
        Some(Kind::UsageEvent(r)) => &r.event_id,
        Some(Kind::Interaction(r)) => &r.interaction_id,
        Some(Kind::Survey(r)) => &r.survey_id,
        Some(Kind::ChurnOutcome(r)) => &r.customer_id,
        Some(Kind::RecoveryCase(r)) => &r.case_id,
    }
}

/// The running verdict of one stream.
#[derive(Debug, Default)]
struct Tally {
    response: proto::IngestRecordsResponse,
    /// The last index counted as rejected, so a record with several violations counts once.
    last_rejected: Option<u64>,
}

impl Tally {
    fn count(&mut self, index: u64, record: &Record, outcome: Outcome) {
        let kind = record.kind().field_name();
        let verdict = match outcome {
            Outcome::Accepted => {
                self.response.accepted += 1;
                "accepted"
            }
            Outcome::Duplicate => {
                self.response.duplicate += 1;
                "duplicate"
            }
            Outcome::Superseded => {
                self.response.superseded += 1;
                "superseded"
            }
            Outcome::Rejected(violation) => {
                return self.reject(index, kind, record.id(), violation);
            }
        };
        metrics::ingested(kind, verdict);
    }

    fn reject(&mut self, index: u64, kind: &'static str, id: &str, violation: FieldViolation) {
        if self.last_rejected != Some(index) {
            self.response.rejected += 1;
            self.last_rejected = Some(index);
            metrics::ingested(kind, "rejected");
        }
        if self.response.rejections.len() < MAX_LISTED_REJECTIONS {
            self.response.rejections.push(proto::RejectedRecord {
                index,
                record_id: shortened(id, MAX_ECHOED_BYTES).to_owned(),
                field: violation.field,
                reason: violation.reason,
            });
        } else {
            self.response.rejections_truncated = true;
        }
    }
}
