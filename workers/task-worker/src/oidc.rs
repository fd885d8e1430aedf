//! Checks the OIDC token Cloud Tasks sends (`Authorization: Bearer`): an RS256 signature by a key
//! of the issuer's JWKS, the issuer, an accepted audience, expiry, and a verified caller email on
//! the allow-list.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde_json::{Map, Value};
use tokio::sync::RwLock;

/// Google's JWKS for service account ID tokens.
pub const GOOGLE_JWKS_URL: &str = "https://www.googleapis.com/oauth2/v3/certs";
/// Google's issuer.
pub const GOOGLE_ISSUER: &str = "https://accounts.google.com";
/// How long fetched keys are trusted before they are fetched again.
const KEYS_TTL: Duration = Duration::from_secs(3600);
/// Clock skew allowed on `exp`.
const SKEW_SECS: i64 = 10;

/// An RSA public key as `(modulus, exponent)` bytes, by `kid`.
type Keys = HashMap<String, (Vec<u8>, Vec<u8>)>;

/// What a token must satisfy.
#[derive(Debug)]
pub struct Verifier {
    pub jwks_url: String,
    pub issuer: String,
    /// Accepted `aud` values (a trailing `/` is ignored).
    pub audiences: Vec<String>,
    /// Accepted `email`s; `*@domain` accepts any account of that domain.
    pub allowed_emails: Vec<String>,
    http: reqwest::Client,
    keys: RwLock<Option<(Instant, Keys)>>,
}

impl Verifier {
    pub fn new(
        http: reqwest::Client,
        jwks_url: String,
        issuer: String,
        audiences: Vec<String>,
        allowed_emails: Vec<String>,
    ) -> Self {
        Self {
            jwks_url,
            issuer,
            audiences,
            allowed_emails,
            http,
            keys: RwLock::new(None),
        }
    }

    async fn key(&self, kid: &str) -> Result<(Vec<u8>, Vec<u8>), String> {
        if let Some((fetched, keys)) = self.keys.read().await.as_ref()
            && fetched.elapsed() < KEYS_TTL
            && let Some(key) = keys.get(kid)
        {
            return Ok(key.clone());
        }
        let jwks: Value = self
            .http
            .get(&self.jwks_url)
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .map_err(|e| format!("cannot fetch the JWKS: {e}"))?
            .json()
            .await
            .map_err(|e| format!("unreadable JWKS: {e}"))?;
        let mut keys = HashMap::new();
        for key in jwks["keys"].as_array().into_iter().flatten() {
            let (Some(id), Some(n), Some(e)) = (
                key["kid"].as_str(),
                key["n"].as_str().and_then(|n| B64.decode(n).ok()),
                key["e"].as_str().and_then(|e| B64.decode(e).ok()),
            ) else {
                continue;
            };
            keys.insert(id.to_string(), (n, e));
        }
        let found = keys.get(kid).cloned();
        *self.keys.write().await = Some((Instant::now(), keys));
        found.ok_or_else(|| format!("no key {kid:?} in the issuer's JWKS"))
    }

    /// The token's claims when it passes every check; else why not.
    pub async fn verify(&self, token: &str) -> Result<Map<String, Value>, String> {
        let mut parts = token.split('.');
        let (Some(header), Some(claims), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err("not a JWT".into());
        };
        let decode = |part: &str| -> Result<Map<String, Value>, String> {
            B64.decode(part)
                .ok()
                .and_then(|raw| serde_json::from_slice(&raw).ok())
                .ok_or_else(|| "undecodable JWT".to_string())
        };
        let head = decode(header)?;
        if head.get("alg").and_then(Value::as_str) != Some("RS256") {
            return Err("not an RS256 token".into());
        }
        let kid = head
            .get("kid")
            .and_then(Value::as_str)
            .ok_or("a token without kid")?;
        let (n, e) = self.key(kid).await?;
        let signature = B64.decode(signature).map_err(|_| "undecodable signature")?;
        ring::signature::RsaPublicKeyComponents { n: &n, e: &e }
            .verify(
                &ring::signature::RSA_PKCS1_2048_8192_SHA256,
                format!("{header}.{claims}").as_bytes(),
                &signature,
            )
            .map_err(|_| "bad signature")?;
        let claims = decode(claims)?;
        let text = |name: &str| claims.get(name).and_then(Value::as_str).unwrap_or_default();
        if text("iss").trim_end_matches('/') != self.issuer.trim_end_matches('/') {
            return Err(format!("issuer {:?} is not {:?}", text("iss"), self.issuer));
        }
        let audience = text("aud").trim_end_matches('/');
        if !self
            .audiences
            .iter()
            .any(|a| matches_pattern(a.trim_end_matches('/'), audience))
        {
            return Err(format!("audience {audience:?} is not accepted"));
        }
        let exp = claims.get("exp").and_then(Value::as_i64).unwrap_or(0);
        if exp + SKEW_SECS <= chrono::Utc::now().timestamp() {
            return Err("expired token".into());
        }
        let email = text("email");
        if claims.get("email_verified").and_then(Value::as_bool) != Some(true)
            || !self.email_allowed(email)
        {
            return Err(format!("caller {email:?} is not allowed"));
        }
        Ok(claims)
    }

    fn email_allowed(&self, email: &str) -> bool {
        // (`*@domain` is a pattern like any other.)
        !email.is_empty()
            && self
                .allowed_emails
                .iter()
                .any(|allowed| matches_pattern(allowed, email))
    }
}

/// Whether `value` is `pattern`, where one `*` in the pattern stands for any text
/// (`https://worker-*.run.app`, `*@p.iam.gserviceaccount.com`).
pub fn matches_pattern(pattern: &str, value: &str) -> bool {
    match pattern.split_once('*') {
        Some((prefix, suffix)) => {
            value.len() >= prefix.len() + suffix.len()
                && value.starts_with(prefix)
                && value.ends_with(suffix)
        }
        None => pattern == value,
    }
}

#[cfg(test)]
mod pattern_tests {
    use super::matches_pattern;

    #[test]
    fn one_star_matches_any_middle() {
        assert!(matches_pattern(
            "https://worker-*.run.app",
            "https://worker-3fa9c1d2e4-uc.a.run.app"
        ));
        assert!(matches_pattern(
            "https://worker-*.run.app",
            "https://worker-123456789.us-central1.run.app"
        ));
        assert!(!matches_pattern(
            "https://worker-*.run.app",
            "https://other-123.us-central1.run.app"
        ));
        assert!(!matches_pattern(
            "https://worker-*.run.app",
            "https://worker-.run.ap"
        ));
        assert!(matches_pattern(
            "*@p.iam.gserviceaccount.com",
            "a@p.iam.gserviceaccount.com"
        ));
        assert!(!matches_pattern(
            "*@p.iam.gserviceaccount.com",
            "a@q.iam.gserviceaccount.com"
        ));
        assert!(matches_pattern("exact", "exact"));
    }
}
