//! Standard Webhooks signatures (<https://www.standardwebhooks.com/>).
//!
//! A signature is `v1,` followed by the base64 HMAC-SHA256 of `"{msg_id}.{timestamp}.{body}"`,
//! keyed with the base64-decoded secret that follows the `whsec_` prefix.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Prefix that marks a Standard Webhooks signing secret.
pub const SECRET_PREFIX: &str = "whsec_";

/// Number of random bytes in a generated secret (192 bits).
const SECRET_BYTES: usize = 24;

/// Why a secret could not be used for signing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigningError {
    /// The part after `whsec_` is not valid standard base64.
    #[error("webhook secret is not valid base64")]
    InvalidBase64,
    /// The secret decodes to zero bytes.
    #[error("webhook secret is empty")]
    EmptyKey,
}

/// Generates a new signing secret: `whsec_` followed by base64 of 24 random bytes.
pub fn generate_secret() -> String {
    let mut bytes = [0u8; SECRET_BYTES];
    // OsRng rather than a userspace PRNG: secrets should come straight from the kernel CSPRNG.
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!("{SECRET_PREFIX}{}", STANDARD.encode(bytes))
}

/// Decodes the HMAC key from a secret.
///
/// The prefix is optional, as in the reference implementations, so secrets pasted without it
/// still work.
fn decode_key(secret: &str) -> Result<Vec<u8>, SigningError> {
    let encoded = secret.strip_prefix(SECRET_PREFIX).unwrap_or(secret);
    let key = STANDARD
        .decode(encoded)
        .map_err(|_| SigningError::InvalidBase64)?;
    if key.is_empty() {
        return Err(SigningError::EmptyKey);
    }
    Ok(key)
}

fn keyed_mac(
    key: &[u8],
    msg_id: &str,
    timestamp: i64,
    body: &[u8],
) -> Result<HmacSha256, SigningError> {
    // HMAC accepts keys of any length, so this only fails for an empty key, already excluded.
    let mut mac = HmacSha256::new_from_slice(key).map_err(|_| SigningError::EmptyKey)?;
    mac.update(msg_id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    Ok(mac)
}

/// Signs a message and returns the `webhook-signature` header value (`v1,<base64>`).
pub fn sign(
    secret: &str,
    msg_id: &str,
    timestamp: i64,
    body: &[u8],
) -> Result<String, SigningError> {
    let key = decode_key(secret)?;
    let tag = keyed_mac(&key, msg_id, timestamp, body)?
        .finalize()
        .into_bytes();
    Ok(format!("v1,{}", STANDARD.encode(tag)))
}

/// Checks a `webhook-signature` header against the message, in constant time.
///
/// The header may carry several space-separated signatures (e.g. during secret rotation); one
/// valid `v1` signature suffices. Other versions are ignored. Checking the timestamp against a
/// tolerance window is left to the caller, which owns the clock.
pub fn verify(
    secret: &str,
    msg_id: &str,
    timestamp: i64,
    body: &[u8],
    signature_header: &str,
) -> bool {
    let Ok(key) = decode_key(secret) else {
        return false;
    };
    signature_header
        .split_whitespace()
        .filter_map(|candidate| candidate.strip_prefix("v1,"))
        .filter_map(|encoded| STANDARD.decode(encoded).ok())
        .any(|tag| match keyed_mac(&key, msg_id, timestamp, body) {
            Ok(mac) => mac.verify_slice(&tag).is_ok(),
            Err(_) => false,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const MSG_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TIMESTAMP: i64 = 1_614_265_330;
    const BODY: &[u8] = br#"{"test": 2432232314}"#;
    const EXPECTED: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    #[test]
    fn reference_vector_signs() {
        assert_eq!(sign(SECRET, MSG_ID, TIMESTAMP, BODY).unwrap(), EXPECTED);
    }

    #[test]
    fn prefix_is_optional() {
        let bare = SECRET.strip_prefix(SECRET_PREFIX).unwrap();
        assert_eq!(sign(bare, MSG_ID, TIMESTAMP, BODY).unwrap(), EXPECTED);
    }

    #[test]
    fn reference_vector_verifies() {
        assert!(verify(SECRET, MSG_ID, TIMESTAMP, BODY, EXPECTED));
    }

    #[test]
    fn verify_accepts_any_of_several_signatures() {
        let header = format!("v1,Zm9vYmFy v1a,ignoredEd25519 {EXPECTED}");
        assert!(verify(SECRET, MSG_ID, TIMESTAMP, BODY, &header));
        let header = format!("  {EXPECTED}   v1,Zm9vYmFy ");
        assert!(verify(SECRET, MSG_ID, TIMESTAMP, BODY, &header));
    }

    #[test]
    fn verify_rejects_tampering() {
        assert!(!verify(SECRET, MSG_ID, TIMESTAMP + 1, BODY, EXPECTED));
        assert!(!verify(SECRET, "msg_other", TIMESTAMP, BODY, EXPECTED));
        assert!(!verify(
            SECRET,
            MSG_ID,
            TIMESTAMP,
            br#"{"test": 2432232315}"#,
            EXPECTED
        ));
        let other = generate_secret();
        assert!(!verify(&other, MSG_ID, TIMESTAMP, BODY, EXPECTED));
    }

    #[test]
    fn verify_rejects_malformed_headers() {
        assert!(!verify(SECRET, MSG_ID, TIMESTAMP, BODY, ""));
        assert!(!verify(SECRET, MSG_ID, TIMESTAMP, BODY, "v1,"));
        assert!(!verify(SECRET, MSG_ID, TIMESTAMP, BODY, "v1,not base64!"));
        // Right tag, wrong version label.
        let tag = EXPECTED.strip_prefix("v1,").unwrap();
        assert!(!verify(
            SECRET,
            MSG_ID,
            TIMESTAMP,
            BODY,
            &format!("v2,{tag}")
        ));
        assert!(!verify(SECRET, MSG_ID, TIMESTAMP, BODY, tag));
        // A truncated tag must not verify as a prefix match.
        assert!(!verify(SECRET, MSG_ID, TIMESTAMP, BODY, &EXPECTED[..20]));
    }

    #[test]
    fn bad_secrets_are_errors() {
        assert_eq!(
            sign("whsec_!!!", MSG_ID, TIMESTAMP, BODY),
            Err(SigningError::InvalidBase64)
        );
        assert_eq!(
            sign("whsec_", MSG_ID, TIMESTAMP, BODY),
            Err(SigningError::EmptyKey)
        );
        assert!(!verify("whsec_!!!", MSG_ID, TIMESTAMP, BODY, EXPECTED));
    }

    #[test]
    fn generated_secrets_have_the_expected_shape() {
        let a = generate_secret();
        let b = generate_secret();
        assert_ne!(a, b);
        let encoded = a.strip_prefix(SECRET_PREFIX).unwrap();
        assert_eq!(STANDARD.decode(encoded).unwrap().len(), SECRET_BYTES);
        let sig = sign(&a, MSG_ID, TIMESTAMP, BODY).unwrap();
        assert!(verify(&a, MSG_ID, TIMESTAMP, BODY, &sig));
    }
}
