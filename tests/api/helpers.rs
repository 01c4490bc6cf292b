//! Test databases and a served application, cleaned up when dropped.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use rescue::config::Settings;
use rescue::proto::v1::ingest_client::IngestClient;
use rescue::proto::v1::{IngestRecordsRequest, IngestRecordsResponse, Record};
use rescue::server::Application;
use rescue::store::{self, DatabaseUrl, PoolOptions, Store};
use tonic::transport::Channel;

pub const POSTGRES_URL_VARIABLE: &str = "RESCUE_TEST_POSTGRES_URL";

/// A database of its own for one test: a SQLite file in a fresh directory, or a freshly
/// created PostgreSQL database that is dropped afterwards.
#[derive(Debug)]
pub struct TestDatabase {
    pub url: DatabaseUrl,
    cleanup: Cleanup,
}

#[derive(Debug)]
enum Cleanup {
    Directory(PathBuf),
    PostgresDatabase { admin_url: String, name: String },
}

/// The number `sql` selects on `pool`, if any; the pool is closed afterwards.
async fn number_from<DB>(pool: &sqlx::Pool<DB>, sql: &str) -> Option<i64>
where
    DB: sqlx::Database,
    DB::Arguments: sqlx::IntoArguments<DB>,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    i64: sqlx::Type<DB> + for<'r> sqlx::Decode<'r, DB>,
    usize: sqlx::ColumnIndex<DB::Row>,
{
    let number = sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql.to_owned()))
        .fetch_optional(pool)
        .await
        .expect("run");
    pool.close().await;
    number
}

impl TestDatabase {
    /// The number `sql` selects, if any, run beside the store on a connection of its own.
    pub async fn run_sql(&self, sql: &str) -> Option<i64> {
        let url = self.url.expose();
        if url.starts_with("sqlite:") {
            number_from(&sqlx::SqlitePool::connect(url).await.expect("connect"), sql).await
        } else {
            number_from(&sqlx::PgPool::connect(url).await.expect("connect"), sql).await
        }
    }

    /// Runs `sql`, which changes the database, beside the store.
    pub async fn execute(&self, sql: &str) {
        self.run_sql(sql).await;
    }

    /// The count `sql` selects, read straight from the database.
    pub async fn count(&self, sql: &str) -> i64 {
        self.run_sql(sql).await.expect("a count")
    }

    pub fn sqlite() -> Self {
        let directory =
            std::env::temp_dir().join(format!("rescue-test-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&directory).expect("create a temporary directory");
        let url = DatabaseUrl::new(format!(
            "sqlite://{}",
            directory.join("rescue.db").display()
        ));
        Self {
            url,
            cleanup: Cleanup::Directory(directory),
        }
    }

    /// `None` (after saying so on the terminal) when no PostgreSQL server was given.
    pub async fn postgres() -> Option<Self> {
        let Ok(admin_url) = std::env::var(POSTGRES_URL_VARIABLE) else {
            // Written straight to stderr: the test harness would swallow `eprintln!`.
            let _ = writeln!(
                std::io::stderr(),
                "\n*** SKIPPED a PostgreSQL test: set {POSTGRES_URL_VARIABLE} (e.g. postgres://postgres@127.0.0.1:5432/postgres) to run it ***"
            );
            return None;
        };
        let name = format!("rescue_test_{}", uuid::Uuid::new_v4().simple());
        let admin = sqlx::PgPool::connect(&admin_url)
            .await
            .expect("connect to the PostgreSQL test server");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&admin)
            .await
            .expect("create the test database");
        admin.close().await;
        let base = admin_url
            .rsplit_once('/')
            .map_or(admin_url.as_str(), |(base, _)| base);
        let url = DatabaseUrl::new(format!("{base}/{name}"));
        Some(Self {
            url,
            cleanup: Cleanup::PostgresDatabase { admin_url, name },
        })
    }

    pub async fn open_store(&self) -> Arc<dyn Store> {
        store::open(&self.url, PoolOptions::default())
            .await
            .expect("open the test store")
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        match &self.cleanup {
            Cleanup::Directory(directory) => {
                let _ = std::fs::remove_dir_all(directory);
            }
            Cleanup::PostgresDatabase { admin_url, name } => {
                let (admin_url, name) = (admin_url.clone(), name.clone());
                // Drop runs inside the test's runtime, which cannot be blocked on: use a
                // thread with a runtime of its own.
                let dropped = std::thread::spawn(move || {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()?;
                    runtime.block_on(async {
                        let admin = sqlx::PgPool::connect(&admin_url).await?;
                        sqlx::query(sqlx::AssertSqlSafe(format!(
                            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                        )))
                        .execute(&admin)
                        .await?;
                        admin.close().await;
                        Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
                    })
                })
                .join();
                if !matches!(dropped, Ok(Ok(()))) {
                    let _ = writeln!(
                        std::io::stderr(),
                        "could not drop test database {}",
                        self.url
                    );
                }
            }
        }
    }
}

/// A running server on an ephemeral port.
#[derive(Debug)]
pub struct TestApp {
    pub address: SocketAddr,
    pub store: Arc<dyn Store>,
    pub models: Arc<rescue::scoring::ModelSlot>,
    /// The serving recovery uplift model.
    pub uplift: Arc<rescue::uplift::UpliftSlot>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    serving: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

pub async fn spawn_app(database: &TestDatabase) -> TestApp {
    spawn_app_with(database, |_| {}).await
}

/// A server whose settings `configure` has adjusted (e.g. to serve a program file).
pub async fn spawn_app_with(
    database: &TestDatabase,
    configure: impl FnOnce(&mut Settings),
) -> TestApp {
    let mut settings = Settings::with_database(database.url.clone());
    settings.listen = "127.0.0.1:0".parse().expect("address");
    configure(&mut settings);
    let application = Application::build(&settings)
        .await
        .expect("build the application");
    let address = application.local_addr().expect("bound address");
    let store = application.store();
    let serving = application.serving_models();
    let (models, uplift) = (serving.health, serving.uplift);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(application.run_until_stopped(async {
        stopped.await.ok();
    }));
    TestApp {
        address,
        store,
        models,
        uplift,
        stop: Some(stop),
        serving: Some(serving),
    }
}

impl TestApp {
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.address)
    }

