//! API keys: a TOML file of named keys, each stored as the SHA-256 digest of the key with the
//! roles it grants. The key itself is shown once, when `rescue keys new` makes it, and never
//! stored. Keys are 256 random bits, so a fast digest is enough: a slow password hash guards
//! guessable secrets and would only add its cost to every call.
//!
//! ```toml
//! [[keys]]
//! name = "crm"
//! sha256 = "3f1c…"   # rescue keys new --name crm --role score --role read
//! roles = ["score", "read"]
//! ```

use std::collections::HashMap;
use std::sync::Arc;

use rand::RngCore;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::{Caller, Role};

/// Every key starts with this, so a leaked one is recognisable (secret scanners match on it)
/// and is never mistaken for a JWT.
pub const KEY_PREFIX: &str = "rsk_";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFile {
    #[serde(default)]
    keys: Vec<KeyEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyEntry {
    name: String,
    sha256: String,
    roles: Vec<String>,
}

/// The keys the file holds, by digest.
#[derive(Debug, Default)]
pub struct ApiKeys {
    by_digest: HashMap<[u8; 32], Caller>,
}

impl ApiKeys {
    /// Parses a key file; every entry must be well-formed, names and digests unique.
    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        let text = std::str::from_utf8(bytes).map_err(|e| format!("not UTF-8: {e}"))?;
        let file: KeyFile = toml::from_str(text).map_err(|e| e.to_string())?;
        let mut by_digest = HashMap::with_capacity(file.keys.len());
        let mut names = std::collections::HashSet::new();
        for entry in file.keys {
            let name = entry.name.trim();
            if name.is_empty() || crate::domain::has_hidden_characters(name) {
                return Err(format!("a key needs a plain name, got {:?}", entry.name));
            }
            if !names.insert(name.to_owned()) {
                return Err(format!("two keys are named {name:?}"));
            }
            let digest = parse_digest(&entry.sha256)
                .ok_or_else(|| format!("key {name:?}: sha256 must be 64 hexadecimal digits"))?;
            if entry.roles.is_empty() {
                return Err(format!("key {name:?} grants no role"));
            }
            let roles = entry
                .roles
                .iter()
                .map(|role| {
                    Role::parse(role).ok_or_else(|| {
                        format!(
                            "key {name:?}: unknown role {role:?} (roles: score, ingest, train, admin, read)"
                        )
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            let caller = Caller {
                identity: Arc::from(format!("key:{name}")),
                roles,
            };
            if by_digest.insert(digest, caller).is_some() {
                return Err(format!("key {name:?} has the digest of another key"));
            }
        }
        Ok(Self { by_digest })
    }

    /// The caller a presented key names, if the file holds it.
    pub fn verify(&self, key: &str) -> Option<&Caller> {
        self.by_digest.get(&digest(key))
    }

    pub fn len(&self) -> usize {
        self.by_digest.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_digest.is_empty()
    }
}

fn digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

fn parse_digest(hex: &str) -> Option<[u8; 32]> {
    let hex = hex.trim();
    if hex.len() != 64 || !hex.is_ascii() {
        return None;
    }
    let mut digest = [0u8; 32];
    for (byte, pair) in digest.iter_mut().zip(hex.as_bytes().chunks(2)) {
        let pair = std::str::from_utf8(pair).ok()?;
        *byte = u8::from_str_radix(pair, 16).ok()?;
    }
    Some(digest)
}

/// The digest of `key` as the key file stores it: 64 lowercase hexadecimal digits.
pub fn key_digest(key: &str) -> String {
    digest(key)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// A new random key: the prefix and 256 bits from the operating system, in hexadecimal.
pub fn new_key() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let hex: String = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
    format!("{KEY_PREFIX}{hex}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(entries: &str) -> Result<ApiKeys, String> {
        ApiKeys::parse(entries.as_bytes())
    }

    #[test]
    fn a_key_is_known_by_its_digest_alone() {
        let key = new_key();
        assert!(key.starts_with(KEY_PREFIX) && key.len() == KEY_PREFIX.len() + 64);
        let keys = file(&format!(
            "[[keys]]\nname = \"crm\"\nsha256 = \"{}\"\nroles = [\"score\", \"read\"]\n",
            key_digest(&key)
        ))
        .expect("valid file");
        let caller = keys.verify(&key).expect("known key");
        assert_eq!(&*caller.identity, "key:crm");
        assert_eq!(caller.roles, vec![Role::Score, Role::Read]);
        assert!(keys.verify(&new_key()).is_none());
        assert!(
            keys.verify(&key_digest(&key)).is_none(),
            "the digest is not the key"
        );
    }

    #[test]
    fn bad_entries_are_refused_with_their_reason() {
        let digest = key_digest("k");
        let refused = |text: &str| file(text).expect_err(text);
        assert!(
            refused(&format!(
                "[[keys]]\nname = \"a\"\nsha256 = \"{digest}\"\nroles = [\"root\"]\n"
            ))
            .contains("unknown role \"root\"")
        );
        assert!(
            refused("[[keys]]\nname = \"a\"\nsha256 = \"abc\"\nroles = [\"read\"]\n")
                .contains("64 hexadecimal")
        );
        assert!(
            refused(&format!(
                "[[keys]]\nname = \"a\"\nsha256 = \"{digest}\"\nroles = []\n"
            ))
            .contains("no role")
        );
        let twice = format!(
            "[[keys]]\nname = \"a\"\nsha256 = \"{digest}\"\nroles = [\"read\"]\n\
             [[keys]]\nname = \"a\"\nsha256 = \"{}\"\nroles = [\"read\"]\n",
            key_digest("other")
        );
        assert!(refused(&twice).contains("two keys are named"));
        assert!(file("").expect("an empty file holds no keys").is_empty());
    }
}
