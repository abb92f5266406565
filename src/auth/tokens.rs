//! Access tokens (EdDSA-signed JWTs, short-lived) and refresh tokens (opaque, random, stored
//! only as a hash).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::Utc;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use ed25519_dalek::SigningKey;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The audience of access tokens.
pub const AUDIENCE: &str = "aftercare-api";
/// The token-type claim of access tokens, so no other JWT we might sign passes as one.
pub const ACCESS_TYPE: &str = "access";

/// The token-type claim of integration access tokens (OAuth client credentials, SPEC §9).
pub const INTEGRATION_TYPE: &str = "integration";

/// Claims of an integration's access token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IntegrationClaims {
    /// Issuer.
    pub iss: String,
    /// Audience.
    pub aud: String,
    /// The integration id.
    pub sub: String,
    /// Expiry, seconds since the epoch.
    pub exp: i64,
    /// Issued at, seconds since the epoch.
    pub iat: i64,
    /// Issued at, milliseconds: compared with the integration's last credential change.
    pub iat_ms: i64,
    /// Token id.
    pub jti: String,
    /// Token type; must be `integration`.
    pub typ: String,
    /// The integration's organisation.
    pub org: String,
    /// The scopes granted to this token, space-separated (narrowed further per request to
    /// what the integration still holds).
    pub scope: String,
}

/// A verified access token of either principal.
#[derive(Debug, Clone)]
pub enum Verified {
    /// A user's access token.
    User(Claims),
    /// An integration's access token.
    Integration(IntegrationClaims),
}

/// Access-token claims.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// Issuer.
    pub iss: String,
    /// Audience.
    pub aud: String,
    /// The user id.
    pub sub: String,
    /// Expiry, seconds since the epoch.
    pub exp: i64,
    /// Issued at, seconds since the epoch.
    pub iat: i64,
    /// Issued at, milliseconds: compared with the last password change, which a second is too
    /// coarse for.
    pub iat_ms: i64,
    /// Token id.
    pub jti: String,
    /// Token type; must be `access`.
    pub typ: String,
    /// The user's organisation.
    pub org: String,
    /// The user's role at issue time (authorisation re-reads it per request).
    pub role: String,
    /// The session (refresh-token family) it was issued for: when the session ends (logout,
    /// a reused refresh token), its access tokens stop working at once.
    pub sid: String,
}

/// The signing key and what verifies it.
pub struct Keys {
    kid: String,
    encoding: EncodingKey,
    decoding: DecodingKey,
    public_x: String,
    issuer: String,
    sealer: super::totp::SecretBox,
    verified: std::sync::Mutex<VerifiedCache>,
}

/// How many verified access tokens are remembered. Only tokens whose signature verified are
/// admitted, so the set cannot be filled by anyone without tokens this server signed; at a
/// few hundred bytes each this bounds it to a few megabytes.
const VERIFIED_CACHE_CAPACITY: usize = 8192;

/// Seconds of clock skew allowed on `exp`, the same as the signature check's leeway.
const LEEWAY_SECS: i64 = 5;

/// Access tokens whose signature and claims were verified, by their exact text.
///
/// Checking an Ed25519 signature is the largest single cost of an authenticated read; a
/// client sends the same token for up to its lifetime, so the result is remembered. Expiry is
/// checked again at every hit; revocation (sign-out, a reused refresh token, a disabled user
/// or integration, a password change) is decided per request against the database, never by
/// this cache.
#[derive(Default)]
struct VerifiedCache {
    entries: std::collections::HashMap<String, Verified>,
}

impl Verified {
    fn exp(&self) -> i64 {
        match self {
            Verified::User(c) => c.exp,
            Verified::Integration(c) => c.exp,
        }
    }

    fn expired_at(&self, now: i64) -> bool {
        self.exp() < now - LEEWAY_SECS
    }
}

impl VerifiedCache {
    fn get(&mut self, token: &str, now: i64) -> Option<Result<Verified, String>> {
        let hit = self.entries.get(token)?;
        if hit.expired_at(now) {
            self.entries.remove(token);
            return Some(Err("token expired".into()));
        }
        Some(Ok(hit.clone()))
    }

    fn insert(&mut self, token: &str, verified: &Verified, now: i64) {
        if self.entries.len() >= VERIFIED_CACHE_CAPACITY {
            self.entries.retain(|_, v| !v.expired_at(now));
        }
        if self.entries.len() >= VERIFIED_CACHE_CAPACITY {
            // Still full of live tokens: start afresh rather than track recency; the cost is
            // one signature check per client.
            self.entries.clear();
        }
        self.entries.insert(token.to_owned(), verified.clone());
    }
}

