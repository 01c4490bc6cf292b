//! `rescue.v1.Program`: the recovery funnel over stored decisions, and the program
//! configuration serving now (read or reloaded).

use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::convert::timestamp;
use super::error::ApiError;
use super::recommend;
use crate::domain::{Timestamp, Violations};
use crate::program_file::{LoadedProgram, ProgramSource, ReloadError};
use crate::proto::v1::{self as proto, program_server::Program};
use crate::store::Store;

#[derive(Debug, Clone)]
pub struct ProgramService {
    store: Arc<dyn Store>,
    programs: Arc<ProgramSource>,
    auditor: super::audit::Auditor,
}

impl ProgramService {
    pub fn new(store: Arc<dyn Store>, programs: Arc<ProgramSource>) -> Self {
        Self {
            auditor: super::audit::Auditor::new(Arc::clone(&store)),
            store,
            programs,
        }
    }

    fn info(&self, loaded: &LoadedProgram) -> proto::ProgramInfo {
        proto::ProgramInfo {
            version: loaded.program.version.clone(),
            path: self
                .programs
                .path()
                .map_or_else(String::new, |p| p.display().to_string()),
            toml: loaded.program.toml.clone(),
            loaded_at: Some(timestamp(loaded.loaded_at)),
        }
    }
}

fn reload_error(error: ReloadError) -> ApiError {
    let mut violations = Violations::default();
    match error {
        ReloadError::NoFile => {
            return ApiError::FailedPrecondition(crate::domain::FieldViolation {
                field: "program".into(),
                reason: error.to_string(),
            });
        }
        ReloadError::Read { .. } => violations.push("program", super::error_chain(&error)),
        ReloadError::Invalid { source, .. } => {
            for problem in source.problems {
                violations.push("program", problem);
            }
        }
    }
    ApiError::InvalidArgument(violations)
}

#[tonic::async_trait]
impl Program for ProgramService {
    async fn recovery_funnel(
        &self,
        request: Request<proto::RecoveryFunnelRequest>,
    ) -> Result<Response<proto::RecoveryFunnelResponse>, Status> {
        let response =
            recommend::funnel(self.store.as_ref(), &self.programs, request.into_inner()).await?;
        Ok(Response::new(response))
    }

    async fn get_program(
        &self,
        _request: Request<proto::GetProgramRequest>,
    ) -> Result<Response<proto::ProgramInfo>, Status> {
        Ok(Response::new(self.info(&self.programs.current())))
    }

    async fn reload_program(
        &self,
        request: Request<proto::ReloadProgramRequest>,
    ) -> Result<Response<proto::ProgramInfo>, Status> {
        let audit = self
            .auditor
            .call(&request, "ReloadProgram", "the program file");
        let before = self.programs.current().program.version.clone();
        let loaded = match self.programs.reload(Timestamp::now()) {
            Ok(loaded) => loaded,
            Err(error) => {
                let status = Status::from(reload_error(error));
                audit.finish(Err(&status)).await;
                return Err(status);
            }
        };
        let now = &loaded.program.version;
        let changed = if *now == before {
            String::new()
        } else {
            format!("program {now} serves (was {before})")
        };
        audit.finish(Ok(changed)).await;
        Ok(Response::new(self.info(&loaded)))
    }
}
