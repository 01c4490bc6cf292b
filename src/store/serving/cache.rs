//! Decoded serving states kept in memory, each with the version it was read at, so a customer
//! asked about again is not decoded again. Bounded by the size of the encoded states it holds;
//! quick_cache's policy (S3-FIFO-like) keeps states asked about often over ones seen once.

use std::sync::Arc;

use quick_cache::Weighter;
use quick_cache::sync::Cache;

use crate::store::history::CustomerRecords;

/// Which stored state a decoded one was read from. Between two changes of `revision` a state
/// only gains log rows (whatever removes rows counts the revision up), so two equal versions
/// are the same rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Version {
    pub revision: i64,
    /// How many log rows the state is made of.
    pub segments: u64,
}

/// A decoded state and what it was decoded from.
#[derive(Debug, Clone)]
pub(crate) struct Cached {
    pub version: Version,
    /// `None` for a state without a profile: no customer.
    pub records: Option<Arc<CustomerRecords>>,
    /// The size of its encoding, in bytes.
    weight: u64,
}

#[derive(Debug, Clone)]
struct EncodedSize;

impl Weighter<String, Cached> for EncodedSize {
    fn weight(&self, _customer_id: &String, cached: &Cached) -> u64 {
        cached.weight
    }
}

/// The cache; one that holds nothing when its budget is 0.
#[derive(Clone)]
pub(crate) struct StateCache(Option<Arc<Cache<String, Cached, EncodedSize>>>);

impl std::fmt::Debug for StateCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let held = self.0.as_ref().map_or(0, |cache| cache.weight());
        f.debug_struct("StateCache").field("bytes", &held).finish()
    }
}

/// A guess at the encoded size of a typical state, to size the cache's table up front.
const TYPICAL_STATE_BYTES: u64 = 8 * 1024;

impl StateCache {
    /// A cache of up to `bytes` of encoded state.
    pub(crate) fn new(bytes: u64) -> Self {
        if bytes == 0 {
            return Self(None);
        }
        let states = usize::try_from(bytes / TYPICAL_STATE_BYTES).unwrap_or(usize::MAX);
        Self(Some(Arc::new(Cache::with_weighter(
            states.max(16),
            bytes,
            EncodedSize,
        ))))
    }

    /// The decoded state of `customer_id`, if one is held.
    pub(crate) fn get(&self, customer_id: &str) -> Option<Cached> {
        self.0.as_ref()?.get(customer_id)
    }

    /// Holds `records`, decoded from `encoded_bytes` of the state at `version`.
    pub(crate) fn keep(
        &self,
        customer_id: &str,
        version: Version,
        records: &Option<Arc<CustomerRecords>>,
        encoded_bytes: usize,
    ) {
        if let Some(cache) = &self.0 {
            let cached = Cached {
                version,
                records: records.clone(),
                weight: u64::try_from(encoded_bytes).unwrap_or(u64::MAX).max(1),
            };
            cache.insert(customer_id.to_owned(), cached);
        }
    }

    /// Drops what is held for `customer_id`: their state is not trusted any more.
    pub(crate) fn forget(&self, customer_id: &str) {
        if let Some(cache) = &self.0 {
            cache.remove(customer_id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::examples;

    fn records() -> Option<Arc<CustomerRecords>> {
        CustomerRecords::from_records(examples::one_of_each_kind()).map(Arc::new)
    }

    const V1: Version = Version {
        revision: 0,
        segments: 1,
    };

    #[test]
    fn a_kept_state_is_served_with_its_version_until_forgotten() {
        let cache = StateCache::new(1 << 20);
        assert!(cache.get("c-1").is_none());
        cache.keep("c-1", V1, &records(), 100);
        let cached = cache.get("c-1").expect("held");
        assert_eq!(cached.version, V1);
        assert_eq!(cached.records, records());
        cache.forget("c-1");
        assert!(cache.get("c-1").is_none());
    }

    #[test]
    fn a_newer_read_replaces_the_older() {
        let cache = StateCache::new(1 << 20);
        cache.keep("c-1", V1, &records(), 100);
        let v2 = Version { segments: 2, ..V1 };
        cache.keep("c-1", v2, &None, 100);
        let cached = cache.get("c-1").expect("held");
        assert_eq!((cached.version, cached.records), (v2, None));
    }

    #[test]
    fn the_cache_stays_within_its_budget() {
        let cache = StateCache::new(64 * 1024);
        for n in 0..1_000 {
            cache.keep(&format!("c-{n}"), V1, &records(), 1_000);
        }
        let held = cache.0.as_ref().expect("enabled").weight();
        assert!(held <= 64 * 1024, "{held} bytes held");
        assert!(held > 0);
    }

    #[test]
    fn a_cache_of_no_bytes_holds_nothing() {
        let cache = StateCache::new(0);
        cache.keep("c-1", V1, &records(), 100);
        assert!(cache.get("c-1").is_none());
    }
}
