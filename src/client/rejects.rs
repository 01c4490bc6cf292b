//! The reject file of a backfill: one CSV line per problem found in a row that was not
//! stored — its line in the input, its id, the field and the reason — written as the server
//! confirms each chunk, so it always matches the checkpoint.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;

const HEADER: [&str; 4] = ["line", "record_id", "field", "reason"];

/// One problem with one row.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Reject {
    pub line: u64,
    pub record_id: String,
    pub field: String,
    pub reason: String,
}

/// A reject file, created on the first reject.
#[derive(Debug)]
pub struct RejectFile {
    path: PathBuf,
    file: Option<File>,
    bytes: u64,
}

impl RejectFile {
    /// Opens the reject file at `path` keeping its first `keep_bytes` — the rejects a
    /// checkpoint covers — and dropping the rest; with 0 an old file is removed.
    pub fn open(path: &Path, keep_bytes: u64) -> anyhow::Result<Self> {
        let failed = || format!("Failed to open the reject file {}", path.display());
        let file = if keep_bytes == 0 {
            match std::fs::remove_file(path) {
                Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
                    return Err(error).with_context(failed);
                }
                _ => None,
            }
        } else {
            let file = OpenOptions::new()
                .write(true)
                .open(path)
                .with_context(failed)?;
            file.set_len(keep_bytes).with_context(failed)?;
            Some(file)
        };
        Ok(Self {
            path: path.to_owned(),
            file,
            bytes: keep_bytes,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes written so far: what a checkpoint records.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Appends `rejects` and makes them durable before the checkpoint that covers them.
    pub fn append(&mut self, rejects: &[Reject]) -> anyhow::Result<()> {
        if rejects.is_empty() {
            return Ok(());
        }
        let mut lines = csv::Writer::from_writer(Vec::new());
        if self.bytes == 0 {
            lines.write_record(HEADER)?;
        }
        for reject in rejects {
            lines.write_record([
                reject.line.to_string().as_str(),
                &reject.record_id,
                &reject.field,
                &reject.reason,
            ])?;
        }
        let lines = lines
            .into_inner()
            .map_err(|error| anyhow::anyhow!("{}", error.error()))?;
        let failed = || format!("Failed to write the reject file {}", self.path.display());
        let file = match &mut self.file {
            Some(file) => file,
            None => self
                .file
                .insert(File::create(&self.path).with_context(failed)?),
        };
        // Positioned explicitly: the file may just have been cut back to a checkpoint.
        std::io::Seek::seek(file, std::io::SeekFrom::Start(self.bytes)).with_context(failed)?;
        file.write_all(&lines).with_context(failed)?;
        file.sync_data().with_context(failed)?;
        self.bytes += lines.len() as u64;
        Ok(())
    }
}
