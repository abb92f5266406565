//! Integrations (SPEC §9): an admin registers another system, it takes OAuth 2.0
//! client-credentials tokens, patients consent to it by category, and it reads only what both
//! the consent and its scopes allow — each disclosure accounted for to the patient.

use std::collections::BTreeSet;

use ed25519_dalek::pkcs8::EncodePrivateKey;
use ed25519_dalek::SigningKey;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

use crate::helpers::{
    calm_with, read, spawn_app, spawn_app_with, today, Login, Resp, TestApp, SOWS_ITEMS,
};

const NEW_YORK: &str = "America/New_York";
const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// The counselling note of the check-in: it never reaches an integration.
const NOTE: &str = "Argued with my brother about the rent again";
const SUBSTANCE: &str = "carfentanil";

/// A registered integration, as its admin saw it on creation.
struct Registered {
    id: String,
    client_id: String,
    secret: String,
    name: String,
}

/// Registers a `client_secret_basic` integration with these scopes.
async fn register(app: &TestApp, admin: &Login, name: &str, scopes: &[&str]) -> Registered {
    let r = app
        .post(
            "/v1/organisation/integrations",
            admin.t(),
            &json!({"name": name, "description": format!("{name}, for tests"),
                    "scopes": scopes, "token_endpoint_auth_method": "client_secret_basic"}),
        )
        .await
        .expect(201);
    Registered {
        id: str_of(&r.body["id"]),
        client_id: str_of(&r.body["client_id"]),
        secret: str_of(&r.body["client_secret"]),
        name: name.to_owned(),
    }
}

#[track_caller]
fn str_of(v: &Value) -> String {
    v.as_str()
        .unwrap_or_else(|| panic!("a string, not {v}"))
        .to_owned()
}

/// `POST /oauth/token` with HTTP Basic client authentication and this form.
async fn token_basic(app: &TestApp, client_id: &str, secret: &str, form: &[(&str, &str)]) -> Resp {
    let rb = app
        .client
        .post(app.url("/oauth/token"))
        .basic_auth(client_id, Some(secret))
        .form(form);
    read(rb.send().await.expect("request")).await
}

/// `POST /oauth/token` with this form and no Authorization header.
async fn token_form(app: &TestApp, form: &[(&str, &str)]) -> Resp {
    let rb = app.client.post(app.url("/oauth/token")).form(form);
    read(rb.send().await.expect("request")).await
}

/// A client-credentials access token with every granted scope.
async fn token(app: &TestApp, i: &Registered) -> String {
    let r = token_basic(
        app,
        &i.client_id,
        &i.secret,
        &[("grant_type", "client_credentials")],
    )
    .await
    .expect(200);
    str_of(&r.body["access_token"])
}

/// Asserts an RFC 6749 §5.2 error: this status and `error`, JSON (not problem+json), no-store.
#[track_caller]
fn assert_oauth_error(r: &Resp, status: u16, error: &str) {
    assert_eq!(r.status, status, "status; body: {}", r.text);
    assert_eq!(r.body["error"], error, "{}", r.text);
    assert!(
        r.body["error_description"].is_string(),
        "error_description: {}",
        r.text
    );
    let ct = r.header("content-type").unwrap_or_default();
    assert!(
        ct.starts_with("application/json"),
        "an OAuth error is plain JSON, not {ct:?}"
    );
    assert_eq!(r.header("cache-control"), Some("no-store"), "{}", r.text);
    if error == "invalid_client" {
        let auth = r.header("www-authenticate").unwrap_or_default();
        assert!(auth.starts_with("Basic"), "WWW-Authenticate: {auth:?}");
    }
}

/// The space-separated scopes of a string, as a set.
fn scope_set(s: &str) -> BTreeSet<String> {
    s.split_whitespace().map(str::to_owned).collect()
}

/// A name given either as a string or as an object with a `name`.
fn name_of(v: &Value) -> Option<&str> {
    v.as_str().or_else(|| v["name"].as_str())
}

/// The category names of a list given as names or as `{category, ...}` objects.
fn categories_of(v: &Value) -> BTreeSet<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("a list of categories, not {v}"))
        .iter()
        .map(|c| {
            c.as_str()
                .or_else(|| c["category"].as_str())
                .unwrap_or_else(|| panic!("a category: {c}"))
                .to_owned()
        })
        .collect()
}

/// A list of strings, as a set.
fn strings(v: &Value) -> BTreeSet<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("a list, not {v}"))
        .iter()
        .map(str_of)
        .collect()
}

/// Asserts a validation problem names `field` (or an element of it, `field[1]`) and no other.
#[track_caller]
fn assert_names(r: &Resp, field: &str) {
    let fields = r.error_fields();
    assert!(
        !fields.is_empty()
            && fields.iter().all(|f| f == field
                || f.starts_with(&format!("{field}["))
                || f.starts_with(&format!("{field}."))),
        "{field} is named: {}",
        r.text
    );
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| (*s).to_owned()).collect()
}

#[track_caller]
fn assert_notice(r: &Resp, consent_id: &str) {
    let notice = r.body["notice"].as_str().unwrap_or_default().to_lowercase();
    assert!(
        notice.contains("42 cfr part 2"),
        "the Part 2 notice: {}",
        r.text
    );
    assert_eq!(r.body["consent_id"], consent_id, "{}", r.text);
}

/// `patient` consents to `integration_id` for these categories; the consent's id.
async fn consent(
    app: &TestApp,
    patient: &Login,
    integration_id: &str,
    categories: &[&str],
) -> String {
    let r = app
        .post(
            "/v1/me/consents",
            patient.t(),
            &json!({"integration_id": integration_id, "categories": categories,
                    "purpose": "Reminders to take medication"}),
        )
        .await
        .expect(201);
    str_of(&r.body["id"])
}

/// A check-in that answers every category, with a counselling note.
fn full_day() -> Value {
    let sows: serde_json::Map<String, Value> = SOWS_ITEMS
        .iter()
        .map(|k| ((*k).to_owned(), json!(1)))
        .collect();
    calm_with(json!({
        "craving": 4, "mood": 5, "anxiety": 3, "loneliness": 2, "triggers": ["stress"],
        "used_substance": true, "substances": [SUBSTANCE], "withdrawal": sows,
        "took_medication": true, "attended_support": true, "self_harm_thoughts": false,
        "note": NOTE
    }))
}

/// The fields no consent to wellbeing and safety discloses.
const NOT_WELLBEING_OR_SAFETY: [&str; 8] = [
    "note",
    "used_substance",
    "substances",
    "days_since_last_use",
    "withdrawal",
    "withdrawal_score",
    "took_medication",
    "attended_support",
];

/// An Ed25519 key and its public JWK (`kid` "k1").
fn ed25519_key() -> (SigningKey, Value) {
    let key = SigningKey::from_bytes(&rand::random::<[u8; 32]>());
    let x = base64::Engine::encode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        key.verifying_key().as_bytes(),
    );
    let jwk =
        json!({"kty": "OKP", "crv": "Ed25519", "x": x, "kid": "k1", "use": "sig", "alg": "EdDSA"});
    (key, jwk)
}

