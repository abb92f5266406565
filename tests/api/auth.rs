//! Accounts, sessions and who may see what.

use serde_json::json;

use crate::helpers::{spawn_app, spawn_app_with, PASSWORD};

#[tokio::test]
async fn the_whole_enrolment_story() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let counsellor = app.counsellor(&admin).await;
    let patient = app.patient(&counsellor).await;

    let me = app.get("/v1/me", patient.t()).await.expect(200);
    assert_eq!(me.body["role"], "patient");
    assert_eq!(me.body["timezone"], "America/New_York");
    assert_eq!(me.body["organisation_id"], admin.organisation_id);
    assert!(me.body.get("password_hash").is_none());

    // The patient joined the inviting counsellor's care team as primary.
    let p = app
        .get(&format!("/v1/patients/{}", patient.id), counsellor.t())
        .await
        .expect(200);
    assert_eq!(p.body["care_team"][0]["counsellor_id"], counsellor.id);
    assert_eq!(p.body["care_team"][0]["is_primary"], true);
    assert_eq!(p.body["phase"], "aftercare");
    assert_eq!(p.header("cache-control"), Some("no-store"));
    app.get(&format!("/v1/patients/{}", patient.id), admin.t())
        .await
        .expect(200);
}

#[tokio::test]
async fn invitation_codes_are_single_use_and_expire() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let code = app.invite(&admin, json!({"role": "counsellor"})).await;
    app.register(&code, "first", "UTC").await;
    let again = app
        .post(
            "/v1/auth/register",
            None,
            &json!({"invitation_code": code, "email": "second@example.org", "password": PASSWORD,
                "display_name": "Second", "timezone": "UTC"}),
        )
        .await
        .expect_problem(422);
    assert_eq!(again.error_fields(), vec!["invitation_code"]);

    let old = app.invite(&admin, json!({"role": "counsellor"})).await;
    app.sql("UPDATE invitations SET expires_at = '2020-01-01 00:00:00' WHERE used_at IS NULL");
    let r = app
        .post(
            "/v1/auth/register",
            None,
            &json!({"invitation_code": old, "email": "late@example.org", "password": PASSWORD,
                "display_name": "Late", "timezone": "UTC"}),
        )
        .await
        .expect_problem(422);
    assert_eq!(r.error_fields(), vec!["invitation_code"]);
}

#[tokio::test]
async fn registration_validates_every_field_and_refuses_unknown_ones() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let code = app.invite(&admin, json!({"role": "patient"})).await;
    let r = app
        .post(
            "/v1/auth/register",
            None,
            &json!({"invitation_code": code, "email": "not-an-email", "password": "short",
                "display_name": "", "timezone": "Mars/Olympus_Mons"}),
        )
        .await
        .expect_problem(422);
    let mut fields = r.error_fields();
    fields.sort();
    assert_eq!(
        fields,
        vec!["display_name", "email", "password", "timezone"]
    );

    let r = app
        .post(
            "/v1/auth/register",
            None,
            &json!({"invitation_code": code, "email": "x@example.org", "password": PASSWORD,
                "display_name": "X", "timezone": "UTC", "role": "admin"}),
        )
        .await
        .expect_problem(422);
    assert_eq!(r.error_fields(), vec!["role"]);

    let r = app
        .post(
            "/v1/auth/register",
            None,
            &json!({"invitation_code": code, "email": "x@example.org", "password": "password1234",
                "display_name": "X", "timezone": "UTC"}),
        )
        .await
        .expect_problem(422);
    assert_eq!(r.error_fields(), vec!["password"]);
}

