//! A stable digest of a record's content, stored beside it, so a re-sent record can be told
//! apart from a changed one without reading back and comparing every column.

use sha2::{Digest, Sha256};

use super::{AttributeValue, Attributes, Timestamp};

/// The first 8 bytes of a SHA-256 over a length-prefixed encoding of the fields. Stable across
/// builds and platforms (unlike `std::hash`), which matters because it is persisted.
#[derive(Debug, Default, Clone)]
pub struct Fingerprint(Sha256);

impl Fingerprint {
    pub fn new(kind: &str) -> Self {
        let mut fingerprint = Self::default();
        fingerprint.text(kind);
        fingerprint
    }

    pub fn text(&mut self, value: &str) -> &mut Self {
        self.0.update((value.len() as u64).to_le_bytes());
        self.0.update(value.as_bytes());
        self
    }

    pub fn number(&mut self, value: f64) -> &mut Self {
        self.0.update(value.to_bits().to_le_bytes());
        self
    }

    pub fn integer(&mut self, value: i64) -> &mut Self {
        self.0.update(value.to_le_bytes());
        self
    }

    pub fn time(&mut self, value: Timestamp) -> &mut Self {
        self.integer(value.unix_micros())
    }

    /// Absent and present values hash differently, even when the present value is zero.
    pub fn optional<T>(
        &mut self,
        value: Option<T>,
        write: impl FnOnce(&mut Self, T) -> &mut Self,
    ) -> &mut Self {
        match value {
            None => self.integer(0),
            Some(inner) => write(self.integer(1), inner),
        }
    }

    /// Nothing for no attributes, so profiles stored before attributes existed keep their
    /// fingerprints; otherwise every name, type and value in name order.
    pub fn attributes(&mut self, attributes: &Attributes) -> &mut Self {
        if attributes.is_empty() {
            return self;
        }
        self.integer(attributes.len() as i64);
        for (name, value) in attributes.iter() {
            self.text(name.as_str());
            match value {
                AttributeValue::Number(n) => self.integer(1).number(*n),
                AttributeValue::Category(c) => self.integer(2).text(c),
                AttributeValue::Flag(f) => self.integer(3).integer(i64::from(*f)),
            };
        }
        self
    }

    pub fn finish(&self) -> i64 {
        let digest = self.0.clone().finalize();
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        i64::from_le_bytes(first)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_boundaries_matter() {
        let joined = Fingerprint::new("k").text("ab").text("c").finish();
        let split = Fingerprint::new("k").text("a").text("bc").finish();
        assert_ne!(joined, split);
    }

    #[test]
    fn absent_differs_from_zero() {
        let absent = Fingerprint::new("k")
            .optional(None, Fingerprint::integer)
            .finish();
        let zero = Fingerprint::new("k")
            .optional(Some(0), Fingerprint::integer)
            .finish();
        assert_ne!(absent, zero);
    }

    #[test]
    fn the_digest_is_stable_across_builds() {
        // Persisted values must never change: this pins the encoding.
        assert_eq!(Fingerprint::new("").finish(), 8_794_265_229_978_523_055);
    }
}
