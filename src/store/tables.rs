//! How each kind of record maps onto its table: the columns, the values of one record in
//! column order, and the SQL both backends share around their own way of passing rows.

use super::fingerprint;
use crate::domain::{Rating, Record, RecordKind, Timestamp};

/// A column's type, as both backends need it to bind values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ColumnType {
    Text,
    Real,
    SmallInt,
    Bool,
    Time,
    BigInt,
    Bytes,
}

/// One column value of one record; `None` is SQL NULL.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Value<'a> {
    Text(Option<&'a str>),
    Real(Option<f64>),
    SmallInt(Option<i16>),
    Bool(Option<bool>),
    Time(Option<Timestamp>),
    BigInt(i64),
    Bytes(&'a [u8]),
}

#[derive(Debug)]
pub(super) struct Table {
    pub name: &'static str,
    pub id_column: &'static str,
    /// The column whose newer value wins, for versioned kinds; immutable kinds have none.
    pub version_column: Option<&'static str>,
    /// What a customer's rows are ordered by when read back (a time, or a list of columns).
    pub order_column: &'static str,
    /// Every column in the order [`row`] produces values, ending with the fingerprint.
    pub columns: &'static [(&'static str, ColumnType)],
}

use ColumnType::{BigInt, Bool, Real, SmallInt, Text, Time};

const CUSTOMERS: Table = Table {
    name: "customers",
    id_column: "customer_id",
    version_column: Some("updated_at"),
    order_column: "updated_at",
    columns: &[
        ("customer_id", Text),
        ("segment", Text),
        ("plan", Text),
        ("persona", Text),
        ("region", Text),
        ("annual_value", Real),
        ("customer_since", Time),
        ("updated_at", Time),
        ("attributes", Text),
        ("fingerprint", BigInt),
    ],
};

const USAGE_EVENTS: Table = Table {
    name: "usage_events",
    id_column: "event_id",
    version_column: None,
    order_column: "occurred_at",
    columns: &[
        ("event_id", Text),
        ("customer_id", Text),
        ("occurred_at", Time),
        ("activity", Text),
        ("quantity", Real),
        ("fingerprint", BigInt),
    ],
};

const INTERACTIONS: Table = Table {
    name: "interactions",
    id_column: "interaction_id",
    version_column: None,
    order_column: "occurred_at",
    columns: &[
        ("interaction_id", Text),
        ("customer_id", Text),
        ("occurred_at", Time),
        ("channel", Text),
        ("tag", Text),
        ("failure", Bool),
        ("resolution", Text),
        ("wait_seconds", Real),
        ("first_contact_resolution", Bool),
        ("repeat_contact", Bool),
        ("fingerprint", BigInt),
    ],
};

const SURVEYS: Table = Table {
    name: "surveys",
    id_column: "survey_id",
    version_column: None,
    order_column: "answered_at",
    columns: &[
        ("survey_id", Text),
        ("customer_id", Text),
        ("answered_at", Time),
        ("channel", Text),
        ("interaction_id", Text),
        ("csat", SmallInt),
        ("nps", SmallInt),
        ("recovery_rating", SmallInt),
        ("comment", Text),
        ("fingerprint", BigInt),
    ],
};

const CHURN_OUTCOMES: Table = Table {
    name: "churn_outcomes",
    id_column: "customer_id",
    version_column: Some("observed_at"),
    order_column: "observed_at",
    columns: &[
        ("customer_id", Text),
        ("status", Text),
        ("churned_at", Time),
        ("observed_at", Time),
        ("fingerprint", BigInt),
    ],
};

