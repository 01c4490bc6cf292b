//! `rescue simulate --out-dir`: the simulated customer base as backfill files, one per record
//! kind, in the columns `rescue-client backfill` reads (see [`crate::client::columns`]) — so
//! a demo runs simulate, backfill, train and score against a real server.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::Context;

use super::calibration as cal;
use super::{SimulationParams, simulate};
use crate::client::attributes::AttributeType;
use crate::client::{FileKind, Format, RecordWriter};
use crate::proto::v1 as proto;

/// The files written and how many rows each holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FilesSummary {
    pub customers: u64,
    pub files: BTreeMap<FileKind, (PathBuf, u64)>,
}

impl FilesSummary {
    pub fn rows(&self) -> u64 {
        self.files.values().map(|(_, rows)| rows).sum()
    }
}

impl fmt::Display for FilesSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "customers: {}\nrows: {}", self.customers, self.rows())?;
        for (path, rows) in self.files.values() {
            write!(f, "\n  {:<40} {rows}", path.display())?;
        }
        Ok(())
    }
}

/// The file of `kind` in `directory`: `usage_events.csv`, `surveys.jsonl.gz`, …
pub fn file_path(directory: &Path, kind: FileKind, format: Format, gzip: bool) -> PathBuf {
    let suffix = if gzip { ".gz" } else { "" };
    directory.join(format!("{}.{}{suffix}", kind.name(), format.extension()))
}

/// Writes `params`' customers into one file per record kind in `directory`. Generation is
/// CPU work and writing is blocking: call from a blocking thread.
pub fn write_files(
    params: SimulationParams,
    directory: &Path,
    format: Format,
    gzip: bool,
) -> anyhow::Result<FilesSummary> {
    write_kinds(params, directory, format, gzip, &FileKind::ALL)
}

/// [`write_files`] for some kinds only; the other records are generated and dropped.
pub fn write_kinds(
    params: SimulationParams,
    directory: &Path,
    format: Format,
    gzip: bool,
    kinds: &[FileKind],
) -> anyhow::Result<FilesSummary> {
    std::fs::create_dir_all(directory)
        .with_context(|| format!("Failed to create {}", directory.display()))?;
    let mut writers = kinds
        .iter()
        .map(|&kind| {
            let path = file_path(directory, kind, format, gzip);
            let attributes = [(cal::ACQUISITION_CHANNEL, AttributeType::Category)];
            Ok((
                kind,
                (
                    RecordWriter::create(&path, kind, format, &attributes)?,
                    path,
                ),
            ))
        })
        .collect::<anyhow::Result<BTreeMap<_, _>>>()?;
    let mut summary = FilesSummary::default();
    for customer in simulate(params) {
        summary.customers += 1;
        for record in customer.records {
            let record = proto::Record::from(record);
            let kind = FileKind::of(&record).context("a simulated record without a kind")?;
            if let Some((writer, path)) = writers.get_mut(&kind) {
                writer
                    .write(&record)
                    .with_context(|| format!("Failed to write {}", path.display()))?;
            }
        }
    }
    for (kind, (writer, path)) in writers {
        let rows = writer
            .finish()
            .with_context(|| format!("Failed to write {}", path.display()))?;
        summary.files.insert(kind, (path, rows));
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::RecordParser;
    use crate::domain::{Record, Timestamp, Vocabulary};

    #[test]
    fn written_files_read_back_as_the_generated_records() {
        let params = SimulationParams {
            customers: 30,
            seed: 3,
        };
        let directory =
            std::env::temp_dir().join(format!("rescue-simulate-files-{}", std::process::id()));
        let parser = RecordParser::received_at(Timestamp::now(), Vocabulary::built_in());
        let generated: Vec<Record> = simulate(params).flat_map(|c| c.records).collect();
        for (format, gzip) in [(Format::Csv, false), (Format::Jsonl, true)] {
            let summary = write_files(params, &directory, format, gzip).expect("write");
            assert_eq!(summary.rows(), generated.len() as u64);
            let mut read = Vec::new();
            for kind in FileKind::ALL {
                let path = file_path(&directory, kind, format, gzip);
                let mut reader = crate::client::reader::RecordReader::open(
                    &path,
                    kind,
                    format,
                    crate::client::reader::Position::START,
                )
                .expect("open");
                while let Some(row) = reader.next_row().expect("row") {
                    let record = row.record.expect("every generated row reads");
                    read.push(parser.record(record).expect("valid"));
                }
            }
            for record in &generated {
                assert!(
                    read.contains(record),
                    "{format:?}: {record:?} did not read back"
                );
            }
        }
        std::fs::remove_dir_all(&directory).ok();
    }
}
