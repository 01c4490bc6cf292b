//! Seeded, stratified draws of customers for a hold-out: the same customers for the same
//! data and seed, whatever order they arrive in, and the same share of each class.

use std::collections::{BTreeMap, HashSet};

use sha2::{Digest, Sha256};

use crate::domain::CustomerId;

/// The customers held out: within each class, customers are ordered by a seeded hash of their
/// id and the first `share` of them (rounded) held out. A customer listed more than once
/// counts in the class it is first listed with.
pub fn stratified_customers<'a, C: Ord>(
    customers: impl IntoIterator<Item = (&'a CustomerId, C)>,
    share: f64,
    seed: u64,
) -> HashSet<CustomerId> {
    // SHA-256, not std's hasher: the split must not change with the compiler.
    let draw = |id: &CustomerId| {
        let digest = Sha256::digest(format!("{seed}:{}", id.as_str()));
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        u64::from_le_bytes(first)
    };
    let mut seen = HashSet::new();
    let mut classes: BTreeMap<C, Vec<(u64, &CustomerId)>> = BTreeMap::new();
    for (id, class) in customers {
        if seen.insert(id) {
            classes.entry(class).or_default().push((draw(id), id));
        }
    }
    let mut held = HashSet::new();
    for mut members in classes.into_values() {
        members.sort_unstable();
        let count = (members.len() as f64 * share.clamp(0.0, 1.0)).round() as usize;
        held.extend(members[..count].iter().map(|(_, id)| (*id).clone()));
    }
    held
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(count: usize) -> Vec<CustomerId> {
        (0..count)
            .map(|i| CustomerId::parse(format!("c-{i}")).expect("id"))
            .collect()
    }

    #[test]
    fn each_class_gives_its_share_the_same_way_in_any_order() {
        let customers = ids(1_000);
        let class = |i: usize| i.is_multiple_of(10);
        let listed: Vec<(&CustomerId, bool)> = customers
            .iter()
            .enumerate()
            .map(|(i, c)| (c, class(i)))
            .collect();
        let held = stratified_customers(listed.iter().cloned(), 0.2, 42);
        let held_of = |wanted: bool| {
            listed
                .iter()
                .filter(|(c, k)| *k == wanted && held.contains(*c))
                .count()
        };
        assert_eq!(held_of(true), 20);
        assert_eq!(held_of(false), 180);
        let reversed = stratified_customers(listed.iter().rev().cloned(), 0.2, 42);
        assert_eq!(held, reversed);
        assert_ne!(held, stratified_customers(listed.iter().cloned(), 0.2, 43));
    }
}
