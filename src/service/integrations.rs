//! Integrations (SPEC §9), as admins manage them: register, list, change, disable, delete,
//! rotate the secret. Every change takes effect on the integration's very next request,
//! because its token is checked against the stored integration on each one
//! (`auth::integration::authenticate`).

use std::collections::BTreeSet;

use chrono::NaiveDateTime;

use crate::auth::tokens::{hash_secret, random_token};
use crate::auth::{Caller, Role};
use crate::domain::categories::{self, Category};
use crate::domain::validation::FieldError;
use crate::error::ApiError;
use crate::service::audit;
use crate::state::AppState;
use crate::store::integrations::{self as store, IntegrationRow};
use crate::store::{self as db};

/// The two ways an integration authenticates at the token endpoint.
pub const AUTH_METHODS: [&str; 2] = ["client_secret_basic", "private_key_jwt"];

/// The signature algorithms accepted for `private_key_jwt` client assertions.
pub const ASSERTION_ALGORITHMS: [&str; 5] = ["EdDSA", "ES256", "ES384", "RS256", "RS384"];

/// JWK members that only a private key (or a shared secret) has.
const PRIVATE_MEMBERS: [&str; 7] = ["d", "p", "q", "dp", "dq", "qi", "k"];

/// What an admin registers.
#[derive(Debug, Clone)]
pub struct Registration {
    /// Shown to patients and in the accounting of disclosures.
    pub name: String,
    /// What it does, for patients deciding on consent.
    pub description: String,
    /// Granted scopes, `<category>.read`.
    pub scopes: Vec<String>,
    /// `client_secret_basic` or `private_key_jwt`.
    pub token_endpoint_auth_method: String,
    /// The public keys (a JWK Set) for `private_key_jwt`.
    pub jwks: Option<serde_json::Value>,
}

/// What an admin may change.
#[derive(Debug, Clone, Default)]
pub struct Changes {
    /// New name.
    pub name: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// New granted scopes (narrowing takes effect on the next request).
    pub scopes: Option<Vec<String>>,
    /// Disable (true) or re-enable (false).
    pub disabled: Option<bool>,
    /// Replaced public keys (`private_key_jwt` only); tokens issued before stop working.
    pub jwks: Option<serde_json::Value>,
}

/// An integration and, when just created or rotated, its client secret (shown once).
#[derive(Debug, Clone)]
pub struct WithSecret {
    /// The integration.
    pub row: IntegrationRow,
    /// The secret in clear, this once.
    pub client_secret: Option<String>,
}

fn text(field: &str, value: &str, min: usize, max: usize, errors: &mut Vec<FieldError>) -> String {
    let v = value.trim();
    // The limit is on what was sent, as the document states it; blanks are trimmed after.
    if v.chars().count() < min {
        errors.push(FieldError::new(field, "must not be empty"));
    } else if value.chars().count() > max {
        errors.push(FieldError::new(
            field,
            format!("must be at most {max} characters"),
        ));
    } else if v.chars().any(char::is_control) {
        errors.push(FieldError::new(
            field,
            "must not contain control characters",
        ));
    }
    v.to_owned()
}

/// Checks a list of scopes: at least one, each `<category>.read`.
pub fn check_scopes(scopes: &[String], errors: &mut Vec<FieldError>) -> BTreeSet<Category> {
    if scopes.is_empty() {
        errors.push(FieldError::new("scopes", "must grant at least one scope"));
    }
    let mut out = BTreeSet::new();
    for (i, s) in scopes.iter().enumerate() {
        match Category::from_scope(s) {
            Some(c) => {
                out.insert(c);
            }
            None => errors.push(FieldError::new(
                format!("scopes[{i}]"),
                format!(
                    "`{s}` is not a scope; scopes are {}",
                    categories::ALL.map(|c| c.scope()).join(", ")
                ),
            )),
        }
    }
    out
}

