//! The databases a benchmark runs on: which backends it measures (`RESCUE_BENCH_BACKENDS`,
//! default `sqlite,postgres`), where PostgreSQL is (`RESCUE_BENCH_POSTGRES_URL`, default
//! `postgres://postgres@127.0.0.1:5432/postgres`), and a fresh database per measurement.

use std::time::Duration;

use rescue::store::DatabaseUrl;
use sqlx::Connection;

/// A database server to create measurement databases on.
pub enum Backend {
    Sqlite,
    /// The URL of a database on the server to connect to while creating and dropping others.
    Postgres(String),
}

impl Backend {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres(_) => "postgres",
        }
    }
}

/// The PostgreSQL server benchmarks use.
pub fn postgres_admin_url() -> String {
    std::env::var("RESCUE_BENCH_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// The backends asked for, PostgreSQL only when its server answers (otherwise a line saying
/// it was skipped is printed).
pub async fn backends() -> Vec<Backend> {
    let asked =
        std::env::var("RESCUE_BENCH_BACKENDS").unwrap_or_else(|_| "sqlite,postgres".to_owned());
    let mut backends = Vec::new();
    if asked.contains("sqlite") {
        backends.push(Backend::Sqlite);
    }
    if asked.contains("postgres") {
        let admin = postgres_admin_url();
        if postgres_available(&admin).await {
            backends.push(Backend::Postgres(admin));
        } else {
            println!("postgres    SKIPPED: no server at {admin} (set RESCUE_BENCH_POSTGRES_URL)");
        }
    }
    backends
}

async fn postgres_available(url: &str) -> bool {
    matches!(
        tokio::time::timeout(Duration::from_secs(3), sqlx::PgConnection::connect(url)).await,
        Ok(Ok(_))
    )
}

/// A database created for one measurement, removed with [`Fresh::remove`].
pub enum Fresh {
    Sqlite(std::path::PathBuf),
    Postgres { admin: String, name: String },
}

impl Fresh {
    /// A new, empty database on `backend`, and its URL.
    pub async fn create(backend: &Backend) -> anyhow::Result<(Self, DatabaseUrl)> {
        let unique = uuid::Uuid::new_v4().simple().to_string();
        match backend {
            Backend::Sqlite => {
                let path = std::env::temp_dir().join(format!("rescue-bench-{unique}.db"));
                let url = DatabaseUrl::new(format!("sqlite://{}", path.display()));
                Ok((Self::Sqlite(path), url))
            }
            Backend::Postgres(admin) => {
                let name = format!("rescue_bench_{unique}");
                let mut connection = sqlx::PgConnection::connect(admin).await?;
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&mut connection)
                    .await?;
                let base = admin
                    .rsplit_once('/')
                    .map_or(admin.as_str(), |(base, _)| base);
                let url = DatabaseUrl::new(format!("{base}/{name}"));
                Ok((
                    Self::Postgres {
                        admin: admin.clone(),
                        name,
                    },
                    url,
                ))
            }
        }
    }

    pub async fn remove(self) -> anyhow::Result<()> {
        match self {
            Self::Sqlite(path) => {
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
                }
            }
            Self::Postgres { admin, name } => {
                let mut connection = sqlx::PgConnection::connect(&admin).await?;
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE {name} WITH (FORCE)"
                )))
                .execute(&mut connection)
                .await?;
            }
        }
        Ok(())
    }
}
