//! The local token issuer: an RSA key kept in the state directory signs Google-shaped service
//! account ID tokens (RS256, `kid`, `iss = https://accounts.google.com`, `aud`, `email`,
//! `email_verified`, `iat`, `exp`, `sub`, `azp`), served as a JWKS so workers verify them as they
//! verify Google's (google-cloud-auth's verifier `with_jwks_url`); and opaque access tokens that
//! name the service account they were minted for.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair, KeySize, PublicKeyComponents};
use aws_lc_rs::signature::{self, KeyPair as _, UnparsedPublicKey};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

/// The issuer Google's ID tokens carry; verifiers (google-cloud-auth's included) require it.
pub const ISSUER: &str = "https://accounts.google.com";
/// Where the emulator serves its JWKS (Google's is `https://www.googleapis.com/oauth2/v3/certs`).
pub const JWKS_PATH: &str = "/oauth2/v3/certs";
/// ID tokens and access tokens live an hour, as Google's do.
pub const TOKEN_LIFETIME_SECS: i64 = 3600;
const ACCESS_TOKEN_PREFIX: &str = "ya29.local.";
const KEY_FILE: &str = "oidc-signing-key.pk8";

#[derive(Debug)]
pub struct Identity {
    key_file: Option<PathBuf>,
    key: OnceLock<SigningKey>,
}

struct SigningKey {
    pair: KeyPair,
    kid: String,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .finish()
    }
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token is not a JWT")]
    Malformed,
    #[error("the token was not signed by this emulator's issuer")]
    BadSignature,
    #[error("the token expired at {0}")]
    Expired(i64),
    #[error("the token's audience {found:?} is not {expected:?}")]
    WrongAudience {
        found: String,
        expected: Vec<String>,
    },
}

fn load_or_create(file: Option<&Path>) -> SigningKey {
    let stored = file.and_then(|f| std::fs::read(f).ok());
    let pair = stored
        .as_deref()
        .and_then(|der| KeyPair::from_pkcs8(der).ok())
        .unwrap_or_else(|| {
            let pair = KeyPair::generate(KeySize::Rsa2048).expect("RSA key generation");
            if let (Some(file), Ok(der)) = (file, AsDer::as_der(&pair)) {
                let der: aws_lc_rs::encoding::Pkcs8V1Der<'_> = der;
                if let Some(parent) = file.parent() {
                    let _ = std::fs::create_dir_all(parent);
                }
                let temp = file.with_extension("partial");
                if std::fs::write(&temp, der.as_ref()).is_ok() {
                    let _ = std::fs::rename(&temp, file);
                }
            }
            pair
        });
    let components = PublicKeyComponents::<Vec<u8>>::from(pair.public_key());
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &components.n);
    let kid = format!("stackctl-local-{}", hex::encode(&digest.as_ref()[..8]));
    SigningKey { pair, kid }
}

impl Identity {
    pub fn new(state_dir: Option<&Path>) -> Self {
        Self {
            key_file: state_dir.map(|d| d.join("runtime").join(KEY_FILE)),
            key: OnceLock::new(),
        }
    }

    fn key(&self) -> &SigningKey {
        self.key
            .get_or_init(|| load_or_create(self.key_file.as_deref()))
    }

    /// The JWK set of the signing key (`{"keys": [{kty, alg, use, kid, n, e}]}`).
    pub fn jwks(&self) -> Value {
        let key = self.key();
        let components = PublicKeyComponents::<Vec<u8>>::from(key.pair.public_key());
        json!({"keys": [{
            "kty": "RSA",
            "alg": "RS256",
            "use": "sig",
            "kid": key.kid,
            "n": B64.encode(&components.n),
            "e": B64.encode(&components.e),
        }]})
    }

    /// A Google-shaped ID token for `email` with audience `audience`, issued at `now`.
    pub fn id_token(&self, email: &str, audience: &str, now: DateTime<Utc>) -> String {
        let key = self.key();
        let header = json!({"alg": "RS256", "kid": key.kid, "typ": "JWT"});
        let iat = now.timestamp();
        let subject = numeric_subject(email);
        let claims = json!({
            "iss": ISSUER,
            "aud": audience,
            "azp": subject,
            "sub": subject,
            "email": email,
            "email_verified": true,
            "iat": iat,
            "exp": iat + TOKEN_LIFETIME_SECS,
        });
        let signing_input = format!(
            "{}.{}",
            B64.encode(header.to_string()),
            B64.encode(claims.to_string())
        );
        let mut signature = vec![0; key.pair.public_modulus_len()];
        key.pair
            .sign(
                &signature::RSA_PKCS1_SHA256,
                &aws_lc_rs::rand::SystemRandom::new(),
                signing_input.as_bytes(),
                &mut signature,
            )
            .expect("RS256 signing");
        format!("{signing_input}.{}", B64.encode(signature))
    }

