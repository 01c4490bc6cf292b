//! The schema migrations, compiled into the binary so a deployed `rescue` needs no files
//! beside it. Versions and descriptions follow the file names in `migrations/<backend>/`,
//! which the build script lists (and checks the two backends agree on).

use std::borrow::Cow;

use futures::future::BoxFuture;
use sqlx::SqlSafeStr;
use sqlx::migrate::{Migration, MigrationSource, MigrationType, Migrator};

use super::{Backend, StoreError};

// `SQLITE` and `POSTGRES`: (version, description, SQL) of every file in
// `migrations/<backend>/`, listed by the build script. Append new migrations, never edit
// applied ones.
include!(concat!(env!("OUT_DIR"), "/migrations.rs"));

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