impl Keys {
    /// Loads an Ed25519 private key from PKCS#8 PEM.
    pub fn from_pem(pem: &str, issuer: &str) -> anyhow::Result<Self> {
        let signing = SigningKey::from_pkcs8_pem(pem)
            .map_err(|e| anyhow::anyhow!("not an Ed25519 PKCS#8 PEM private key: {e}"))?;
        let public = signing.verifying_key().to_bytes();
        let public_x = URL_SAFE_NO_PAD.encode(public);
        let digest = Sha256::digest(public);
        let kid = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
        Ok(Self {
            kid,
            encoding: EncodingKey::from_ed_pem(pem.as_bytes())?,
            decoding: DecodingKey::from_ed_components(&public_x)?,
            public_x,
            issuer: issuer.to_owned(),
            sealer: super::totp::SecretBox::derive(signing.as_bytes())?,
            verified: std::sync::Mutex::new(VerifiedCache::default()),
        })
    }

    /// Generates a new private key as PKCS#8 PEM.
    pub fn generate_pem() -> anyhow::Result<String> {
        let mut seed = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut seed);
        let key = SigningKey::from_bytes(&seed);
        let pem = key
            .to_pkcs8_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF)
            .map_err(|e| anyhow::anyhow!("cannot encode key: {e}"))?;
        Ok(pem.to_string())
    }

    /// Seals TOTP secrets at rest, with a key derived from this signing key.
    pub fn sealer(&self) -> &super::totp::SecretBox {
        &self.sealer
    }

    /// The key id in token headers.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The JWKS document with the public key.
    pub fn jwks(&self) -> serde_json::Value {
        serde_json::json!({
            "keys": [{
                "kty": "OKP",
                "crv": "Ed25519",
                "alg": "EdDSA",
                "use": "sig",
                "kid": self.kid,
                "x": self.public_x,
            }]
        })
    }

    /// Issues an access token for a user.
    pub fn issue(
        &self,
        user_id: &str,
        org: &str,
        role: &str,
        session_id: &str,
        ttl_secs: i64,
    ) -> anyhow::Result<String> {
        let now_ms = Utc::now().timestamp_millis();
        let now = now_ms.div_euclid(1000);
        let claims = Claims {
            iss: self.issuer.clone(),
            aud: AUDIENCE.into(),
            sub: user_id.into(),
            exp: now + ttl_secs,
            iat: now,
            iat_ms: now_ms,
            jti: uuid::Uuid::new_v4().to_string(),
            typ: ACCESS_TYPE.into(),
            org: org.into(),
            role: role.into(),
            sid: session_id.into(),
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        Ok(jsonwebtoken::encode(&header, &claims, &self.encoding)?)
    }

    /// Issues an access token for an integration, for `scope` (space-separated).
    pub fn issue_integration(
        &self,
        integration_id: &str,
        org: &str,
        scope: &str,
        ttl_secs: i64,
    ) -> anyhow::Result<String> {
        let now_ms = Utc::now().timestamp_millis();
        let now = now_ms.div_euclid(1000);
        let claims = IntegrationClaims {
            iss: self.issuer.clone(),
            aud: AUDIENCE.into(),
            sub: integration_id.into(),
            exp: now + ttl_secs,
            iat: now,
            iat_ms: now_ms,
            jti: uuid::Uuid::new_v4().to_string(),
            typ: INTEGRATION_TYPE.into(),
            org: org.into(),
            scope: scope.into(),
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        Ok(jsonwebtoken::encode(&header, &claims, &self.encoding)?)
    }

    /// Verifies an access token of either kind (signature, algorithm, key id, issuer,
    /// audience, expiry) and tells which principal it names by its type claim.
    pub fn verify_any(&self, token: &str) -> Result<Verified, String> {
        self.verify_any_at(token, Utc::now().timestamp())
    }

    fn verify_any_at(&self, token: &str, now: i64) -> Result<Verified, String> {
        if let Some(hit) = self.cache().get(token, now) {
            return hit;
        }
        let verified = self.verify_uncached(token)?;
        self.cache().insert(token, &verified, now);
        Ok(verified)
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, VerifiedCache> {
        // A panic while holding the lock cannot leave a wrong entry behind (entries are
        // inserted whole), so a poisoned cache is still sound.
        self.verified
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn verify_uncached(&self, token: &str) -> Result<Verified, String> {
        let value: serde_json::Value = self.decode(token)?;
        match value.get("typ").and_then(|t| t.as_str()) {
            Some(ACCESS_TYPE) => serde_json::from_value(value)
                .map(Verified::User)
                .map_err(|_| "invalid token".to_owned()),
            Some(INTEGRATION_TYPE) => serde_json::from_value(value)
                .map(Verified::Integration)
                .map_err(|_| "invalid token".to_owned()),
            _ => Err("not an access token".into()),
        }
    }

    /// Verifies signature, algorithm, key id, issuer, audience, expiry and token type.
    pub fn verify(&self, token: &str) -> Result<Claims, String> {
        match self.verify_any(token)? {
            Verified::User(claims) => Ok(claims),
            Verified::Integration(_) => Err("not a user's access token".into()),
        }
    }

    fn decode<T: serde::de::DeserializeOwned>(&self, token: &str) -> Result<T, String> {
        let header =
            jsonwebtoken::decode_header(token).map_err(|_| "malformed token".to_owned())?;
        if header.alg != Algorithm::EdDSA || header.kid.as_deref() != Some(self.kid.as_str()) {
            return Err("token not signed by this server".into());
        }
        let mut v = Validation::new(Algorithm::EdDSA);
        v.set_issuer(&[&self.issuer]);
        v.set_audience(&[AUDIENCE]);
        v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        v.leeway = LEEWAY_SECS as u64;
        let data =
            jsonwebtoken::decode::<T>(token, &self.decoding, &v).map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => "token expired".to_owned(),
                _ => "invalid token".to_owned(),
            })?;
        Ok(data.claims)
    }
}

/// A new opaque refresh token (or invitation code): 32 random bytes, URL-safe.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// How opaque secrets are stored: SHA-256, hex. They are high-entropy, so a fast hash is
/// enough; a database leak does not reveal usable tokens.
pub fn hash_secret(secret: &str) -> String {
    Sha256::digest(secret.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issue_and_verify_round_trip_and_foreign_keys_fail() {
        let keys = Keys::from_pem(&Keys::generate_pem().unwrap(), "aftercare").unwrap();
        let t = keys.issue("u1", "o1", "patient", "s1", 60).unwrap();
        let c = keys.verify(&t).unwrap();
        assert_eq!(c.sub, "u1");
        let other = Keys::from_pem(&Keys::generate_pem().unwrap(), "aftercare").unwrap();
        assert!(other.verify(&t).is_err());
        let expired = keys.issue("u1", "o1", "patient", "s1", -60).unwrap();
        assert_eq!(keys.verify(&expired).unwrap_err(), "token expired");
    }

    #[test]
    fn a_remembered_token_still_expires_and_only_its_exact_text_is_remembered() {
        let keys = Keys::from_pem(&Keys::generate_pem().unwrap(), "aftercare").unwrap();
        let t = keys.issue("u1", "o1", "patient", "s1", 60).unwrap();
        let now = Utc::now().timestamp();
        let exp = keys.verify_any_at(&t, now).unwrap();
        // Remembered: the second answer comes from the cache and is the same.
        assert!(keys.cache().entries.contains_key(&t));
        match keys.verify_any_at(&t, now + 30).unwrap() {
            Verified::User(c) => assert_eq!(c.sub, "u1"),
            Verified::Integration(_) => panic!("wrong principal"),
        }
        // Within the leeway after expiry it still passes, one second past it does not, and
        // the entry is dropped.
        let exp = match exp {
            Verified::User(c) => c.exp,
            Verified::Integration(c) => c.exp,
        };
        assert!(keys.verify_any_at(&t, exp + LEEWAY_SECS).is_ok());
        assert_eq!(
            keys.verify_any_at(&t, exp + LEEWAY_SECS + 1).unwrap_err(),
            "token expired"
        );
        assert!(!keys.cache().entries.contains_key(&t));
        // A token differing in one character of its signature is not the remembered one.
        keys.verify_any_at(&t, now).unwrap();
        let mut tampered = t.clone().into_bytes();
        let last = tampered.len() - 2;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).unwrap();
        assert!(keys.verify_any_at(&tampered, now).is_err());
        assert!(!keys.cache().entries.contains_key(&tampered));
    }

    #[test]
    fn the_cache_of_verified_tokens_stays_bounded() {
        let keys = Keys::from_pem(&Keys::generate_pem().unwrap(), "aftercare").unwrap();
        let now = Utc::now().timestamp();
        let live = keys.issue("u1", "o1", "patient", "s1", 600).unwrap();
        let verified = keys.verify_any_at(&live, now).unwrap();
        let mut cache = keys.cache();
        for i in 0..VERIFIED_CACHE_CAPACITY + 10 {
            cache.insert(&format!("token-{i}"), &verified, now);
            assert!(cache.entries.len() <= VERIFIED_CACHE_CAPACITY);
        }
        // Expired entries go first when it fills.
        cache.entries.clear();
        let expired = keys.issue("u2", "o1", "patient", "s2", 1).unwrap();
        let old = keys.verify_uncached(&expired).unwrap();
        for i in 0..VERIFIED_CACHE_CAPACITY - 1 {
            cache.insert(&format!("old-{i}"), &old, now);
        }
        cache.insert(&live, &verified, now);
        cache.insert("one-more", &verified, now + 60);
        assert!(cache.entries.contains_key(&live));
        assert_eq!(cache.entries.len(), 2);
    }
}
