//! Passwords: argon2id at OWASP's parameters, hashed on the blocking pool with a cap on how
//! many run at once, and a dummy hash so unknown accounts cost the same time as known ones.

use std::sync::{Arc, OnceLock};

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::Semaphore;

use crate::domain::validation::FieldError;
use crate::error::ApiError;

/// Shortest password accepted, in characters.
pub const MIN_LENGTH: usize = 12;
/// Longest password accepted, in bytes; checked before hashing so nobody can make us hash
/// megabytes.
pub const MAX_BYTES: usize = 128;

/// Ten thousand of the most common passwords (the top of zxcvbn's frequency list, MIT
/// licence, built from public password leaks) and every entry of twelve characters or more
/// on that list, lower-cased, one per line.
static COMMON: &str = include_str!("common_passwords.txt");

fn common() -> &'static std::collections::HashSet<&'static str> {
    static SET: OnceLock<std::collections::HashSet<&'static str>> = OnceLock::new();
    SET.get_or_init(|| COMMON.lines().map(str::trim).collect())
}

/// Whether a (lower-cased) password is a common one, or a common one padded with digits and
/// symbols at either end ("password1234", "2026sunshine!") to reach the minimum length.
fn is_common(lower: &str) -> bool {
    let padding = |c: char| c.is_ascii_digit() || c.is_ascii_punctuation() || c.is_whitespace();
    let core = lower.trim_matches(padding);
    common().contains(lower) || core.chars().count() < 4 || common().contains(core)
}

fn argon2() -> Argon2<'static> {
    // m = 19 MiB, t = 2, p = 1: OWASP's recommended minimum for argon2id.
    let params = Params::new(19_456, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Checks a new password against the policy; `field` names it in the error.
pub fn check_policy(field: &str, password: &str, context: &[&str]) -> Result<(), FieldError> {
    if password.len() > MAX_BYTES {
        return Err(FieldError::new(
            field,
            format!("must be at most {MAX_BYTES} bytes"),
        ));
    }
    if password.chars().count() < MIN_LENGTH {
        return Err(FieldError::new(
            field,
            format!("must be at least {MIN_LENGTH} characters"),
        ));
    }
    let lower = password.to_lowercase();
    if is_common(&lower) {
        return Err(FieldError::new(
            field,
            "is too common; choose a less guessable password",
        ));
    }
    let mut chars = lower.chars();
    if let Some(first) = chars.next() {
        if chars.all(|c| c == first) {
            return Err(FieldError::new(field, "must not repeat one character"));
        }
    }
    for c in context {
        let c = c.trim().to_lowercase();
        if c.len() >= 4 && lower.contains(&c) {
            return Err(FieldError::new(
                field,
                "must not contain your email or name",
            ));
        }
    }
    Ok(())
}

/// Hashes and verifies off the async workers, at most `permits` at a time.
#[derive(Clone)]
pub struct Hasher {
    permits: Arc<Semaphore>,
}

fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let salt = SaltString::generate(&mut OsRng);
        argon2()
            .hash_password(b"not a real password, never matches", &salt)
            .map(|h| h.to_string())
            .unwrap_or_default()
    })
}

impl Hasher {
    /// A hasher allowing `concurrency` hashes at once.
    pub fn new(concurrency: usize) -> Self {
        // Compute the dummy once at start, not on the first unknown-account login.
        let _ = dummy_hash();
        Self {
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
        }
    }

    /// Hashes a password (PHC string).
    pub async fn hash(&self, password: String) -> Result<String, ApiError> {
        let _permit = self.permits.acquire().await.map_err(ApiError::internal)?;
        actix_web::web::block(move || {
            let salt = SaltString::generate(&mut OsRng);
            argon2()
                .hash_password(password.as_bytes(), &salt)
                .map(|h| h.to_string())
                .map_err(ApiError::internal)
        })
        .await?
    }

    /// Verifies `password` against `hash`; with `None` verifies against a dummy so the time
    /// taken does not reveal whether the account exists.
    pub async fn verify(&self, password: String, hash: Option<String>) -> Result<bool, ApiError> {
        let _permit = self.permits.acquire().await.map_err(ApiError::internal)?;
        actix_web::web::block(move || {
            let known = hash.is_some();
            let hash = hash.unwrap_or_else(|| dummy_hash().to_owned());
            let parsed = PasswordHash::new(&hash).map_err(ApiError::internal)?;
            let ok = password.len() <= MAX_BYTES
                && argon2()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok();
            Ok(ok && known)
        })
        .await?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_boundaries() {
        assert!(check_policy("password", "short-pass1", &[]).is_err()); // 11 chars
        assert!(check_policy("password", "harbour-lamp", &[]).is_ok()); // 12 chars
        assert!(check_policy("password", &"x".repeat(129), &[]).is_err());
        assert!(check_policy("password", &format!("{}y", "xz".repeat(63)), &[]).is_ok()); // 127 bytes
        assert!(check_policy("password", "Password1234", &[]).is_err());
        assert!(check_policy("password", "aaaaaaaaaaaaaa", &[]).is_err());
        assert!(check_policy(
            "password",
            "jordan-likes-tea",
            &["jordan@example.org", "Jordan"]
        )
        .is_err());
    }

    #[test]
    fn common_passwords_padded_to_length_are_refused() {
        for weak in [
            "sunshine2026!",
            "2026Sunshine",
            "monkey!!!!!!",
            "1qaz2wsx3edc",
            "qwertyuiop12",
            "1234567890123",
            "password-2026",
            "ab12345678901",
        ] {
            assert!(check_policy("password", weak, &[]).is_err(), "{weak}");
        }
        for fine in [
            "correct-lantern-harbour",
            "tidal-marsh-lantern",
            "sunshine over the harbour",
            "demo-password-2026",
        ] {
            assert!(check_policy("password", fine, &[]).is_ok(), "{fine}");
        }
    }

    #[actix_web::test]
    async fn hash_and_verify() {
        let h = Hasher::new(2);
        let hash = h.hash("tidal-marsh-lantern".into()).await.unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(h
            .verify("tidal-marsh-lantern".into(), Some(hash.clone()))
            .await
            .unwrap());
        assert!(!h
            .verify("tidal-marsh-lantern!".into(), Some(hash))
            .await
            .unwrap());
        assert!(!h.verify("anything".into(), None).await.unwrap());
    }
}