    pub async fn channel(&self) -> Channel {
        Channel::from_shared(self.endpoint())
            .expect("endpoint")
            .connect()
            .await
            .expect("connect to the test server")
    }

    pub async fn scoring_client(
        &self,
    ) -> rescue::proto::v1::scoring_client::ScoringClient<Channel> {
        rescue::proto::v1::scoring_client::ScoringClient::new(self.channel().await)
    }

    pub async fn program_client(
        &self,
    ) -> rescue::proto::v1::program_client::ProgramClient<Channel> {
        rescue::proto::v1::program_client::ProgramClient::new(self.channel().await)
    }

    pub async fn models_client(&self) -> rescue::proto::v1::models_client::ModelsClient<Channel> {
        rescue::proto::v1::models_client::ModelsClient::new(self.channel().await)
    }

    /// Registers a hand-made health model (see [`crate::fixtures::artifact`]) as a candidate.
    pub async fn register_model(&self, version: &str, intercept: f64) {
        let mut artifact = crate::fixtures::artifact(version, intercept);
        let json = artifact.to_json().expect("artifact JSON");
        self.register_artifact(version, json, artifact.created_at)
            .await;
    }

    /// Registers an artifact's JSON, as given, as a candidate.
    pub async fn register_artifact(
        &self,
        version: &str,
        json: String,
        created_at: rescue::domain::Timestamp,
    ) {
        self.register_artifact_of_kind(rescue::model::ModelKind::Health, version, json, created_at)
            .await;
    }

    /// Registers an artifact's JSON of model `kind`, as given, as a candidate.
    pub async fn register_artifact_of_kind(
        &self,
        kind: rescue::model::ModelKind,
        version: &str,
        json: String,
        created_at: rescue::domain::Timestamp,
    ) {
        self.store
            .insert_model(&rescue::store::StoredModel {
                version: version.into(),
                kind,
                status: rescue::store::ModelStatus::Candidate,
                source: "trained".into(),
                artifact: json,
                created_at,
                activated_at: None,
            })
            .await
            .expect("register the model");
    }

    /// Registers a hand-made health model and makes it active.
    pub async fn install_model(&self, version: &str, intercept: f64) {
        self.register_model(version, intercept).await;
        rescue::registry::activate(
            self.store.as_ref(),
            &self.models,
            version,
            rescue::domain::Timestamp::now(),
        )
        .await
        .expect("activate the model");
    }

    pub async fn ingest_client(&self) -> IngestClient<Channel> {
        IngestClient::new(self.channel().await)
    }

    /// Streams `records` in messages of `per_message` records and returns the verdict.
    pub async fn ingest(&self, records: Vec<Record>, per_message: usize) -> IngestRecordsResponse {
        let messages: Vec<IngestRecordsRequest> = records
            .chunks(per_message)
            .map(|chunk| IngestRecordsRequest {
                records: chunk.to_vec(),
            })
            .collect();
        self.ingest_client()
            .await
            .ingest_records(tokio_stream::iter(messages))
            .await
            .expect("the ingest stream succeeds")
            .into_inner()
    }

    /// Tells the server to shut down, without waiting for it to finish.
    pub fn begin_stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            stop.send(()).ok();
        }
    }

    pub async fn stop(mut self) {
        self.begin_stop();
        if let Some(serving) = self.serving.take() {
            serving
                .await
                .expect("server task")
                .expect("server stops cleanly");
        }
    }
}

/// Runs each named `async fn(TestDatabase)` once per backend, as `sqlite::NAME` and
/// `postgres::NAME`; the PostgreSQL variant is skipped (loudly) without a server.
macro_rules! on_every_backend {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(crate::helpers::TestDatabase::sqlite()).await;
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(database) = crate::helpers::TestDatabase::postgres().await {
                        super::$name(database).await;
                    }
                }
            )+
        }
    };
}
pub(crate) use on_every_backend;

