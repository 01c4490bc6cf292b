//! The bytes of a serving state: each written record as its kind and its table's columns
//! (less the implied ones), one after another. A sequence of records followed by another is
//! a sequence of records, so appending is concatenating. Decoding reads cells in place, with
//! no copy but the owned values the domain records keep.
//!
//! A record is one byte of kind, then each cell as a tag byte and its payload: nothing for
//! NULL, a varint length and UTF-8 for text, eight little-endian bytes for numbers, times
//! (microseconds since 1970-01-01 UTC) and big integers, two for small ones, one for a flag.

use prost::bytes::Buf;
use prost::encoding::{decode_varint, encode_varint};

use super::super::rows::ReadRow;
use super::super::tables::{self, Table, Value};
use crate::domain::{Record, RecordKind, Timestamp};

/// Columns a state does not repeat per record: the customer is the row's, and fingerprints
/// only judge re-sends at ingest.
pub(super) const IMPLIED_COLUMNS: [&str; 2] = ["customer_id", "fingerprint"];

const NULL: u8 = 0;
const TEXT: u8 = 1;
const REAL: u8 = 2;
const SMALL: u8 = 3;
const FLAG: u8 = 4;
const TIME: u8 = 5;
const BIG: u8 = 6;

/// Persisted codes of the record kinds: never renumbered.
const fn kind_code(kind: RecordKind) -> u8 {
    match kind {
        RecordKind::Customer => 1,
        RecordKind::UsageEvent => 2,
        RecordKind::Interaction => 3,
        RecordKind::Survey => 4,
        RecordKind::ChurnOutcome => 5,
        RecordKind::RecoveryCase => 6,
    }
}

fn kind_of(code: u8) -> Option<RecordKind> {
    RecordKind::ALL.into_iter().find(|k| kind_code(*k) == code)
}

fn stored_columns(table: &Table) -> impl Iterator<Item = bool> + '_ {
    table
        .columns
        .iter()
        .map(|(name, _)| !IMPLIED_COLUMNS.contains(name))
}

fn put_cell(out: &mut Vec<u8>, value: Value<'_>) {
    match value {
        Value::Text(Some(text)) => {
            out.push(TEXT);
            encode_varint(text.len() as u64, out);
            out.extend_from_slice(text.as_bytes());
        }
        Value::Real(Some(v)) => {
            out.push(REAL);
            out.extend_from_slice(&v.to_le_bytes());
        }
        Value::SmallInt(Some(v)) => {
            out.push(SMALL);
            out.extend_from_slice(&v.to_le_bytes());
        }
        Value::Bool(Some(v)) => out.extend_from_slice(&[FLAG, u8::from(v)]),
        Value::Time(Some(at)) => {
            out.push(TIME);
            out.extend_from_slice(&at.unix_micros().to_le_bytes());
        }
        Value::BigInt(v) => {
            out.push(BIG);
            out.extend_from_slice(&v.to_le_bytes());
        }
        // No record column holds bytes.
        Value::Text(None)
        | Value::Real(None)
        | Value::SmallInt(None)
        | Value::Bool(None)
        | Value::Time(None)
        | Value::Bytes(_) => out.push(NULL),
    }
}

/// Appends the encoding of `record` to `out`.
pub(super) fn put_record(out: &mut Vec<u8>, record: &Record) {
    let table = tables::table(record.kind());
    out.push(kind_code(record.kind()));
    for (stored, value) in stored_columns(table).zip(tables::row(record)) {
        if stored {
            put_cell(out, value);
        }
    }
}

/// One cell, read in place.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Cell<'a> {
    Null,
    Text(&'a str),
    Real(f64),
    Small(i16),
    Flag(bool),
    Int(i64),
}

fn truncated() -> String {
    "the state ends inside a record".to_owned()
}

