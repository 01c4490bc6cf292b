//! The truth behind the simulated records — true churn and retention probabilities — and its
//! CSV form, for comparing trained models with what really drove the data.

use std::io::{self, Write};

use super::Team;
use crate::domain::Timestamp;

/// A customer at a snapshot: the true probability of churning within the horizon after it,
/// and what happened.
#[derive(Debug, Clone, PartialEq)]
pub struct ChurnOracle {
    pub customer_id: String,
    pub as_of: Timestamp,
    /// Exactly the probability of the churn draw made at `as_of`.
    pub p_churn: f64,
    /// Whether the customer churned within `(as_of, as_of + 90 days]`.
    pub churned: bool,
}

/// A failure eligible for recovery, recovered or not, with the true 90-day retention
/// probabilities with and without recovery as they stood right after the failure (as if a
/// snapshot were taken then). Their difference is the uplift an uplift model should find.
#[derive(Debug, Clone, PartialEq)]
pub struct RecoveryOracle {
    /// The recovery case's id when a case was opened, else the failed interaction's id.
    pub case_or_failure_id: String,
    pub customer_id: String,
    pub interaction_id: String,
    /// When the failure happened.
    pub at: Timestamp,
    /// The team that worked (or would have worked) the case.
    pub team: Team,
    /// The 1–7 re-survey score the recovery got (or would have got).
    pub quality: u8,
    pub p_retain_if_recovered: f64,
    pub p_retain_if_not: f64,
    /// `p_retain_if_recovered` averaged over the re-survey scores a recovery of this
    /// customer's segment gets (instead of the one this recovery got): the retention if
    /// recovered as it could be known when deciding, before the recovery's quality is.
    pub p_retain_if_recovered_expected: f64,
    /// Whether a recovery case was opened.
    pub recovered: bool,
    /// Whether the customer was still a customer 90 days after the failure; `None` when that
    /// is past the end of the simulated world.
    pub retained: Option<bool>,
}

pub const CHURN_ORACLE_HEADER: &str = "customer_id,as_of,p_churn,churned";
pub const RECOVERY_ORACLE_HEADER: &str = "case_or_failure_id,customer_id,interaction_id,at,team,quality,p_retain_if_recovered,p_retain_if_not,recovered,retained";

/// Writes the header of `churn_oracle.csv` when `header` is set, then `rows`. Ids are
/// simulator-made (no commas or quotes), so no quoting is needed.
pub fn write_churn_oracle(
    out: &mut impl Write,
    rows: &[ChurnOracle],
    header: bool,
) -> io::Result<()> {
    if header {
        writeln!(out, "{CHURN_ORACLE_HEADER}")?;
    }
    for row in rows {
        writeln!(
            out,
            "{},{},{:.6},{}",
            row.customer_id, row.as_of, row.p_churn, row.churned
        )?;
    }
    Ok(())
}

/// Writes the header of `recovery_oracle.csv` when `header` is set, then `rows`; an unknown
/// `retained` is an empty field.
pub fn write_recovery_oracle(
    out: &mut impl Write,
    rows: &[RecoveryOracle],
    header: bool,
) -> io::Result<()> {
    if header {
        writeln!(out, "{RECOVERY_ORACLE_HEADER}")?;
    }
    for row in rows {
        let retained = row.retained.map_or(String::new(), |r| r.to_string());
        writeln!(
            out,
            "{},{},{},{},{},{},{:.6},{:.6},{},{}",
            row.case_or_failure_id,
            row.customer_id,
            row.interaction_id,
            row.at,
            row.team.as_str(),
            row.quality,
            row.p_retain_if_recovered,
            row.p_retain_if_not,
            row.recovered,
            retained
        )?;
    }
    Ok(())
}
