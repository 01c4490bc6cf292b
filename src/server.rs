//! Wiring: opens the store, binds the listener, and serves the gRPC services with health
//! (following the store's), reflection and per-RPC tracing until told to stop.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;
use tonic::transport::Server;

use crate::api::{AuditService, IngestService, ModelsService, ProgramService, ScoringService};
use crate::auth::{AuthLayer, Authenticator};
use crate::config::Settings;
use crate::domain::Timestamp;
use crate::model::ModelKind;
use crate::program_file::ProgramSource;
use crate::proto::{
    self,
    v1::{
        audit_server::AuditServer, ingest_server::IngestServer, models_server::ModelsServer,
        program_server::ProgramServer, scoring_server::ScoringServer,
    },
};
use crate::recommendation::Recommender;
use crate::registry::{self, ServingModels};
use crate::store::{self, Store};
use crate::telemetry;

mod admission;
mod completion;
mod connection;
mod health;
mod tls;

/// HTTP/2 flow-control windows. Larger than the 64 KiB default, so a big ingest message or
/// score request arrives without waiting for window updates; and the stream's a small share
/// of the connection's, because HTTP/2 (h2) cuts a connection whose unread small DATA frames
/// outgrow half the connection window: a client that sends many small requests in frames of
/// their own (grpcio does) and reads no answer fills its stream window with them while the
/// server waits for it to read, and must hit the window, not that limit.
const STREAM_WINDOW_BYTES: u32 = 256 * 1024;
const CONNECTION_WINDOW_BYTES: u32 = 16 * 1024 * 1024;

/// A bound, ready-to-run server. Building it opens (and migrates) the database and binds the
/// port, so a caller that asked for port 0 can learn the real one before serving.
#[derive(Debug)]
pub struct Application {
    listener: TcpListener,
    store: Arc<dyn Store>,
    /// The serving model of every kind; the uplift slot is empty until one is promoted
    /// (decisions then use the documented prior).
    serving: ServingModels,
    programs: Arc<ProgramSource>,
    /// `None` when the server runs without authentication.
    authenticator: Option<Arc<Authenticator>>,
    /// Where `/metrics` is served, with the recorder's handle; `None` without metrics.
    metrics: Option<(TcpListener, PrometheusHandle)>,
    /// The TLS handshake of every connection; `None` serves plaintext.
    tls: Option<tls::ServerTls>,
    settings: Settings,
}

