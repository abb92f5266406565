//! The second factor: TOTP codes (RFC 6238 — HMAC-SHA-1, 6 digits, 30-second steps, one step
//! of clock drift either way), single-use recovery codes, and the sealing of TOTP secrets at
//! rest.
//!
//! Secrets are sealed with AES-256-GCM under a key derived (HKDF-SHA-256) from the
//! token-signing key and bound to the user's id, so a copy of the database alone yields no
//! authenticator secret — as long as the signing key is kept outside the database (a key file,
//! which is the default on SQLite; see the README for PostgreSQL).

use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine;
use rand::RngCore;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use totp_rs::{Algorithm, Secret, TOTP};

/// Seconds per time step.
pub const STEP_SECS: i64 = 30;
/// Digits per code.
pub const DIGITS: usize = 6;
/// Secret length: 160 bits, as RFC 4226 recommends.
pub const SECRET_BYTES: usize = 20;
/// Recovery codes issued at confirmation.
pub const RECOVERY_CODES: usize = 10;
/// The issuer shown in authenticator apps.
pub const ISSUER: &str = "Aftercare";
/// Steps of clock drift accepted either way.
const SKEW: i64 = 1;

/// A new random secret.
pub fn new_secret() -> Vec<u8> {
    let mut s = vec![0u8; SECRET_BYTES];
    rand::rngs::OsRng.fill_bytes(&mut s);
    s
}

/// The secret as people type it into an authenticator: base32 (RFC 4648), no padding.
pub fn base32(secret: &[u8]) -> String {
    match Secret::Raw(secret.to_vec()).to_encoded() {
        Secret::Encoded(s) => s,
        Secret::Raw(_) => String::new(),
    }
}

/// Reads a base32 secret (as [`base32`] writes it).
pub fn from_base32(encoded: &str) -> Option<Vec<u8>> {
    Secret::Encoded(encoded.to_owned()).to_bytes().ok()
}

fn totp(secret: &[u8], account: &str) -> Result<TOTP, String> {
    // The otpauth label separates issuer and account with ':'.
    let account = account.replace(':', "_");
    TOTP::new(
        Algorithm::SHA1,
        DIGITS,
        1,
        STEP_SECS.unsigned_abs(),
        secret.to_vec(),
        Some(ISSUER.to_owned()),
        account,
    )
    .map_err(|e| e.to_string())
}

/// The `otpauth://totp/…` URI authenticator apps read (usually from a QR code).
pub fn otpauth_uri(secret: &[u8], account: &str) -> Result<String, String> {
    totp(secret, account).map(|t| t.get_url())
}

/// The time step of a Unix time.
pub fn step_of(unix_secs: i64) -> i64 {
    unix_secs.div_euclid(STEP_SECS)
}

/// The code of one time step.
pub fn code_at(secret: &[u8], step: i64) -> Option<String> {
    let t = totp(secret, "").ok()?;
    Some(t.generate(u64::try_from(step.checked_mul(STEP_SECS)?).ok()?))
}

/// What a typed TOTP code turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Match {
    /// The code of this step, not used before.
    Fresh(i64),
    /// The code of a step already used (or older than one already used): refused.
    Replayed,
    /// Not the code of any step in the window.
    Wrong,
}

