//! Which recovery program serves: the built-in one, or a TOML file read at start-up and read
//! again — without a restart — when it changes on disk or when `Program.ReloadProgram` asks.
//! A file that fails to parse or breaks a rule is refused and the previous program keeps
//! serving; requests always see one whole program, never half of an update.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::decision::{Program, ProgramError};
use crate::domain::Timestamp;
use crate::reloading::{Swappable, reload_every};

/// A program and when it was loaded.
#[derive(Debug, Clone)]
pub struct LoadedProgram {
    pub program: Program,
    pub loaded_at: Timestamp,
}

#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("the server runs on its built-in program; start it with --program FILE to reload one")]
    NoFile,
    #[error("cannot read the program file {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the program file {path} is refused")]
    Invalid {
        path: PathBuf,
        #[source]
        source: ProgramError,
    },
}

/// The serving program and where it comes from.
#[derive(Debug)]
pub struct ProgramSource {
    path: Option<PathBuf>,
    current: Swappable<LoadedProgram>,
}

fn read(path: &Path) -> Result<Program, ReloadError> {
    let text = std::fs::read_to_string(path).map_err(|source| ReloadError::Read {
        path: path.to_owned(),
        source,
    })?;
    Program::from_toml(&text).map_err(|source| ReloadError::Invalid {
        path: path.to_owned(),
        source,
    })
}

impl ProgramSource {
    /// The built-in program, or the file's, loaded at `now`; a bad file at start-up is an
    /// error, not a silent fallback.
    pub fn open(path: Option<&Path>, now: Timestamp) -> Result<Self, ReloadError> {
        let program = match path {
            None => Program::builtin(),
            Some(path) => read(path)?,
        };
        Ok(Self {
            path: path.map(Path::to_owned),
            current: Swappable::new(LoadedProgram {
                program,
                loaded_at: now,
            }),
        })
    }

    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The program serving now; one request keeps the one it took.
    pub fn current(&self) -> Arc<LoadedProgram> {
        self.current.current()
    }

    /// Reads the file again and serves it, as loaded at `now`, if valid; otherwise keeps the
    /// current program. Returns the program serving afterwards.
    pub fn reload(&self, now: Timestamp) -> Result<Arc<LoadedProgram>, ReloadError> {
        let path = self.path.as_deref().ok_or(ReloadError::NoFile)?;
        let program = read(path)?;
        let current = self.current();
        if current.program.version == program.version {
            return Ok(current);
        }
        let loaded = Arc::new(LoadedProgram {
            program,
            loaded_at: now,
        });
        self.current.replace(Arc::clone(&loaded));
        tracing::info!(version = %loaded.program.version, path = %path.display(), "program loaded");
        Ok(loaded)
    }

    /// Checks the file every `interval` and reloads it when its content changed; a bad
    /// version is logged once per change and the serving program stays. Runs until dropped.
    pub async fn watch(self: Arc<Self>, interval: Duration) {
        if self.path.is_none() {
            return;
        }
        reload_every(interval, "program", || {
            self.reload(Timestamp::now()).map(|_| ())
        })
        .await;
    }
}
