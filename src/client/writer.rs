//! Writing proto records of one kind as a backfill file, in the columns the readers expect:
//! what `rescue simulate --out-dir` produces and `rescue-client backfill` reads back.

use std::io::Write;
use std::path::Path;

use anyhow::Context;

use super::columns::FileKind;
use super::format::{Format, Output};
use crate::proto::v1 as proto;

/// A backfill file being written.
#[derive(Debug)]
pub struct RecordWriter {
    kind: FileKind,
    sink: Sink,
    rows: u64,
}

#[derive(Debug)]
enum Sink {
    /// Boxed: a CSV writer carries a large buffer and state.
    Csv(Box<csv::Writer<Output>>),
    Jsonl {
        output: Output,
        columns: Vec<&'static str>,
    },
}

impl RecordWriter {
    /// Creates `path` (compressed when it ends in `.gz`) for records of `kind`.
    pub fn create(path: &Path, kind: FileKind, format: Format) -> anyhow::Result<Self> {
        let output = Output::create(path)?;
        let columns: Vec<&'static str> = kind.columns().into_iter().map(|(name, _)| name).collect();
        let sink = match format {
            Format::Csv => {
                let mut writer = csv::Writer::from_writer(output);
                writer.write_record(&columns)?;
                Sink::Csv(Box::new(writer))
            }
            Format::Jsonl => Sink::Jsonl { output, columns },
        };
        Ok(Self {
            kind,
            sink,
            rows: 0,
        })
    }

    /// Appends one record; it must be of the writer's kind.
    pub fn write(&mut self, record: &proto::Record) -> anyhow::Result<()> {
        let (kind, cells) = FileKind::cells(record).context("a record without a kind")?;
        anyhow::ensure!(kind == self.kind, "a {kind} record in a {} file", self.kind);
        match &mut self.sink {
            Sink::Csv(writer) => {
                let texts: Vec<_> = cells.iter().map(|cell| cell.text()).collect();
                writer.write_record(texts.iter().map(|text| text.as_bytes()))?;
            }
            Sink::Jsonl { output, columns } => {
                let object: serde_json::Map<String, serde_json::Value> = columns
                    .iter()
                    .zip(&cells)
                    .filter_map(|(name, cell)| Some(((*name).to_owned(), cell.json()?)))
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
