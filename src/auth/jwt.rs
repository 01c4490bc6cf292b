//! JWT bearer tokens from an identity provider: the signature checked with the configured
//! key (a PEM public key, an HMAC secret, or a JWK set chosen by the token's `kid`), and the
//! issuer, audience and expiry checked by `jsonwebtoken`. The caller is `jwt:<sub>`; its
//! roles are the `roles` claim (an array) and the space-separated `scope` claim, of which
//! only the names of roles count (a provider's other scopes are ignored).

use std::path::PathBuf;
use std::sync::Arc;

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};

use super::{Caller, Refusal, Role};

/// The signing algorithms accepted (one per server, so a token cannot pick a weaker one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "UPPERCASE")]
#[value(rename_all = "UPPERCASE")]
pub enum JwtAlgorithm {
    Hs256,
    Hs384,
    Hs512,
    Rs256,
    Rs384,
    Rs512,
    Ps256,
    Es256,
    Es384,
    #[serde(rename = "EdDSA")]
    #[value(name = "EdDSA")]
    EdDsa,
}

impl JwtAlgorithm {
    fn algorithm(self) -> Algorithm {
        match self {
            JwtAlgorithm::Hs256 => Algorithm::HS256,
            JwtAlgorithm::Hs384 => Algorithm::HS384,
            JwtAlgorithm::Hs512 => Algorithm::HS512,
            JwtAlgorithm::Rs256 => Algorithm::RS256,
            JwtAlgorithm::Rs384 => Algorithm::RS384,
            JwtAlgorithm::Rs512 => Algorithm::RS512,
            JwtAlgorithm::Ps256 => Algorithm::PS256,
            JwtAlgorithm::Es256 => Algorithm::ES256,
            JwtAlgorithm::Es384 => Algorithm::ES384,
            JwtAlgorithm::EdDsa => Algorithm::EdDSA,
        }
    }
}

/// Which tokens are accepted.
#[derive(Debug, Clone, PartialEq)]
pub struct JwtSettings {
    pub issuer: String,
    pub audience: String,
    /// A PEM public key (RS*, PS*, ES*, EdDSA), the HMAC secret's bytes (HS*), or a JWK set
    /// (a `.json` file: `{"keys": [...]}`).
    pub key: PathBuf,
    pub algorithm: JwtAlgorithm,
}

/// The three dot-separated parts of a compact JWS; API keys have no dots.
pub(super) fn looks_like_jwt(credential: &str) -> bool {
    credential.split('.').count() == 3
}

#[derive(Debug)]
enum Keys {
    One(DecodingKey),
    Set(JwkSet),
}

pub(super) struct JwtVerifier {
    keys: Keys,
    validation: Validation,
}

impl std::fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtVerifier")
            .field("algorithms", &self.validation.algorithms)
            .field("issuer", &self.validation.iss)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Deserialize)]
struct Claims {
    sub: String,
    #[serde(default)]
    roles: Vec<String>,
    #[serde(default)]
    scope: Option<String>,
}

