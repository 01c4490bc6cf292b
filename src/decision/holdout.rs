//! The holdout group: a deterministic, auditable share of customers who get no recovery, so
//! the program's effect on retention can be measured against them.
//!
//! A customer's draw is the first 8 bytes of SHA-256(`salt` ":" `customer_id`) read as a
//! big-endian integer and divided by 2^64: anyone with the salt can recompute who is held out,
//! a customer stays in (or out of) the group across decisions, and changing the salt draws a
//! new group.

use sha2::{Digest, Sha256};

use crate::domain::CustomerId;

/// The customer's draw in `[0, 1)`.
pub fn draw(salt: &str, customer_id: &CustomerId) -> f64 {
    let digest = Sha256::new()
        .chain_update(salt.as_bytes())
        .chain_update(b":")
        .chain_update(customer_id.as_str().as_bytes())
        .finalize();
    let mut head = [0u8; 8];
    head.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(head) as f64 / 2f64.powi(64)
}

/// Whether a draw falls in the holdout share.
pub fn is_held_out(draw: f64, fraction: f64) -> bool {
    draw < fraction
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(text: &str) -> CustomerId {
        CustomerId::parse(text.to_owned()).expect("valid id")
    }

    #[test]
    fn draws_are_stable_uniform_and_salted() {
        let a = draw("s1", &id("c-1"));
        assert_eq!(a, draw("s1", &id("c-1")));
        assert_ne!(a, draw("s2", &id("c-1")));
        let held = (0..10_000)
            .filter(|i| is_held_out(draw("s1", &id(&format!("c-{i}"))), 0.1))
            .count();
        assert!(
            (900..1100).contains(&held),
            "{held} of 10,000 held out at 10%"
        );
    }
}
