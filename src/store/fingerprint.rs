//! Record fingerprints, derived from the stored row: a hash of every value of a record's row
//! but the fingerprint itself, in column order, under a named [`SCHEME`]. A column added to a
//! table is covered without a list of fields to keep in step. Ingest tells a resent record
//! (a duplicate) from a changed one (a conflict, or a new version) by its fingerprint.
//!
//! A stored fingerprint is a shortcut, not the judge: when it differs from a resent record's,
//! the stored row itself is read back and fingerprinted under the current scheme before the
//! record is called a conflict ([`of_stored_row`]), so rows fingerprinted under an earlier
//! scheme — or by hand, or by a bulk load that left the column 0 — are judged by what they
//! hold, and changing the scheme needs no migration.
//!
//! The hash is XXH3 (64 bits), over the row's values serialized once: the fingerprint tells
//! a resend from a change, it guards against no adversary (a caller that may write a record
//! may change it outright), and at ingest it is taken for every record of every batch, where
//! SHA-256, the earlier scheme's hash, cost an eighth of the store's time.

use super::StoreError;
use super::rows::ReadRow;
use super::tables::{self, ColumnType, Table, Value};
use crate::domain::Record;

/// Named in every hash, so fingerprints of different schemes never agree by accident.
/// Scheme 1 hashed a hand-kept list of each kind's fields; scheme 2 the same bytes as this one
/// with SHA-256.
pub(super) const SCHEME: &str = "rescue stored-row fingerprint 3";

/// The fingerprint of `record`.
pub(super) fn of_record(record: &Record) -> i64 {
    of_values(
        tables::table(record.kind()),
        tables::values(record).into_iter(),
    )
}

/// The fingerprint of a row of `table` holding `values`, in column order, without the
/// fingerprint.
pub(super) fn of_values<'a>(table: &Table, values: impl Iterator<Item = Value<'a>>) -> i64 {
    let mut bytes = Vec::with_capacity(256);
    text(&mut bytes, SCHEME);
    text(&mut bytes, table.name);
    for value in values {
        self::value(&mut bytes, value);
    }
    i64::from_le_bytes(xxhash_rust::xxh3::xxh3_64(&bytes).to_le_bytes())
}

/// The fingerprint of a stored row of `table` read by [`Table::select_hashed`]: its id,
/// then the values it holds, fingerprinted as [`of_record`] fingerprints the record.
pub(super) fn of_stored_row(table: &Table, row: &dyn ReadRow) -> Result<i64, StoreError> {
    let mut values = Vec::with_capacity(table.columns.len());
    for (index, &(_, ty)) in table.hashed_columns().iter().enumerate() {
        values.push(Owned::read(row, index, ty)?);
    }
    Ok(of_values(table, values.iter().map(Owned::borrowed)))
}

/// A value read back from a row.
enum Owned {
    Text(Option<String>),
    Real(Option<f64>),
    SmallInt(Option<i16>),
    Bool(Option<bool>),
    Time(Option<crate::domain::Timestamp>),
    BigInt(i64),
    Bytes(Vec<u8>),
}

impl Owned {
    fn read(row: &dyn ReadRow, index: usize, ty: ColumnType) -> Result<Self, StoreError> {
        let missing = || StoreError::Corrupt(format!("column {index} of a stored row is NULL"));
        Ok(match ty {
            ColumnType::Text => Self::Text(row.text(index)?),
            ColumnType::Real => Self::Real(row.real(index)?),
            ColumnType::SmallInt => Self::SmallInt(row.small(index)?),
            ColumnType::Bool => Self::Bool(row.flag(index)?),
            ColumnType::Time => Self::Time(row.time(index)?),
            ColumnType::BigInt => Self::BigInt(row.big(index)?.ok_or_else(missing)?),
            ColumnType::Bytes => Self::Bytes(row.bytes(index)?.ok_or_else(missing)?),
        })
    }

    fn borrowed(&self) -> Value<'_> {
        match self {
            Self::Text(v) => Value::Text(v.as_deref()),
            Self::Real(v) => Value::Real(*v),
            Self::SmallInt(v) => Value::SmallInt(*v),
            Self::Bool(v) => Value::Bool(*v),
            Self::Time(v) => Value::Time(*v),
            Self::BigInt(v) => Value::BigInt(*v),
            Self::Bytes(v) => Value::Bytes(v),
        }
    }
}

