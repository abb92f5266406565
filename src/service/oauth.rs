//! The OAuth 2.0 token endpoint's decisions (client credentials, RFC 6749 §4.4): who the
//! client is (`client_secret_basic`, or an RFC 7523 `private_key_jwt` assertion as SMART
//! Backend Services clients send), whether it may have the scopes it asks for, and the token.
//! Failures are throttled like sign-ins: by client id, network and the pair.

use std::collections::BTreeSet;

use serde::Deserialize;

use crate::auth::tokens::hash_secret;
use crate::domain::categories::{self, Category};
use crate::error::ApiError;
use crate::service::audit;
use crate::service::integrations::ASSERTION_ALGORITHMS;
use crate::service::sign_in_throttle as throttle;
use crate::state::AppState;
use crate::store::integrations::{self as store, IntegrationRow};
use crate::store::{self as db};

/// The only grant type.
pub const CLIENT_CREDENTIALS: &str = "client_credentials";
/// RFC 7523's client assertion type.
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// Integration access tokens live at most this long (SPEC §9: at most 900 s).
pub const TOKEN_TTL_SECS: u64 = 300;
/// A client assertion may expire at most this far ahead (SMART Backend Services: 5 minutes).
pub const MAX_ASSERTION_LIFETIME_SECS: i64 = 300;
/// Clock skew allowed on assertion times.
const LEEWAY_SECS: u64 = 30;

/// How the client authenticated.
#[derive(Debug, Clone)]
pub enum ClientCredentials {
    /// HTTP Basic with the client id and secret.
    Basic {
        /// The client id.
        client_id: String,
        /// The secret.
        secret: String,
    },
    /// A signed JWT.
    Assertion {
        /// The compact JWT.
        assertion: String,
        /// The `client_id` parameter, if sent (it must then match the assertion).
        client_id: Option<String>,
    },
}

/// A token request, as the HTTP layer read it.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    /// `grant_type`.
    pub grant_type: Option<String>,
    /// `scope`, space-separated; none: every granted scope.
    pub scope: Option<String>,
    /// The client's authentication.
    pub credentials: ClientCredentials,
    /// The client's address, for throttling.
    pub client_ip: String,
    /// For the audit trail.
    pub request_id: Option<String>,
}

/// The errors of RFC 6749 §5.2 (and 429 for a throttled client).
#[derive(Debug)]
pub enum OAuthError {
    /// A missing, repeated or malformed parameter.
    InvalidRequest(String),
    /// Client authentication failed (401).
    InvalidClient(String),
    /// A scope that is unknown or not granted.
    InvalidScope(String),
    /// Not `client_credentials`.
    UnsupportedGrantType(String),
    /// Too many failures: retry after this many seconds (429).
    Throttled(u64),
    /// Storage or another server-side failure.
    Server(ApiError),
}

impl From<ApiError> for OAuthError {
    fn from(e: ApiError) -> Self {
        Self::Server(e)
    }
}

/// An issued token.
#[derive(Debug, Clone)]
pub struct Issued {
    /// The bearer token.
    pub access_token: String,
    /// Seconds it is valid.
    pub expires_in: u64,
    /// The scopes it carries, space-separated.
    pub scope: String,
}

