//! Points in time, and the window a recorded time must fall in to be believable.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A UTC instant with microsecond precision (what both databases store exactly).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

const MICROS_PER_SECOND: i64 = 1_000_000;
/// Days are counted as 86,400 seconds everywhere (UTC, no leap seconds), in one place.
pub const MICROS_PER_DAY: i64 = 86_400 * MICROS_PER_SECOND;

impl Timestamp {
    pub const fn from_unix_micros(micros: i64) -> Self {
        Self(micros)
    }

    pub const fn unix_micros(self) -> i64 {
        self.0
    }

    /// Whole seconds and the nanoseconds past them, as protobuf and chrono count them.
    pub const fn to_seconds_nanos(self) -> (i64, u32) {
        let seconds = self.0.div_euclid(MICROS_PER_SECOND);
        let micros = self.0.rem_euclid(MICROS_PER_SECOND);
        (seconds, (micros * 1_000) as u32)
    }

    /// Sub-microsecond digits are dropped: the stores keep microseconds.
    pub fn from_seconds_nanos(seconds: i64, nanos: i32) -> Option<Self> {
        if !(0..1_000_000_000).contains(&nanos) {
            return None;
        }
        seconds
            .checked_mul(MICROS_PER_SECOND)
            .and_then(|micros| micros.checked_add(i64::from(nanos) / 1_000))
            .map(Self)
    }

    pub fn now() -> Self {
        let since_epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO);
        Self(i64::try_from(since_epoch.as_micros()).unwrap_or(i64::MAX))
    }

    /// `days` whole days later (earlier when negative), saturating at the ends of time.
    pub const fn plus_days(self, days: i64) -> Self {
        Self(self.0.saturating_add(days.saturating_mul(MICROS_PER_DAY)))
    }

    /// Days from `earlier` to `self`, fractional (negative when `earlier` is later).
    pub fn days_since(self, earlier: Self) -> f64 {
        (self.0 - earlier.0) as f64 / MICROS_PER_DAY as f64
    }

    pub fn saturating_add(self, duration: Duration) -> Self {
        let micros = i64::try_from(duration.as_micros()).unwrap_or(i64::MAX);
        Self(self.0.saturating_add(micros))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (seconds, nanos) = self.to_seconds_nanos();
        match chrono::DateTime::from_timestamp(seconds, nanos) {
            Some(at) => write!(f, "{}", at.format("%Y-%m-%dT%H:%M:%S%.6fZ")),
            None => write!(f, "{}µs", self.0),
        }
    }
}

/// The believable window for recorded times: nothing before 1900 (the oldest customer
/// relationships a business still tracks) and nothing later than a little past now.
#[derive(Debug, Clone, Copy)]
pub struct TimestampBounds {
    earliest: Timestamp,
    latest: Timestamp,
}

/// 1900-01-01T00:00:00Z.
const EARLIEST: Timestamp = Timestamp(-2_208_988_800 * MICROS_PER_SECOND);

/// Clocks of the systems that send data drift; more than this ahead of ours is a sender bug
/// (a wrong time zone, a placeholder date), not skew.
pub const FUTURE_TOLERANCE: Duration = Duration::from_secs(60 * 60);

impl TimestampBounds {
    /// Bounds for data received at `now`.
    pub fn received_at(now: Timestamp) -> Self {
        Self {
            earliest: EARLIEST,
            latest: now.saturating_add(FUTURE_TOLERANCE),
        }
    }

    pub fn check(&self, at: Timestamp) -> Result<Timestamp, String> {
        if at < self.earliest {
            Err(format!("{at} is before 1900-01-01"))
        } else if at > self.latest {
            Err(format!(
                "{at} is in the future (latest accepted: {})",
                self.latest
            ))
        } else {
            Ok(at)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_and_nanos_round_trip_at_microsecond_precision() {
        let at = Timestamp::from_seconds_nanos(1_700_000_000, 123_456_789).expect("valid");
        assert_eq!(at.unix_micros(), 1_700_000_000_123_456);
        assert_eq!(at.to_seconds_nanos(), (1_700_000_000, 123_456_000));
        let before_epoch = Timestamp::from_unix_micros(-1_500_000);
        assert_eq!(before_epoch.to_seconds_nanos(), (-2, 500_000_000));
    }

    #[test]
    fn out_of_range_nanos_and_overflowing_seconds_are_refused() {
        assert!(Timestamp::from_seconds_nanos(0, -1).is_none());
        assert!(Timestamp::from_seconds_nanos(0, 1_000_000_000).is_none());
        assert!(Timestamp::from_seconds_nanos(i64::MAX, 0).is_none());
    }

    #[test]
    fn bounds_refuse_the_far_future_and_the_distant_past() {
        let now = Timestamp::from_unix_micros(1_700_000_000 * MICROS_PER_SECOND);
        let bounds = TimestampBounds::received_at(now);
        assert!(bounds.check(now).is_ok());
        assert!(
            bounds
                .check(now.saturating_add(Duration::from_secs(59 * 60)))
                .is_ok()
        );
        assert!(
            bounds
                .check(now.saturating_add(Duration::from_secs(2 * 60 * 60)))
                .is_err()
        );
        assert!(bounds.check(EARLIEST).is_ok());
        assert!(
            bounds
                .check(Timestamp::from_unix_micros(EARLIEST.0 - 1))
                .is_err()
        );
    }
}