/// Checks `code` against the steps around `unix_secs`; `last_used` is the last step whose code
/// was accepted, so a code is accepted once.
pub fn check(secret: &[u8], code: &str, unix_secs: i64, last_used: Option<i64>) -> Match {
    let now = step_of(unix_secs);
    let mut replayed = false;
    for step in (now - SKEW)..=(now + SKEW) {
        let Some(expected) = code_at(secret, step) else {
            continue;
        };
        if !constant_time_eq(expected.as_bytes(), code.as_bytes()) {
            continue;
        }
        if last_used.is_some_and(|last| step <= last) {
            replayed = true;
        } else {
            return Match::Fresh(step);
        }
    }
    if replayed {
        Match::Replayed
    } else {
        Match::Wrong
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A code as typed in the second step: a TOTP code, or a recovery code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Code {
    /// Six digits.
    Totp(String),
    /// A recovery code, normalised (lower case, no separators).
    Recovery(String),
}

/// Reads a typed code: spaces are ignored (apps show "123 456"); recovery codes may be typed
/// with or without their dashes, in any case. `None` when it can be neither.
pub fn parse_code(raw: &str) -> Option<Code> {
    let compact: String = raw
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .collect();
    if compact.len() == DIGITS && compact.chars().all(|c| c.is_ascii_digit()) {
        return Some(Code::Totp(compact));
    }
    let lower = compact.to_ascii_lowercase();
    let base32 = |c: char| c.is_ascii_lowercase() || ('2'..='7').contains(&c);
    (lower.len() == 16 && lower.chars().all(base32)).then_some(Code::Recovery(lower))
}

/// The normalised form of a code made by [`new_typed_code`] as a person typed it (any case,
/// with or without dashes and spaces): what is hashed and compared. `None` if it cannot be one.
pub fn typed_code_key(raw: &str) -> Option<String> {
    match parse_code(raw) {
        Some(Code::Recovery(key)) => Some(key),
        _ => None,
    }
}

/// A new recovery code: 80 random bits as 16 base32 characters, shown as `abcd-efgh-ijkl-mnop`.
pub fn new_recovery_code() -> String {
    new_typed_code()
}

/// A new code for a person to type: 80 random bits as 16 base32 characters, shown as
/// `abcd-efgh-ijkl-mnop`.
pub fn new_typed_code() -> String {
    let mut bytes = [0u8; 10];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let plain = base32(&bytes).to_ascii_lowercase();
    let chars: Vec<char> = plain.chars().collect();
    chars
        .chunks(4)
        .map(|c| c.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join("-")
}

/// Seals and opens TOTP secrets with a key derived from the token-signing key.
pub struct SecretBox {
    key: LessSafeKey,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox(..)")
    }
}

const SEALED_PREFIX: &str = "v1:";

impl SecretBox {
    /// Derives the sealing key from the signing key's private seed.
    pub fn derive(seed: &[u8]) -> anyhow::Result<Self> {
        let salt = ring::hkdf::Salt::new(ring::hkdf::HKDF_SHA256, b"aftercare");
        let prk = salt.extract(seed);
        let info: &[&[u8]] = &[b"totp-secrets v1"];
        let okm = prk
            .expand(info, &AES_256_GCM)
            .map_err(|_| anyhow::anyhow!("cannot derive the TOTP sealing key"))?;
        let key = UnboundKey::from(okm);
        Ok(Self {
            key: LessSafeKey::new(key),
        })
    }

    /// Seals `plain`, bound to `owner` (a row moved to another user does not open).
    pub fn seal(&self, owner: &str, plain: &[u8]) -> anyhow::Result<String> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let mut buf = plain.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(owner.as_bytes()),
                &mut buf,
            )
            .map_err(|_| anyhow::anyhow!("cannot seal a TOTP secret"))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&buf);
        Ok(format!("{SEALED_PREFIX}{}", STANDARD_NO_PAD.encode(out)))
    }

    /// Opens what [`SecretBox::seal`] sealed for `owner`; `None` if it was sealed under another
    /// key (the signing key changed), for another owner, or altered.
    pub fn open(&self, owner: &str, sealed: &str) -> Option<Vec<u8>> {
        let raw = STANDARD_NO_PAD
            .decode(sealed.strip_prefix(SEALED_PREFIX)?)
            .ok()?;
        if raw.len() < NONCE_LEN {
            return None;
        }
        let (nonce, body) = raw.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut buf = body.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(owner.as_bytes()), &mut buf)
            .ok()?;
        Some(plain.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B, SHA-1, truncated to six digits.
    #[test]
    fn codes_match_the_rfc_test_vectors() {
        let secret = b"12345678901234567890";
        for (time, code) in [
            (59, "287082"),
            (1_111_111_109, "081804"),
            (1_111_111_111, "050471"),
            (1_234_567_890, "005924"),
            (2_000_000_000, "279037"),
        ] {
            assert_eq!(code_at(secret, step_of(time)).unwrap(), code, "at {time}");
        }
    }

    #[test]
    fn one_step_of_drift_either_way_and_no_more() {
        let secret = new_secret();
        let now = 1_800_000_015; // 15 s into a step
        let step = step_of(now);
        for (offset, accepted) in [(-2, false), (-1, true), (0, true), (1, true), (2, false)] {
            let code = code_at(&secret, step + offset).unwrap();
            let m = check(&secret, &code, now, None);
            assert_eq!(
                m == Match::Fresh(step + offset),
                accepted,
                "offset {offset}"
            );
        }
        assert_eq!(check(&secret, "000000x", now, None), Match::Wrong);
    }

    #[test]
    fn a_code_is_accepted_once() {
        let secret = new_secret();
        let now = 1_800_000_000;
        let step = step_of(now);
        let code = code_at(&secret, step).unwrap();
        assert_eq!(
            check(&secret, &code, now, Some(step - 1)),
            Match::Fresh(step)
        );
        assert_eq!(check(&secret, &code, now, Some(step)), Match::Replayed);
        // An older step's code after a newer one was used is a replay too.
        let older = code_at(&secret, step - 1).unwrap();
        assert_eq!(check(&secret, &older, now, Some(step)), Match::Replayed);
    }

    #[test]
    fn typed_codes_are_read_leniently_but_not_loosely() {
        assert_eq!(parse_code("123 456"), Some(Code::Totp("123456".into())));
        assert_eq!(parse_code("12345"), None);
        assert_eq!(parse_code("1234567"), None);
        let r = new_recovery_code();
        assert_eq!(r.len(), 19);
        let plain = r.replace('-', "");
        assert_eq!(
            parse_code(&r.to_ascii_uppercase()),
            Some(Code::Recovery(plain))
        );
        assert_eq!(parse_code("abcd-efgh-ijkl-mno1"), None);
    }

    #[test]
    fn sealed_secrets_open_only_with_the_same_key_and_owner() {
        let a = SecretBox::derive(&[7u8; 32]).unwrap();
        let b = SecretBox::derive(&[8u8; 32]).unwrap();
        let secret = new_secret();
        let sealed = a.seal("user-1", &secret).unwrap();
        assert!(!sealed.contains(&base32(&secret)));
        assert_eq!(a.open("user-1", &sealed).unwrap(), secret);
        assert!(a.open("user-2", &sealed).is_none());
        assert!(b.open("user-1", &sealed).is_none());
        assert!(a.open("user-1", "v1:AAAA").is_none());
    }

    #[test]
    fn the_uri_names_issuer_account_and_secret() {
        let secret = new_secret();
        let uri = otpauth_uri(&secret, "alex@example.org").unwrap();
        assert!(
            uri.starts_with("otpauth://totp/Aftercare:alex%40example.org?"),
            "{uri}"
        );
        assert!(uri.contains(&format!("secret={}", base32(&secret))));
        assert!(uri.contains("issuer=Aftercare"));
    }
}
