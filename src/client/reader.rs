//! Reading a backfill file row by row into proto records of one kind, each with the line it
//! starts on, and with the position after it — the byte offset and line a checkpoint resumes
//! from. A row that cannot be read becomes a reject; only an unreadable file is an error.

use std::io::BufRead;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context;

use super::attributes::{
    ATTRIBUTE_PREFIX, AttributeType, attribute_column, attribute_value, json_attribute_value,
};
use super::columns::FileKind;
use super::format::{self, Format};
use crate::proto::v1 as proto;

/// Where reading stands: the byte offset (of the decompressed content) and the line number
/// of the next row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Position {
    pub offset: u64,
    pub line: u64,
}

impl Position {
    pub const START: Self = Self { offset: 0, line: 1 };
}

impl Default for Position {
    fn default() -> Self {
        Self::START
    }
}

/// Why a row was not sent: the row's id if it could be read, the column, and the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    pub id: String,
    pub field: String,
    pub reason: String,
}

/// One row of a file.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The line the row starts on, from 1 (a CSV header is line 1).
    pub line: u64,
    pub record: Result<proto::Record, RowError>,
}

/// Rows of one kind from a CSV or JSON Lines file, from a given position on.
pub struct RecordReader {
    kind: FileKind,
    source: Source,
    /// The position after the last row read.
    position: Position,
    consumed: Arc<AtomicU64>,
}

impl std::fmt::Debug for RecordReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordReader")
            .field("kind", &self.kind)
            .field("position", &self.position)
            .finish_non_exhaustive()
    }
}

enum Source {
    Csv {
        reader: csv::Reader<Box<dyn BufRead + Send>>,
        /// For each of the kind's columns, its field's index in a row (`None`: not in the file).
        fields: Vec<Option<usize>>,
        /// A customer file's attribute columns: index, attribute name, declared type.
        attributes: Vec<(usize, String, Option<AttributeType>)>,
        header_len: usize,
        /// Where the reader started, which its own positions count from.
        base: Position,
    },
    Jsonl {
        reader: Box<dyn BufRead + Send>,
        columns: Vec<&'static str>,
        buffer: Vec<u8>,
    },
}

impl RecordReader {
    /// Opens `path` to read rows of `kind` from `start` ([`Position::START`] for the whole file).
    pub fn open(
        path: &Path,
        kind: FileKind,
        format: Format,
        start: Position,
    ) -> anyhow::Result<Self> {
        let (source, position, consumed) = match format {
            Format::Csv => {
                // The header is read from the top even when resuming further down.
                let mut top = csv_reader(format::open(path, 0)?.reader);
                let header = top
                    .byte_headers()
                    .with_context(|| format!("Failed to read the header of {}", path.display()))?
                    .clone();
                let after_header = Position {
                    offset: top.position().byte(),
                    line: top.position().line(),
                };
                let (fields, attributes) = header_fields(kind, &header)
                    .with_context(|| format!("{} is not a {kind} file", path.display()))?;
                let start = if start.offset < after_header.offset {
                    after_header
                } else {
                    start
                };
                let input = format::open(path, start.offset)?;
                let source = Source::Csv {
                    reader: csv_reader(input.reader),
                    fields,
                    attributes,
                    header_len: header.len(),
                    base: start,
                };
                (source, start, input.consumed)
            }
            Format::Jsonl => {
                let input = format::open(path, start.offset)?;
                let source = Source::Jsonl {
                    reader: input.reader,
                    columns: kind.columns().into_iter().map(|(name, _)| name).collect(),
                    buffer: Vec::new(),
                };
                (source, start, input.consumed)
            }
        };
        Ok(Self {
            kind,
            source,
            position,
            consumed,
        })
    }

    /// The position after the last row read: where the next one starts.
    pub fn position(&self) -> Position {
        self.position
    }

    /// Bytes of the file itself consumed so far (compressed bytes for a gzip file).
    pub fn consumed(&self) -> u64 {
        self.consumed.load(Ordering::Relaxed)
    }