const RECOVERY_CASES: Table = Table {
    name: "recovery_cases",
    id_column: "case_id",
    version_column: Some("updated_at"),
    order_column: "opened_at",
    columns: &[
        ("case_id", Text),
        ("customer_id", Text),
        ("trigger", Text),
        ("tag", Text),
        ("action", Text),
        ("cost", Real),
        ("trigger_interaction_id", Text),
        ("trigger_survey_id", Text),
        ("opened_at", Time),
        ("first_response_at", Time),
        ("resolved_at", Time),
        ("communication", SmallInt),
        ("accountability", SmallInt),
        ("responsiveness", SmallInt),
        ("empathy", SmallInt),
        ("solution", SmallInt),
        ("resurvey_score", SmallInt),
        ("retained", Bool),
        ("spend_change_pct", Real),
        ("updated_at", Time),
        ("fingerprint", BigInt),
    ],
};

/// Every version of each profile, with the columns of [`CUSTOMERS`].
pub(super) const CUSTOMER_VERSIONS: Table = Table {
    name: "customer_versions",
    order_column: "updated_at",
    ..CUSTOMERS
};

/// Every version of each recovery case, with the columns of [`RECOVERY_CASES`].
/// Read back case by case, so a case's versions lie together, oldest first.
pub(super) const RECOVERY_CASE_VERSIONS: Table = Table {
    name: "recovery_case_versions",
    order_column: "case_id, updated_at",
    ..RECOVERY_CASES
};

/// The table keeping every version of a versioned kind whose history features read (profiles
/// and recovery cases); `None` for the other kinds. Churn outcomes need none: a label is read
/// only once its horizon has been observed.
pub(super) const fn versions(kind: RecordKind) -> Option<&'static Table> {
    match kind {
        RecordKind::Customer => Some(&CUSTOMER_VERSIONS),
        RecordKind::RecoveryCase => Some(&RECOVERY_CASE_VERSIONS),
        _ => None,
    }
}

pub(super) const fn table(kind: RecordKind) -> &'static Table {
    match kind {
        RecordKind::Customer => &CUSTOMERS,
        RecordKind::UsageEvent => &USAGE_EVENTS,
        RecordKind::Interaction => &INTERACTIONS,
        RecordKind::Survey => &SURVEYS,
        RecordKind::ChurnOutcome => &CHURN_OUTCOMES,
        RecordKind::RecoveryCase => &RECOVERY_CASES,
    }
}

fn rating<const MIN: u8, const MAX: u8>(value: Option<Rating<MIN, MAX>>) -> Value<'static> {
    Value::SmallInt(value.map(|v| i16::from(v.get())))
}

fn time(value: Timestamp) -> Value<'static> {
    Value::Time(Some(value))
}

fn text(value: &str) -> Value<'_> {
    Value::Text(Some(value))
}

/// The values of `record`'s row, in the order of its table's columns: [`values`] and its
/// fingerprint.
pub(super) fn row(record: &Record) -> Vec<Value<'_>> {
    let mut row = values(record);
    let fingerprint = fingerprint::of_values(table(record.kind()), row.iter().copied());
    row.push(Value::BigInt(fingerprint));
    row
}