/// A signed client assertion (RFC 7523) expiring `exp_in` seconds from now.
fn assertion(key: &SigningKey, client_id: &str, aud: &str, exp_in: i64, jti: &str) -> String {
    let now = chrono::Utc::now().timestamp();
    let claims = json!({"iss": client_id, "sub": client_id, "aud": aud,
                        "exp": now + exp_in, "iat": now, "jti": jti});
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some("k1".into());
    let der = key.to_pkcs8_der().expect("pkcs8");
    jsonwebtoken::encode(&header, &claims, &EncodingKey::from_ed_der(der.as_bytes()))
        .expect("sign the assertion")
}

async fn token_jwt(app: &TestApp, jwt: &str) -> Resp {
    token_form(
        app,
        &[
            ("grant_type", "client_credentials"),
            ("client_assertion_type", ASSERTION_TYPE),
            ("client_assertion", jwt),
        ],
    )
    .await
}

fn jti() -> String {
    uuid::Uuid::new_v4().to_string()
}

// ---------------------------------------------------------------------------------------------
// Registration

#[tokio::test]
async fn an_admin_registers_an_integration_and_sees_its_secret_only_once() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let counsellor = app.counsellor(&admin).await;
    let patient = app.patient(&counsellor).await;

    let made = app
        .post(
            "/v1/organisation/integrations",
            admin.t(),
            &json!({"name": "PillPal", "description": "Medication reminders",
                    "scopes": ["wellbeing.read", "medication.read"],
                    "token_endpoint_auth_method": "client_secret_basic"}),
        )
        .await
        .expect(201);
    let b = &made.body;
    let id = str_of(&b["id"]);
    let secret = str_of(&b["client_secret"]);
    assert!(secret.len() >= 20, "a long secret: {secret}");
    assert!(b["client_id"].is_string());
    assert_eq!(b["name"], "PillPal");
    assert_eq!(b["description"], "Medication reminders");
    assert_eq!(
        strings(&b["scopes"]),
        set(&["wellbeing.read", "medication.read"])
    );
    assert_eq!(b["token_endpoint_auth_method"], "client_secret_basic");
    assert!(b["created_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(b["disabled_at"], Value::Null);

    // Listed and read back, never with the secret.
    let list = app
        .get("/v1/organisation/integrations", admin.t())
        .await
        .expect(200);
    let items = list.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{}", list.text);
    assert_eq!(items[0]["id"], id.as_str());
    assert_eq!(items[0]["client_id"], b["client_id"]);
    assert!(!list.text.contains(&secret), "the secret is shown once");
    assert!(!items[0]["client_secret"].is_string());
    assert_eq!(list.body["next_cursor"], Value::Null);
    let one = app
        .get(&format!("/v1/organisation/integrations/{id}"), admin.t())
        .await
        .expect(200);
    assert_eq!(one.body["name"], "PillPal");
    assert!(!one.text.contains(&secret), "the secret is shown once");

    // Invalid registrations name the field.
    let base = json!({"name": "X", "description": "d", "scopes": ["wellbeing.read"],
                      "token_endpoint_auth_method": "client_secret_basic"});
    let with = |k: &str, v: Value| {
        let mut b = base.clone();
        b[k] = v;
        b
    };
    let cases = [
        (
            with("scopes", json!(["wellbeing.read", "notes.read"])),
            "scopes",
        ),
        (with("scopes", json!([])), "scopes"),
        (
            with("token_endpoint_auth_method", json!("private_key_jwt")),
            "jwks",
        ),
        (with("name", json!("")), "name"),
        (
            with("token_endpoint_auth_method", json!("client_secret_post")),
            "token_endpoint_auth_method",
        ),
        (with("jwks", json!({"keys": [ed25519_key().1]})), "jwks"),
    ];
    for (body, field) in cases {
        let r = app
            .post("/v1/organisation/integrations", admin.t(), &body)
            .await
            .expect_problem(422);
        assert_names(&r, field);
    }
    // A JWKS holding a private key is refused.
    let (key, mut jwk) = ed25519_key();
    jwk["d"] = json!(base64::Engine::encode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        key.as_bytes()
    ));
    let mut body = with("token_endpoint_auth_method", json!("private_key_jwt"));
    body["jwks"] = json!({"keys": [jwk]});
    let r = app
        .post("/v1/organisation/integrations", admin.t(), &body)
        .await
        .expect_problem(422);
    assert_names(&r, "jwks");
    // Unknown fields are refused.
    let r = app
        .post(
            "/v1/organisation/integrations",
            admin.t(),
            &with("redirect_uri", json!("https://example.org/cb")),
        )
        .await;
    assert!(r.status == 422 || r.status == 400, "{}", r.text);
    assert!(r.text.contains("redirect_uri"), "{}", r.text);

    // Nothing was created by the refusals.
    let list = app
        .get("/v1/organisation/integrations", admin.t())
        .await
        .expect(200);
    assert_eq!(list.body["items"].as_array().unwrap().len(), 1);

    // Staff and patients do not register or list integrations.
    for who in [&counsellor, &patient] {
        app.post("/v1/organisation/integrations", who.t(), &base)
            .await
            .expect_problem(403);
        app.get("/v1/organisation/integrations", who.t())
            .await
            .expect_problem(403);
    }
    app.get("/v1/organisation/integrations", None)
        .await
        .expect_problem(401);

    // Another organisation's admin cannot see it at all.
    let other_admin = app.admin().await; // another organisation
    let theirs = app
        .get(
            &format!("/v1/organisation/integrations/{id}"),
            other_admin.t(),
        )
        .await
        .expect_problem(404);
    let unknown = app
        .get(
            &format!("/v1/organisation/integrations/{}", uuid::Uuid::now_v7()),
            other_admin.t(),
        )
        .await
        .expect_problem(404);
    assert_eq!(theirs.body["detail"], unknown.body["detail"]);
    app.patch(
        &format!("/v1/organisation/integrations/{id}"),
        other_admin.t(),
        &json!({"disabled": true}),
    )
    .await
    .expect_problem(404);
    let list = app
        .get("/v1/organisation/integrations", other_admin.t())
        .await
        .expect(200);
    assert_eq!(list.body["items"], json!([]));
}

// ---------------------------------------------------------------------------------------------
// Tokens