    /// The next row, or `None` at the end of the file.
    pub fn next_row(&mut self) -> anyhow::Result<Option<Row>> {
        match &mut self.source {
            Source::Csv {
                reader,
                fields,
                attributes,
                header_len,
                base,
            } => {
                let mut row = csv::ByteRecord::new();
                let more = reader.read_byte_record(&mut row).map_err(|error| {
                    anyhow::anyhow!(
                        "Failed to read the file near line {}: {error}",
                        self.position.line
                    )
                })?;
                if !more {
                    return Ok(None);
                }
                let line = base.line + row.position().map_or(1, csv::Position::line) - 1;
                self.position = Position {
                    offset: base.offset + reader.position().byte(),
                    line: base.line + reader.position().line() - 1,
                };
                Ok(Some(Row {
                    line,
                    record: csv_record(self.kind, &row, fields, attributes, *header_len),
                }))
            }
            Source::Jsonl {
                reader,
                columns,
                buffer,
            } => loop {
                buffer.clear();
                let read = reader.read_until(b'\n', buffer).with_context(|| {
                    format!("Failed to read the file at line {}", self.position.line)
                })?;
                if read == 0 {
                    return Ok(None);
                }
                let line = self.position.line;
                self.position = Position {
                    offset: self.position.offset + read as u64,
                    line: line + 1,
                };
                if buffer.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                return Ok(Some(Row {
                    line,
                    record: json_record(self.kind, columns, buffer),
                }));
            },
        }
    }
}

fn csv_reader(reader: Box<dyn BufRead + Send>) -> csv::Reader<Box<dyn BufRead + Send>> {
    csv::ReaderBuilder::new()
        .has_headers(false)
        // A row with the wrong number of fields is that row's problem, not the file's.
        .flexible(true)
        .from_reader(reader)
}

/// The header positions of a kind's columns and of a customer file's attribute columns.
type HeaderFields = (
    Vec<Option<usize>>,
    Vec<(usize, String, Option<AttributeType>)>,
);

/// Maps the kind's columns to header positions; refuses a header that lacks a required
/// column or names one the kind does not have (a typo would otherwise drop a field). In a
/// customer file, `attr.NAME[:TYPE]` columns are attributes.
fn header_fields(kind: FileKind, header: &csv::ByteRecord) -> anyhow::Result<HeaderFields> {
    let names: Vec<String> = header
        .iter()
        .map(|name| {
            String::from_utf8_lossy(name)
                .trim()
                .trim_start_matches('\u{feff}')
                .to_owned()
        })
        .collect();
    let columns = kind.columns();
    let mut attributes = Vec::new();
    if kind == FileKind::Customers {
        for (index, name) in names.iter().enumerate() {
            if let Some(column) = attribute_column(name) {
                let (attribute, declared) =
                    column.map_err(|reason| anyhow::anyhow!("column {name:?}: {reason}"))?;
                attributes.push((index, attribute, declared));
            }
        }
    }
    if let Some(unknown) = names
        .iter()
        .enumerate()
        .find(|(index, name)| {
            !columns.iter().any(|(column, _)| column == *name)
                && !attributes.iter().any(|(i, _, _)| i == index)
        })
        .map(|(_, name)| name)
    {
        anyhow::bail!(
            "unknown column {unknown:?} in the header; the columns of {kind} are {}",
            columns
                .iter()
                .map(|(name, _)| *name)
                .collect::<Vec<_>>()
                .join(",")
        );
    }
    let missing: Vec<&str> = columns
        .iter()
        .filter(|(name, required)| *required && !names.iter().any(|n| n == name))
        .map(|(name, _)| *name)
        .collect();
    anyhow::ensure!(
        missing.is_empty(),
        "the header lacks the required column(s) {}",
        missing.join(", ")
    );
    Ok((
        columns
            .iter()
            .map(|(column, _)| names.iter().position(|name| name == column))
            .collect(),
        attributes,
    ))
}