/// One value: its type, whether it is present, and its bytes. Texts carry their length, so
/// field boundaries count ("ab", "c" differs from "a", "bc").
fn value(bytes: &mut Vec<u8>, value: Value<'_>) {
    fn present<T>(
        bytes: &mut Vec<u8>,
        tag: u8,
        value: Option<T>,
        write: impl FnOnce(&mut Vec<u8>, T),
    ) {
        bytes.extend_from_slice(&[tag, u8::from(value.is_some())]);
        if let Some(value) = value {
            write(bytes, value);
        }
    }
    match value {
        Value::Text(v) => present(bytes, 1, v, text),
        Value::Real(v) => present(bytes, 2, v, |b, v| {
            b.extend_from_slice(&v.to_bits().to_le_bytes());
        }),
        Value::SmallInt(v) => present(bytes, 3, v, |b, v| b.extend_from_slice(&v.to_le_bytes())),
        Value::Bool(v) => present(bytes, 4, v, |b, v| b.push(u8::from(v))),
        Value::Time(v) => present(bytes, 5, v, |b, v| {
            b.extend_from_slice(&v.unix_micros().to_le_bytes());
        }),
        Value::BigInt(v) => present(bytes, 6, Some(v), |b, v| {
            b.extend_from_slice(&v.to_le_bytes());
        }),
        Value::Bytes(v) => present(bytes, 7, Some(v), |b, v| {
            b.extend_from_slice(&(v.len() as u64).to_le_bytes());
            b.extend_from_slice(v);
        }),
    }
}

fn text(bytes: &mut Vec<u8>, value: &str) {
    bytes.extend_from_slice(&(value.len() as u64).to_le_bytes());
    bytes.extend_from_slice(value.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::examples::one_of_each_kind;

    /// Every value with another content: a text with one more character, a number moved, a
    /// flag flipped, a present value absent.
    fn changed<'a>(value: Value<'a>, longer: &'a str) -> Value<'a> {
        match value {
            Value::Text(Some(_)) => Value::Text(Some(longer)),
            Value::Text(None) => Value::Text(Some("")),
            Value::Real(v) => Value::Real(Some(v.map_or(0.0, |v| v + 0.5))),
            Value::SmallInt(v) => Value::SmallInt(Some(v.map_or(0, |v| v + 1))),
            Value::Bool(v) => Value::Bool(Some(!v.unwrap_or(true))),
            Value::Time(v) => Value::Time(
                v.map_or(Some(crate::domain::Timestamp::from_unix_micros(0)), |_| {
                    None
                }),
            ),
            Value::BigInt(v) => Value::BigInt(v + 1),
            Value::Bytes(_) => Value::Bytes(b"changed"),
        }
    }

    #[test]
    fn every_column_of_every_kind_counts() {
        for record in one_of_each_kind() {
            let table = tables::table(record.kind());
            let values = tables::values(&record);
            assert_eq!(values.len() + 1, table.columns.len(), "{}", table.name);
            let original = of_values(table, values.iter().copied());
            for (index, (name, _)) in table.hashed_columns().iter().enumerate() {
                let longer = match values[index] {
                    Value::Text(Some(text)) => format!("{text}x"),
                    _ => String::new(),
                };
                let mut edited = values.clone();
                edited[index] = changed(values[index], &longer);
                assert_ne!(
                    of_values(table, edited.into_iter()),
                    original,
                    "{}.{name} does not change the fingerprint",
                    table.name
                );
            }
        }
    }

    #[test]
    fn field_boundaries_and_absence_count() {
        let table = tables::table(crate::domain::RecordKind::UsageEvent);
        let of = |values: &[Value<'_>]| of_values(table, values.iter().copied());
        assert_ne!(
            of(&[Value::Text(Some("ab")), Value::Text(Some("c"))]),
            of(&[Value::Text(Some("a")), Value::Text(Some("bc"))])
        );
        assert_ne!(of(&[Value::Real(None)]), of(&[Value::Real(Some(0.0))]));
        assert_ne!(of(&[Value::Text(None)]), of(&[Value::Text(Some(""))]));
    }
}