/// A `rescue serve` process, as an operator runs it; killed when dropped.
#[derive(Debug)]
pub struct ServeProcess {
    child: std::process::Child,
    /// The address it serves on, from its "serving" log line.
    pub address: String,
    /// Where it serves `/metrics`, or `off`.
    pub metrics: String,
}

impl ServeProcess {
    /// Starts `rescue serve` on `database`, listening on `listen` (`127.0.0.1:0` for any free
    /// port), and returns once it serves.
    pub async fn start(database: &TestDatabase, listen: &str) -> Self {
        Self::start_with(database, listen, &[]).await
    }

    /// [`ServeProcess::start`] with more `rescue serve` flags.
    pub async fn start_with(database: &TestDatabase, listen: &str, flags: &[&str]) -> Self {
        use std::io::BufRead;
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_rescue"))
            .args(["serve", "--listen", listen, "--log-format", "json"])
            .args(flags)
            .env("RESCUE_DATABASE_URL", database.url.expose())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start rescue serve");
        let stdout = child.stdout.take().expect("stdout");
        let (address_tx, address_rx) = tokio::sync::oneshot::channel::<(String, String)>();
        // Reads the log to its end, so the server never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut address_tx = Some(address_tx);
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                let Ok(event) = serde_json::from_str::<serde_json::Value>(&line) else {
                    continue;
                };
                if event["message"] == "rescue is serving gRPC"
                    && let (Some(tx), Some(address), Some(metrics)) = (
                        address_tx.take(),
                        event["address"].as_str(),
                        event["metrics"].as_str(),
                    )
                {
                    tx.send((address.to_owned(), metrics.to_owned())).ok();
                }
            }
        });
        let (address, metrics) =
            tokio::time::timeout(std::time::Duration::from_secs(60), address_rx)
                .await
                .expect("rescue serve starts within a minute")
                .expect("rescue serve exited before serving");
        Self {
            child,
            address,
            metrics,
        }
    }

    /// The server's resident memory now, in MiB (Linux's `/proc`).
    pub fn resident_mib(&self) -> f64 {
        self.memory_mib("VmRSS:")
    }

    /// The most resident memory the server has used so far, in MiB.
    pub fn peak_resident_mib(&self) -> f64 {
        self.memory_mib("VmHWM:")
    }

    fn memory_mib(&self, field: &str) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("the server's /proc status");
        let kib: f64 = status
            .lines()
            .find_map(|line| line.strip_prefix(field))
            .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("{field} in kB"));
        kib / 1024.0
    }

    /// Kills the server with SIGKILL: no shutdown, no flushing, as in a crash.
    pub fn kill(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The `rescue-client` binary of this build.
pub const CLIENT: &str = env!("CARGO_BIN_EXE_rescue-client");

/// A directory of its own for one test's files, removed when dropped.
pub struct Scratch(pub std::path::PathBuf);

impl Scratch {
    pub fn new() -> Self {
        let path =
            std::env::temp_dir().join(format!("rescue-client-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&path).expect("create a scratch directory");
        Self(path)
    }

    pub fn file(&self, name: &str, content: &str) -> std::path::PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, content).expect("write a test file");
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.0).ok();
    }
}

/// Runs `rescue-client` against `server` with `args`.
pub fn client(server: &str, args: &[&str]) -> std::process::Output {
    std::process::Command::new(CLIENT)
        .env("RESCUE_SERVER", server)
        .args(args)
        .output()
        .expect("run rescue-client")
}

/// The Spearman rank correlation of two equally long columns: the Pearson correlation of their
/// ranks, tied values sharing the mean of their ranks. NaN when either column is constant.
pub fn spearman(a: &[f64], b: &[f64]) -> f64 {
    fn ranks(values: &[f64]) -> Vec<f64> {
        let mut order: Vec<usize> = (0..values.len()).collect();
        order.sort_by(|&i, &j| values[i].total_cmp(&values[j]));
        let mut ranks = vec![0.0; values.len()];
        let mut start = 0;
        while start < order.len() {
            let mut end = start + 1;
            while end < order.len() && values[order[end]] == values[order[start]] {
                end += 1;
            }
            let mean_rank = (start + end - 1) as f64 / 2.0;
            for &i in &order[start..end] {
                ranks[i] = mean_rank;
            }
            start = end;
        }
        ranks
    }
    let (ra, rb) = (ranks(a), ranks(b));
    let mean = |r: &[f64]| r.iter().sum::<f64>() / r.len() as f64;
    let (ma, mb) = (mean(&ra), mean(&rb));
    let covariance: f64 = ra.iter().zip(&rb).map(|(x, y)| (x - ma) * (y - mb)).sum();
    let spread = |r: &[f64], m: f64| r.iter().map(|x| (x - m).powi(2)).sum::<f64>().sqrt();
    covariance / (spread(&ra, ma) * spread(&rb, mb))
}