/// Adds attribute values to a customer record; other kinds have none.
fn with_attributes(
    mut record: proto::Record,
    id: impl Fn() -> String,
    values: impl IntoIterator<Item = (String, Result<Option<proto::AttributeValue>, String>)>,
) -> Result<proto::Record, RowError> {
    if let Some(proto::record::Kind::Customer(customer)) = record.kind.as_mut() {
        for (name, value) in values {
            let value = value.map_err(|reason| RowError {
                id: id(),
                field: format!("{ATTRIBUTE_PREFIX}{name}"),
                reason,
            })?;
            if let Some(value) = value {
                customer.attributes.insert(name, value);
            }
        }
    }
    Ok(record)
}

fn csv_record(
    kind: FileKind,
    row: &csv::ByteRecord,
    fields: &[Option<usize>],
    attributes: &[(usize, String, Option<AttributeType>)],
    header_len: usize,
) -> Result<proto::Record, RowError> {
    let id = || {
        fields[0]
            .and_then(|i| row.get(i))
            .map(|raw| String::from_utf8_lossy(raw).into_owned())
            .unwrap_or_default()
    };
    if row.len() != header_len {
        return Err(RowError {
            id: id(),
            field: String::new(),
            reason: format!("has {} fields, the header has {header_len}", row.len()),
        });
    }
    let mut cells = Vec::with_capacity(fields.len());
    for (index, field) in fields.iter().enumerate() {
        let cell = match field.and_then(|i| row.get(i)) {
            None => None,
            Some(raw) => Some(std::str::from_utf8(raw).map_err(|_| RowError {
                id: id(),
                field: kind.columns()[index].0.to_owned(),
                reason: "is not valid UTF-8".into(),
            })?),
        };
        cells.push(cell);
    }
    let record = kind.parse(&cells).map_err(|error| RowError {
        id: id(),
        field: error.column.to_owned(),
        reason: error.reason,
    })?;
    let values = attributes.iter().map(|(index, name, declared)| {
        let cell = row
            .get(*index)
            .map(|raw| String::from_utf8_lossy(raw).trim().to_owned())
            .unwrap_or_default();
        let value = if cell.is_empty() {
            Ok(None)
        } else {
            attribute_value(&cell, *declared).map(Some)
        };
        (name.clone(), value)
    });
    with_attributes(record, id, values)
}