#[derive(Debug, Deserialize)]
struct AssertionClaims {
    iss: Option<String>,
    sub: Option<String>,
    exp: i64,
    jti: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Unverified {
    iss: Option<String>,
}

/// Why a client's authentication failed. Its text is logged; [`Self::told_to_client`] says
/// whether the client is told it too.
#[derive(Debug, Clone, PartialEq)]
enum ClientAuthFailure {
    UnknownClient,
    Disabled,
    WrongSecret,
    /// An assertion from a client registered for `client_secret_basic`.
    RegisteredForSecret,
    MalformedAssertion,
    Algorithm(String),
    NoKeysRegistered,
    NoKeyForKid,
    KeyForAnotherAlgorithm,
    UnusableKey,
    /// `jsonwebtoken` refused the assertion (signature, `aud`, `exp`, `nbf`, …).
    InvalidAssertion(String),
    IssuerNotSubject,
    ExpiresTooFarAhead,
    NoJti,
    Replayed,
}

impl std::fmt::Display for ClientAuthFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::UnknownClient => f.write_str("unknown client"),
            Self::Disabled => f.write_str("client disabled"),
            Self::WrongSecret => f.write_str("wrong secret"),
            Self::RegisteredForSecret => f.write_str("client registered for client_secret_basic"),
            Self::MalformedAssertion => f.write_str("malformed assertion"),
            Self::Algorithm(alg) => write!(f, "algorithm {alg} is not accepted"),
            Self::NoKeysRegistered => f.write_str("no keys registered"),
            Self::NoKeyForKid => f.write_str("no registered key matches the assertion's kid"),
            Self::KeyForAnotherAlgorithm => {
                f.write_str("the key is registered for another algorithm")
            }
            Self::UnusableKey => f.write_str("unusable key"),
            Self::InvalidAssertion(e) => write!(f, "assertion not valid: {e}"),
            Self::IssuerNotSubject => f.write_str("iss and sub must both be the client id"),
            Self::ExpiresTooFarAhead => f.write_str("exp is more than 5 minutes ahead"),
            Self::NoJti => f.write_str("jti is required"),
            Self::Replayed => f.write_str("assertion replayed (jti used before)"),
        }
    }
}

impl ClientAuthFailure {
    /// An assertion's own faults are told to its sender (it holds the key and needs to know
    /// what to fix); whether a client is disabled, or how its registration or a secret is
    /// wrong, is not. (Those faults are found only for a client id registered for
    /// `private_key_jwt`, so they do tell an assertion's sender that the id it named exists;
    /// client ids are identifiers, not secrets — RFC 6749 §2.2.)
    fn told_to_client(&self) -> bool {
        matches!(
            self,
            Self::Algorithm(_)
                | Self::NoKeyForKid
                | Self::InvalidAssertion(_)
                | Self::IssuerNotSubject
                | Self::ExpiresTooFarAhead
                | Self::NoJti
                | Self::Replayed
        )
    }
}

/// Verifies a client assertion against the integration's registered keys; the `jti` and
/// its expiry on success.
fn verify_assertion(
    row: &IntegrationRow,
    assertion: &str,
    token_url: &str,
    now: i64,
) -> Result<(String, i64), ClientAuthFailure> {
    use ClientAuthFailure as F;
    let header = jsonwebtoken::decode_header(assertion).map_err(|_| F::MalformedAssertion)?;
    let alg = format!("{:?}", header.alg);
    if !ASSERTION_ALGORITHMS.contains(&alg.as_str()) {
        return Err(F::Algorithm(alg));
    }
    let set: jsonwebtoken::jwk::JwkSet = row
        .jwks
        .as_deref()
        .and_then(|j| serde_json::from_str(j).ok())
        .ok_or(F::NoKeysRegistered)?;
    let key = match &header.kid {
        Some(kid) => set.find(kid),
        None if set.keys.len() == 1 => set.keys.first(),
        None => None,
    }
    .ok_or(F::NoKeyForKid)?;
    if let Some(a) = &key.common.key_algorithm {
        if format!("{a:?}") != alg {
            return Err(F::KeyForAnotherAlgorithm);
        }
    }
    let decoding = jsonwebtoken::DecodingKey::from_jwk(key).map_err(|_| F::UnusableKey)?;
    let mut v = jsonwebtoken::Validation::new(header.alg);
    // SMART Backend Services name the token URL; RFC 7523 allows the issuer too.
    let issuer = token_url.trim_end_matches("/oauth/token");
    v.set_audience(&[token_url, issuer]);
    v.set_issuer(&[row.client_id.as_str()]);
    v.sub = Some(row.client_id.clone());
    v.set_required_spec_claims(&["exp", "iss", "sub", "aud"]);
    v.leeway = LEEWAY_SECS;
    v.validate_nbf = true;
    let data = jsonwebtoken::decode::<AssertionClaims>(assertion, &decoding, &v)
        .map_err(|e| F::InvalidAssertion(e.to_string()))?;
    let c = data.claims;
    if c.iss.as_deref() != Some(row.client_id.as_str())
        || c.sub.as_deref() != Some(row.client_id.as_str())
    {
        return Err(F::IssuerNotSubject);
    }
    if c.exp > now + MAX_ASSERTION_LIFETIME_SECS + i64::try_from(LEEWAY_SECS).unwrap_or(30) {
        return Err(F::ExpiresTooFarAhead);
    }
    let jti = c
        .jti
        .filter(|j| !j.is_empty() && j.len() <= 255)
        .ok_or(F::NoJti)?;
    Ok((jti, c.exp))
}

