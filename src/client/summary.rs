//! What a backfill did: the server's verdicts added up over the file, and the summary shown
//! at the end, for people (text) and for scripts (`--json`).

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::columns::FileKind;

/// Rows of a file and what became of them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    /// Rows read from the file.
    pub rows: u64,
    /// Stored as new records, or as newer versions.
    pub accepted: u64,
    /// Already stored with identical content (re-sent rows count here).
    pub duplicate: u64,
    /// Older versions than the stored ones: a newer version is stored.
    pub superseded: u64,
    /// Not stored: unreadable, or refused by the server.
    pub rejected: u64,
}

impl Totals {
    pub fn add(&mut self, other: &Self) {
        self.rows += other.rows;
        self.accepted += other.accepted;
        self.duplicate += other.duplicate;
        self.superseded += other.superseded;
        self.rejected += other.rejected;
    }
}

/// The end of one backfill run.
#[derive(Debug, Clone, PartialEq)]
pub struct BackfillSummary {
    pub kind: FileKind,
    pub file: PathBuf,
    /// Over the whole file, including rows confirmed by earlier, interrupted runs.
    pub totals: Totals,
    /// The line this run resumed at, when an earlier run had confirmed rows.
    pub resumed_at_line: Option<u64>,
    /// Rows this run read and had confirmed.
    pub rows_this_run: u64,
    pub elapsed: Duration,
    /// The reject file, when any row was rejected.
    pub rejects: Option<PathBuf>,
}

impl BackfillSummary {
    /// Every row of the file is stored (as new, duplicate or superseded by a newer version).
    pub fn complete(&self) -> bool {
        self.totals.rejected == 0
    }

    pub fn rows_per_second(&self) -> f64 {
        self.rows_this_run as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "kind": self.kind.name(),
            "file": self.file.display().to_string(),
            "complete": self.complete(),
            "rows": self.totals.rows,
            "accepted": self.totals.accepted,
            "duplicate": self.totals.duplicate,
            "superseded": self.totals.superseded,
            "rejected": self.totals.rejected,
            "resumed_at_line": self.resumed_at_line,
            "rows_this_run": self.rows_this_run,
            "seconds": self.elapsed.as_secs_f64(),
            "rows_per_second": self.rows_per_second().round(),
            "rejects_file": self.rejects.as_ref().map(|path| path.display().to_string()),
        })
    }
}

impl fmt::Display for BackfillSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = &self.totals;
        let verdict = if self.complete() {
            "all stored".to_owned()
        } else {
            format!("{} rejected", thousands(t.rejected))
        };
        writeln!(
            f,
            "{} from {}: {} rows, {verdict}",
            self.kind,
            self.file.display(),
            thousands(t.rows)
        )?;
        writeln!(
            f,
            "  accepted {}, duplicate {}, superseded {}, rejected {}",
            thousands(t.accepted),
            thousands(t.duplicate),
            thousands(t.superseded),
            thousands(t.rejected)
        )?;
        if let Some(line) = self.resumed_at_line {
            writeln!(f, "  resumed at line {}", thousands(line))?;
        }
        write!(
            f,
            "  this run: {} rows in {:.1} s ({} rows/s)",
            thousands(self.rows_this_run),
            self.elapsed.as_secs_f64(),
            thousands(self.rows_per_second().round() as u64)
        )?;
        if let Some(path) = &self.rejects {
            write!(f, "\n  rejected rows are listed in {}", path.display())?;
        }
        Ok(())
    }
}

/// `1234567` as `1,234,567`.
pub fn thousands(value: u64) -> String {
    let digits = value.to_string();
    let mut grouped = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    grouped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }
}