#[tokio::test]
async fn a_client_secret_basic_integration_takes_a_short_lived_token() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let i = register(&app, &admin, "PillPal", &["wellbeing.read", "alerts.read"]).await;

    let r = token_basic(
        &app,
        &i.client_id,
        &i.secret,
        &[("grant_type", "client_credentials")],
    )
    .await
    .expect(200);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert!(r.body["access_token"].as_str().unwrap().len() > 20);
    assert_eq!(r.body["token_type"], "Bearer");
    let expires_in = r.body["expires_in"].as_u64().unwrap();
    assert!(expires_in > 0 && expires_in <= 900, "{expires_in}");
    assert_eq!(
        scope_set(r.body["scope"].as_str().unwrap()),
        set(&["wellbeing.read", "alerts.read"]),
        "all granted scopes by default"
    );
    // A narrower scope may be asked for.
    let r = token_basic(
        &app,
        &i.client_id,
        &i.secret,
        &[
            ("grant_type", "client_credentials"),
            ("scope", "alerts.read"),
        ],
    )
    .await
    .expect(200);
    assert_eq!(r.body["scope"], "alerts.read");
    // The token works on the integration routes.
    let tok = str_of(&r.body["access_token"]);
    app.get("/v1/integration/patients", Some(&tok))
        .await
        .expect(200);

    // Wrong secret, unknown client.
    let r = token_basic(
        &app,
        &i.client_id,
        "not-the-secret",
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_oauth_error(&r, 401, "invalid_client");
    assert!(!r.text.contains(&i.secret));
    let r = token_basic(
        &app,
        "no-such-client",
        &i.secret,
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_oauth_error(&r, 401, "invalid_client");
    let r = token_form(&app, &[("grant_type", "client_credentials")]).await;
    assert_oauth_error(&r, 401, "invalid_client");

    // Grant type and scope.
    let r = token_basic(
        &app,
        &i.client_id,
        &i.secret,
        &[
            ("grant_type", "password"),
            ("username", "a"),
            ("password", "b"),
        ],
    )
    .await;
    assert_oauth_error(&r, 400, "unsupported_grant_type");
    let r = token_basic(
        &app,
        &i.client_id,
        &i.secret,
        &[
            ("grant_type", "client_credentials"),
            ("scope", "wellbeing.read phase.read"),
        ],
    )
    .await;
    assert_oauth_error(&r, 400, "invalid_scope");
    let r = token_basic(
        &app,
        &i.client_id,
        &i.secret,
        &[
            ("grant_type", "client_credentials"),
            ("scope", "notes.read"),
        ],
    )
    .await;
    assert_oauth_error(&r, 400, "invalid_scope");
    let r = token_basic(&app, &i.client_id, &i.secret, &[("scope", "alerts.read")]).await;
    assert_oauth_error(&r, 400, "invalid_request");
    // JSON instead of a form.
    let rb = app
        .client
        .post(app.url("/oauth/token"))
        .basic_auth(&i.client_id, Some(&i.secret))
        .json(&json!({"grant_type": "client_credentials"}));
    let r = read(rb.send().await.unwrap()).await;
    assert_oauth_error(&r, 400, "invalid_request");

    // A parameter twice.
    let rb = app
        .client
        .post(app.url("/oauth/token"))
        .basic_auth(&i.client_id, Some(&i.secret))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials&grant_type=client_credentials");
    let r = read(rb.send().await.unwrap()).await;
    assert_oauth_error(&r, 400, "invalid_request");
    // Two ways of authenticating at once.
    let rb = app
        .client
        .post(app.url("/oauth/token"))
        .basic_auth(&i.client_id, Some(&i.secret))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_assertion_type", ASSERTION_TYPE),
            ("client_assertion", "a.b.c"),
        ]);
    let r = read(rb.send().await.unwrap()).await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(r.body["error"], "invalid_request", "{}", r.text);

    // After all that, the right secret still works.
    token(&app, &i).await;
}

#[tokio::test]
async fn repeated_wrong_secrets_are_throttled_for_that_client() {
    let app = spawn_app_with(&[("AFTERCARE_LOGIN_MAX_FAILURES", "3")]).await;
    let admin = app.admin().await;
    let i = register(&app, &admin, "PillPal", &["wellbeing.read"]).await;
    let other = register(&app, &admin, "PeerLink", &["wellbeing.read"]).await;
    for _ in 0..3 {
        let r = token_basic(
            &app,
            &i.client_id,
            "guess-the-secret",
            &[("grant_type", "client_credentials")],
        )
        .await;
        assert_oauth_error(&r, 401, "invalid_client");
    }
    let limited = token_basic(
        &app,
        &i.client_id,
        &i.secret,
        &[("grant_type", "client_credentials")],
    )
    .await
    .expect(429);
    let retry: u64 = limited
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .unwrap();
    assert!(retry > 0 && retry <= 900, "{retry}");
    // Another client is not held back by it.
    token(&app, &other).await;
}