/// The values `record` is stored as, in the order of its table's columns, but for the
/// fingerprint (last) that is derived from them.
pub(super) fn values(record: &Record) -> Vec<Value<'_>> {
    match record {
        Record::Customer(r) => vec![
            text(r.customer_id.as_str()),
            text(r.segment.as_str()),
            text(r.plan.as_str()),
            Value::Text(r.persona.as_deref()),
            Value::Text(r.region.as_deref()),
            Value::Real(Some(r.annual_value.get())),
            time(r.customer_since),
            time(r.updated_at),
            text(r.attributes.as_json()),
        ],
        Record::UsageEvent(r) => vec![
            text(r.event_id.as_str()),
            text(r.customer_id.as_str()),
            time(r.occurred_at),
            text(&r.activity),
            Value::Real(Some(r.quantity.get())),
        ],
        Record::Interaction(r) => vec![
            text(r.interaction_id.as_str()),
            text(r.customer_id.as_str()),
            time(r.occurred_at),
            text(r.channel.as_str()),
            text(r.tag.as_str()),
            Value::Bool(Some(r.failure)),
            text(r.resolution.as_str()),
            Value::Real(Some(r.wait_seconds.get())),
            Value::Bool(Some(r.first_contact_resolution)),
            Value::Bool(Some(r.repeat_contact)),
        ],
        Record::Survey(r) => vec![
            text(r.survey_id.as_str()),
            text(r.customer_id.as_str()),
            time(r.answered_at),
            text(r.channel.as_str()),
            Value::Text(r.interaction_id.as_ref().map(|id| id.as_str())),
            rating(r.csat),
            rating(r.nps),
            rating(r.recovery_rating),
            Value::Text(r.comment.as_deref()),
        ],
        Record::ChurnOutcome(r) => vec![
            text(r.customer_id.as_str()),
            text(r.status.as_str()),
            Value::Time(r.churned_at),
            time(r.observed_at),
        ],
        Record::RecoveryCase(r) => vec![
            text(r.case_id.as_str()),
            text(r.customer_id.as_str()),
            text(r.trigger.as_str()),
            text(r.tag.as_str()),
            text(r.action.as_str()),
            Value::Real(Some(r.cost.get())),
            Value::Text(r.trigger_interaction_id.as_ref().map(|id| id.as_str())),
            Value::Text(r.trigger_survey_id.as_ref().map(|id| id.as_str())),
            time(r.opened_at),
            Value::Time(r.first_response_at),
            Value::Time(r.resolved_at),
            rating(r.cares.communication),
            rating(r.cares.accountability),
            rating(r.cares.responsiveness),
            rating(r.cares.empathy),
            rating(r.cares.solution),
            rating(r.resurvey_score),
            Value::Bool(r.retained),
            Value::Real(r.spend_change_pct.map(|v| v.get())),
            time(r.updated_at),
        ],
    }
}

/// `INSERT INTO table (c1, c2, …) ` — both backends append their row source to this.
pub(super) fn insert_head(table: &str, columns: &[(&str, ColumnType)]) -> String {
    let names: Vec<&str> = columns.iter().map(|(name, _)| *name).collect();
    format!("INSERT INTO {table} ({}) ", names.join(", "))
}