fn take<'a>(bytes: &mut &'a [u8], n: usize) -> Result<&'a [u8], String> {
    if bytes.len() < n {
        return Err(truncated());
    }
    let (taken, rest) = bytes.split_at(n);
    *bytes = rest;
    Ok(taken)
}

fn array<const N: usize>(bytes: &mut &[u8]) -> Result<[u8; N], String> {
    let mut out = [0u8; N];
    out.copy_from_slice(take(bytes, N)?);
    Ok(out)
}

fn cell<'a>(bytes: &mut &'a [u8]) -> Result<Cell<'a>, String> {
    let tag = array::<1>(bytes)?[0];
    Ok(match tag {
        NULL => Cell::Null,
        TEXT => {
            let len = decode_varint(bytes).map_err(|e| e.to_string())?;
            let len = usize::try_from(len).map_err(|e| e.to_string())?;
            let text = take(bytes, len)?;
            Cell::Text(std::str::from_utf8(text).map_err(|e| e.to_string())?)
        }
        REAL => Cell::Real(f64::from_le_bytes(array(bytes)?)),
        SMALL => Cell::Small(i16::from_le_bytes(array(bytes)?)),
        FLAG => Cell::Flag(array::<1>(bytes)?[0] != 0),
        TIME | BIG => Cell::Int(i64::from_le_bytes(array(bytes)?)),
        other => return Err(format!("unknown cell tag {other}")),
    })
}

/// Reads records off the front of an encoding.
pub(super) struct Records<'a> {
    bytes: &'a [u8],
    customer_id: &'a str,
    /// The cells of the record read last, reused from record to record.
    cells: Vec<Cell<'a>>,
}

impl<'a> Records<'a> {
    pub(super) fn new(customer_id: &'a str, bytes: &'a [u8]) -> Self {
        Self {
            bytes,
            customer_id,
            cells: Vec::with_capacity(24),
        }
    }

    /// The next record's kind and a row to decode it from; `None` at the end.
    pub(super) fn next_row(&mut self) -> Result<Option<(RecordKind, StateRow<'_>)>, String> {
        if !self.bytes.has_remaining() {
            return Ok(None);
        }
        let code = array::<1>(&mut self.bytes)?[0];
        let kind = kind_of(code).ok_or_else(|| format!("unknown record kind {code}"))?;
        let table = tables::table(kind);
        self.cells.clear();
        for stored in stored_columns(table) {
            self.cells.push(if stored {
                cell(&mut self.bytes)?
            } else {
                Cell::Null
            });
        }
        Ok(Some((
            kind,
            StateRow {
                customer_id: self.customer_id,
                table,
                cells: &self.cells,
            },
        )))
    }
}

/// A state record seen as a row of its table, so the decoders of stored rows read it: the
/// implied customer column answers with the state's customer.
pub(super) struct StateRow<'a> {
    customer_id: &'a str,
    table: &'static Table,
    /// One per table column; implied ones are `Null` here.
    cells: &'a [Cell<'a>],
}

fn mismatch(index: usize, wanted: &str) -> sqlx::Error {
    sqlx::Error::Decode(format!("serving state column {index} is not {wanted}").into())
}

impl StateRow<'_> {
    fn cell(&self, index: usize) -> Result<Cell<'_>, sqlx::Error> {
        self.cells
            .get(index)
            .copied()
            .ok_or(sqlx::Error::ColumnIndexOutOfBounds {
                index,
                len: self.cells.len(),
            })
    }
}