/// The client id a request names, before anything is verified (for throttling and lookup).
fn claimed_client_id(credentials: &ClientCredentials) -> Result<String, OAuthError> {
    match credentials {
        ClientCredentials::Basic { client_id, .. } => Ok(client_id.clone()),
        ClientCredentials::Assertion {
            assertion,
            client_id,
        } => {
            let iss = jsonwebtoken::dangerous::insecure_decode::<Unverified>(assertion)
                .ok()
                .and_then(|d| d.claims.iss)
                .ok_or_else(|| {
                    OAuthError::InvalidClient("The client assertion cannot be read.".into())
                })?;
            if client_id.as_ref().is_some_and(|c| *c != iss) {
                return Err(OAuthError::InvalidClient(
                    "client_id does not match the assertion's issuer.".into(),
                ));
            }
            Ok(iss)
        }
    }
}

/// Which of the granted scopes the request asks for.
fn requested_scopes(
    asked: Option<&str>,
    granted: &BTreeSet<Category>,
) -> Result<BTreeSet<Category>, OAuthError> {
    let Some(asked) = asked.filter(|s| !s.trim().is_empty()) else {
        return Ok(granted.clone());
    };
    let set = categories::parse_scopes(asked)
        .map_err(|s| OAuthError::InvalidScope(format!("`{s}` is not a scope.")))?;
    if let Some(c) = set.iter().find(|c| !granted.contains(c)) {
        return Err(OAuthError::InvalidScope(format!(
            "`{}` was not granted to this client.",
            c.scope()
        )));
    }
    Ok(set)
}