#[tokio::test]
async fn a_private_key_jwt_integration_signs_single_use_assertions() {
    // Each refused assertion below is a failure for this client: let the throttle be.
    let app = spawn_app_with(&[("AFTERCARE_LOGIN_MAX_FAILURES", "50")]).await;
    let admin = app.admin().await;
    let (key, jwk) = ed25519_key();
    let made = app
        .post(
            "/v1/organisation/integrations",
            admin.t(),
            &json!({"name": "County EHR", "description": "The county's health record",
                    "scopes": ["wellbeing.read", "phase.read"],
                    "token_endpoint_auth_method": "private_key_jwt",
                    "jwks": {"keys": [jwk]}}),
        )
        .await
        .expect(201);
    assert!(
        !made.body["client_secret"].is_string(),
        "no secret for private_key_jwt: {}",
        made.text
    );
    assert_eq!(made.body["token_endpoint_auth_method"], "private_key_jwt");
    let id = str_of(&made.body["id"]);
    let client_id = str_of(&made.body["client_id"]);
    let aud = app.url("/oauth/token");

    let jwt = assertion(&key, &client_id, &aud, 120, &jti());
    let r = token_jwt(&app, &jwt).await.expect(200);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_eq!(r.body["token_type"], "Bearer");
    assert!(r.body["expires_in"].as_u64().unwrap() <= 900);
    assert_eq!(
        scope_set(r.body["scope"].as_str().unwrap()),
        set(&["wellbeing.read", "phase.read"])
    );
    app.get("/v1/integration/patients", r.body["access_token"].as_str())
        .await
        .expect(200);

    // The same assertion again: replayed.
    assert_oauth_error(&token_jwt(&app, &jwt).await, 401, "invalid_client");
    // For another audience.
    let wrong_aud = assertion(
        &key,
        &client_id,
        "https://evil.example/oauth/token",
        120,
        &jti(),
    );
    assert_oauth_error(&token_jwt(&app, &wrong_aud).await, 401, "invalid_client");
    // Valid for too long.
    let long = assertion(&key, &client_id, &aud, 600, &jti());
    assert_oauth_error(&token_jwt(&app, &long).await, 401, "invalid_client");
    // Already expired.
    let expired = assertion(&key, &client_id, &aud, -120, &jti());
    assert_oauth_error(&token_jwt(&app, &expired).await, 401, "invalid_client");
    // Signed by another key (with the same kid).
    let (stranger, _) = ed25519_key();
    let forged = assertion(&stranger, &client_id, &aud, 120, &jti());
    assert_oauth_error(&token_jwt(&app, &forged).await, 401, "invalid_client");
    // A garbled assertion.
    assert_oauth_error(&token_jwt(&app, "not.a.jwt").await, 401, "invalid_client");
    // A secret cannot be used by, nor rotated for, a key-based client.
    let r = token_basic(
        &app,
        &client_id,
        "anything",
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_oauth_error(&r, 401, "invalid_client");
    app.post(
        &format!("/v1/organisation/integrations/{id}/secret"),
        admin.t(),
        &json!({}),
    )
    .await
    .expect_problem(409);

    // The key still works for a fresh assertion.
    let fresh = assertion(&key, &client_id, &aud, 60, &jti());
    token_jwt(&app, &fresh).await.expect(200);
}

#[tokio::test]
async fn the_discovery_document_describes_the_token_endpoint() {
    let app = spawn_app().await;
    let r = app
        .get("/.well-known/oauth-authorization-server", None)
        .await
        .expect(200);
    let b = &r.body;
    assert!(b["issuer"].is_string(), "{}", r.text);
    assert_eq!(b["token_endpoint"], app.url("/oauth/token"));
    assert!(
        b["jwks_uri"]
            .as_str()
            .unwrap()
            .ends_with("/.well-known/jwks.json"),
        "{}",
        r.text
    );
    assert_eq!(b["grant_types_supported"], json!(["client_credentials"]));
    assert_eq!(
        strings(&b["token_endpoint_auth_methods_supported"]),
        set(&["client_secret_basic", "private_key_jwt"])
    );
    let algs = b["token_endpoint_auth_signing_alg_values_supported"]
        .as_array()
        .unwrap();
    assert!(algs.contains(&json!("EdDSA")), "{}", r.text);
    assert!(algs.contains(&json!("ES256")), "{}", r.text);
    assert!(!algs.contains(&json!("none")) && !algs.contains(&json!("HS256")));
    assert_eq!(
        strings(&b["scopes_supported"]),
        set(&[
            "wellbeing.read",
            "substance_use.read",
            "withdrawal.read",
            "medication.read",
            "support.read",
            "safety.read",
            "alerts.read",
            "phase.read"
        ])
    );
}

// ---------------------------------------------------------------------------------------------
// Consent

#[tokio::test]
async fn a_patient_consents_to_an_integration_with_every_element_of_a_written_consent() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let counsellor = app.counsellor(&admin).await;
    let patient = app.patient(&counsellor).await;
    let other = app.patient(&counsellor).await;
    let off_team = app.counsellor(&admin).await;
    let i = register(
        &app,
        &admin,
        "PillPal",
        &["wellbeing.read", "safety.read", "alerts.read"],
    )
    .await;
    let patient_name =
        str_of(&app.get("/v1/me", patient.t()).await.expect(200).body["display_name"]);

    // The patient sees what they could consent to.
    let offered = app
        .get("/v1/me/integrations", patient.t())
        .await
        .expect(200);
    let items = offered.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{}", offered.text);
    assert_eq!(items[0]["id"], i.id.as_str());
    assert_eq!(items[0]["name"], "PillPal");
    assert!(items[0]["description"].is_string());
    assert_eq!(
        categories_of(&items[0]["categories"]),
        set(&["wellbeing", "safety", "alerts"])
    );
    for c in items[0]["categories"].as_array().unwrap() {
        assert!(
            c["description"].as_str().is_some_and(|d| d.len() > 10),
            "a plain-language description: {c}"
        );
    }
    assert!(!offered.text.contains(&i.secret));

    // A category the integration was not granted is refused, by name.
    let r = app
        .post(
            "/v1/me/consents",
            patient.t(),
            &json!({"integration_id": i.id, "categories": ["wellbeing", "substance_use"],
                    "purpose": "Reminders"}),
        )
        .await
        .expect_problem(422);
    assert_names(&r, "categories");
    assert!(r.text.contains("substance_use"), "{}", r.text);
    let r = app
        .post(
            "/v1/me/consents",
            patient.t(),
            &json!({"integration_id": i.id, "categories": ["wellbeing", "diagnoses"],
                    "purpose": "Reminders"}),
        )
        .await
        .expect_problem(422);
    assert!(r.text.contains("diagnoses"), "{}", r.text);
    let r = app
        .post(
            "/v1/me/consents",
            patient.t(),
            &json!({"integration_id": uuid::Uuid::now_v7(), "categories": ["wellbeing"],
                    "purpose": "Reminders"}),
        )
        .await
        .expect_problem(422);
    assert_names(&r, "integration_id");
    let r = app
        .post(
            "/v1/me/consents",
            patient.t(),
            &json!({"integration_id": i.id, "categories": ["wellbeing"], "purpose": ""}),
        )
        .await
        .expect_problem(422);
    assert_names(&r, "purpose");
    let yesterday = today(NEW_YORK) - chrono::TimeDelta::days(2);
    let r = app
        .post(
            "/v1/me/consents",
            patient.t(),
            &json!({"integration_id": i.id, "categories": ["wellbeing"], "purpose": "Reminders",
                    "expires_on": yesterday.to_string()}),
        )
        .await
        .expect_problem(422);
    assert_names(&r, "expires_on");
    // Another organisation's integration is neither offered nor consented to.
    let other_admin = app.admin().await; // another organisation
    let elsewhere = register(&app, &other_admin, "Elsewhere", &["wellbeing.read"]).await;
    let offered = app
        .get("/v1/me/integrations", patient.t())
        .await
        .expect(200);
    assert!(!offered.text.contains(&elsewhere.id), "{}", offered.text);
    let r = app
        .post(
            "/v1/me/consents",
            patient.t(),
            &json!({"integration_id": elsewhere.id, "categories": ["wellbeing"],
                    "purpose": "Reminders"}),
        )
        .await
        .expect_problem(422);
    assert_names(&r, "integration_id");
    let none = app.get("/v1/me/consents", patient.t()).await.expect(200);
    assert_eq!(none.body["items"], json!([]), "refusals record nothing");

    let expires = today(NEW_YORK) + chrono::TimeDelta::days(90);
    let made = app
        .post(
            "/v1/me/consents",
            patient.t(),
            &json!({"integration_id": i.id, "categories": ["wellbeing", "safety"],
                    "purpose": "Reminders to take medication",
                    "expires_on": expires.to_string()}),
        )
        .await
        .expect(201);
    let c = &made.body;
    let consent_id = str_of(&c["id"]);
    assert_eq!(c["status"], "active");
    assert_eq!(c["integration_id"], i.id.as_str());
    assert_eq!(
        name_of(&c["patient_name"]),
        Some(patient_name.as_str()),
        "{}",
        made.text
    );
    assert_eq!(
        name_of(&c["disclosing_organisation"]),
        Some("Harbour Recovery"),
        "{}",
        made.text
    );
    assert_eq!(name_of(&c["recipient"]), Some("PillPal"), "{}", made.text);
    assert_eq!(
        categories_of(&c["categories"]),
        set(&["wellbeing", "safety"])
    );
    for cat in c["categories"].as_array().unwrap() {
        assert!(
            cat["description"].as_str().is_some_and(|d| d.len() > 10),
            "each category described: {cat}"
        );
    }
    assert_eq!(c["purpose"], "Reminders to take medication");
    assert_eq!(c["expires_on"], expires.to_string());
    let revocation = c["revocation"].as_str().unwrap_or_default().to_lowercase();
    assert!(revocation.contains("revok"), "how to revoke: {}", made.text);
    assert!(c["signed_at"].as_str().unwrap().ends_with('Z'));
    assert!(
        name_of(&c["signed_by"]).is_some_and(|s| !s.is_empty()),
        "signed_by: {}",
        made.text
    );
    assert!(
        c["redisclosure_notice"]
            .as_str()
            .is_some_and(|s| s.len() > 40),
        "{}",
        made.text
    );
    assert_eq!(c["revoked_at"], Value::Null);

    // The patient reads their consents.
    let mine = app.get("/v1/me/consents", patient.t()).await.expect(200);
    assert_eq!(mine.header("cache-control"), Some("no-store"));
    let items = mine.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{}", mine.text);
    assert_eq!(items[0]["id"], consent_id.as_str());
    assert_eq!(items[0]["status"], "active");
    let theirs = app.get("/v1/me/consents", other.t()).await.expect(200);
    assert_eq!(theirs.body["items"], json!([]));

    // Staff on the care team and admins read them; a counsellor off the team does not.
    let path = format!("/v1/patients/{}/consents", patient.id);
    for staff in [&counsellor, &admin] {
        let r = app.get(&path, staff.t()).await.expect(200);
        assert_eq!(r.body["items"][0]["id"], consent_id.as_str(), "{}", r.text);
    }
    app.get(&path, off_team.t()).await.expect_problem(404);
    app.get(&path, other_admin.t()).await.expect_problem(404);
    app.get(&path, other.t()).await.expect_problem(403);
}