impl ReadRow for StateRow<'_> {
    fn text(&self, index: usize) -> Result<Option<String>, sqlx::Error> {
        if self.table.columns.get(index).map(|(name, _)| *name) == Some("customer_id") {
            return Ok(Some(self.customer_id.to_owned()));
        }
        match self.cell(index)? {
            Cell::Null => Ok(None),
            Cell::Text(v) => Ok(Some(v.to_owned())),
            _ => Err(mismatch(index, "text")),
        }
    }

    fn real(&self, index: usize) -> Result<Option<f64>, sqlx::Error> {
        match self.cell(index)? {
            Cell::Null => Ok(None),
            Cell::Real(v) => Ok(Some(v)),
            _ => Err(mismatch(index, "a number")),
        }
    }

    fn small(&self, index: usize) -> Result<Option<i16>, sqlx::Error> {
        match self.cell(index)? {
            Cell::Null => Ok(None),
            Cell::Small(v) => Ok(Some(v)),
            _ => Err(mismatch(index, "a small integer")),
        }
    }

    fn flag(&self, index: usize) -> Result<Option<bool>, sqlx::Error> {
        match self.cell(index)? {
            Cell::Null => Ok(None),
            Cell::Flag(v) => Ok(Some(v)),
            _ => Err(mismatch(index, "a flag")),
        }
    }

    fn time(&self, index: usize) -> Result<Option<Timestamp>, sqlx::Error> {
        match self.cell(index)? {
            Cell::Null => Ok(None),
            Cell::Int(v) => Ok(Some(Timestamp::from_unix_micros(v))),
            _ => Err(mismatch(index, "a time")),
        }
    }

    fn big(&self, index: usize) -> Result<Option<i64>, sqlx::Error> {
        match self.cell(index)? {
            Cell::Null => Ok(None),
            Cell::Int(v) => Ok(Some(v)),
            _ => Err(mismatch(index, "an integer")),
        }
    }

    fn bytes(&self, index: usize) -> Result<Option<Vec<u8>>, sqlx::Error> {
        Err(mismatch(index, "bytes"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::examples;

    #[test]
    fn every_cell_reads_back_as_written() {
        let values = [
            Value::Text(Some("héllo")),
            Value::Text(None),
            Value::Real(Some(-1.5)),
            Value::SmallInt(Some(-7)),
            Value::Bool(Some(true)),
            Value::Time(Some(Timestamp::from_unix_micros(-42))),
            Value::BigInt(i64::MIN),
        ];
        let mut bytes = Vec::new();
        for value in values {
            put_cell(&mut bytes, value);
        }
        let mut rest = bytes.as_slice();
        let cells: Vec<Cell<'_>> = (0..values.len())
            .map(|_| cell(&mut rest).expect("a cell"))
            .collect();
        assert!(rest.is_empty());
        assert_eq!(
            cells,
            vec![
                Cell::Text("héllo"),
                Cell::Null,
                Cell::Real(-1.5),
                Cell::Small(-7),
                Cell::Flag(true),
                Cell::Int(-42),
                Cell::Int(i64::MIN),
            ]
        );
    }

    #[test]
    fn a_record_reads_back_with_the_state_customer_in_its_implied_column() {
        for record in examples::one_of_each_kind() {
            let mut bytes = Vec::new();
            put_record(&mut bytes, &record);
            let mut records = Records::new("someone-else", &bytes);
            let (kind, row) = records.next_row().expect("decodes").expect("a record");
            assert_eq!(kind, record.kind());
            let table = tables::table(kind);
            let customer = table
                .columns
                .iter()
                .position(|(name, _)| *name == "customer_id")
                .expect("a customer column");
            assert_eq!(
                row.text(customer).expect("text").as_deref(),
                Some("someone-else")
            );
            assert!(records.next_row().expect("the end").is_none(), "{kind:?}");
        }
    }

    #[test]
    fn a_cut_or_garbled_state_is_an_error_not_a_panic() {
        let mut bytes = Vec::new();
        put_record(&mut bytes, &examples::one_of_each_kind()[1]);
        for end in 0..bytes.len() {
            let mut records = Records::new("c-1", &bytes[..end]);
            if end == 0 {
                assert!(records.next_row().expect("empty").is_none());
            } else {
                assert!(records.next_row().is_err(), "cut at {end}");
            }
        }
        let mut records = Records::new("c-1", &[9, 0]);
        assert!(records.next_row().is_err());
    }
}