impl Table {
    /// The columns a fingerprint hashes: all but the fingerprint, which is last.
    pub(super) fn hashed_columns(&self) -> &'static [(&'static str, ColumnType)] {
        &self.columns[..self.columns.len() - 1]
    }

    /// The hashed columns of the rows whose id matches `ids_match` (the backend's list test).
    pub(super) fn select_hashed(&self, ids_match: &str) -> String {
        let names: Vec<&str> = self
            .hashed_columns()
            .iter()
            .map(|(name, _)| *name)
            .collect();
        format!(
            "SELECT {} FROM {} WHERE {} {ids_match}",
            names.join(", "),
            self.name,
            self.id_column
        )
    }

    /// `INSERT INTO t (c1, c2, …) ` — both backends append their row source to this.
    pub(super) fn insert_head(&self) -> String {
        insert_head(self.name, self.columns)
    }

    /// What to do when the id is already stored, and which ids to report as written.
    /// Immutable kinds keep the stored row; versioned kinds take the row only if it is newer,
    /// so a stale re-send can never overwrite fresher data.
    pub(super) fn upsert_tail(&self) -> String {
        let action = match self.version_column {
            None => "DO NOTHING".to_owned(),
            Some(version) => {
                let assignments: Vec<String> = self
                    .columns
                    .iter()
                    .filter(|(name, _)| *name != self.id_column)
                    .map(|(name, _)| format!("{name} = excluded.{name}"))
                    .collect();
                format!(
                    "DO UPDATE SET {} WHERE excluded.{version} > {}.{version}",
                    assignments.join(", "),
                    self.name
                )
            }
        };
        format!(
            " ON CONFLICT ({}) {action} RETURNING {}",
            self.id_column, self.id_column
        )
    }

    /// Every column of the row whose id equals the `placeholder` parameter.
    pub(super) fn select_by_id(&self, placeholder: &str) -> String {
        let names: Vec<&str> = self.columns.iter().map(|(name, _)| *name).collect();
        format!(
            "SELECT {} FROM {} WHERE {} = {placeholder}",
            names.join(", "),
            self.name,
            self.id_column
        )
    }

    /// Every column of the rows of the customers whose ids match `ids_match` (a backend's
    /// test of `customer_id` against a list parameter), grouped by customer, oldest first.
    pub(super) fn select_for_customers(&self, ids_match: &str) -> String {
        let names: Vec<&str> = self.columns.iter().map(|(name, _)| *name).collect();
        format!(
            "SELECT {} FROM {} WHERE customer_id {ids_match} ORDER BY customer_id, {}",
            names.join(", "),
            self.name,
            self.order_column
        )
    }

    /// Copies the rows whose ids match `ids_match` (a backend's test of the id against a list
    /// parameter) into `versions`, keeping a version already there.
    pub(super) fn copy_into_versions(&self, versions: &Table, ids_match: &str) -> String {
        let names: Vec<&str> = self.columns.iter().map(|(name, _)| *name).collect();
        let names = names.join(", ");
        format!(
            "INSERT INTO {} ({names}) SELECT {names} FROM {} WHERE {} {ids_match} ON CONFLICT DO NOTHING",
            versions.name, self.name, self.id_column
        )
    }

    /// `SELECT id, version, fingerprint FROM t WHERE id ` — each backend appends its own
    /// way of matching a list of ids.
    pub(super) fn stored_versions_head(&self) -> String {
        format!(
            "SELECT {id}, {version}, fingerprint FROM {table} WHERE {id} ",
            id = self.id_column,
            // A typed NULL, so PostgreSQL reports the same column type for every kind.
            version = self.version_column.unwrap_or("CAST(NULL AS TIMESTAMPTZ)"),
            table = self.name
        )
    }
}

/// How `pool` is used now.
pub(super) fn pool_usage<DB: sqlx::Database>(pool: &sqlx::Pool<DB>) -> super::PoolUsage {
    let size = pool.size();
    let idle = u32::try_from(pool.num_idle()).unwrap_or(u32::MAX).min(size);
    super::PoolUsage {
        in_use: size - idle,
        idle,
        max: pool.options().get_max_connections(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_row_matches_its_table_columns_and_types() {
        for record in crate::domain::examples::one_of_each_kind() {
            let table = table(record.kind());
            let values = row(&record);
            assert_eq!(values.len(), table.columns.len(), "{}", table.name);
            for (value, (name, ty)) in values.iter().zip(table.columns) {
                let matches = matches!(
                    (value, ty),
                    (Value::Text(_), ColumnType::Text)
                        | (Value::Real(_), ColumnType::Real)
                        | (Value::SmallInt(_), ColumnType::SmallInt)
                        | (Value::Bool(_), ColumnType::Bool)
                        | (Value::Time(_), ColumnType::Time)
                        | (Value::BigInt(_), ColumnType::BigInt)
                        | (Value::Bytes(_), ColumnType::Bytes)
                );
                assert!(matches, "{}.{name}: {value:?} is not {ty:?}", table.name);
            }
            assert_eq!(table.columns[0].0, table.id_column);
            assert_eq!(
                table.columns.last(),
                Some(&("fingerprint", ColumnType::BigInt))
            );
        }
    }

    #[test]
    fn versioned_tables_update_only_with_a_newer_version() {
        let tail = table(RecordKind::Customer).upsert_tail();
        assert!(
            tail.contains("WHERE excluded.updated_at > customers.updated_at"),
            "{tail}"
        );
        assert!(!tail.contains("customer_id = excluded"), "{tail}");
        let tail = table(RecordKind::UsageEvent).upsert_tail();
        assert_eq!(
            tail,
            " ON CONFLICT (event_id) DO NOTHING RETURNING event_id"
        );
    }
}