impl Application {
    pub async fn build(settings: &Settings) -> anyhow::Result<Self> {
        settings.check_exposure()?;
        let authenticator = match &settings.auth {
            Some(auth) => Some(Arc::new(
                Authenticator::open(auth.clone()).context("Cannot read the credentials")?,
            )),
            None => None,
        };
        let store = store::open(&settings.database, settings.pool)
            .await
            .with_context(|| format!("Failed to open the database {}", settings.database))?;
        let programs = Arc::new(ProgramSource::open(
            settings.program.as_deref(),
            Timestamp::now(),
        )?);
        tracing::info!(version = %programs.current().program.version, "recovery program loaded");
        let listener = TcpListener::bind(settings.listen)
            .await
            .with_context(|| format!("Failed to listen on {}", settings.listen))?;
        let tls = settings.tls.as_ref().map(tls::acceptor).transpose()?;
        let metrics = match settings.metrics_listen {
            Some(address) => Some((
                TcpListener::bind(address)
                    .await
                    .with_context(|| format!("Failed to listen for metrics on {address}"))?,
                telemetry::metrics::install()?,
            )),
            None => None,
        };
        let serving = ServingModels::default();
        match registry::load_active_or_baseline(store.as_ref(), &serving.health, Timestamp::now())
            .await
        {
            Ok(version) => tracing::info!(%version, "health model loaded"),
            // Serving ingest without a model beats not serving at all; scoring answers
            // UNAVAILABLE until a model is promoted.
            Err(error) => {
                tracing::error!(error = %crate::api::error_chain(&error), "no health model could be loaded")
            }
        }
        match registry::load_active(store.as_ref(), serving.uplift.as_ref()).await {
            Ok(Some(version)) => tracing::info!(%version, "uplift model loaded"),
            Ok(None) => {
                tracing::info!("no uplift model is active: recovery decisions use the prior")
            }
            // The prior still answers; a promotion replaces it.
            Err(error) => {
                tracing::error!(error = %crate::api::error_chain(&error), "the active uplift model could not be loaded: recovery decisions use the prior")
            }
        }
        Ok(Self {
            listener,
            store,
            serving,
            programs,
            authenticator,
            metrics,
            tls,
            settings: settings.clone(),
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Where `/metrics` is served, if it is.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics
            .as_ref()
            .and_then(|(listener, _)| listener.local_addr().ok())
    }

    pub fn store(&self) -> Arc<dyn Store> {
        Arc::clone(&self.store)
    }

    /// Every serving slot, shared with the services, as the registry swaps models into them.
    pub fn serving_models(&self) -> ServingModels {
        self.serving.clone()
    }

    /// Serves until `shutdown` completes, then stops accepting connections, reports
    /// NOT_SERVING, and gives in-flight requests the grace period to finish.
    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        let address = self.local_addr()?;
        let metrics_address = self
            .metrics_addr()
            .map_or("off".to_owned(), |address| address.to_string());
        let (health, health_service) = tonic_health::server::health_reporter();
        health::report(&health, tonic_health::ServingStatus::Serving).await;
        let probing = tokio::spawn(health::follow_store(
            Arc::clone(&self.store),
            health.clone(),
        ));
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
            .initial_stream_window_size(STREAM_WINDOW_BYTES)
            .initial_connection_window_size(CONNECTION_WINDOW_BYTES)
            .max_concurrent_streams(Some(self.settings.limits.max_streams_per_connection))
            .layer(telemetry::RpcLogLayer)
            .layer(admission::AdmissionLayer::new(
                self.settings.limits.max_calls,
            ))
            .layer(AuthLayer::new(self.authenticator.clone()))
            .add_service(health_service)
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha)
            .add_service(IngestServer::new(IngestService::new(
                Arc::clone(&self.store),
                Arc::clone(&self.programs),
            )))
            .add_service(ScoringServer::new(ScoringService::new(
                Arc::clone(&self.store),
                Arc::clone(&self.serving.health),
                self.settings.bands,
                Recommender::new(
                    Arc::clone(&self.store),
                    Arc::clone(&self.serving.health),
                    Arc::clone(&self.serving.uplift),
                    Arc::clone(&self.programs),
                    self.settings.bands,
                ),
            )))
            .add_service(ProgramServer::new(ProgramService::new(
                Arc::clone(&self.store),
                Arc::clone(&self.programs),
            )))
            .add_service(ModelsServer::new(ModelsService::new(
                Arc::clone(&self.store),
                self.serving.clone(),
                self.settings.promotion_margin,
            )))
            .add_service(AuditServer::new(AuditService::new(Arc::clone(&self.store))));
        let models = self.serving.clone();
        let incoming = connection::incoming(
            self.listener,
            self.settings.limits.max_connections,
            self.tls,
        );
        let mut serving = tokio::spawn(router.serve_with_incoming_shutdown(incoming, async {
            stopped.await.ok();
        }));
        tracing::info!(
            %address,
            backend = ?self.store.backend(),
            tls = self.settings.tls.is_some(),
            authentication = self.authenticator.is_some(),
            metrics = %metrics_address,
            "rescue is serving gRPC"
        );
        let following = tokio::spawn(follow_promotions(
            self.settings.database.clone(),
            Arc::clone(&self.store),
            models,
        ));

        let completing = tokio::spawn(completion::complete_serving_states(Arc::clone(&self.store)));
        let watching = tokio::spawn(Arc::clone(&self.programs).watch(self.settings.program_reload));
        let scrapes = tokio::spawn(async move {
            match self.metrics {
                Some((listener, handle)) => {
                    telemetry::metrics::serve_scrapes(listener, handle).await;
                }
                None => std::future::pending().await,
            }
        });
        let credentials = tokio::spawn(async move {
            match self.authenticator {
                Some(authenticator) => authenticator.watch().await,
                None => std::future::pending().await,
            }
        });

        tokio::select! {
            finished = &mut serving => {
                for task in [&probing, &following, &completing, &watching, &credentials, &scrapes] {
                    task.abort();
                }
                return finished.context("The server task failed")?.context("The server failed");
            }
            () = shutdown => {}
        }
        tracing::info!(grace = ?self.settings.shutdown_grace, "shutting down: finishing in-flight requests");
        // Load balancers stop routing here before the listener closes; a recovering store must
        // not report SERVING again.
        probing.abort();
        health::report(&health, tonic_health::ServingStatus::NotServing).await;
        stop_accepting.send(()).ok();
        match tokio::time::timeout(self.settings.shutdown_grace, &mut serving).await {
            Ok(finished) => finished
                .context("The server task failed")?
                .context("The server failed")?,
            Err(_) => {
                serving.abort();
                tracing::warn!("grace period over: cut off the requests still running");
            }
        }
        following.abort();
        completing.abort();
        watching.abort();
        credentials.abort();
        scrapes.abort();
        tracing::info!("stopped");
        Ok(())
    }
}

