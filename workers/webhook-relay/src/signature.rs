//! Shopify's webhook signature: `X-Shopify-Hmac-Sha256` = base64(HMAC-SHA256(key = the app's
//! client secret, message = the raw body)), compared in constant time, against the current
//! secret and, during a rotation, the previous one.

use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// The app's client secrets. Never printed: `Debug` says only whether a previous one is set.
#[derive(Clone)]
pub struct ClientSecrets {
    current: Vec<u8>,
    previous: Option<Vec<u8>>,
}

impl std::fmt::Debug for ClientSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientSecrets")
            .field("current", &"<redacted>")
            .field("previous", &self.previous.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl ClientSecrets {
    pub fn new(current: impl Into<Vec<u8>>, previous: Option<Vec<u8>>) -> Self {
        Self {
            current: current.into(),
            previous: previous.filter(|p| !p.is_empty()),
        }
    }

    /// Whether `header` (the `X-Shopify-Hmac-Sha256` value) signs `body` with either secret.
    /// A missing or undecodable header never does.
    pub fn verify(&self, body: &[u8], header: Option<&str>) -> bool {
        let Some(expected) = header
            .map(str::trim)
            .and_then(|h| base64::engine::general_purpose::STANDARD.decode(h).ok())
        else {
            return false;
        };
        // Both secrets are always checked (no early exit), each in constant time.
        let current = signs(&self.current, body, &expected);
        let previous = self
            .previous
            .as_deref()
            .is_some_and(|secret| signs(secret, body, &expected));
        current | previous
    }
}

fn signs(secret: &[u8], body: &[u8], expected: &[u8]) -> bool {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(expected).is_ok()
}

/// The header value Shopify would send for `body` signed with `secret` (tests, tools).
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(body);
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &[u8] = br#"{"id":820982911946154508,"email":"jon@example.com"}"#;

    #[test]
    fn a_known_vector_verifies() {
        // RFC 4231 test case 2: HMAC-SHA256(key "Jefe", "what do ya want for nothing?").
        let expected = "W9zBRr9gdU5qBCQmCJV1x1oAPwidJzmDnexYuWTsOEM=";
        assert_eq!(sign(b"Jefe", b"what do ya want for nothing?"), expected);
        let secrets = ClientSecrets::new("Jefe", None);
        assert!(secrets.verify(b"what do ya want for nothing?", Some(expected)));
    }

    #[test]
    fn the_right_secret_is_accepted_and_a_wrong_one_rejected() {
        let secrets = ClientSecrets::new("shpss_current", None);
        assert!(secrets.verify(BODY, Some(&sign(b"shpss_current", BODY))));
        assert!(!secrets.verify(BODY, Some(&sign(b"shpss_other", BODY))));
    }

    #[test]
    fn one_changed_byte_of_the_body_or_the_signature_is_rejected() {
        let secrets = ClientSecrets::new("shpss_current", None);
        let header = sign(b"shpss_current", BODY);
        let mut body = BODY.to_vec();
        body[10] ^= 1;
        assert!(!secrets.verify(&body, Some(&header)));
        let mut digest = base64::engine::general_purpose::STANDARD
            .decode(&header)
            .unwrap();
        digest[0] ^= 1;
        let changed = base64::engine::general_purpose::STANDARD.encode(digest);
        assert!(!secrets.verify(BODY, Some(&changed)));
    }

    #[test]
    fn during_a_rotation_the_previous_secret_still_verifies() {
        let rotated = ClientSecrets::new("shpss_new", Some(b"shpss_old".to_vec()));
        assert!(rotated.verify(BODY, Some(&sign(b"shpss_old", BODY))));
        assert!(rotated.verify(BODY, Some(&sign(b"shpss_new", BODY))));
        let after = ClientSecrets::new("shpss_new", None);
        assert!(!after.verify(BODY, Some(&sign(b"shpss_old", BODY))));
        assert!(!format!("{rotated:?}").contains("shpss"));
    }

    #[test]
    fn a_missing_empty_or_garbled_header_is_rejected() {
        let secrets = ClientSecrets::new("shpss_current", None);
        assert!(!secrets.verify(BODY, None));
        assert!(!secrets.verify(BODY, Some("")));
        assert!(!secrets.verify(BODY, Some("not base64!")));
        assert!(!secrets.verify(b"", Some(&sign(b"shpss_other", b""))));
    }
}