impl JwtVerifier {
    pub(super) fn new(settings: &JwtSettings, key: &[u8]) -> Result<Self, String> {
        let algorithm = settings.algorithm.algorithm();
        let keys = if settings.key.extension().is_some_and(|e| e == "json") {
            let set: JwkSet =
                serde_json::from_slice(key).map_err(|e| format!("not a JWK set: {e}"))?;
            if set.keys.is_empty() {
                return Err("the JWK set holds no key".into());
            }
            Keys::Set(set)
        } else {
            Keys::One(decoding_key(settings.algorithm, key)?)
        };
        let mut validation = Validation::new(algorithm);
        validation.set_issuer(&[settings.issuer.as_str()]);
        validation.set_audience(&[settings.audience.as_str()]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        Ok(Self { keys, validation })
    }

    pub(super) fn verify(&self, token: &str) -> Result<Caller, Refusal> {
        let bad = |e: jsonwebtoken::errors::Error| Refusal::BadToken(e.to_string());
        let owned;
        let key = match &self.keys {
            Keys::One(key) => key,
            Keys::Set(set) => {
                let header = jsonwebtoken::decode_header(token).map_err(bad)?;
                let kid = header
                    .kid
                    .ok_or_else(|| Refusal::BadToken("the token names no key (kid)".into()))?;
                let jwk = set.find(&kid).ok_or_else(|| {
                    Refusal::BadToken("the token's key (kid) is not known".into())
                })?;
                owned = DecodingKey::from_jwk(jwk).map_err(bad)?;
                &owned
            }
        };
        let claims = jsonwebtoken::decode::<Claims>(token, key, &self.validation)
            .map_err(bad)?
            .claims;
        let subject = claims.sub.trim();
        if subject.is_empty() || crate::domain::has_hidden_characters(subject) {
            return Err(Refusal::BadToken(
                "the token's subject is not a plain name".into(),
            ));
        }
        let scopes = claims.scope.as_deref().unwrap_or("").split_whitespace();
        let mut roles: Vec<Role> = claims
            .roles
            .iter()
            .map(String::as_str)
            .chain(scopes)
            .filter_map(Role::parse)
            .collect();
        roles.sort_by_key(|role| *role as u8);
        roles.dedup();
        Ok(Caller {
            identity: Arc::from(format!(
                "jwt:{}",
                crate::domain::shortened(subject, crate::domain::MAX_ECHOED_BYTES)
            )),
            roles,
        })
    }
}

fn decoding_key(algorithm: JwtAlgorithm, key: &[u8]) -> Result<DecodingKey, String> {
    let key = match algorithm {
        JwtAlgorithm::Hs256 | JwtAlgorithm::Hs384 | JwtAlgorithm::Hs512 => {
            // A secret kept in a file usually ends with the editor's newline.
            let secret = key.strip_suffix(b"\n").unwrap_or(key);
            if secret.len() < 32 {
                return Err("an HMAC secret needs at least 32 bytes".into());
            }
            return DecodingKey::from_secret(secret)
                .map_err(|e| format!("not an HMAC secret: {e}"));
        }
        JwtAlgorithm::Rs256 | JwtAlgorithm::Rs384 | JwtAlgorithm::Rs512 | JwtAlgorithm::Ps256 => {
            DecodingKey::from_rsa_pem(key)
        }
        JwtAlgorithm::Es256 | JwtAlgorithm::Es384 => DecodingKey::from_ec_pem(key),
        JwtAlgorithm::EdDsa => DecodingKey::from_ed_pem(key),
    };
    key.map_err(|e| format!("not a PEM public key for {algorithm:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::{EncodingKey, Header};
    use serde_json::json;

    use super::*;

    const SECRET: &[u8] = b"a secret of at least thirty-two bytes!";

    fn settings() -> JwtSettings {
        JwtSettings {
            issuer: "https://id.example".into(),
            audience: "rescue".into(),
            key: PathBuf::from("secret"),
            algorithm: JwtAlgorithm::Hs256,
        }
    }

    fn token(claims: serde_json::Value) -> String {
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(SECRET).expect("a signing key"),
        )
        .expect("sign")
    }

    fn in_an_hour() -> u64 {
        jsonwebtoken::get_current_timestamp() + 3_600
    }

    #[test]
    fn a_good_token_names_its_subject_and_roles() {
        let verifier = JwtVerifier::new(&settings(), SECRET).expect("verifier");
        let caller = verifier
            .verify(&token(json!({
                "sub": "alice", "iss": "https://id.example", "aud": "rescue",
                "exp": in_an_hour(), "roles": ["train"], "scope": "openid read admin"
            })))
            .expect("accepted");
        assert_eq!(&*caller.identity, "jwt:alice");
        assert_eq!(caller.roles, vec![Role::Train, Role::Admin, Role::Read]);
    }

    #[test]
    fn wrong_issuer_audience_expiry_or_signature_is_refused() {
        let verifier = JwtVerifier::new(&settings(), SECRET).expect("verifier");
        let good =
            json!({"sub": "a", "iss": "https://id.example", "aud": "rescue", "exp": in_an_hour()});
        let with = |key: &str, value: serde_json::Value| {
            let mut claims = good.clone();
            claims[key] = value;
            token(claims)
        };
        for refused in [
            with("iss", json!("https://other.example")),
            with("aud", json!("someone-else")),
            with("exp", json!(1_000)),
            with("sub", json!("")),
        ] {
            assert!(
                matches!(verifier.verify(&refused), Err(Refusal::BadToken(_))),
                "{refused}"
            );
        }
        let forged = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &good,
            &EncodingKey::from_secret(b"another secret of thirty-two bytes or more")
                .expect("a signing key"),
        )
        .expect("sign");
        assert!(verifier.verify(&forged).is_err());
        assert!(verifier.verify(&token(good)).is_ok());
    }

    #[test]
    fn a_short_secret_or_a_bad_pem_is_refused_when_read() {
        assert!(JwtVerifier::new(&settings(), b"short").is_err());
        let rsa = JwtSettings {
            algorithm: JwtAlgorithm::Rs256,
            ..settings()
        };
        let error = JwtVerifier::new(&rsa, b"not a pem").expect_err("bad pem");
        assert!(error.contains("PEM"), "{error}");
    }
}