#[tokio::test]
async fn refresh_rotates_and_reuse_revokes_the_session() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let r1 = app
        .post(
            "/v1/auth/refresh",
            None,
            &json!({"refresh_token": admin.refresh}),
        )
        .await
        .expect(200);
    let second = r1.body["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(second, admin.refresh);
    assert_eq!(r1.body["token_type"], "Bearer");
    assert_eq!(r1.body["expires_in"], 900);

    // The first token was already used: presenting it again is theft, and ends the family.
    let reuse = app
        .post(
            "/v1/auth/refresh",
            None,
            &json!({"refresh_token": admin.refresh}),
        )
        .await
        .expect_problem(401);
    assert!(reuse
        .header("www-authenticate")
        .unwrap()
        .starts_with("Bearer"));
    app.post("/v1/auth/refresh", None, &json!({"refresh_token": second}))
        .await
        .expect_problem(401);

    // The revoked session's access token is cut off too; the admin signs in again.
    app.get("/v1/me", admin.t()).await.expect_problem(401);
    let again = app.login(&admin.email, PASSWORD).await;
    let audit = app
        .get(
            "/v1/organisation/audit-events?action=auth.refresh_reuse",
            again.t(),
        )
        .await
        .expect(200);
    assert_eq!(audit.body["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn logout_and_password_change_end_sessions() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let counsellor = app.counsellor(&admin).await;

    let other_session = app.login(&counsellor.email, PASSWORD).await;
    app.post(
        "/v1/auth/logout",
        None,
        &json!({"refresh_token": other_session.refresh}),
    )
    .await
    .expect(204);
    app.post(
        "/v1/auth/refresh",
        None,
        &json!({"refresh_token": other_session.refresh}),
    )
    .await
    .expect_problem(401);

    let wrong = app
        .post(
            "/v1/me/password",
            counsellor.t(),
            &json!({"current_password": "not-my-password-at-all", "new_password": "a-brand-new-lantern"}),
        )
        .await
        .expect_problem(422);
    assert_eq!(wrong.error_fields(), vec!["current_password"]);
    app.post(
        "/v1/me/password",
        counsellor.t(),
        &json!({"current_password": PASSWORD, "new_password": "a-brand-new-lantern"}),
    )
    .await
    .expect(204);
    // Every session ends: the old access token and the refresh token.
    app.get("/v1/me", counsellor.t()).await.expect_problem(401);
    app.post(
        "/v1/auth/refresh",
        None,
        &json!({"refresh_token": counsellor.refresh}),
    )
    .await
    .expect_problem(401);
    app.post(
        "/v1/auth/login",
        None,
        &json!({"email": counsellor.email, "password": PASSWORD}),
    )
    .await
    .expect_problem(401);
    let fresh = app.login(&counsellor.email, "a-brand-new-lantern").await;
    app.get("/v1/me", fresh.t()).await.expect(200);
}

#[tokio::test]
async fn me_can_be_edited_with_validation() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let r = app
        .patch(
            "/v1/me",
            admin.t(),
            &json!({"display_name": "Dr. Rivera", "timezone": "Europe/Dublin"}),
        )
        .await
        .expect(200);
    assert_eq!(r.body["display_name"], "Dr. Rivera");
    assert_eq!(r.body["timezone"], "Europe/Dublin");
    let bad = app
        .patch("/v1/me", admin.t(), &json!({"timezone": "Nowhere"}))
        .await
        .expect_problem(422);
    assert_eq!(bad.error_fields(), vec!["timezone"]);
    app.get("/v1/me", admin.t()).await.expect(200);
}

#[tokio::test]
async fn failed_logins_are_throttled_alike_for_known_and_unknown_accounts() {
    let app = spawn_app_with(&[("AFTERCARE_LOGIN_MAX_FAILURES", "3")]).await;
    let admin = app.admin().await;
    for email in [admin.email.as_str(), "nobody@example.org"] {
        for _ in 0..3 {
            let r = app
                .post(
                    "/v1/auth/login",
                    None,
                    &json!({"email": email, "password": "wrong-password-here"}),
                )
                .await
                .expect_problem(401);
            assert_eq!(r.body["detail"], "The email or password is incorrect.");
        }
        let limited = app
            .post(
                "/v1/auth/login",
                None,
                &json!({"email": email, "password": PASSWORD}),
            )
            .await
            .expect_problem(429);
        let retry: u64 = limited.header("retry-after").unwrap().parse().unwrap();
        assert!(retry > 0 && retry <= 900);
    }
    let audit = app
        .get(
            "/v1/organisation/audit-events?action=auth.login_failed",
            admin.t(),
        )
        .await
        .expect(200);
    assert_eq!(audit.body["items"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn the_throttle_lifts_after_its_window() {
    let app = spawn_app_with(&[
        ("AFTERCARE_LOGIN_MAX_FAILURES", "2"),
        ("AFTERCARE_LOGIN_WINDOW_SECS", "1"),
    ])
    .await;
    let admin = app.admin().await;
    for _ in 0..2 {
        app.post(
            "/v1/auth/login",
            None,
            &json!({"email": admin.email, "password": "wrong-password-here"}),
        )
        .await
        .expect(401);
    }
    app.post(
        "/v1/auth/login",
        None,
        &json!({"email": admin.email, "password": PASSWORD}),
    )
    .await
    .expect(429);
    tokio::time::sleep(std::time::Duration::from_millis(1300)).await;
    app.login(&admin.email, PASSWORD).await;
}

#[tokio::test]
async fn who_may_reach_which_patient() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let alice = app.counsellor(&admin).await;
    let bob = app.counsellor(&admin).await;
    let pat_a = app.patient(&alice).await;
    let pat_b = app.patient(&bob).await;
    let other_admin = app.admin().await; // another organisation
    let other_counsellor = app.counsellor(&other_admin).await;
    let other_patient = app.patient(&other_counsellor).await;
    let missing = "0193a6b0-0000-7000-8000-000000000000";

    let table: Vec<(&str, &crate::helpers::Login, String, u16)> = vec![
        (
            "counsellor reads own patient",
            &alice,
            pat_a.id.clone(),
            200,
        ),
        (
            "counsellor reads another team's patient",
            &alice,
            pat_b.id.clone(),
            404,
        ),
        (
            "counsellor reads another organisation's patient",
            &alice,
            other_patient.id.clone(),
            404,
        ),
        (
            "counsellor reads a missing patient",
            &alice,
            missing.into(),
            404,
        ),
        (
            "admin reads any patient of the organisation",
            &admin,
            pat_b.id.clone(),
            200,
        ),
        (
            "admin reads another organisation's patient",
            &admin,
            other_patient.id.clone(),
            404,
        ),
        (
            "other admin reads our patient",
            &other_admin,
            pat_a.id.clone(),
            404,
        ),
        (
            "patient reads the patient endpoint",
            &pat_a,
            pat_a.id.clone(),
            403,
        ),
        ("a non-patient user id", &admin, alice.id.clone(), 404),
    ];
    for (story, who, id, status) in table {
        let r = app.get(&format!("/v1/patients/{id}"), who.t()).await;
        assert_eq!(r.status, status, "{story}: {}", r.text);
    }
    // Writing the care team: admins only, own organisation only.
    let body = json!({"counsellor_ids": [alice.id]});
    let writes: Vec<(&str, &crate::helpers::Login, String, u16)> = vec![
        (
            "counsellor assigns a care team",
            &alice,
            pat_a.id.clone(),
            403,
        ),
        ("patient assigns a care team", &pat_a, pat_a.id.clone(), 403),
        (
            "other admin assigns our patient",
            &other_admin,
            pat_a.id.clone(),
            404,
        ),
        (
            "admin assigns a missing patient",
            &admin,
            missing.into(),
            404,
        ),
    ];
    for (story, who, id, status) in writes {
        let r = app
            .put(&format!("/v1/patients/{id}/care-team"), who.t(), &body)
            .await;
        assert_eq!(r.status, status, "{story}: {}", r.text);
    }
    // Denials are audited.
    let denied = app
        .get("/v1/organisation/audit-events?outcome=denied", admin.t())
        .await
        .expect(200);
    assert!(
        denied.body["items"].as_array().unwrap().len() >= 3,
        "{}",
        denied.text
    );
}

#[tokio::test]
async fn care_team_changes_and_disabling_take_effect_on_the_next_request() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let alice = app.counsellor(&admin).await;
    let bob = app.counsellor(&admin).await;
    let patient = app.patient(&alice).await;
    let path = format!("/v1/patients/{}", patient.id);
    app.get(&path, bob.t()).await.expect(404);

    let r = app
        .put(
            &format!("{path}/care-team"),
            admin.t(),
            &json!({"counsellor_ids": [bob.id], "primary_counsellor_id": bob.id}),
        )
        .await
        .expect(200);
    assert_eq!(r.body["care_team"].as_array().unwrap().len(), 1);
    app.get(&path, bob.t()).await.expect(200);
    app.get(&path, alice.t()).await.expect(404);

    let bad = app
        .put(
            &format!("{path}/care-team"),
            admin.t(),
            &json!({"counsellor_ids": [patient.id]}),
        )
        .await
        .expect_problem(422);
    assert_eq!(bad.error_fields(), vec!["counsellor_ids[0]"]);

    app.patch(
        &format!("/v1/users/{}", bob.id),
        admin.t(),
        &json!({"disabled": true}),
    )
    .await
    .expect(200);
    app.get("/v1/me", bob.t()).await.expect_problem(401);
    app.post(
        "/v1/auth/login",
        None,
        &json!({"email": bob.email, "password": PASSWORD}),
    )
    .await
    .expect(401);
    let users = app
        .get("/v1/users?role=counsellor", admin.t())
        .await
        .expect(200);
    assert_eq!(users.body["items"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn counsellors_invite_only_patients_and_patients_invite_nobody() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let alice = app.counsellor(&admin).await;
    app.post("/v1/invitations", alice.t(), &json!({"role": "counsellor"}))
        .await
        .expect_problem(403);
    let patient = app.patient(&alice).await;
    app.post("/v1/invitations", patient.t(), &json!({"role": "patient"}))
        .await
        .expect_problem(403);
    let r = app
        .post("/v1/invitations", admin.t(), &json!({"role": "chef"}))
        .await
        .expect_problem(422);
    assert_eq!(r.error_fields(), vec!["role"]);
    let r = app
        .post(
            "/v1/invitations",
            admin.t(),
            &json!({"role": "patient", "counsellor_id": admin.id}),
        )
        .await
        .expect_problem(422);
    assert_eq!(r.error_fields(), vec!["counsellor_id"]);
}

mod forged {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;

    fn b64(v: &serde_json::Value) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
    }

    #[tokio::test]
    async fn forged_tokens_are_refused() {
        let app = spawn_app().await;
        let admin = app.admin().await;
        let parts: Vec<&str> = admin.token.split('.').collect();
        let header: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
        let mut claims: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();

        // alg none
        let none = format!(
            "{}.{}.",
            b64(&json!({"alg": "none", "typ": "JWT"})),
            parts[1]
        );
        // a tampered payload with the original signature
        claims["sub"] = json!("someone-else");
        let tampered = format!("{}.{}.{}", parts[0], b64(&claims), parts[2]);
        // signed by another key, claiming the server's kid
        let foreign = aftercare::auth::tokens::Keys::generate_pem().unwrap();
        let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
        h.kid = header["kid"].as_str().map(str::to_owned);
        let mut real_claims: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        let wrong_key = jsonwebtoken::encode(
            &h,
            &real_claims,
            &jsonwebtoken::EncodingKey::from_ed_pem(foreign.as_bytes()).unwrap(),
        )
        .unwrap();
        // the real key, with `exp` as a string (older libraries skipped the check)
        let real = std::fs::read_to_string(&app.key_file).unwrap();
        real_claims["exp"] = json!("99999999999");
        let string_exp = jsonwebtoken::encode(
            &h,
            &real_claims,
            &jsonwebtoken::EncodingKey::from_ed_pem(real.as_bytes()).unwrap(),
        )
        .unwrap();
        // the real key, expired
        real_claims["exp"] = json!(1_600_000_000);
        let expired = jsonwebtoken::encode(
            &h,
            &real_claims,
            &jsonwebtoken::EncodingKey::from_ed_pem(real.as_bytes()).unwrap(),
        )
        .unwrap();
        // the real key, a token of another type
        real_claims["exp"] = json!(99_999_999_999i64);
        real_claims["typ"] = json!("refresh");
        let wrong_type = jsonwebtoken::encode(
            &h,
            &real_claims,
            &jsonwebtoken::EncodingKey::from_ed_pem(real.as_bytes()).unwrap(),
        )
        .unwrap();

        for (story, token) in [
            ("alg none", none),
            ("tampered payload", tampered),
            ("wrong key", wrong_key),
            ("string exp", string_exp),
            ("expired", expired),
            ("wrong token type", wrong_type),
            ("garbage", "not.a.token".to_owned()),
        ] {
            let r = app.get("/v1/me", Some(&token)).await;
            assert_eq!(r.status, 401, "{story}: {}", r.text);
            assert!(r.header("www-authenticate").is_some(), "{story}");
        }
        let r = app.get("/v1/me", None).await.expect_problem(401);
        assert!(r.header("www-authenticate").unwrap().contains("Bearer"));
        app.get("/v1/me", admin.t()).await.expect(200);
    }

    #[tokio::test]
    async fn jwks_publishes_the_key_that_signs_tokens() {
        let app = spawn_app().await;
        let admin = app.admin().await;
        let jwks = app.get("/.well-known/jwks.json", None).await.expect(200);
        let header = jsonwebtoken::decode_header(&admin.token).unwrap();
        assert_eq!(jwks.body["keys"][0]["kid"].as_str(), header.kid.as_deref());
        assert_eq!(jwks.body["keys"][0]["alg"], "EdDSA");
        let key = jsonwebtoken::DecodingKey::from_ed_components(
            jwks.body["keys"][0]["x"].as_str().unwrap(),
        )
        .unwrap();
        let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
        v.set_audience(&["aftercare-api"]);
        jsonwebtoken::decode::<serde_json::Value>(&admin.token, &key, &v).unwrap();
    }
}

#[tokio::test]
async fn reads_and_sign_ins_are_audited_for_admins_only() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let counsellor = app.counsellor(&admin).await;
    let patient = app.patient(&counsellor).await;
    app.get(&format!("/v1/patients/{}", patient.id), counsellor.t())
        .await
        .expect(200);
    let r = app
        .get(
            &format!("/v1/organisation/audit-events?patient_id={}", patient.id),
            admin.t(),
        )
        .await
        .expect(200);
    let items = r.body["items"].as_array().unwrap();
    let read = items
        .iter()
        .find(|e| e["action"] == "patient.read")
        .expect("patient.read event");
    assert_eq!(read["actor_id"], counsellor.id);
    assert_eq!(read["outcome"], "success");
    assert!(read["request_id"].is_string());
    let logins = app
        .get("/v1/organisation/audit-events?action=auth.login", admin.t())
        .await
        .expect(200);
    assert!(!logins.body["items"].as_array().unwrap().is_empty());
    app.get("/v1/organisation/audit-events", counsellor.t())
        .await
        .expect_problem(403);
    let paged = app
        .get("/v1/organisation/audit-events?limit=1", admin.t())
        .await
        .expect(200);
    assert_eq!(paged.body["items"].as_array().unwrap().len(), 1);
    let next = paged.body["next_cursor"].as_str().unwrap();
    let page2 = app
        .get(
            &format!("/v1/organisation/audit-events?limit=1&cursor={next}"),
            admin.t(),
        )
        .await
        .expect(200);
    assert_ne!(page2.body["items"][0]["id"], paged.body["items"][0]["id"]);
    app.get("/v1/organisation/audit-events?limit=500", admin.t())
        .await
        .expect_problem(400);
}

/// The body each id-taking route is called with in the reach table: valid, so that only the
/// caller and the object decide the answer.
fn reach_body(route: &str) -> Option<serde_json::Value> {
    match route {
        "PATCH /v1/patients/{id}" => Some(json!({"phase": "aftercare"})),
        "PUT /v1/patients/{id}/care-team" => Some(json!({"counsellor_ids": []})),
        "PUT /v1/patients/{id}/risk-policy" => Some(json!({})),
        "POST /v1/patients/{id}/check-ins/import" => Some(json!({
            "source": "previous system",
            "replace": true,
            "check_ins": [{"date": "2026-11-01", "craving": 2, "mood": 6,
                           "exercise_minutes": 20, "meals": 3, "used_substance": false}]
        })),
        "POST /v1/patients/{id}/risk-policy/backtest" => Some(json!({"overrides": {}})),
        "POST /v1/patients/{id}/emergency-disclosures" => Some(json!({
            "recipient_name": "Dr Okafor",
            "recipient_affiliation": "St Mary's emergency department",
            "nature": "Substances used, for an overdose"
        })),
        "POST /v1/alerts/{id}/acknowledge" => Some(json!({})),
        "POST /v1/alerts/{id}/resolve" => {
            Some(json!({"outcome": "contacted", "note": "Spoke on the phone."}))
        }
        "PATCH /v1/users/{id}" => Some(json!({"disabled": false})),
        "PUT /v1/organisation/security" => Some(json!({"staff_mfa": "optional"})),
        "POST /v1/me/mfa/totp" => Some(json!({})),
        "POST /v1/me/mfa/totp/confirm" => Some(json!({"code": "123456"})),
        "DELETE /v1/me/mfa/totp" => {
            Some(json!({"password": crate::helpers::PASSWORD, "code": "123456"}))
        }
        _ => None,
    }
}

/// Calls `route` ("METHOD /path/{id}") for the object `id`.
async fn reach(
    app: &crate::helpers::TestApp,
    who: &crate::helpers::Login,
    route: &str,
    id: &str,
) -> crate::helpers::Resp {
    let (method, template) = route.split_once(' ').expect("METHOD /path");
    app.send(
        method,
        &template.replace("{id}", id),
        who.t(),
        reach_body(route).as_ref(),
    )
    .await
}

/// Every route of `src/http/mod.rs` that names an object by id, across roles, care teams and
/// organisations. A 404 for an object out of reach must be indistinguishable from the 404 for
/// a missing one, a 403 must not depend on whether the object exists, and every denial is
/// audited with the route and the object.
#[tokio::test]
async fn every_route_that_names_an_object_checks_role_care_team_and_organisation() {
    let app = spawn_app().await;
    let sink = crate::receivers::http::HttpSink::start().await;
    let admin = app.admin().await;
    let alice = app.counsellor(&admin).await;
    let bob = app.counsellor(&admin).await; // same organisation, not on pat_a's care team
    let pat_a = app.patient(&alice).await;
    let other_admin = app.admin().await; // another organisation
    let other_counsellor = app.counsellor(&other_admin).await;
    let other_patient = app.patient(&other_counsellor).await;
    let missing = "0193a6b0-0000-7000-8000-000000000000";

    let alert_a = app
        .post("/v1/me/sos", pat_a.t(), &json!({}))
        .await
        .expect(202)
        .body["alert_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let alert_b = app
        .post("/v1/me/sos", other_patient.t(), &json!({}))
        .await
        .expect(202)
        .body["alert_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut hooks = Vec::new();
    for who in [&admin, &other_admin] {
        let r = app
            .post(
                "/v1/organisation/webhooks",
                who.t(),
                &json!({"url": sink.url("/reach"), "events": ["alert.escalated"]}),
            )
            .await
            .expect(201);
        hooks.push(r.body["id"].as_str().unwrap().to_owned());
    }
    let (hook_a, hook_b) = (hooks[0].clone(), hooks[1].clone());

    let patient_routes = [
        "GET /v1/patients/{id}",
        "PATCH /v1/patients/{id}",
        "GET /v1/patients/{id}/check-ins",
        "GET /v1/patients/{id}/risk-policy",
        "PUT /v1/patients/{id}/risk-policy",
        "GET /v1/patients/{id}/summary",
        "GET /v1/patients/{id}/trends",
        "POST /v1/patients/{id}/check-ins/import",
        "POST /v1/patients/{id}/risk-policy/backtest",
        "GET /v1/patients/{id}/disclosures",
        "POST /v1/patients/{id}/emergency-disclosures",
    ];
    let alert_routes = [
        "GET /v1/alerts/{id}",
        "GET /v1/alerts/{id}/history",
        "POST /v1/alerts/{id}/acknowledge",
        "POST /v1/alerts/{id}/resolve",
    ];
    let webhook_routes = [
        "GET /v1/organisation/webhooks/{id}",
        "GET /v1/organisation/webhooks/{id}/deliveries",
        "DELETE /v1/organisation/webhooks/{id}",
    ];

    // (story, caller, route, object id, expected status). Denials first: the successful
    // writes that change an object (resolve, delete) come last.
    let mut table: Vec<(String, &crate::helpers::Login, &str, String, u16)> = Vec::new();
    for route in patient_routes {
        for (story, who, id, status) in [
            ("counsellor off the care team", &bob, &pat_a.id, 404),
            (
                "counsellor of another organisation",
                &other_counsellor,
                &pat_a.id,
                404,
            ),
            (
                "admin of another organisation",
                &other_admin,
                &pat_a.id,
                404,
            ),
            (
                "admin reaches into another organisation",
                &admin,
                &other_patient.id,
                404,
            ),
            ("a patient, on their own record", &pat_a, &pat_a.id, 403),
            ("a non-patient user id", &admin, &alice.id, 404),
        ] {
            table.push((format!("{route}: {story}"), who, route, id.clone(), status));
        }
    }
    // Assigning the care team is the admins' alone.
    let care_team = "PUT /v1/patients/{id}/care-team";
    for (story, who, id, status) in [
        ("a counsellor on the care team", &alice, &pat_a.id, 403),
        ("a patient", &pat_a, &pat_a.id, 403),
        (
            "admin of another organisation",
            &other_admin,
            &pat_a.id,
            404,
        ),
        (
            "admin reaches into another organisation",
            &admin,
            &other_patient.id,
            404,
        ),
    ] {
        table.push((
            format!("{care_team}: {story}"),
            who,
            care_team,
            id.clone(),
            status,
        ));
    }
    for route in alert_routes {
        for (story, who, id, status) in [
            ("counsellor off the care team", &bob, &alert_a, 404),
            (
                "counsellor of another organisation",
                &other_counsellor,
                &alert_a,
                404,
            ),
            ("admin of another organisation", &other_admin, &alert_a, 404),
            (
                "admin reaches into another organisation",
                &admin,
                &alert_b,
                404,
            ),
            ("the patient, on their own alert", &pat_a, &alert_a, 403),
        ] {
            table.push((format!("{route}: {story}"), who, route, id.clone(), status));
        }
    }
    let users = "PATCH /v1/users/{id}";
    for (story, who, id, status) in [
        (
            "admin of another organisation",
            &other_admin,
            &alice.id,
            404,
        ),
        (
            "admin reaches into another organisation",
            &admin,
            &other_counsellor.id,
            404,
        ),
        ("a counsellor, on a colleague", &alice, &bob.id, 403),
        ("a counsellor, on themselves", &alice, &alice.id, 403),
        ("a patient, on their counsellor", &pat_a, &alice.id, 403),
    ] {
        table.push((format!("{users}: {story}"), who, users, id.clone(), status));
    }
    for route in webhook_routes {
        for (story, who, id, status) in [
            ("admin of another organisation", &other_admin, &hook_a, 404),
            (
                "admin reaches into another organisation",
                &admin,
                &hook_b,
                404,
            ),
            ("a counsellor of the organisation", &alice, &hook_a, 403),
            (
                "a counsellor of the other organisation",
                &other_counsellor,
                &hook_b,
                403,
            ),
            ("a patient", &pat_a, &hook_a, 403),
        ] {
            table.push((format!("{route}: {story}"), who, route, id.clone(), status));
        }
    }
    // Routes that name no object (the id is empty): the organisation's security settings are
    // the admins', the staff second factor is the staff's.
    for (route, who, status) in [
        ("GET /v1/organisation/security", &alice, 403),
        ("GET /v1/organisation/security", &pat_a, 403),
        ("PUT /v1/organisation/security", &alice, 403),
        ("PUT /v1/organisation/security", &pat_a, 403),
        ("POST /v1/me/mfa/totp", &pat_a, 403),
        ("POST /v1/me/mfa/totp/confirm", &pat_a, 403),
        ("DELETE /v1/me/mfa/totp", &pat_a, 403),
        ("GET /v1/organisation/security", &admin, 200),
        ("PUT /v1/organisation/security", &admin, 200),
        ("POST /v1/me/mfa/totp", &alice, 200),
        ("GET /v1/me/mfa", &pat_a, 200),
    ] {
        table.push((
            format!("{route}: {}", who.email),
            who,
            route,
            String::new(),
            status,
        ));
    }
    // The same objects are within reach of the right callers: the 404s above are not a
    // wrong id.
    for route in patient_routes {
        for (story, who) in [
            ("a counsellor on the care team", &alice),
            ("an admin of the organisation", &admin),
        ] {
            table.push((
                format!("{route}: {story}"),
                who,
                route,
                pat_a.id.clone(),
                if route.ends_with("/import") || route.ends_with("/emergency-disclosures") {
                    201
                } else {
                    200
                },
            ));
        }
    }
    for (route, who, id, status) in [
        ("GET /v1/alerts/{id}", &alice, &alert_a, 200),
        ("GET /v1/alerts/{id}/history", &alice, &alert_a, 200),
        ("GET /v1/alerts/{id}", &admin, &alert_a, 200),
        ("GET /v1/alerts/{id}/history", &admin, &alert_a, 200),
        ("POST /v1/alerts/{id}/acknowledge", &alice, &alert_a, 200),
        ("POST /v1/alerts/{id}/resolve", &admin, &alert_a, 200),
        ("PATCH /v1/users/{id}", &admin, &alice.id, 200),
        ("PATCH /v1/users/{id}", &admin, &pat_a.id, 200),
        ("GET /v1/organisation/webhooks/{id}", &admin, &hook_a, 200),
        (
            "GET /v1/organisation/webhooks/{id}/deliveries",
            &admin,
            &hook_a,
            200,
        ),
        (
            "DELETE /v1/organisation/webhooks/{id}",
            &admin,
            &hook_a,
            204,
        ),
        // A deleted webhook is missing.
        ("GET /v1/organisation/webhooks/{id}", &admin, &hook_a, 404),
        (
            "GET /v1/organisation/webhooks/{id}/deliveries",
            &admin,
            &hook_a,
            404,
        ),
        (
            "DELETE /v1/organisation/webhooks/{id}",
            &admin,
            &hook_a,
            404,
        ),
    ] {
        let story = if status == 404 {
            format!("{route}: after the webhook was deleted")
        } else {
            format!("{route}: the object's own people")
        };
        table.push((story, who, route, id.clone(), status));
    }

    for (story, who, route, id, status) in &table {
        let r = reach(&app, who, route, id).await;
        assert_eq!(r.status, *status, "{story}: {}", r.text);
        if *status < 400 {
            continue;
        }
        // A denial: the same call on an id that names nothing answers exactly alike, so
        // ids cannot be probed, and a role refusal does not depend on the object existing.
        let r = r.expect_problem(*status);
        let m = reach(&app, who, route, missing).await;
        assert_eq!(m.status, r.status, "{story}, missing id: {}", m.text);
        let m = m.expect_problem(*status);
        for field in ["type", "title", "status", "detail"] {
            assert_eq!(
                r.body[field], m.body[field],
                "{story}: out of reach and missing differ in {field}"
            );
        }
        assert_eq!(
            r.body["type"],
            if *status == 404 {
                "/problems/not-found"
            } else {
                "/problems/forbidden"
            },
            "{story}: {}",
            r.text
        );
    }

    // Every denial is in its organisation's audit trail: who, which route, which object.
    let mut trail: Vec<serde_json::Value> = Vec::new();
    for reader in [&admin, &other_admin] {
        let mut cursor: Option<String> = None;
        loop {
            let mut path = "/v1/organisation/audit-events?outcome=denied&limit=200".to_owned();
            if let Some(c) = &cursor {
                path.push_str(&format!("&cursor={c}"));
            }
            let page = app.get(&path, reader.t()).await.expect(200);
            trail.extend(page.body["items"].as_array().unwrap().iter().cloned());
            match page.body["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => break,
            }
        }
    }
    for (story, who, route, id, status) in &table {
        let action = match status {
            403 => "permission.denied",
            404 => "object.denied",
            _ => continue,
        };
        assert!(
            trail.iter().any(|e| e["actor_id"] == who.id.as_str()
                && e["action"] == action
                && e["target_type"] == *route
                && if id.is_empty() {
                    e["target_id"].is_null()
                } else {
                    e["target_id"] == id.as_str()
                }),
            "{story}: no {action} audit event for {route} on {id}"
        );
    }
}