/// Checks a JWK Set of public signing keys and returns it as stored (compact JSON).
pub fn check_jwks(value: &serde_json::Value) -> Result<String, String> {
    let keys = value
        .get("keys")
        .and_then(|k| k.as_array())
        .ok_or("must be a JWK Set: an object with a `keys` array")?;
    if keys.is_empty() {
        return Err("must hold at least one key".into());
    }
    if keys.len() > 10 {
        return Err("must hold at most 10 keys".into());
    }
    let mut kids = BTreeSet::new();
    for (i, key) in keys.iter().enumerate() {
        let Some(obj) = key.as_object() else {
            return Err(format!("key {i} is not a JSON object"));
        };
        if let Some(m) = PRIVATE_MEMBERS.iter().find(|m| obj.contains_key(**m)) {
            return Err(format!(
                "key {i} holds the private member `{m}`: register public keys only"
            ));
        }
        let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(key.clone()).map_err(|_| {
            format!("key {i} is not a supported public JWK (RSA, EC P-256/P-384 or OKP Ed25519)")
        })?;
        jsonwebtoken::DecodingKey::from_jwk(&jwk)
            .map_err(|_| format!("key {i} is not a usable public key"))?;
        if let Some(kid) = &jwk.common.key_id {
            if !kids.insert(kid.clone()) {
                return Err(format!("key id `{kid}` appears twice"));
            }
        } else if keys.len() > 1 {
            return Err(format!(
                "key {i} has no `kid`; with several keys each needs one"
            ));
        }
    }
    serde_json::to_string(value).map_err(|e| e.to_string())
}

fn new_client_id() -> String {
    format!("ac_{}", uuid::Uuid::new_v4().simple())
}

fn new_secret() -> String {
    format!("acs_{}", random_token())
}

/// Registers an integration (admins; a recent sign-in, SPEC §12). Audited.
pub async fn register(
    state: &AppState,
    caller: &Caller,
    input: Registration,
) -> Result<WithSecret, ApiError> {
    caller.require(&[Role::Admin])?;
    caller.require_recent_sign_in()?;
    let mut errors = Vec::new();
    let name = text("name", &input.name, 1, 100, &mut errors);
    let description = text("description", &input.description, 0, 1000, &mut errors);
    let granted = check_scopes(&input.scopes, &mut errors);
    let method = input.token_endpoint_auth_method.as_str();
    let mut jwks = None;
    match (method, &input.jwks) {
        ("client_secret_basic", None) => {}
        ("client_secret_basic", Some(_)) => errors.push(FieldError::new(
            "jwks",
            "only for token_endpoint_auth_method private_key_jwt",
        )),
        ("private_key_jwt", None) => errors.push(FieldError::new(
            "jwks",
            "is required with token_endpoint_auth_method private_key_jwt",
        )),
        ("private_key_jwt", Some(v)) => match check_jwks(v) {
            Ok(s) => jwks = Some(s),
            Err(why) => errors.push(FieldError::new("jwks", why)),
        },
        _ => errors.push(FieldError::new(
            "token_endpoint_auth_method",
            "must be client_secret_basic or private_key_jwt",
        )),
    }
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let secret = (method == "client_secret_basic").then(new_secret);
    let now = db::now();
    let row = IntegrationRow {
        id: db::new_id(),
        organisation_id: caller.organisation_id.clone(),
        client_id: new_client_id(),
        name,
        description,
        scopes: categories::scope_string(&granted),
        token_endpoint_auth_method: method.to_owned(),
        secret_hash: secret.as_deref().map(hash_secret),
        jwks,
        credentials_changed_at: now,
        created_by: caller.user_id.clone(),
        created_at: now,
        updated_at: now,
        disabled_at: None,
        deleted_at: None,
    };
    let c = caller.clone();
    let saved = row.clone();
    state
        .store
        .transaction(move |conn| -> Result<_, ApiError> {
            store::insert(conn, &saved)?;
            audit::record(
                conn,
                &c,
                audit::Event::other("integration.registered", "integration", Some(&saved.id)),
            )?;
            Ok(())
        })
        .await?;
    Ok(WithSecret {
        row,
        client_secret: secret,
    })
}