fn json_record(
    kind: FileKind,
    columns: &[&'static str],
    line: &[u8],
) -> Result<proto::Record, RowError> {
    use serde_json::Value;
    let object: serde_json::Map<String, Value> =
        serde_json::from_slice(line).map_err(|error| RowError {
            id: String::new(),
            field: String::new(),
            reason: format!("is not a JSON object: {error}"),
        })?;
    let id = match object.get(columns[0]) {
        Some(Value::String(id)) => id.clone(),
        _ => String::new(),
    };
    let mut texts: Vec<Option<String>> = vec![None; columns.len()];
    let mut attributes = Vec::new();
    for (key, value) in object {
        if kind == FileKind::Customers
            && let Some(column) = attribute_column(&key)
        {
            let parsed = column.and_then(|(name, declared)| {
                json_attribute_value(&value, declared).map(|value| (name, value))
            });
            match parsed {
                Ok((name, value)) => attributes.push((name, Ok(value))),
                Err(reason) => attributes.push((key.clone(), Err(reason))),
            }
            continue;
        }
        let Some(index) = columns.iter().position(|column| *column == key) else {
            return Err(RowError {
                id,
                field: key.clone(),
                reason: format!("is not a column of {kind}"),
            });
        };
        texts[index] = match value {
            Value::Null => None,
            Value::String(text) => Some(text),
            Value::Bool(value) => Some(value.to_string()),
            Value::Number(number) => Some(number.to_string()),
            Value::Array(_) | Value::Object(_) => {
                return Err(RowError {
                    id,
                    field: key,
                    reason: "must be a string, a number, a boolean or null".into(),
                });
            }
        };
    }
    let cells: Vec<Option<&str>> = texts.iter().map(Option::as_deref).collect();
    let record = kind.parse(&cells).map_err(|error| RowError {
        id: id.clone(),
        field: error.column.to_owned(),
        reason: error.reason,
    })?;
    with_attributes(record, || id.clone(), attributes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, content: &str) -> std::path::PathBuf {
        let path =
            std::env::temp_dir().join(format!("rescue-reader-{}-{name}", std::process::id()));
        std::fs::write(&path, content).expect("write");
        path
    }

    fn rows(reader: &mut RecordReader) -> Vec<Row> {
        std::iter::from_fn(|| reader.next_row().expect("readable")).collect()
    }

    const CSV: &str = "event_id,customer_id,occurred_at,activity,quantity\n\
        u-1,c-1,2026-01-01T00:00:00Z,login,1\n\
        u-2,c-1,2026-01-02T00:00:00Z,\"report\nexport\",2\n\
        u-3,c-1,not a time,login,3\n\
        u-4,c-1,2026-01-03T00:00:00Z,login\n";

    #[test]
    fn csv_rows_carry_their_lines_and_bad_rows_their_reasons() {
        let path = file("events.csv", CSV);
        let mut reader =
            RecordReader::open(&path, FileKind::UsageEvents, Format::Csv, Position::START)
                .expect("open");
        let rows = rows(&mut reader);
        assert_eq!(
            rows.iter().map(|r| r.line).collect::<Vec<_>>(),
            [2, 3, 5, 6]
        );
        assert!(rows[0].record.is_ok() && rows[1].record.is_ok());
        let bad = rows[2].record.as_ref().expect_err("bad time");
        assert_eq!(
            (bad.id.as_str(), bad.field.as_str()),
            ("u-3", "occurred_at")
        );
        let short = rows[3].record.as_ref().expect_err("short row");
        assert_eq!(short.reason, "has 4 fields, the header has 5");
        assert_eq!(reader.position().line, 7);
        std::fs::remove_file(&path).ok();
    }

    #[test]
    fn reading_resumes_from_a_position_with_the_same_lines() {
        let path = file("resume.csv", CSV);
        let mut reader =
            RecordReader::open(&path, FileKind::UsageEvents, Format::Csv, Position::START)
                .expect("open");
        reader.next_row().expect("row");
        reader.next_row().expect("row");
        let after_two = reader.position();
        let rest = rows(&mut reader);
        let mut resumed = RecordReader::open(&path, FileKind::UsageEvents, Format::Csv, after_two)
            .expect("reopen");
        assert_eq!(rows(&mut resumed), rest);
        std::fs::remove_file(&path).ok();
    }

    #[test]
    fn json_lines_name_unknown_keys_and_skip_blank_lines() {
        let path = file(
            "churn.jsonl",
            "{\"customer_id\":\"c-1\",\"status\":\"active\",\"observed_at\":\"2026-01-01\"}\n\n\
             {\"customer_id\":\"c-2\",\"status\":\"churned\",\"observed\":\"2026-01-01\"}\n",
        );
        let mut reader = RecordReader::open(
            &path,
            FileKind::ChurnOutcomes,
            Format::Jsonl,
            Position::START,
        )
        .expect("open");
        let rows = rows(&mut reader);
        assert_eq!(rows.len(), 2);
        assert!(rows[0].record.is_ok());
        let bad = rows[1].record.as_ref().expect_err("unknown key");
        assert_eq!((rows[1].line, bad.field.as_str()), (3, "observed"));
        std::fs::remove_file(&path).ok();
    }

    #[test]
    fn a_header_with_an_unknown_column_is_refused_whole() {
        let path = file("typo.csv", "event_id,customer_id,occured_at\n");
        let error = RecordReader::open(&path, FileKind::UsageEvents, Format::Csv, Position::START)
            .expect_err("typo");
        assert!(
            format!("{error:#}").contains("unknown column \"occured_at\""),
            "{error:#}"
        );
        std::fs::remove_file(&path).ok();
    }
}
