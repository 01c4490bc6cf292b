//! `RecommendRecovery` at the gRPC edge — the request parsed against the serving program's
//! vocabulary, the decision made by the [`Recommender`], the answer converted — and the
//! program's funnel.

use super::convert::{self, RecordParser};
use super::error::ApiError;
use crate::decision;
use crate::domain::Timestamp;
use crate::program_file::ProgramSource;
use crate::proto::v1 as proto;
use crate::recommendation::Recommender;
use crate::store::Store;

/// Decides one `RecommendRecovery` request.
pub async fn recommend(
    recommender: &Recommender,
    request: proto::RecommendRecoveryRequest,
) -> Result<proto::RecoveryRecommendation, ApiError> {
    let decided_at = Timestamp::now();
    // Taken once: the request is checked and decided under one program.
    let program = recommender.program();
    let request = RecordParser::received_at(decided_at, &program.program.vocabulary)
        .recommend_request(request)
        .map_err(ApiError::InvalidArgument)?;
    let decision = recommender
        .recommend(&request, &program, decided_at)
        .await?;
    let mut answer = proto::RecoveryRecommendation::from(decision);
    if request.what_if {
        // Nothing was stored: no id to refer to.
        answer.decision_id.clear();
    }
    Ok(answer)
}

/// The funnel of a window, from the stored decisions, cases and churn outcomes.
pub async fn funnel(
    store: &dyn Store,
    programs: &ProgramSource,
    request: proto::RecoveryFunnelRequest,
) -> Result<proto::RecoveryFunnelResponse, ApiError> {
    let program = programs.current();
    let (from, to) = RecordParser::received_at(Timestamp::now(), &program.program.vocabulary)
        .funnel_window(request)
        .map_err(ApiError::InvalidArgument)?;
    let threshold = program.program.recovered_at_or_above;
    let input = store.funnel_input(from, to).await?;
    let funnel = decision::funnel::compute(&input, threshold);
    Ok(convert::funnel(funnel, from, to, threshold))
}
