//! The cold-start prior: what recovery is expected to buy before this program has enough
//! recovery outcomes to learn from, built from the published figures in docs/domain.md.
//!
//! - Without recovery, the customer's retention over the horizon is what the health model
//!   says now, with the failure already in their history: `1 − p_churn`.
//! - A recovery wins back a share of that churn risk that depends on how well it is done
//!   (its 1–7 rating): below 4 it is worth little ("recovery benefits start at a rating of 4",
//!   Temkin), and a great recovery brings most customers back ("78% return after a negative
//!   experience if the service was great", Salesforce Research). Between them the share
//!   rises step by step.
//! - docs/domain.md gives no figure per action, so the prior values every action alike; only its
//!   cost differs. The uplift model, once trained, learns per-action effects.

use super::Retention;

/// The prior's name, reported as the uplift model version in every answer that uses it.
pub const PRIOR_NAME: &str = "prior-domain-v1";

/// Share of the churn risk a recovery rated `quality` (1–7) wins back.
pub fn risk_won_back(quality: u8) -> f64 {
    match quality {
        0..=3 => 0.10,
        4 => 0.35,
        5 => 0.55,
        // Salesforce Research: 78% return when the service was great.
        _ => 0.78,
    }
}

/// Retention with and without a recovery of the given quality, for a customer whose churn
/// probability now is `p_churn`.
pub fn retention(p_churn: f64, quality: u8) -> Retention {
    let if_not = 1.0 - p_churn;
    Retention {
        if_recovered: if_not + p_churn * risk_won_back(quality),
        if_not,
        interval: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovery_below_four_is_worth_little_and_a_great_one_most() {
        let poor = retention(0.4, 3);
        let great = retention(0.4, 7);
        assert!((poor.uplift() - 0.04).abs() < 1e-12);
        assert!((great.uplift() - 0.312).abs() < 1e-12);
        assert!((great.if_not - 0.6).abs() < 1e-12);
        assert!(risk_won_back(4) < risk_won_back(5) && risk_won_back(5) < risk_won_back(6));
    }
}
