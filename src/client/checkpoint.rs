//! The checkpoint of a backfill: how far into its file the server has confirmed storage, so
//! that running the same command again after a crash, a kill or Ctrl-C resumes there.
//!
//! A checkpoint is written only after the server has answered for every row before its
//! position (the server answers once everything in a call is committed), and it is replaced
//! atomically, so whatever state a kill leaves it in is true. It is bound to its file — size,
//! modification time and a digest of the first bytes — and to the record kind, so a different
//! or changed file never resumes from it.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::reader::Position;
use super::summary::Totals;

/// Bytes at the start of a file whose digest tells two files of the same size and time apart.
const HEAD_BYTES: u64 = 64 * 1024;
/// The layout of checkpoint files; a checkpoint of another layout is not resumed from.
const CHECKPOINT_VERSION: u32 = 1;

/// What identifies the file a checkpoint belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileIdentity {
    pub size: u64,
    /// Modification time in nanoseconds since the Unix epoch.
    pub modified_ns: u128,
    pub head_sha256: String,
}

impl FileIdentity {
    pub fn of(path: &Path) -> anyhow::Result<Self> {
        let failed = || format!("Failed to read {}", path.display());
        let mut file = File::open(path).with_context(failed)?;
        let metadata = file.metadata().with_context(failed)?;
        let modified_ns = metadata
            .modified()
            .ok()
            .and_then(|at| at.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |since| since.as_nanos());
        let mut head = Vec::new();
        (&mut file)
            .take(HEAD_BYTES)
            .read_to_end(&mut head)
            .with_context(failed)?;
        let digest = Sha256::digest(&head);
        Ok(Self {
            size: metadata.len(),
            modified_ns,
            head_sha256: digest.iter().map(|byte| format!("{byte:02x}")).collect(),
        })
    }
}

/// How far a backfill of one file has been confirmed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub version: u32,
    /// The record kind the file was read as.
    pub kind: String,
    pub file: FileIdentity,
    /// Where the first row not yet confirmed starts.
    pub position: Position,
    /// What the server said about the rows before `position`.
    pub totals: Totals,
    /// The length of the reject file that lists the rejects before `position`; a resumed
    /// run cuts the file back to it, so no reject is listed twice.
    pub rejects_bytes: u64,
}

impl Checkpoint {
    pub fn new(kind: &str, file: FileIdentity) -> Self {
        Self {
            version: CHECKPOINT_VERSION,
            kind: kind.to_owned(),
            file,
            position: Position::START,
            totals: Totals::default(),
            rejects_bytes: 0,
        }
    }

    /// Whether this checkpoint was made for `kind` from the file identified by `file`.
    pub fn belongs_to(&self, kind: &str, file: &FileIdentity) -> bool {
        self.version == CHECKPOINT_VERSION && self.kind == kind && self.file == *file
    }

    /// The checkpoint at `path`; `None` if there is none or it cannot be read (a run then
    /// starts from the beginning, which re-sending makes safe).
    pub fn load(path: &Path) -> Option<Self> {
        let text = std::fs::read_to_string(path).ok()?;
        match serde_json::from_str(&text) {
            Ok(checkpoint) => Some(checkpoint),
            Err(error) => {
                tracing::warn!(checkpoint = %path.display(), %error, "ignoring an unreadable checkpoint");
                None
            }
        }
    }

    /// Replaces the checkpoint at `path` atomically and durably.
    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        let temporary = temporary_path(path);
        let failed = || format!("Failed to write the checkpoint {}", path.display());
        let mut file = File::create(&temporary).with_context(failed)?;
        serde_json::to_writer_pretty(&mut file, self).with_context(failed)?;
        file.write_all(b"\n").with_context(failed)?;
        file.sync_all().with_context(failed)?;
        std::fs::rename(&temporary, path).with_context(failed)
    }

    /// Removes the checkpoint at `path`, if any: the file is done.
    pub fn remove(path: &Path) -> anyhow::Result<()> {
        match std::fs::remove_file(path) {
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => Err(error)
                .with_context(|| format!("Failed to remove the checkpoint {}", path.display())),
            _ => Ok(()),
        }
    }
}

/// `FILE.checkpoint`, next to the input.
pub fn default_path(input: &Path) -> PathBuf {
    with_suffix(input, ".checkpoint")
}

/// `input` with `suffix` appended to its file name.
pub fn with_suffix(input: &Path, suffix: &str) -> PathBuf {
    let mut name = input.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    input.with_file_name(name)
}

fn temporary_path(path: &Path) -> PathBuf {
    with_suffix(path, ".tmp")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkpoint_belongs_only_to_its_kind_and_unchanged_file() {
        let directory =
            std::env::temp_dir().join(format!("rescue-checkpoint-{}", std::process::id()));
        std::fs::create_dir_all(&directory).expect("directory");
        let input = directory.join("events.csv");
        std::fs::write(&input, "a,b\n1,2\n").expect("write");
        let identity = FileIdentity::of(&input).expect("identity");
        let mut checkpoint = Checkpoint::new("usage_events", identity.clone());
        checkpoint.position = Position { offset: 4, line: 2 };
        let path = default_path(&input);
        checkpoint.save(&path).expect("save");
        let loaded = Checkpoint::load(&path).expect("load");
        assert_eq!(loaded, checkpoint);
        assert!(loaded.belongs_to("usage_events", &identity));
        assert!(!loaded.belongs_to("surveys", &identity));

        std::fs::write(&input, "a,b\n1,3\n").expect("rewrite");
        let changed = FileIdentity::of(&input).expect("identity");
        assert!(!loaded.belongs_to("usage_events", &changed));
        std::fs::remove_dir_all(&directory).ok();
    }
}
