//! Writing proto records of one kind as a backfill file, in the columns the readers expect:
//! what `rescue simulate --out-dir` produces and `rescue-client backfill` reads back. A
//! customer file carries the attributes it is told of as `attr.NAME:TYPE` columns (see
//! [`super::attributes`]).

use std::io::Write;
use std::path::Path;

use anyhow::Context;

use super::attributes::{ATTRIBUTE_PREFIX, AttributeType};
use super::columns::FileKind;
use super::format::{Format, Output};
use crate::proto::v1::{self as proto, attribute_value::Value};

/// A backfill file being written.
#[derive(Debug)]
pub struct RecordWriter {
    kind: FileKind,
    sink: Sink,
    /// The customer attributes written, after the record's own columns.
    attributes: Vec<String>,
    rows: u64,
}

#[derive(Debug)]
enum Sink {
    /// Boxed: a CSV writer carries a large buffer and state.
    Csv(Box<csv::Writer<Output>>),
    Jsonl {
        output: Output,
        columns: Vec<String>,
    },
}

impl RecordWriter {
    /// Creates `path` (compressed when it ends in `.gz`) for records of `kind`; a customer
    /// file also gets a column for each of `attributes` (name and type; ignored for other
    /// kinds).
    pub fn create(
        path: &Path,
        kind: FileKind,
        format: Format,
        attributes: &[(&str, AttributeType)],
    ) -> anyhow::Result<Self> {
        let output = Output::create(path)?;
        let attributes = if kind == FileKind::Customers {
            attributes
        } else {
            &[]
        };
        let mut columns: Vec<String> = kind
            .columns()
            .into_iter()
            .map(|(name, _)| name.to_owned())
            .collect();
        let sink = match format {
            Format::Csv => {
                columns.extend(
                    attributes
                        .iter()
                        .map(|(name, kind)| format!("{ATTRIBUTE_PREFIX}{name}:{}", kind.name())),
                );
                let mut writer = csv::Writer::from_writer(output);
                writer.write_record(&columns)?;
                Sink::Csv(Box::new(writer))
            }
            Format::Jsonl => {
                columns.extend(
                    attributes
                        .iter()
                        .map(|(name, _)| format!("{ATTRIBUTE_PREFIX}{name}")),
                );
                Sink::Jsonl { output, columns }
            }
        };
        Ok(Self {
            kind,
            sink,
            attributes: attributes.iter().map(|(n, _)| (*n).to_owned()).collect(),
            rows: 0,
        })
    }

    /// The record's attribute values, in the writer's attribute order.
    fn attribute_values<'a>(&self, record: &'a proto::Record) -> Vec<Option<&'a Value>> {
        let customer = match &record.kind {
            Some(proto::record::Kind::Customer(customer)) => Some(customer),
            _ => None,
        };
        self.attributes
            .iter()
            .map(|name| {
                customer
                    .and_then(|c| c.attributes.get(name))
                    .and_then(|v| v.value.as_ref())
            })
            .collect()
    }

    /// Appends one record; it must be of the writer's kind.
    pub fn write(&mut self, record: &proto::Record) -> anyhow::Result<()> {
        let (kind, cells) = FileKind::cells(record).context("a record without a kind")?;
        anyhow::ensure!(kind == self.kind, "a {kind} record in a {} file", self.kind);
        let attributes = self.attribute_values(record);
        match &mut self.sink {
            Sink::Csv(writer) => {
                let texts: Vec<String> = cells
                    .iter()
                    .map(|cell| cell.text().to_string())
                    .chain(attributes.iter().map(|value| match value {
                        Some(Value::Number(n)) => n.to_string(),
                        Some(Value::Category(c)) => c.clone(),
                        Some(Value::Flag(f)) => f.to_string(),
                        None => String::new(),
                    }))
                    .collect();
                writer.write_record(texts.iter().map(|text| text.as_bytes()))?;
            }
            Sink::Jsonl { output, columns } => {
                let values = cells
                    .iter()
                    .map(|cell| cell.json())
                    .chain(attributes.iter().map(|value| match value {
                        Some(Value::Number(n)) => Some(serde_json::json!(n)),
                        Some(Value::Category(c)) => Some(serde_json::json!(c)),
                        Some(Value::Flag(f)) => Some(serde_json::json!(f)),
                        None => None,
                    }));
                let object: serde_json::Map<String, serde_json::Value> = columns
                    .iter()
                    .zip(values)
                    .filter_map(|(name, value)| Some((name.clone(), value?)))
                    .collect();
                serde_json::to_writer(&mut *output, &object)?;
                output.write_all(b"\n")?;
            }
        }
        self.rows += 1;
        Ok(())
    }

    /// Completes the file and says how many rows it holds.
    pub fn finish(self) -> anyhow::Result<u64> {
        let output = match self.sink {
            Sink::Csv(writer) => (*writer)
                .into_inner()
                .map_err(|error| anyhow::anyhow!("{}", error.error()))?,
            Sink::Jsonl { output, .. } => output,
        };
        output.finish()?;
        Ok(self.rows)
    }
}