// ---------------------------------------------------------------------------------------------
// What an integration reads

/// A clinic with two checked-in patients, an integration granted four scopes, and a consent
/// to wellbeing and safety from the first patient only.
struct Clinic {
    app: TestApp,
    admin: Login,
    counsellor: Login,
    consenting: Login,
    silent: Login,
    integration: Registered,
    consent_id: String,
}

async fn clinic() -> Clinic {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let counsellor = app.counsellor(&admin).await;
    let consenting = app.patient(&counsellor).await;
    let silent = app.patient(&counsellor).await;
    let day = today(NEW_YORK);
    app.checkin(&consenting, day, &full_day()).await.expect(201);
    app.checkin(&silent, day, &full_day()).await.expect(201);
    let integration = register(
        &app,
        &admin,
        "PillPal",
        &[
            "wellbeing.read",
            "safety.read",
            "alerts.read",
            "substance_use.read",
        ],
    )
    .await;
    let consent_id = consent(&app, &consenting, &integration.id, &["wellbeing", "safety"]).await;
    Clinic {
        app,
        admin,
        counsellor,
        consenting,
        silent,
        integration,
        consent_id,
    }
}

#[tokio::test]
async fn an_integration_sees_only_consenting_patients_and_only_consented_fields() {
    let Clinic {
        app,
        counsellor,
        consenting,
        silent,
        integration,
        consent_id,
        ..
    } = clinic().await;
    let tok = token(&app, &integration).await;
    let t = Some(tok.as_str());

    // Only the consenting patient is listed.
    let list = app.get("/v1/integration/patients", t).await.expect(200);
    assert_eq!(list.header("cache-control"), Some("no-store"));
    let items = list.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{}", list.text);
    assert_eq!(items[0]["id"], consenting.id.as_str());
    assert!(items[0]["display_name"].is_string());
    assert_eq!(items[0]["consent"]["id"], consent_id.as_str());
    assert_eq!(
        categories_of(&items[0]["consent"]["categories"]),
        set(&["wellbeing", "safety"])
    );
    assert!(
        list.body["notice"]
            .as_str()
            .unwrap_or_default()
            .to_lowercase()
            .contains("42 cfr part 2"),
        "{}",
        list.text
    );
    assert!(
        !list.text.contains(&silent.id),
        "the other patient is not even named"
    );

    // The consenting patient's record.
    let id = &consenting.id;
    let one = app
        .get(&format!("/v1/integration/patients/{id}"), t)
        .await
        .expect(200);
    assert_eq!(one.body["id"], id.as_str());
    assert_notice(&one, &consent_id);
    assert!(
        one.body.get("phase").is_none(),
        "no phase without the phase category: {}",
        one.text
    );

    // The other patient does not exist for it, exactly like a missing one.
    let unknown = uuid::Uuid::now_v7().to_string();
    for who in [&silent.id, &unknown] {
        let a = app
            .get(&format!("/v1/integration/patients/{who}"), t)
            .await
            .expect_problem(404);
        let b = app
            .get(&format!("/v1/integration/patients/{who}/check-ins"), t)
            .await
            .expect_problem(404);
        assert!(!a.text.contains(SUBSTANCE) && !b.text.contains(NOTE));
    }
    let a = app
        .get(&format!("/v1/integration/patients/{}", silent.id), t)
        .await;
    let b = app
        .get(&format!("/v1/integration/patients/{unknown}"), t)
        .await;
    assert_eq!(a.body["detail"], b.body["detail"]);
    assert_eq!(a.body["title"], b.body["title"]);

    // Check-ins carry the consented fields only.
    let r = app
        .get(&format!("/v1/integration/patients/{id}/check-ins"), t)
        .await
        .expect(200);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_notice(&r, &consent_id);
    let items = r.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{}", r.text);
    let c = &items[0];
    assert_eq!(c["date"], today(NEW_YORK).to_string());
    assert_eq!(c["craving"], 4);
    assert_eq!(c["mood"], 5);
    assert_eq!(c["sleep_hours"], 7.5);
    assert_eq!(c["exercise_minutes"], 30);
    assert_eq!(c["meals"], 3);
    assert_eq!(c["anxiety"], 3);
    assert_eq!(c["loneliness"], 2);
    assert_eq!(c["triggers"], json!(["stress"]));
    assert_eq!(c["self_harm_thoughts"], false);
    for field in NOT_WELLBEING_OR_SAFETY {
        assert!(c.get(field).is_none(), "{field} is absent: {}", r.text);
    }
    assert!(!r.text.contains(NOTE), "the note never leaves");
    assert!(!r.text.contains(SUBSTANCE), "substances were not consented");

    // Asking for fewer categories narrows; asking for one outside the consent is refused.
    let r = app
        .get(
            &format!("/v1/integration/patients/{id}/check-ins?categories=wellbeing"),
            t,
        )
        .await
        .expect(200);
    let c = &r.body["items"][0];
    assert_eq!(c["craving"], 4, "{}", r.text);
    assert!(c.get("self_harm_thoughts").is_none(), "{}", r.text);
    app.get(
        &format!("/v1/integration/patients/{id}/check-ins?categories=substance_use"),
        t,
    )
    .await
    .expect_problem(403);
    app.get(
        &format!("/v1/integration/patients/{id}/check-ins?categories=wellbeing,withdrawal"),
        t,
    )
    .await
    .expect_problem(403);
    // Alerts need the alerts category, which the patient did not give.
    app.get(&format!("/v1/integration/patients/{id}/alerts"), t)
        .await
        .expect_problem(403);

    // User tokens do not read integration routes, and the integration reads no user route.
    for user in [&counsellor, &consenting] {
        app.get("/v1/integration/patients", user.t())
            .await
            .expect_problem(403);
    }
    app.get("/v1/integration/patients", None)
        .await
        .expect_problem(401);
    app.get("/v1/patients", t).await.expect_problem(403);
    app.get(&format!("/v1/patients/{id}/check-ins"), t)
        .await
        .expect_problem(403);
    app.get("/v1/me", t).await.expect_problem(403);
    app.get("/v1/alerts", t).await.expect_problem(403);
}

#[tokio::test]
async fn with_the_alerts_category_an_integration_reads_alerts_without_their_explanations() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let counsellor = app.counsellor(&admin).await;
    let patient = app.patient(&counsellor).await;
    let sos = app
        .post(
            "/v1/me/sos",
            patient.t(),
            &json!({"message": "I am at the bridge and scared"}),
        )
        .await
        .expect(202);
    let alert_id = str_of(&sos.body["alert_id"]);
    let i = register(&app, &admin, "PeerLink", &["alerts.read", "wellbeing.read"]).await;
    let consent_id = consent(&app, &patient, &i.id, &["alerts"]).await;
    let tok = token(&app, &i).await;

    let r = app
        .get(
            &format!("/v1/integration/patients/{}/alerts", patient.id),
            Some(&tok),
        )
        .await
        .expect(200);
    assert_notice(&r, &consent_id);
    let items = r.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{}", r.text);
    let a = &items[0];
    assert_eq!(a["id"], alert_id.as_str());
    for field in ["rule", "severity", "status", "created_at", "updated_at"] {
        assert!(a[field].is_string(), "{field}: {}", r.text);
    }
    for field in [
        "title",
        "explanation",
        "evidence",
        "note",
        "findings",
        "outcome",
    ] {
        assert!(
            a.get(field).is_none(),
            "{field} is never disclosed: {}",
            r.text
        );
    }
    assert!(!r.text.contains("bridge"), "the SOS message never leaves");
    // Check-ins are outside this consent.
    app.get(
        &format!(
            "/v1/integration/patients/{}/check-ins?categories=wellbeing",
            patient.id
        ),
        Some(&tok),
    )
    .await
    .expect_problem(403);
}