/// Issues a token for a client-credentials request, or says why not.
pub async fn token(state: &AppState, req: TokenRequest) -> Result<Issued, OAuthError> {
    match req.grant_type.as_deref() {
        None | Some("") => {
            return Err(OAuthError::InvalidRequest("grant_type is required.".into()))
        }
        Some(CLIENT_CREDENTIALS) => {}
        Some(other) => {
            return Err(OAuthError::UnsupportedGrantType(format!(
                "grant_type `{other}` is not supported; use client_credentials."
            )))
        }
    }
    let client_id = claimed_client_id(&req.credentials)?;
    let keys = throttle::Keys::new(&client_id, &req.client_ip);
    let limits = throttle::Limits::of(state);
    let _turn = state
        .sign_in_turns
        .turn(&format!("client:{client_id}"))
        .await;

    let (k, cid) = (keys.clone(), client_id.clone());
    let (row, retry) = state
        .store
        .run(move |conn| -> Result<_, ApiError> {
            let retry = throttle::check(conn, &k, &limits, db::now())?;
            Ok((store::find_by_client_id(conn, &cid)?, retry))
        })
        .await?;
    if let Some(secs) = retry {
        return Err(OAuthError::Throttled(secs));
    }
    let now = chrono::Utc::now().timestamp();
    let token_url = state.token_url();
    let verdict: Result<(IntegrationRow, Option<(String, i64)>), ClientAuthFailure> =
        match (row, &req.credentials) {
            (None, _) => Err(ClientAuthFailure::UnknownClient),
            (Some(r), _) if !r.is_active() => Err(ClientAuthFailure::Disabled),
            (Some(r), ClientCredentials::Basic { secret, .. }) => {
                let ok = r.token_endpoint_auth_method == "client_secret_basic"
                    && r.secret_hash.as_deref() == Some(hash_secret(secret).as_str());
                if ok {
                    Ok((r, None))
                } else {
                    Err(ClientAuthFailure::WrongSecret)
                }
            }
            (Some(r), ClientCredentials::Assertion { assertion, .. }) => {
                if r.token_endpoint_auth_method != "private_key_jwt" {
                    Err(ClientAuthFailure::RegisteredForSecret)
                } else {
                    verify_assertion(&r, assertion, &token_url, now).map(|j| (r, Some(j)))
                }
            }
        };
    let request_id = req.request_id.clone();
    let scope = req.scope.clone();
    let outcome = state
        .store
        .transaction(
            move |conn| -> Result<Result<IntegrationRow, ClientAuthFailure>, ApiError> {
                let at = db::now();
                let verdict = match verdict {
                    Ok((row, Some((jti, exp)))) => {
                        let expires = chrono::DateTime::from_timestamp(exp, 0)
                            .map_or(at, |t| t.naive_utc())
                            + chrono::TimeDelta::seconds(i64::try_from(LEEWAY_SECS).unwrap_or(30));
                        if store::use_assertion(conn, &row.id, &jti, expires, at)? {
                            Ok(row)
                        } else {
                            Err(ClientAuthFailure::Replayed)
                        }
                    }
                    Ok((row, None)) => Ok(row),
                    Err(why) => Err(why),
                };
                match &verdict {
                    Ok(row) => {
                        throttle::record_success(conn, &keys, at)?;
                        audit::record_integration(
                            conn,
                            &row.organisation_id,
                            &row.id,
                            request_id.as_deref(),
                            audit::Event::other("oauth.token_issued", "integration", Some(&row.id)),
                        )?;
                    }
                    Err(_) => {
                        throttle::record_failure(conn, &keys, &limits, at)?;
                        let known = store::find_by_client_id(conn, &client_id)?;
                        audit::record_anonymous(
                            conn,
                            known.as_ref().map(|r| r.organisation_id.as_str()),
                            known.as_ref().map(|r| r.id.as_str()),
                            "oauth.token_failed",
                            "failure",
                            request_id.as_deref(),
                        )?;
                    }
                }
                Ok(verdict)
            },
        )
        .await?;
    let row = outcome.map_err(|why| {
        tracing::info!(reason = %why, "client authentication failed");
        if why.told_to_client() {
            OAuthError::InvalidClient(format!("Client authentication failed: {why}."))
        } else {
            OAuthError::InvalidClient("Client authentication failed.".into())
        }
    })?;
    let granted = categories::parse_scopes(&row.scopes).unwrap_or_default();
    let set = requested_scopes(scope.as_deref(), &granted)?;
    if set.is_empty() {
        return Err(OAuthError::InvalidScope(
            "This client has no scopes granted.".into(),
        ));
    }
    let scope = categories::scope_string(&set);
    let ttl = TOKEN_TTL_SECS.min(state.settings.access_token_ttl.as_secs());
    let access_token = state
        .keys
        .issue_integration(
            &row.id,
            &row.organisation_id,
            &scope,
            i64::try_from(ttl).unwrap_or(300),
        )
        .map_err(ApiError::internal)?;
    Ok(Issued {
        access_token,
        expires_in: ttl,
        scope,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_assertion_s_own_faults_are_told_to_the_client() {
        use ClientAuthFailure as F;
        for told in [
            F::Algorithm("HS256".into()),
            F::NoKeyForKid,
            F::InvalidAssertion("ExpiredSignature".into()),
            F::IssuerNotSubject,
            F::ExpiresTooFarAhead,
            F::NoJti,
            F::Replayed,
        ] {
            assert!(told.told_to_client(), "{told}");
        }
        for kept in [
            F::UnknownClient,
            F::Disabled,
            F::WrongSecret,
            F::RegisteredForSecret,
            F::MalformedAssertion,
            F::NoKeysRegistered,
            F::KeyForAnotherAlgorithm,
            F::UnusableKey,
        ] {
            assert!(!kept.told_to_client(), "{kept}");
        }
    }

    #[test]
    fn asked_scopes_must_be_granted() {
        let granted = BTreeSet::from([Category::Alerts, Category::Wellbeing]);
        assert_eq!(requested_scopes(None, &granted).unwrap(), granted);
        assert_eq!(
            requested_scopes(Some("alerts.read"), &granted).unwrap(),
            BTreeSet::from([Category::Alerts])
        );
        assert!(matches!(
            requested_scopes(Some("phase.read"), &granted),
            Err(OAuthError::InvalidScope(m)) if m.contains("phase.read")
        ));
        assert!(matches!(
            requested_scopes(Some("notes.read"), &granted),
            Err(OAuthError::InvalidScope(_))
        ));
    }
}
