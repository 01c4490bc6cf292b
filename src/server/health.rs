//! What the health service reports for the rescue services: SERVING while the store answers,
//! NOT_SERVING while it does not (a load balancer then routes elsewhere instead of sending
//! calls that would wait and fail), SERVING again once it answers, and NOT_SERVING for good
//! at shutdown.

use std::sync::Arc;
use std::time::Duration;

use tonic::server::NamedService;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use crate::api::{AuditService, IngestService, ModelsService, ProgramService, ScoringService};
use crate::proto::v1::{
    audit_server::AuditServer, ingest_server::IngestServer, models_server::ModelsServer,
    program_server::ProgramServer, scoring_server::ScoringServer,
};
use crate::store::Store;

/// How often the store is asked whether it answers.
const PROBE_EVERY: Duration = Duration::from_secs(1);
/// How long an answer may take before the store counts as not answering: well under the
/// pool's wait for a connection, so health turns before calls start timing out.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Every service the store backs, and the server as a whole (the empty name).
const SERVICES: [&str; 6] = [
    "",
    <IngestServer<IngestService> as NamedService>::NAME,
    <ScoringServer<ScoringService> as NamedService>::NAME,
    <ModelsServer<ModelsService> as NamedService>::NAME,
    <ProgramServer<ProgramService> as NamedService>::NAME,
    <AuditServer<AuditService> as NamedService>::NAME,
];

/// Reports `status` for every service.
pub async fn report(health: &HealthReporter, status: ServingStatus) {
    for service in SERVICES {
        health.set_service_status(service, status).await;
    }
}

/// Probes the store forever, turning every service's status when its answer changes; on the
/// way, publishes the store's pool use as metrics.
pub async fn follow_store(store: Arc<dyn Store>, health: HealthReporter) {
    let mut every = tokio::time::interval(PROBE_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut serving = true;
    loop {
        every.tick().await;
        let usage = store.pool_usage();
        crate::telemetry::metrics::pool(usage.in_use, usage.idle, usage.max);
        let answer = tokio::time::timeout(PROBE_TIMEOUT, store.ping()).await;
        let answers = matches!(answer, Ok(Ok(())));
        if answers == serving {
            continue;
        }
        serving = answers;
        if answers {
            tracing::info!("the database answers again: reporting SERVING");
            report(&health, ServingStatus::Serving).await;
        } else {
            match answer {
                Ok(Err(error)) => tracing::error!(
                    error = %crate::api::error_chain(&error),
                    "the database does not answer: reporting NOT_SERVING"
                ),
                _ => tracing::error!(
                    timeout = ?PROBE_TIMEOUT,
                    "the database does not answer in time: reporting NOT_SERVING"
                ),
            }
            report(&health, ServingStatus::NotServing).await;
        }
    }
}