// ---------------------------------------------------------------------------------------------
// Revocation, disabling, rotation, narrowing: on the very next request

#[tokio::test]
async fn a_revoked_consent_hides_the_patient_on_the_next_request() {
    let Clinic {
        app,
        consenting,
        silent,
        integration,
        consent_id,
        ..
    } = clinic().await;
    let tok = token(&app, &integration).await;
    let t = Some(tok.as_str());
    let id = &consenting.id;
    app.get(&format!("/v1/integration/patients/{id}/check-ins"), t)
        .await
        .expect(200);

    // Another patient cannot revoke it.
    app.post(
        &format!("/v1/me/consents/{consent_id}/revoke"),
        silent.t(),
        &json!({}),
    )
    .await
    .expect_problem(404);
    app.get(&format!("/v1/integration/patients/{id}"), t)
        .await
        .expect(200);

    let r = app
        .post(
            &format!("/v1/me/consents/{consent_id}/revoke"),
            consenting.t(),
            &json!({}),
        )
        .await
        .expect(200);
    assert_eq!(r.body["status"], "revoked");
    assert!(r.body["revoked_at"].as_str().unwrap().ends_with('Z'));

    app.get(&format!("/v1/integration/patients/{id}"), t)
        .await
        .expect_problem(404);
    app.get(&format!("/v1/integration/patients/{id}/check-ins"), t)
        .await
        .expect_problem(404);
    let list = app.get("/v1/integration/patients", t).await.expect(200);
    assert_eq!(list.body["items"], json!([]), "{}", list.text);

    let mine = app.get("/v1/me/consents", consenting.t()).await.expect(200);
    assert_eq!(mine.body["items"][0]["status"], "revoked");
}

#[tokio::test]
async fn an_expired_consent_hides_the_patient() {
    let Clinic {
        app,
        consenting,
        integration,
        consent_id,
        ..
    } = clinic().await;
    let tok = token(&app, &integration).await;
    let t = Some(tok.as_str());
    app.get(&format!("/v1/integration/patients/{}", consenting.id), t)
        .await
        .expect(200);
    // The consent's last day was yesterday.
    let yesterday = today(NEW_YORK) - chrono::TimeDelta::days(1);
    app.sql(&format!(
        "UPDATE consents SET expires_on = '{yesterday}' WHERE id = '{consent_id}'"
    ));

    app.get(&format!("/v1/integration/patients/{}", consenting.id), t)
        .await
        .expect_problem(404);
    app.get(
        &format!("/v1/integration/patients/{}/check-ins", consenting.id),
        t,
    )
    .await
    .expect_problem(404);
    let list = app.get("/v1/integration/patients", t).await.expect(200);
    assert_eq!(list.body["items"], json!([]), "{}", list.text);
    let mine = app.get("/v1/me/consents", consenting.t()).await.expect(200);
    assert_eq!(mine.body["items"][0]["id"], consent_id.as_str());
    assert_eq!(mine.body["items"][0]["status"], "expired", "{}", mine.text);
}

