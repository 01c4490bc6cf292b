//! Progress of a long command: a line redrawn in place with rows/s and the time left when
//! stderr is a terminal, and a plain log line every few seconds otherwise (a pipe or a log
//! file gets no control characters).

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use super::summary::thousands;

/// How often the terminal line is redrawn: smooth enough, cheap enough.
const REDRAW_EVERY: Duration = Duration::from_millis(200);
/// How often a log line is written when stderr is not a terminal.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// Reports progress through a file of `total_bytes`.
#[derive(Debug)]
pub struct Progress {
    label: String,
    total_bytes: u64,
    /// Bytes already done when this run started (a resumed run), left out of the rate.
    start_bytes: u64,
    started: Instant,
    last_report: Option<Instant>,
    terminal: bool,
}

impl Progress {
    pub fn new(label: impl Into<String>, total_bytes: u64, start_bytes: u64) -> Self {
        Self {
            label: label.into(),
            total_bytes,
            start_bytes,
            started: Instant::now(),
            last_report: None,
            terminal: std::io::stderr().is_terminal(),
        }
    }

    /// `rows` done by this run, and the file's bytes done in all.
    pub fn update(&mut self, rows: u64, bytes: u64) {
        let every = if self.terminal {
            REDRAW_EVERY
        } else {
            LOG_EVERY
        };
        // The first report waits a period too: a short run needs none.
        if self.last_report.unwrap_or(self.started).elapsed() < every {
            return;
        }
        self.last_report = Some(Instant::now());
        let elapsed = self.started.elapsed().as_secs_f64().max(1e-3);
        let rate = rows as f64 / elapsed;
        let fraction = if self.total_bytes == 0 {
            1.0
        } else {
            (bytes as f64 / self.total_bytes as f64).min(1.0)
        };
        let done_this_run = bytes.saturating_sub(self.start_bytes) as f64;
        let left = self.total_bytes.saturating_sub(bytes) as f64;
        let eta = (done_this_run > 0.0).then(|| elapsed * left / done_this_run);
        if self.terminal {
            let eta = eta.map_or_else(|| "-".to_owned(), clock);
            let mut stderr = std::io::stderr().lock();
            let _ = write!(
                stderr,
                "\r{}: {} rows  {:5.1}%  {} rows/s  ETA {eta}\x1b[K",
                self.label,
                thousands(rows),
                fraction * 100.0,
                thousands(rate.round() as u64)
            );
            let _ = stderr.flush();
        } else {
            tracing::info!(
                task = %self.label,
                rows,
                percent = (fraction * 1000.0).round() / 10.0,
                rows_per_second = rate.round(),
                eta_seconds = eta.map(f64::round),
                "progress"
            );
        }
    }

    /// Ends the terminal line, so what follows starts on a line of its own.
    pub fn finish(&mut self) {
        if self.terminal && self.last_report.is_some() {
            eprintln!();
        }
    }
}

/// Seconds as `m:ss` or `h:mm:ss`.
fn clock(seconds: f64) -> String {
    let total = seconds.round() as u64;
    let (hours, minutes, seconds) = (total / 3_600, total / 60 % 60, total % 60);
    if hours > 0 {
        format!("{hours}:{minutes:02}:{seconds:02}")
    } else {
        format!("{minutes}:{seconds:02}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_left_read_as_a_clock() {
        assert_eq!(clock(5.4), "0:05");
        assert_eq!(clock(754.0), "12:34");
        assert_eq!(clock(3_725.0), "1:02:05");
    }
}
