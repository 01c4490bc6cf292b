//! Wiring: opens the store, binds the listener, and serves the gRPC services with health,
//! reflection and per-RPC tracing until told to stop.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::Server;

use crate::api::IngestService;
use crate::config::Settings;
use crate::proto::{self, v1::ingest_server::IngestServer};
use crate::store::{self, Store};
use crate::telemetry;

/// A bound, ready-to-run server. Building it opens (and migrates) the database and binds the
/// port, so a caller that asked for port 0 can learn the real one before serving.
#[derive(Debug)]
pub struct Application {
    listener: TcpListener,
    store: Arc<dyn Store>,
    shutdown_grace: Duration,
}

impl Application {
    pub async fn build(settings: &Settings) -> anyhow::Result<Self> {
        let store = store::open(&settings.database, settings.pool)
            .await
            .with_context(|| format!("Failed to open the database {}", settings.database))?;
        let listener = TcpListener::bind(settings.listen)
            .await
            .with_context(|| format!("Failed to listen on {}", settings.listen))?;
        Ok(Self {
            listener,
            store,
            shutdown_grace: settings.shutdown_grace,
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    pub fn store(&self) -> Arc<dyn Store> {
        Arc::clone(&self.store)
    }

    /// Serves until `shutdown` completes, then stops accepting connections, reports
    /// NOT_SERVING, and gives in-flight requests the grace period to finish.
    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        let address = self.local_addr()?;
        let (health, health_service) = tonic_health::server::health_reporter();
        health.set_serving::<IngestServer<IngestService>>().await;
        let reflection = || {
            tonic_reflection::server::Builder::configure()
                .register_encoded_file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
                // Without its own descriptors the health service is invisible to reflection.
                .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        };
        let reflection_v1 = reflection().build_v1()?;
        let reflection_v1alpha = reflection().build_v1alpha()?;

        let (stop_accepting, stopped) = tokio::sync::oneshot::channel::<()>();
        let router = Server::builder()
            .layer(telemetry::RpcLogLayer)
            .add_service(health_service)
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha)
            .add_service(IngestServer::new(IngestService::new(Arc::clone(
                &self.store,
            ))));
        let mut serving = tokio::spawn(router.serve_with_incoming_shutdown(
            TcpListenerStream::new(self.listener),
            async {
                stopped.await.ok();
            },
        ));
        tracing::info!(%address, backend = ?self.store.backend(), "rescue is serving gRPC");

        tokio::select! {
            finished = &mut serving => {
                return finished.context("The server task failed")?.context("The server failed");
            }
            () = shutdown => {}
        }
        tracing::info!(grace = ?self.shutdown_grace, "shutting down: finishing in-flight requests");
        health
            .set_not_serving::<IngestServer<IngestService>>()
            .await;
        stop_accepting.send(()).ok();
        match tokio::time::timeout(self.shutdown_grace, &mut serving).await {
            Ok(finished) => finished
                .context("The server task failed")?
                .context("The server failed")?,
            Err(_) => {
                serving.abort();
                tracing::warn!("grace period over: cut off the requests still running");
            }
        }
        tracing::info!("stopped");
        Ok(())
    }
}

/// Completes on Ctrl-C (SIGINT) or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
}