#[tokio::test]
async fn disabling_or_deleting_an_integration_stops_it_on_its_next_request() {
    let Clinic {
        app,
        admin,
        consenting,
        integration: i,
        ..
    } = clinic().await;
    let tok = token(&app, &i).await;
    let t = Some(tok.as_str());
    app.get("/v1/integration/patients", t).await.expect(200);

    let r = app
        .patch(
            &format!("/v1/organisation/integrations/{}", i.id),
            admin.t(),
            &json!({"disabled": true}),
        )
        .await
        .expect(200);
    assert!(r.body["disabled_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(
        app.get("/v1/integration/patients", t).await.status,
        401,
        "the old token stops at once"
    );
    app.get(
        &format!("/v1/integration/patients/{}/check-ins", consenting.id),
        t,
    )
    .await
    .expect(401);
    let r = token_basic(
        &app,
        &i.client_id,
        &i.secret,
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_oauth_error(&r, 401, "invalid_client");
    // A disabled integration is not offered to patients.
    let offered = app
        .get("/v1/me/integrations", consenting.t())
        .await
        .expect(200);
    assert_eq!(offered.body["items"], json!([]), "{}", offered.text);
    let r = app
        .post(
            "/v1/me/consents",
            consenting.t(),
            &json!({"integration_id": i.id, "categories": ["wellbeing"], "purpose": "Reminders"}),
        )
        .await
        .expect_problem(422);
    assert_names(&r, "integration_id");

    // Enabled again, it works again; deleted, it is gone.
    app.patch(
        &format!("/v1/organisation/integrations/{}", i.id),
        admin.t(),
        &json!({"disabled": false}),
    )
    .await
    .expect(200);
    let tok = token(&app, &i).await;
    app.get("/v1/integration/patients", Some(&tok))
        .await
        .expect(200);
    let r = app
        .send(
            "DELETE",
            &format!("/v1/organisation/integrations/{}", i.id),
            admin.t(),
            None,
        )
        .await
        .expect(204);
    assert!(r.text.is_empty());
    app.get("/v1/integration/patients", Some(&tok))
        .await
        .expect(401);
    app.get(
        &format!("/v1/organisation/integrations/{}", i.id),
        admin.t(),
    )
    .await
    .expect_problem(404);
    let r = token_basic(
        &app,
        &i.client_id,
        &i.secret,
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_oauth_error(&r, 401, "invalid_client");
}

#[tokio::test]
async fn rotating_the_secret_stops_the_old_secret_and_its_tokens() {
    let Clinic {
        app,
        admin,
        integration: i,
        ..
    } = clinic().await;
    let old_token = token(&app, &i).await;
    app.get("/v1/integration/patients", Some(&old_token))
        .await
        .expect(200);

    let r = app
        .post(
            &format!("/v1/organisation/integrations/{}/secret", i.id),
            admin.t(),
            &json!({}),
        )
        .await
        .expect(200);
    let new_secret = str_of(&r.body["client_secret"]);
    assert_ne!(new_secret, i.secret);
    assert_eq!(r.body["client_id"], i.client_id.as_str());

    app.get("/v1/integration/patients", Some(&old_token))
        .await
        .expect(401);
    let r = token_basic(
        &app,
        &i.client_id,
        &i.secret,
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_oauth_error(&r, 401, "invalid_client");
    let rotated = Registered {
        secret: new_secret,
        ..i
    };
    let new_token = token(&app, &rotated).await;
    let list = app
        .get("/v1/integration/patients", Some(&new_token))
        .await
        .expect(200);
    assert_eq!(list.body["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn narrowing_an_integrations_scopes_removes_those_fields_on_the_next_request() {
    let Clinic {
        app,
        admin,
        consenting,
        integration: i,
        consent_id,
        ..
    } = clinic().await;
    let tok = token(&app, &i).await;
    let t = Some(tok.as_str());
    let path = format!("/v1/integration/patients/{}/check-ins", consenting.id);
    let before = app.get(&path, t).await.expect(200);
    assert_eq!(before.body["items"][0]["self_harm_thoughts"], false);
    assert_eq!(before.body["items"][0]["craving"], 4);

    let r = app
        .patch(
            &format!("/v1/organisation/integrations/{}", i.id),
            admin.t(),
            &json!({"scopes": ["wellbeing.read", "alerts.read"]}),
        )
        .await
        .expect(200);
    assert_eq!(
        strings(&r.body["scopes"]),
        set(&["wellbeing.read", "alerts.read"])
    );

    let after = app.get(&path, t).await.expect(200);
    assert_notice(&after, &consent_id);
    let c = &after.body["items"][0];
    assert_eq!(c["craving"], 4, "{}", after.text);
    assert!(
        c.get("self_harm_thoughts").is_none(),
        "safety is no longer granted: {}",
        after.text
    );
    app.get(&format!("{path}?categories=safety"), t)
        .await
        .expect_problem(403);
    // The patient is offered only what remains.
    let offered = app
        .get("/v1/me/integrations", consenting.t())
        .await
        .expect(200);
    assert_eq!(
        categories_of(&offered.body["items"][0]["categories"]),
        set(&["wellbeing", "alerts"])
    );
}

// ---------------------------------------------------------------------------------------------
// Accounting

#[tokio::test]
async fn each_read_by_an_integration_is_in_the_patients_accounting_and_access_log() {
    let Clinic {
        app,
        admin,
        consenting,
        silent,
        integration: i,
        consent_id,
        ..
    } = clinic().await;
    let empty = app
        .get("/v1/me/disclosures", consenting.t())
        .await
        .expect(200);
    assert_eq!(
        empty.body["items"],
        json!([]),
        "consenting discloses nothing yet"
    );
    let tok = token(&app, &i).await;
    app.get(
        &format!("/v1/integration/patients/{}/check-ins", consenting.id),
        Some(&tok),
    )
    .await
    .expect(200);

    let mine = app
        .get("/v1/me/disclosures", consenting.t())
        .await
        .expect(200);
    assert_eq!(mine.header("cache-control"), Some("no-store"));
    let items = mine.body["items"].as_array().unwrap();
    let d = items
        .iter()
        .find(|d| {
            d["type"] == "integration"
                && d["what"]
                    .as_str()
                    .is_some_and(|w| w.to_lowercase().contains("check-in"))
        })
        .unwrap_or_else(|| panic!("the check-in read is accounted for: {}", mine.text));
    assert_eq!(d["recipient"]["name"], "PillPal", "{}", mine.text);
    assert_eq!(d["consent_id"], consent_id.as_str());
    assert!(d["disclosed_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(
        categories_of(&d["categories"]),
        set(&["wellbeing", "safety"]),
        "{}",
        mine.text
    );
    assert!(!mine.text.contains(NOTE) && !mine.text.contains(SUBSTANCE));

    // Staff read the same accounting.
    let staff = app
        .get(
            &format!("/v1/patients/{}/disclosures", consenting.id),
            admin.t(),
        )
        .await
        .expect(200);
    assert!(
        staff.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["id"] == d["id"]),
        "{}",
        staff.text
    );

    let log = app
        .get("/v1/me/access-log", consenting.t())
        .await
        .expect(200);
    let entry = log.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["reader"]["name"] == i.name.as_str())
        .unwrap_or_else(|| panic!("the integration is in the access log: {}", log.text));
    assert_eq!(entry["reader"]["role"], "integration", "{}", log.text);
    assert!(entry["what"].is_string());
    assert!(!log.text.contains(NOTE) && !log.text.contains(SUBSTANCE));

    // Nothing was disclosed about the patient who did not consent.
    let theirs = app.get("/v1/me/disclosures", silent.t()).await.expect(200);
    assert_eq!(theirs.body["items"], json!([]), "{}", theirs.text);
    let log = app.get("/v1/me/access-log", silent.t()).await.expect(200);
    assert!(
        !log.text.contains("PillPal"),
        "the integration never read them: {}",
        log.text
    );
}

#[tokio::test]
async fn an_integration_webhook_hears_only_about_consenting_patients_with_consent_checked_at_send()
{
    use crate::receivers::http::HttpSink;
    use std::time::Duration;

    let sink = HttpSink::start().await;
    let app = spawn_app().await;
    let admin = app.admin().await;
    let counsellor = app.counsellor(&admin).await;
    let consenting = app.patient(&counsellor).await;
    let revoking = app.patient(&counsellor).await;
    let silent = app.patient(&counsellor).await;
    let i = register(&app, &admin, "PeerLink", &["alerts.read", "wellbeing.read"]).await;
    let tok = token(&app, &i).await;

    // A token without alerts.read cannot subscribe; a user token cannot either.
    let narrow = token_basic(
        &app,
        &i.client_id,
        &i.secret,
        &[
            ("grant_type", "client_credentials"),
            ("scope", "wellbeing.read"),
        ],
    )
    .await
    .expect(200);
    let hook = json!({"url": sink.url("/events"), "events": ["alert.created"]});
    app.post(
        "/v1/integration/webhooks",
        Some(&str_of(&narrow.body["access_token"])),
        &hook,
    )
    .await
    .expect_problem(403);
    app.post("/v1/integration/webhooks", admin.t(), &hook)
        .await
        .expect_problem(403);
    let bad = app
        .post(
            "/v1/integration/webhooks",
            Some(&tok),
            &json!({"url": sink.url("/events"), "events": ["check_in.deleted"]}),
        )
        .await
        .expect_problem(422);
    assert_eq!(bad.error_fields(), vec!["events[0]"]);
    let created = app
        .post("/v1/integration/webhooks", Some(&tok), &hook)
        .await
        .expect(201);
    assert!(str_of(&created.body["secret"]).starts_with("whsec_"));
    let listed = app
        .get("/v1/integration/webhooks", Some(&tok))
        .await
        .expect(200);
    assert_eq!(listed.body["items"].as_array().unwrap().len(), 1);
    // The organisation's own webhook list does not show an integration's.
    let org_hooks = app
        .get("/v1/organisation/webhooks", admin.t())
        .await
        .expect(200);
    assert_eq!(org_hooks.body["items"].as_array().unwrap().len(), 0);

    consent(&app, &consenting, &i.id, &["alerts"]).await;
    let revoked = consent(&app, &revoking, &i.id, &["alerts"]).await;
    for p in [&consenting, &revoking, &silent] {
        app.post("/v1/me/sos", p.t(), &json!({"message": "please call"}))
            .await
            .expect(202);
    }
    // Revoked after its alert was queued, before it was sent: dropped at send time.
    app.post(
        &format!("/v1/me/consents/{revoked}/revoke"),
        revoking.t(),
        &json!({}),
    )
    .await
    .expect(200);

    app.start_delivery_worker();
    let got = sink.wait_for_requests(1, Duration::from_secs(20)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let got = if got.len() == 1 { sink.requests() } else { got };
    assert_eq!(got.len(), 1, "only the consenting patient's alert goes out");
    let body: Value = serde_json::from_slice(&got[0].body).unwrap();
    assert_eq!(body["type"], "alert.created");
    assert_eq!(body["data"]["patient_id"], consenting.id.as_str());
    assert!(body["notice"].as_str().unwrap().contains("42 CFR part 2"));
    assert!(body["consent_id"].is_string());
    assert!(!String::from_utf8_lossy(&got[0].body).contains("please call"));
    assert!(got[0].header("webhook-signature").is_some());

    // The delivery is in the patient's accounting; nothing of the others'.
    let d = app
        .get("/v1/me/disclosures", consenting.t())
        .await
        .expect(200);
    let items = d.body["items"].as_array().unwrap();
    assert!(
        items
            .iter()
            .any(|x| x["what"] == "webhook alert.created" && x["recipient"]["name"] == "PeerLink"),
        "{}",
        d.text
    );
    // The integration sees its delivery log: the one sent, and the one dropped at send time.
    let hook_id = str_of(&created.body["id"]);
    let log = app
        .get(
            &format!("/v1/integration/webhooks/{hook_id}/deliveries"),
            Some(&tok),
        )
        .await
        .expect(200);
    let mut statuses: Vec<&str> = log.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["status"].as_str().unwrap())
        .collect();
    statuses.sort();
    assert_eq!(statuses, ["dead", "delivered"], "{}", log.text);
    assert!(log.text.contains("consent"), "{}", log.text);
    app.get(
        &format!("/v1/organisation/webhooks/{hook_id}/deliveries"),
        admin.t(),
    )
    .await
    .expect_problem(404);
    for other in [&revoking, &silent] {
        let d = app.get("/v1/me/disclosures", other.t()).await.expect(200);
        assert!(
            !d.text.contains("webhook"),
            "no delivery about a patient without consent: {}",
            d.text
        );
    }
}

#[tokio::test]
async fn a_check_in_webhook_tells_a_consenting_integration_of_each_check_in_but_not_its_answers() {
    use crate::receivers::http::HttpSink;
    use std::time::Duration;

    let sink = HttpSink::start().await;
    let app = spawn_app().await;
    let admin = app.admin().await;
    let counsellor = app.counsellor(&admin).await;
    let consenting = app.patient(&counsellor).await;
    let alerts_only = app.patient(&counsellor).await;
    let silent = app.patient(&counsellor).await;
    let i = register(&app, &admin, "PillPal", &["alerts.read", "wellbeing.read"]).await;
    let tok = token(&app, &i).await;
    let hook = json!({"url": sink.url("/check-ins"), "events": ["check_in.submitted"]});

    // Check-in events need a check-in category's scope: alerts.read alone is refused, named.
    let alerts_tok = token_basic(
        &app,
        &i.client_id,
        &i.secret,
        &[
            ("grant_type", "client_credentials"),
            ("scope", "alerts.read"),
        ],
    )
    .await
    .expect(200);
    let refused = app
        .post(
            "/v1/integration/webhooks",
            Some(&str_of(&alerts_tok.body["access_token"])),
            &hook,
        )
        .await
        .expect_problem(403);
    assert!(
        refused.text.contains("check_in.submitted"),
        "{}",
        refused.text
    );
    let created = app
        .post("/v1/integration/webhooks", Some(&tok), &hook)
        .await
        .expect(201);
    assert_eq!(created.body["events"], json!(["check_in.submitted"]));
    let hook_id = str_of(&created.body["id"]);
    // The clinic's admins see where the app receives events; no other organisation does.
    let theirs = format!("/v1/organisation/integrations/{}/webhooks", i.id);
    let seen = app.get(&theirs, admin.t()).await.expect(200);
    assert_eq!(
        seen.body["items"][0]["id"],
        hook_id.as_str(),
        "{}",
        seen.text
    );
    assert_eq!(
        seen.body["items"][0]["events"],
        json!(["check_in.submitted"])
    );
    assert!(seen.body["items"][0].get("secret").is_none());
    let elsewhere = app.admin().await;
    app.get(&theirs, elsewhere.t()).await.expect_problem(404);
    app.get(&theirs, counsellor.t()).await.expect_problem(403);

    let consent_id = consent(&app, &consenting, &i.id, &["wellbeing"]).await;
    consent(&app, &alerts_only, &i.id, &["alerts"]).await;
    let day = today(NEW_YORK);
    let mut answers = full_day();
    for p in [&consenting, &alerts_only, &silent] {
        app.checkin(p, day, &answers).await.expect(201);
    }
    // A phone's retry of the same answers is not news; a correction is.
    app.checkin(&consenting, day, &answers).await.expect(200);
    answers["craving"] = json!(6);
    app.checkin(&consenting, day, &answers).await.expect(200);

    app.start_delivery_worker();
    let got = sink.wait_for_requests(2, Duration::from_secs(20)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let got = if got.len() == 2 { sink.requests() } else { got };
    assert_eq!(
        got.len(),
        2,
        "the consenting patient's check-in and its correction, nobody else's"
    );
    let mut corrections = Vec::new();
    for r in &got {
        let text = String::from_utf8_lossy(&r.body).to_string();
        let body: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(body["type"], "check_in.submitted", "{text}");
        assert_eq!(body["data"]["patient_id"], consenting.id.as_str(), "{text}");
        assert_eq!(body["data"]["check_in_date"], day.to_string(), "{text}");
        assert_eq!(body["consent_id"], consent_id.as_str(), "{text}");
        assert!(body["notice"].as_str().unwrap().contains("42 CFR part 2"));
        assert!(r.header("webhook-signature").is_some());
        // The answers are read through the check-in route, filtered by the consent; the
        // event itself carries none of them, nor the note.
        for word in ["craving", "mood", SUBSTANCE, NOTE, "used_substance"] {
            assert!(!text.contains(word), "{word} in {text}");
        }
        corrections.push(body["data"]["correction"].as_bool().unwrap());
    }
    corrections.sort();
    assert_eq!(corrections, [false, true]);

    // Each delivery is in the patient's accounting, with the category it relied on.
    let d = app
        .get("/v1/me/disclosures", consenting.t())
        .await
        .expect(200);
    let sent: Vec<&Value> = d.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["what"] == "webhook check_in.submitted")
        .collect();
    assert_eq!(sent.len(), 2, "{}", d.text);
    assert_eq!(categories_of(&sent[0]["categories"]), set(&["wellbeing"]));
    assert_eq!(sent[0]["recipient"]["name"], "PillPal");
    for other in [&alerts_only, &silent] {
        let d = app.get("/v1/me/disclosures", other.t()).await.expect(200);
        assert!(!d.text.contains("check_in.submitted"), "{}", d.text);
    }

    // The integration's delivery log names no alert for these.
    let log = app
        .get(
            &format!("/v1/integration/webhooks/{hook_id}/deliveries"),
            Some(&tok),
        )
        .await
        .expect(200);
    let items = log.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{}", log.text);
    for item in items {
        assert_eq!(item["event_type"], "check_in.submitted");
        assert!(item["alert_id"].is_null(), "{}", log.text);
        assert_eq!(item["status"], "delivered", "{}", log.text);
    }

    // Once the consent is revoked, a further correction is not queued at all.
    app.post(
        &format!("/v1/me/consents/{consent_id}/revoke"),
        consenting.t(),
        &json!({}),
    )
    .await
    .expect(200);
    answers["craving"] = json!(7);
    app.checkin(&consenting, day, &answers).await.expect(200);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(sink.requests().len(), 2);
    let log = app
        .get(
            &format!("/v1/integration/webhooks/{hook_id}/deliveries"),
            Some(&tok),
        )
        .await
        .expect(200);
    assert_eq!(
        log.body["items"].as_array().unwrap().len(),
        2,
        "{}",
        log.text
    );
}