/// How often a PostgreSQL replica re-reads the active model even without a notification, so
/// one missed while its listener was reconnecting still takes effect.
const REGISTRY_POLL: Duration = Duration::from_secs(5);
/// How often a server on SQLite re-reads it: polling is all SQLite has, and reading one
/// registry row a second costs nothing.
const SQLITE_REGISTRY_POLL: Duration = Duration::from_secs(1);

/// Keeps this server serving whatever model another server or `rescue train` activates in the
/// same database. PostgreSQL notifies every listener when the registry's active model of a kind
/// changes (the payload is the kind), and a slow poll of every kind catches missed notices;
/// SQLite has no notices, so there the poll is all, and quicker.
async fn follow_promotions(
    database: store::DatabaseUrl,
    store: Arc<dyn Store>,
    serving: ServingModels,
) {
    let (mut received, every) = match store.backend() {
        store::Backend::Postgres => {
            let (notices, received) = tokio::sync::mpsc::channel::<String>(16);
            tokio::spawn(async move { store::follow_activations(&database, notices).await });
            (Some(received), REGISTRY_POLL)
        }
        store::Backend::Sqlite => (None, SQLITE_REGISTRY_POLL),
    };
    let mut poll = tokio::time::interval(every);
    loop {
        let notice = async {
            match received.as_mut() {
                Some(received) => received.recv().await,
                None => std::future::pending().await,
            }
        };
        let noticed = tokio::select! {
            notice = notice => match notice {
                // A kind this build does not serve has nothing to reload.
                Some(kind) => match ModelKind::parse(&kind) {
                    Some(kind) => Some(kind),
                    None => continue,
                },
                None => break,
            },
            _ = poll.tick() => None,
        };
        for kind in ModelKind::ALL {
            if noticed.is_none_or(|noticed| noticed == kind) {
                let reloaded = registry::reload(store.as_ref(), &serving, kind).await;
                report_followed(kind, reloaded);
            }
        }
    }
}

/// Logs what following a promotion of `kind` did.
fn report_followed(kind: ModelKind, reloaded: Result<registry::Reloaded, registry::RegistryError>) {
    match reloaded {
        Ok(registry::Reloaded {
            before,
            now: Some(version),
        }) if before.as_deref() != Some(version.as_str()) => {
            tracing::info!(%version, %kind, "serving the model activated in the registry");
        }
        Ok(_) => {}
        Err(error) => {
            tracing::error!(error = %crate::api::error_chain(&error), %kind, "cannot load the newly active model")
        }
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
