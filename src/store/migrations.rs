//! The schema migrations, compiled into the binary so a deployed `rescue` needs no files
//! beside it. Versions and descriptions follow the file names in `migrations/<backend>/`.

use std::borrow::Cow;

use futures::future::BoxFuture;
use sqlx::SqlSafeStr;
use sqlx::migrate::{Migration, MigrationSource, MigrationType, Migrator};

use super::{Backend, StoreError};

/// (version, description, SQL) per backend; append new migrations, never edit applied ones.
const SQLITE: &[(i64, &str, &str)] = &[
    (
        1,
        "customer data",
        include_str!("../../migrations/sqlite/0001_customer_data.sql"),
    ),
    (
        2,
        "models",
        include_str!("../../migrations/sqlite/0002_models.sql"),
    ),
    (
        3,
        "decisions",
        include_str!("../../migrations/sqlite/0003_decisions.sql"),
    ),
    (
        4,
        "customer attributes",
        include_str!("../../migrations/sqlite/0004_customer_attributes.sql"),
    ),
    (
        5,
        "versions",
        include_str!("../../migrations/sqlite/0005_versions.sql"),
    ),
];
const POSTGRES: &[(i64, &str, &str)] = &[
    (
        1,
        "customer data",
        include_str!("../../migrations/postgres/0001_customer_data.sql"),
    ),
    (
        2,
        "models",
        include_str!("../../migrations/postgres/0002_models.sql"),
    ),
    (
        3,
        "decisions",
        include_str!("../../migrations/postgres/0003_decisions.sql"),
    ),
    (
        4,
        "customer attributes",
        include_str!("../../migrations/postgres/0004_customer_attributes.sql"),
    ),
    (
        5,
        "versions",
        include_str!("../../migrations/postgres/0005_versions.sql"),
    ),
];

#[derive(Debug)]
struct Embedded(&'static [(i64, &'static str, &'static str)]);

impl MigrationSource<'static> for Embedded {
    fn resolve(self) -> BoxFuture<'static, Result<Vec<Migration>, sqlx::error::BoxDynError>> {
        Box::pin(async move {
            Ok(self
                .0
                .iter()
                .map(|&(version, description, sql)| {
                    Migration::new(
                        version,
                        Cow::Borrowed(description),
                        MigrationType::Simple,
                        sql.into_sql_str(),
                        false,
                    )
                })
                .collect())
        })
    }
}

pub(super) async fn migrator(backend: Backend) -> Result<Migrator, StoreError> {
    let source = match backend {
        Backend::Sqlite => Embedded(SQLITE),
        Backend::Postgres => Embedded(POSTGRES),
    };
    Ok(Migrator::new(source).await?)
}