/// The organisation's integrations (admins), oldest first.
pub async fn list(state: &AppState, caller: &Caller) -> Result<Vec<IntegrationRow>, ApiError> {
    caller.require(&[Role::Admin])?;
    let org = caller.organisation_id.clone();
    state
        .store
        .run(move |conn| -> Result<_, ApiError> { Ok(store::for_organisation(conn, &org)?) })
        .await
}

fn reachable(
    conn: &mut db::DbConnection,
    caller: &Caller,
    id: &str,
) -> Result<IntegrationRow, ApiError> {
    match store::find(conn, id)? {
        Some(r) if r.organisation_id == caller.organisation_id && r.deleted_at.is_none() => Ok(r),
        _ => Err(ApiError::NotFound),
    }
}

/// One of the organisation's integrations (admins); another organisation's is a 404.
pub async fn get(
    state: &AppState,
    caller: &Caller,
    id: String,
) -> Result<IntegrationRow, ApiError> {
    caller.require(&[Role::Admin])?;
    let c = caller.clone();
    state.store.run(move |conn| reachable(conn, &c, &id)).await
}

/// The webhooks one of the organisation's integrations registered (admins); another
/// organisation's integration is a 404.
pub async fn webhooks(
    state: &AppState,
    caller: &Caller,
    id: String,
) -> Result<Vec<crate::store::deliveries::WebhookRow>, ApiError> {
    caller.require(&[Role::Admin])?;
    let c = caller.clone();
    state
        .store
        .run(move |conn| {
            let i = reachable(conn, &c, &id)?;
            Ok(crate::store::deliveries::integration_webhooks(conn, &i.id)?)
        })
        .await
}

/// Applies an admin's changes. Audited.
pub async fn update(
    state: &AppState,
    caller: &Caller,
    id: String,
    changes: Changes,
) -> Result<IntegrationRow, ApiError> {
    caller.require(&[Role::Admin])?;
    let mut errors = Vec::new();
    let name = changes
        .name
        .as_deref()
        .map(|n| text("name", n, 1, 100, &mut errors));
    let description = changes
        .description
        .as_deref()
        .map(|d| text("description", d, 0, 1000, &mut errors));
    let scopes = changes
        .scopes
        .as_deref()
        .map(|s| categories::scope_string(&check_scopes(s, &mut errors)));
    let jwks = match &changes.jwks {
        None => None,
        Some(v) => match check_jwks(v) {
            Ok(s) => Some(s),
            Err(why) => {
                errors.push(FieldError::new("jwks", why));
                None
            }
        },
    };
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    // Widening what an integration may read, replacing its keys or enabling it again is
    // registering it anew; narrowing and disabling are safety actions, never held up.
    if changes.jwks.is_some() || changes.disabled == Some(false) {
        caller.require_recent_sign_in()?;
    }
    let c = caller.clone();
    state
        .store
        .transaction(move |conn| -> Result<_, ApiError> {
            let mut row = reachable(conn, &c, &id)?;
            let now = db::now();
            if jwks.is_some() && row.token_endpoint_auth_method != "private_key_jwt" {
                return Err(ApiError::Validation(vec![FieldError::new(
                    "jwks",
                    "only for token_endpoint_auth_method private_key_jwt",
                )]));
            }
            if let Some(n) = name {
                row.name = n;
            }
            if let Some(d) = description {
                row.description = d;
            }
            if let Some(s) = scopes {
                let before = categories::parse_scopes(&row.scopes).unwrap_or_default();
                let after = categories::parse_scopes(&s).unwrap_or_default();
                if !after.is_subset(&before) {
                    c.require_recent_sign_in()?;
                }
                row.scopes = s;
            }
            if let Some(j) = jwks {
                row.jwks = Some(j);
                row.credentials_changed_at = now;
            }
            match changes.disabled {
                Some(true) if row.disabled_at.is_none() => {
                    row.disabled_at = Some(now);
                    // Tokens issued before stay dead if it is enabled again.
                    row.credentials_changed_at = now;
                }
                Some(false) => row.disabled_at = None,
                _ => {}
            }
            row.updated_at = now;
            store::update(conn, &row)?;
            audit::record(
                conn,
                &c,
                audit::Event::other("integration.updated", "integration", Some(&row.id)),
            )?;
            Ok(row)
        })
        .await
}

