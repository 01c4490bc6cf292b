//! Half-open time windows counted in days back from a moment.

use crate::domain::Timestamp;

use crate::domain::MICROS_PER_DAY;

/// `[start, end)`: a moment at `end` is outside, so `as_of` itself is never counted.
#[derive(Debug, Clone, Copy)]
pub(super) struct Window {
    start: Timestamp,
    end: Timestamp,
}

fn days_before(at: Timestamp, days: i64) -> Timestamp {
    Timestamp::from_unix_micros(
        at.unix_micros()
            .saturating_sub(days.saturating_mul(MICROS_PER_DAY)),
    )
}

impl Window {
    /// The `days` days before `at`.
    pub(super) fn before(at: Timestamp, days: i64) -> Self {
        Self {
            start: days_before(at, days),
            end: at,
        }
    }

    /// From `from_days` before `at` up to `to_days` before it.
    pub(super) fn between(at: Timestamp, from_days: i64, to_days: i64) -> Self {
        Self {
            start: days_before(at, from_days),
            end: days_before(at, to_days),
        }
    }

    /// The `days` days from `at` on.
    pub(super) fn after(at: Timestamp, days: i64) -> Self {
        Self {
            start: at,
            end: days_before(at, -days),
        }
    }

    pub(super) fn contains(&self, at: Timestamp) -> bool {
        self.start <= at && at < self.end
    }

    pub(super) fn end(&self) -> Timestamp {
        self.end
    }
}

/// Days from `earlier` to `later`, fractional.
pub(super) fn days_between(earlier: Timestamp, later: Timestamp) -> f64 {
    (later.unix_micros() - earlier.unix_micros()) as f64 / MICROS_PER_DAY as f64
}