    /// Checks an ID token's signature, expiry (on `now`) and audience (one of `audiences`);
    /// returns its claims.
    pub fn verify_id_token(
        &self,
        token: &str,
        audiences: &[String],
        now: DateTime<Utc>,
    ) -> Result<Map<String, Value>, TokenError> {
        let mut parts = token.split('.');
        let (Some(header), Some(claims), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed);
        };
        let signature = B64.decode(signature).map_err(|_| TokenError::Malformed)?;
        let key = self.key();
        let public = UnparsedPublicKey::new(
            &signature::RSA_PKCS1_2048_8192_SHA256,
            key.pair.public_key().as_ref(),
        );
        public
            .verify(format!("{header}.{claims}").as_bytes(), &signature)
            .map_err(|_| TokenError::BadSignature)?;
        let claims: Map<String, Value> = B64
            .decode(claims)
            .ok()
            .and_then(|raw| serde_json::from_slice(&raw).ok())
            .ok_or(TokenError::Malformed)?;
        let exp = claims.get("exp").and_then(Value::as_i64).unwrap_or(0);
        if exp <= now.timestamp() {
            return Err(TokenError::Expired(exp));
        }
        let audience = claims
            .get("aud")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if !audiences
            .iter()
            .any(|a| a.trim_end_matches('/') == audience.trim_end_matches('/'))
        {
            return Err(TokenError::WrongAudience {
                found: audience.to_string(),
                expected: audiences.to_vec(),
            });
        }
        Ok(claims)
    }

    /// An opaque OAuth access token that names `email` (the emulator reads the caller from it).
    pub fn access_token(&self, email: &str) -> String {
        let nonce: u64 = rand::random();
        format!("{ACCESS_TOKEN_PREFIX}{}.{nonce:016x}", B64.encode(email))
    }

    /// The service account an access token minted here names.
    pub fn email_of_access_token(token: &str) -> Option<String> {
        let rest = token.strip_prefix(ACCESS_TOKEN_PREFIX)?;
        let (email, _) = rest.split_once('.')?;
        String::from_utf8(B64.decode(email).ok()?).ok()
    }

    /// The service account a request names itself as: its `Authorization: Bearer` access token,
    /// when one minted here; `None` for anonymous callers and other tokens.
    pub fn caller_of(headers: &axum::http::HeaderMap) -> Option<String> {
        headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .and_then(Self::email_of_access_token)
    }
}

/// A stable 21-digit numeric id for a service account, like Google's `uniqueId`.
fn numeric_subject(email: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, email.as_bytes());
    let mut n: u128 = 0;
    for byte in &digest.as_ref()[..9] {
        n = (n << 8) | u128::from(*byte);
    }
    format!("1{:020}", n % 100_000_000_000_000_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_verify_with_their_key_and_audience_and_the_key_persists() {
        let dir = tempfile::tempdir().unwrap();
        let identity = Identity::new(Some(dir.path()));
        let now = Utc::now();
        let token = identity.id_token("relay@p.iam.gserviceaccount.com", "https://w.run.app", now);
        let claims = identity
            .verify_id_token(&token, &["https://w.run.app/".into()], now)
            .expect("valid");
        assert_eq!(claims["email"], "relay@p.iam.gserviceaccount.com");
        assert_eq!(claims["iss"], ISSUER);
        assert_eq!(claims["email_verified"], true);
        assert!(matches!(
            identity.verify_id_token(&token, &["https://other.run.app".into()], now),
            Err(TokenError::WrongAudience { .. })
        ));
        assert!(matches!(
            identity.verify_id_token(
                &token,
                &["https://w.run.app".into()],
                now + chrono::Duration::hours(2)
            ),
            Err(TokenError::Expired(_))
        ));
        let mut forged = token.clone();
        forged.replace_range(forged.len() - 6.., "AAAAAA");
        assert_eq!(
            identity.verify_id_token(&forged, &["https://w.run.app".into()], now),
            Err(TokenError::BadSignature)
        );
        // A second emulator on the same state directory signs with the same key.
        let again = Identity::new(Some(dir.path()));
        assert_eq!(again.jwks(), identity.jwks());
        assert!(
            again
                .verify_id_token(&token, &["https://w.run.app".into()], now)
                .is_ok()
        );
        let access = identity.access_token("a@p.iam.gserviceaccount.com");
        assert_eq!(
            Identity::email_of_access_token(&access).as_deref(),
            Some("a@p.iam.gserviceaccount.com")
        );
    }
}
