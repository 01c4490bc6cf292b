//! How failures reach gRPC clients: one exhaustive mapping from service errors to `Status`.
//! Invalid input carries `google.rpc.BadRequest` field violations; internal failures are
//! opaque to the client while the log keeps the cause chain.

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::domain::{FieldViolation, MAX_ECHOED_BYTES, Violations, shortened};
use crate::model::ModelError;
use crate::registry::RegistryError;
use crate::store::StoreError;
use crate::training::TrainingError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("invalid request: {0}")]
    InvalidArgument(Violations),
    #[error("{0}")]
    NotFound(String),
    /// The request is well-formed but the stored state does not allow it.
    #[error("{0}")]
    FailedPrecondition(crate::domain::FieldViolation),
    /// The service cannot answer yet (e.g. no model is active); retrying later may succeed.
    #[error("{0}")]
    Unavailable(String),
    /// Another writer changed the data between read and write; the client may retry.
    #[error("{0}")]
    Aborted(String),
    /// A limit of the server's, e.g. one training of a kind at a time.
    #[error("{0}")]
    ResourceExhausted(String),
    /// A failure of the server's own: the client learns `0`, the log the rest.
    #[error("{0}")]
    Internal(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Training(#[from] TrainingError),
    #[error(transparent)]
    Recommend(#[from] crate::recommendation::RecommendError),
}

impl From<ApiError> for Status {
    fn from(error: ApiError) -> Self {
        match error {
            ApiError::InvalidArgument(violations) => {
                let message = format!("invalid request: {violations}");
                let details: Vec<tonic_types::FieldViolation> = violations
                    .into_vec()
                    .into_iter()
                    .map(|v| tonic_types::FieldViolation::new(v.field, v.reason))
                    .collect();
                Status::with_error_details(
                    Code::InvalidArgument,
                    message,
                    ErrorDetails::with_bad_request(details),
                )
            }
            ApiError::NotFound(message) => Status::not_found(message),
            ApiError::FailedPrecondition(violation) => {
                let message = violation.to_string();
                Status::with_error_details(
                    Code::FailedPrecondition,
                    message,
                    ErrorDetails::with_bad_request(vec![tonic_types::FieldViolation::new(
                        violation.field,
                        violation.reason,
                    )]),
                )
            }
            ApiError::Aborted(message) => Status::aborted(message),
            ApiError::Unavailable(message) => Status::unavailable(message),
            ApiError::ResourceExhausted(message) => Status::resource_exhausted(message),
            ApiError::Internal(message) => {
                tracing::error!(%message, "internal failure");
                Status::internal(format!("{message}; the server log has details"))
            }
            ApiError::Store(error) => store_status(&error),
            ApiError::Registry(error) => registry_status(error),
            ApiError::Training(error) => training_status(error),
            ApiError::Recommend(error) => recommend_status(error),
        }
    }
}

/// A recommendation that could not be made: the service not ready, the customer or trigger
/// unknown (NOT_FOUND), a trigger that cannot be used (INVALID_ARGUMENT on its field).
fn recommend_status(error: crate::recommendation::RecommendError) -> Status {
    use crate::recommendation::RecommendError;
    let on_field = |field: &str, error: &RecommendError| {
        let mut violations = Violations::default();
        violations.push(field, error.to_string());
        Status::from(ApiError::InvalidArgument(violations))
    };
    match error {
        RecommendError::NoHealthModel => Status::unavailable(error.to_string()),
        RecommendError::UnknownCustomer(_)
        | RecommendError::UnknownTrigger { .. }
        | RecommendError::NoTrigger(_) => Status::not_found(error.to_string()),
        RecommendError::ForeignTrigger { field, .. }
        | RecommendError::TriggerAfterAsOf { field, .. } => on_field(field, &error),
        RecommendError::Store(error) => store_status(&error),
    }
}

fn registry_status(error: RegistryError) -> Status {
    match error {
        RegistryError::UnknownVersion(version) => Status::not_found(format!(
            "no model version {:?}",
            shortened(&version, MAX_ECHOED_BYTES)
        )),
        RegistryError::NothingToRollBackTo(_)
        | RegistryError::Unloadable { .. }
        | RegistryError::WrongKind { .. } => {
            ApiError::FailedPrecondition(FieldViolation::new("version", error.to_string())).into()
        }
        RegistryError::Store(error) => store_status(&error),
    }
}

fn training_status(error: TrainingError) -> Status {
    match error {
        TrainingError::Invalid(reason) => Status::invalid_argument(reason),
        TrainingError::NotEnoughData(reason) => {
            Status::failed_precondition(format!("not enough data to train: {reason}"))
        }
        TrainingError::Store(error) => store_status(&error),
        TrainingError::Registry(error) => registry_status(error),
        TrainingError::Model(ModelError::Cancelled) => {
            tracing::info!("training cancelled: its caller went away");
            Status::cancelled("the training was cancelled")
        }
        TrainingError::Model(error) => {
            tracing::error!(error = %error_chain(&error), "training failed");
            Status::internal(format!("training failed: {error}"))
        }
        TrainingError::Task(reason) => {
            tracing::error!(%reason, "training task failed");
            Status::internal("training failed; the server log has details")
        }
    }
}

fn store_status(error: &StoreError) -> Status {
    tracing::error!(error = %error_chain(error), "store failure");
    match error {
        StoreError::Unavailable(_) => {
            Status::unavailable("the database is unavailable; retry later")
        }
        StoreError::Full(_) => Status::resource_exhausted(
            "the database is out of space: nothing of this call was stored; writes succeed again once space is freed",
        ),
        StoreError::Config(_)
        | StoreError::Migrate(_)
        | StoreError::Corrupt(_)
        | StoreError::Database(_) => Status::internal("internal error; the server log has details"),
    }
}

/// `error: cause: cause …`, for logs.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
