//! A seeded generator of realistic customer data, and the truth behind it.
//!
//! It owns a fixed, reproducible world — customers living from [`START`] to [`END`], using the
//! product, contacting service, answering surveys, being failed, sometimes recovered, and
//! sometimes leaving — and the *oracle* rows that say what the true churn and retention
//! probabilities were, so models trained on the records can be compared with the truth.
//!
//! The mechanism is built to be learnable: at every snapshot ([`snapshot_dates`]) a customer's
//! churn within the next [`HORIZON_DAYS`] is decided by one draw whose probability is a
//! function of what was *observable* before the snapshot ([`ObservedState`]), and usage and
//! survey answers are driven by latent engagement and satisfaction so they carry information.
//! The figures the mechanism follows are in [`calibration`], each citing `docs/domain.md`.
//!
//! Customer `i` gets its own RNG seeded from `(seed, i)`: its records never depend on how many
//! customers are generated or in what batches, and generation streams one customer at a time.

pub mod calibration;
mod files;
mod life;
mod observed;
mod oracle;
mod recovery;
mod run;
#[cfg(test)]
mod tests;

use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::domain::{Record, Timestamp};

pub use files::{FilesSummary, file_path, write_files, write_kinds};
pub use life::REPORTS_EXPORTED;
pub use observed::{ACTIVE_DAYS, HistoryView, ObservedState, churn_probability};
pub use oracle::{ChurnOracle, RecoveryOracle, write_churn_oracle, write_recovery_oracle};
pub use recovery::{Team, expected_cost};
pub use run::{RunSummary, run};

use crate::domain::MICROS_PER_DAY;

/// 2024-01-01T00:00:00Z: the first moment of the simulated world. Fixed, so output never
/// depends on today's date.
pub const START: Timestamp = Timestamp::from_unix_micros(1_704_067_200 * 1_000_000);
/// 2026-01-01T00:00:00Z: when every customer's churn outcome is observed; nothing happens
/// after it.
pub const END: Timestamp = Timestamp::from_unix_micros(1_767_225_600 * 1_000_000);
/// The churn horizon the product predicts over (DOMAIN: "churn probability within a horizon
/// (default 90 days)").
pub const HORIZON_DAYS: i64 = 90;
/// Half a year of history before the first snapshot, so every point-in-time feature (90-day
/// windows, the 60 days before the last 30) has data to read.
pub const FIRST_SNAPSHOT_DAY: i64 = 180;
/// Snapshots are one horizon apart, so the 90-day windows after them tile the timeline.
pub const SNAPSHOT_SPACING_DAYS: i64 = HORIZON_DAYS;

/// `at` moved by a whole number of days (negative moves back).
pub fn add_days(at: Timestamp, days: i64) -> Timestamp {
    Timestamp::from_unix_micros(at.unix_micros() + days * MICROS_PER_DAY)
}

/// `at` moved by a duration given in (fractional) hours.
pub(crate) fn add_hours(at: Timestamp, hours: f64) -> Timestamp {
    let micros = (hours * 3_600.0 * 1e6).round() as i64;
    Timestamp::from_unix_micros(at.unix_micros() + micros)
}

/// Days from `earlier` to `later`, fractional.
pub(crate) fn days_between(earlier: Timestamp, later: Timestamp) -> f64 {
    (later.unix_micros() - earlier.unix_micros()) as f64 / MICROS_PER_DAY as f64
}

/// The moments at which churn is decided and the oracle is written: every [`HORIZON_DAYS`]
/// from `START + 180 days`, as long as the whole horizon after them ends by [`END`].
pub fn snapshot_dates() -> Vec<Timestamp> {
    (0..)
        .map(|k| add_days(START, FIRST_SNAPSHOT_DAY + k * SNAPSHOT_SPACING_DAYS))
        .take_while(|as_of| add_days(*as_of, HORIZON_DAYS) <= END)
        .collect()
}

/// What to generate: how many customers, from which seed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimulationParams {
    pub customers: usize,
    pub seed: u64,
}

/// One customer's records and the truth about them.
#[derive(Debug, Clone, PartialEq)]
pub struct SimulatedCustomer {
    /// The customer profile first, then usage events, interactions, surveys and recovery
    /// cases (each kind in time order), and last the churn outcome observed at [`END`].
    pub records: Vec<Record>,
    /// One row per snapshot at which the customer was a customer.
    pub churn_oracle: Vec<ChurnOracle>,
    /// One row per failure eligible for recovery, recovered or not.
    pub recovery_oracle: Vec<RecoveryOracle>,
}

/// The id of the `index`-th simulated customer; zero-padded so ids sort in index order.
pub fn customer_id(index: usize) -> String {
    format!("sim-c{index:07}")
}

/// Customer `index` of the world seeded with `seed`: the same whatever else is generated.
pub fn simulate_customer(seed: u64, index: usize) -> SimulatedCustomer {
    let mut rng = StdRng::seed_from_u64(customer_seed(seed, index));
    life::live(&mut rng, &customer_id(index))
}

/// Mixes the run seed and the customer index (SplitMix64 finaliser) so neighbouring
/// customers, and neighbouring seeds, get unrelated streams.
fn customer_seed(seed: u64, index: usize) -> u64 {
    let mut z = seed ^ (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Generates customers one at a time, so memory stays flat however many are asked for.
#[derive(Debug, Clone)]
pub struct Simulation {
    params: SimulationParams,
    next: usize,
}

impl Simulation {
    pub fn new(params: SimulationParams) -> Self {
        Self { params, next: 0 }
    }
}

impl Iterator for Simulation {
    type Item = SimulatedCustomer;

    fn next(&mut self) -> Option<SimulatedCustomer> {
        if self.next >= self.params.customers {
            return None;
        }
        let customer = simulate_customer(self.params.seed, self.next);
        self.next += 1;
        Some(customer)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.params.customers - self.next;
        (left, Some(left))
    }
}

impl ExactSizeIterator for Simulation {}

/// The customers of `params`, streamed.
pub fn simulate(params: SimulationParams) -> Simulation {
    Simulation::new(params)
}
