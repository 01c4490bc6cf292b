//! The gRPC services: each RPC converts its request into domain values, calls the store or
//! the models, and converts the answer back. No business rule lives here.

mod audit;
mod convert;
mod error;
mod ingest;
mod models;
mod program;
mod recommend;
mod scoring;

pub use audit::{AuditService, AuditedCall, Auditor};
pub use convert::{RecordParser, ScoreSubject, timestamp};
pub use error::{ApiError, error_chain};
pub use ingest::{BATCH_RECORDS, IngestService, MAX_LISTED_REJECTIONS};
pub use models::ModelsService;
pub use program::ProgramService;
pub use scoring::ScoringService;