/// Deletes an integration (admins): its tokens stop at once and it is no longer offered to
/// patients. Its consents and disclosures stay on record. Audited.
pub async fn delete(state: &AppState, caller: &Caller, id: String) -> Result<(), ApiError> {
    caller.require(&[Role::Admin])?;
    let c = caller.clone();
    state
        .store
        .transaction(move |conn| -> Result<_, ApiError> {
            let mut row = reachable(conn, &c, &id)?;
            let now = db::now();
            row.deleted_at = Some(now);
            row.updated_at = now;
            store::update(conn, &row)?;
            // Nothing more can be disclosed to it: its consents end, as the patients see.
            crate::store::consents::revoke_for_integration(conn, &row.id, now)?;
            audit::record(
                conn,
                &c,
                audit::Event::other("integration.deleted", "integration", Some(&row.id)),
            )?;
            Ok(())
        })
        .await
}

/// Rotates a `client_secret_basic` integration's secret (admins; a recent sign-in): the old
/// secret and every token issued under it stop working at once. Audited.
pub async fn rotate_secret(
    state: &AppState,
    caller: &Caller,
    id: String,
) -> Result<WithSecret, ApiError> {
    caller.require(&[Role::Admin])?;
    caller.require_recent_sign_in()?;
    let c = caller.clone();
    let secret = new_secret();
    let hash = hash_secret(&secret);
    let row = state
        .store
        .transaction(move |conn| -> Result<_, ApiError> {
            let mut row = reachable(conn, &c, &id)?;
            if row.token_endpoint_auth_method != "client_secret_basic" {
                return Err(ApiError::Conflict(
                    "This integration authenticates with private_key_jwt: it has no secret; replace its keys with PATCH jwks instead.".into(),
                ));
            }
            let now: NaiveDateTime = db::now();
            row.secret_hash = Some(hash);
            row.credentials_changed_at = now;
            row.updated_at = now;
            store::update(conn, &row)?;
            audit::record(
                conn,
                &c,
                audit::Event::other("integration.secret_rotated", "integration", Some(&row.id)),
            )?;
            Ok(row)
        })
        .await?;
    Ok(WithSecret {
        row,
        client_secret: Some(secret),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn scopes_are_named_when_unknown() {
        let mut errors = Vec::new();
        let got = check_scopes(
            &[
                "alerts.read".into(),
                "notes.read".into(),
                "alerts.read".into(),
            ],
            &mut errors,
        );
        assert_eq!(got, BTreeSet::from([Category::Alerts]));
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].field, "scopes[1]");
        let mut errors = Vec::new();
        check_scopes(&[], &mut errors);
        assert_eq!(errors[0].field, "scopes");
    }

    #[test]
    fn a_jwk_set_holds_public_keys_only() {
        let public = json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "kid": "k1",
            "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]});
        assert!(check_jwks(&public).is_ok());
        let mut private = public.clone();
        private["keys"][0]["d"] = json!("nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A");
        assert!(check_jwks(&private)
            .unwrap_err()
            .contains("private member `d`"));
        assert!(check_jwks(&json!({"keys": []})).is_err());
        assert!(check_jwks(&json!([1])).is_err());
        let secret = json!({"keys": [{"kty": "oct", "k": "c2VjcmV0"}]});
        assert!(check_jwks(&secret).is_err());
        let two_without_kid = json!({"keys": [
            {"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
            {"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]});
        assert!(check_jwks(&two_without_kid).unwrap_err().contains("kid"));
    }
}
