//! The model registry's records: which model versions exist, which one serves, and their
//! artifacts. Kept in the store so every replica of the service sees the same registry.

use std::fmt;
use std::str::FromStr;

use super::StoreError;
use super::rows::ReadRow;
use super::statements::{Statements, Step};
use super::tables::Value;
use crate::domain::Timestamp;
use crate::model::ModelKind;

/// Where a version is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelStatus {
    /// Trained, not serving.
    Candidate,
    /// Serving; at most one per kind.
    Active,
    /// Served once, replaced since.
    Retired,
}

impl ModelStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Candidate => "candidate",
            Self::Active => "active",
            Self::Retired => "retired",
        }
    }
}

impl FromStr for ModelStatus {
    type Err = StoreError;

    fn from_str(name: &str) -> Result<Self, StoreError> {
        match name {
            "candidate" => Ok(Self::Candidate),
            "active" => Ok(Self::Active),
            "retired" => Ok(Self::Retired),
            other => Err(StoreError::Corrupt(format!(
                "unknown model status {other:?}"
            ))),
        }
    }
}

impl fmt::Display for ModelStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One registered model version.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredModel {
    pub version: String,
    /// What the model predicts.
    pub kind: ModelKind,
    pub status: ModelStatus,
    /// "trained" for models trained here, "baseline" for the shipped one.
    pub source: String,
    /// The artifact JSON, checked against its checksum when loaded.
    pub artifact: String,
    pub created_at: Timestamp,
    pub activated_at: Option<Timestamp>,
}

/// The registry lookups both backends run, each with one parameter (`$1`, which SQLite
/// accepts too): a version, the active version of a kind, and the version of a kind that was
/// active most recently before the current one.
pub(super) const BY_VERSION: &str = "version = $1";
pub(super) const ACTIVE_OF_KIND: &str = "kind = $1 AND status = 'active'";
pub(super) const PREVIOUSLY_ACTIVE_OF_KIND: &str = "kind = $1 AND status <> 'active' AND activated_at IS NOT NULL ORDER BY activated_at DESC LIMIT 1";

/// The registry's columns, in the order [`stored_model`] reads them.
const COLUMNS: &str = "version, kind, status, source, artifact, created_at, activated_at";

pub(super) fn stored_model(row: &dyn ReadRow) -> Result<StoredModel, StoreError> {
    let text = |i: usize, name: &str| -> Result<String, StoreError> {
        row.text(i)?
            .ok_or_else(|| StoreError::Corrupt(format!("models.{name} is NULL")))
    };
    Ok(StoredModel {
        version: text(0, "version")?,
        kind: {
            let kind = text(1, "kind")?;
            ModelKind::parse(&kind)
                .ok_or_else(|| StoreError::Corrupt(format!("unknown model kind {kind:?}")))?
        },
        status: text(2, "status")?.parse()?,
        source: text(3, "source")?,
        artifact: text(4, "artifact")?,
        created_at: row
            .time(5)?
            .ok_or_else(|| StoreError::Corrupt("models.created_at is NULL".into()))?,
        activated_at: row.time(6)?,
    })
}

/// Registers `model` as a candidate; fails if its version exists.
pub(super) async fn insert(store: &dyn Statements, model: &StoredModel) -> Result<(), StoreError> {
    store
        .execute_values(
            "INSERT INTO models (version, kind, status, source, artifact, created_at, activated_at) \
             VALUES ($1, $2, 'candidate', $3, $4, $5, NULL)",
            &[
                Value::Text(Some(&model.version)),
                Value::Text(Some(model.kind.as_str())),
                Value::Text(Some(&model.source)),
                Value::Text(Some(&model.artifact)),
                Value::Time(Some(model.created_at)),
            ],
        )
        .await?;
    Ok(())
}

/// Every version of `kind`, newest first.
pub(super) async fn of_kind(
    store: &dyn Statements,
    kind: ModelKind,
) -> Result<Vec<StoredModel>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM models WHERE kind = $1 ORDER BY created_at DESC, version DESC"
    );
    let rows = store
        .rows_with(&sql, &[Value::Text(Some(kind.as_str()))])
        .await?;
    rows.iter().map(|row| stored_model(row.as_ref())).collect()
}

/// The first registry row matching `condition` (one of the constants above), whose one
/// parameter is `key`.
pub(super) async fn first(
    store: &dyn Statements,
    condition: &str,
    key: &str,
) -> Result<Option<StoredModel>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM models WHERE {condition}");
    let rows = store.rows_with(&sql, &[Value::Text(Some(key))]).await?;
    rows.first()
        .map(|row| stored_model(row.as_ref()))
        .transpose()
}

/// Makes `version` the active one of its kind and retires the one it replaces, in one
/// transaction; `None` if there is no such version.
pub(super) async fn activate(
    store: &dyn Statements,
    version: &str,
    at: Timestamp,
) -> Result<Option<StoredModel>, StoreError> {
    let steps = [
        Step {
            sql: "UPDATE models SET status = 'retired' WHERE status = 'active' AND version <> $1 \
                  AND kind = (SELECT kind FROM models WHERE version = $1)",
            values: vec![Value::Text(Some(version))],
            changes: None,
        },
        Step {
            sql: "UPDATE models SET status = 'active', activated_at = $2 WHERE version = $1",
            values: vec![Value::Text(Some(version)), Value::Time(Some(at))],
            changes: Some(1),
        },
    ];
    if !store.transact(&steps).await? {
        return Ok(None);
    }
    first(store, BY_VERSION, version).await
}
