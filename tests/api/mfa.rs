//! Staff sign-in with a second factor (SPEC §12): a counsellor enrols an authenticator app,
//! signs in in two steps, uses a recovery code, and turns it off; the organisation can
//! require it; sensitive changes need a recent sign-in. Codes are computed from the secret
//! the API hands out, as an authenticator app would.

use aftercare::auth::totp;
use serde_json::{json, Value};

use crate::helpers::{spawn_app, spawn_app_with, Login, Resp, TestApp, PASSWORD};

/// The code an authenticator app shows `offset` steps from now.
fn code(secret: &[u8], offset: i64) -> String {
    let step = totp::step_of(chrono::Utc::now().timestamp()) + offset;
    totp::code_at(secret, step).unwrap()
}

/// Starts and confirms enrolment; returns the secret and the recovery codes.
async fn enrol(app: &TestApp, who: &Login) -> (Vec<u8>, Vec<String>) {
    let r = app
        .post("/v1/me/mfa/totp", who.t(), &json!({}))
        .await
        .expect(200);
    let secret = totp::from_base32(r.body["secret"].as_str().unwrap()).unwrap();
    // The previous step's code is still accepted (clock drift), so the current one stays
    // fresh for the sign-in that follows.
    let r = app
        .post(
            "/v1/me/mfa/totp/confirm",
            who.t(),
            &json!({"code": code(&secret, -1)}),
        )
        .await
        .expect(200);
    let codes = r.body["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    (secret, codes)
}

/// The first step: the right password, answered with `mfa-required` and a token.
async fn first_step(app: &TestApp, email: &str) -> String {
    let r = app
        .post(
            "/v1/auth/login",
            None,
            &json!({"email": email, "password": PASSWORD}),
        )
        .await
        .expect_problem(401);
    assert!(
        r.body["type"].as_str().unwrap().ends_with("mfa-required"),
        "{}",
        r.text
    );
    assert!(r.body.get("access_token").is_none());
    r.body["mfa_token"].as_str().unwrap().to_owned()
}

async fn second_step(app: &TestApp, token: &str, code: &str) -> Resp {
    app.post(
        "/v1/auth/mfa",
        None,
        &json!({"mfa_token": token, "code": code}),
    )
    .await
}

fn problem_type(r: &Resp) -> &str {
    r.body["type"].as_str().unwrap_or("")
}

/// Makes every session of `who` look as if it signed in an hour ago.
fn age_sign_in(app: &TestApp, who: &Login) {
    let an_hour_ago = (chrono::Utc::now() - chrono::TimeDelta::hours(1))
        .naive_utc()
        .format("%Y-%m-%d %H:%M:%S");
    app.sql(&format!(
        "UPDATE refresh_tokens SET authenticated_at = '{an_hour_ago}' WHERE user_id = '{}'",
        who.id
    ));
}

async fn audit_actions(app: &TestApp, admin: &Login, action: &str) -> Vec<Value> {
    let r = app
        .get(
            &format!("/v1/organisation/audit-events?action={action}&limit=200"),
            admin.t(),
        )
        .await
        .expect(200);
    r.body["items"].as_array().unwrap().clone()
}

#[tokio::test]
async fn a_counsellor_enrols_an_authenticator_and_signs_in_in_two_steps() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let c = app.counsellor(&admin).await;

    let status = app.get("/v1/me/mfa", c.t()).await.expect(200);
    assert_eq!(status.body["totp_enabled"], false);

    let r = app
        .post("/v1/me/mfa/totp", c.t(), &json!({}))
        .await
        .expect(200);
    let b32 = r.body["secret"].as_str().unwrap().to_owned();
    let uri = r.body["otpauth_uri"].as_str().unwrap();
    assert!(uri.starts_with("otpauth://totp/Aftercare:"), "{uri}");
    assert!(uri.contains(&format!("secret={b32}")), "{uri}");
    let secret = totp::from_base32(&b32).unwrap();
    assert_eq!(secret.len(), 20);

    // The database holds the secret sealed, not in any readable form.
    let id = c.id.clone();
    let row = app
        .state
        .store
        .run(move |conn| aftercare::store::mfa::find_totp(conn, &id))
        .await
        .unwrap()
        .unwrap();
    assert!(!row.secret_sealed.contains(&b32));
    assert!(row.confirmed_at.is_none());

    // Until it is confirmed, the password alone still signs in.
    app.login(&c.email, PASSWORD).await;

    // A wrong code does not confirm.
    let wrong = if code(&secret, 0) == "000000" {
        "111111"
    } else {
        "000000"
    };
    let r = app
        .post("/v1/me/mfa/totp/confirm", c.t(), &json!({"code": wrong}))
        .await
        .expect_problem(422);
    assert_eq!(r.error_fields(), ["code"]);
    let r = app
        .post(
            "/v1/me/mfa/totp/confirm",
            c.t(),
            &json!({"code": code(&secret, -1)}),
        )
        .await
        .expect(200);
    let codes = r.body["recovery_codes"].as_array().unwrap();
    assert_eq!(codes.len(), 10);
    let distinct: std::collections::HashSet<&str> =
        codes.iter().map(|c| c.as_str().unwrap()).collect();
    assert_eq!(distinct.len(), 10);
    let status = app.get("/v1/me/mfa", c.t()).await.expect(200);
    assert_eq!(status.body["totp_enabled"], true);
    assert_eq!(status.body["recovery_codes_remaining"], 10);
    // A second enrolment while one is on is refused.
    app.post("/v1/me/mfa/totp", c.t(), &json!({}))
        .await
        .expect_problem(409);

    // The password now opens only the second step.
    let token = first_step(&app, &c.email).await;
    let r = second_step(&app, &token, &code(&secret, 0))
        .await
        .expect(200);
    let access = r.body["access_token"].as_str().unwrap().to_owned();
    assert_eq!(r.body["user"]["id"], c.id);
    assert!(r.body["refresh_token"].is_string());
    app.get("/v1/patients", Some(&access)).await.expect(200);

    // The mfa_token is single use.
    let r = second_step(&app, &token, &code(&secret, 1))
        .await
        .expect_problem(401);
    assert_eq!(r.body["type"], "/problems/unauthorized");

    // A wrong password never reaches the second step.
    app.post(
        "/v1/auth/login",
        None,
        &json!({"email": c.email, "password": "not-the-password-at-all"}),
    )
    .await
    .expect_problem(401);

    // An mfa_token is valid for five minutes.
    let token = first_step(&app, &c.email).await;
    let past = (chrono::Utc::now() - chrono::TimeDelta::seconds(1))
        .naive_utc()
        .format("%Y-%m-%d %H:%M:%S");
    app.sql(&format!(
        "UPDATE mfa_challenges SET expires_at = '{past}' WHERE used_at IS NULL"
    ));
    second_step(&app, &token, &code(&secret, 1))
        .await
        .expect_problem(401);

    let enabled = audit_actions(&app, &admin, "mfa.enabled").await;
    assert_eq!(enabled.len(), 1);
    assert_eq!(enabled[0]["actor_id"], c.id);
}

#[tokio::test]
async fn a_code_is_accepted_once() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let c = app.counsellor(&admin).await;
    let (secret, _) = enrol(&app, &c).await;

    let now = code(&secret, 0);
    let token = first_step(&app, &c.email).await;
    second_step(&app, &token, &now).await.expect(200);

    // Someone who watched the code go in, replaying it with the password.
    let token = first_step(&app, &c.email).await;
    let r = second_step(&app, &token, &now).await.expect_problem(401);
    assert!(
        r.body["detail"]
            .as_str()
            .unwrap()
            .contains("already been used"),
        "{}",
        r.text
    );
    // The app's next code works, on the same token.
    second_step(&app, &token, &code(&secret, 1))
        .await
        .expect(200);
    assert!(!audit_actions(&app, &admin, "auth.mfa_failed")
        .await
        .is_empty());
}

#[tokio::test]
async fn a_recovery_code_signs_in_once() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let c = app.counsellor(&admin).await;
    let (_, codes) = enrol(&app, &c).await;

    let token = first_step(&app, &c.email).await;
    // Typed in capitals, without dashes: still the code.
    let typed = codes[3].replace('-', "").to_uppercase();
    let r = second_step(&app, &token, &typed).await.expect(200);
    let access = r.body["access_token"].as_str().unwrap().to_owned();
    let status = app.get("/v1/me/mfa", Some(&access)).await.expect(200);
    assert_eq!(status.body["recovery_codes_remaining"], 9);

    let token = first_step(&app, &c.email).await;
    second_step(&app, &token, &codes[3])
        .await
        .expect_problem(401);
    // Another of the codes still works.
    second_step(&app, &token, &codes[4]).await.expect(200);

    let used = audit_actions(&app, &admin, "mfa.recovery_code_used").await;
    assert_eq!(used.len(), 2);
    assert_eq!(used[0]["actor_id"], c.id);
}

#[tokio::test]
async fn wrong_codes_are_throttled_like_passwords() {
    let app = spawn_app_with(&[("AFTERCARE_LOGIN_MAX_FAILURES", "3")]).await;
    let admin = app.admin().await;
    let c = app.counsellor(&admin).await;
    let (secret, _) = enrol(&app, &c).await;

    let token = first_step(&app, &c.email).await;
    let right = code(&secret, 0);
    let wrong = if right == "123456" {
        "654321"
    } else {
        "123456"
    };
    for _ in 0..3 {
        second_step(&app, &token, wrong).await.expect_problem(401);
    }
    // Blocked now, even for the right code; another mfa_token does not reset the count.
    let r = second_step(&app, &token, &right).await.expect_problem(429);
    let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!(retry > 0 && retry <= 900);
    let token2 = first_step(&app, &c.email).await;
    second_step(&app, &token2, &right).await.expect_problem(429);
    assert_eq!(
        audit_actions(&app, &admin, "auth.mfa_failed").await.len(),
        3
    );

    // Another counsellor's second step is untouched.
    let d = app.counsellor(&admin).await;
    let (d_secret, _) = enrol(&app, &d).await;
    let token = first_step(&app, &d.email).await;
    second_step(&app, &token, &code(&d_secret, 0))
        .await
        .expect(200);
}

#[tokio::test]
async fn an_organisation_can_require_staff_to_enrol() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let c = app.counsellor(&admin).await;
    let patient = app.patient(&c).await;

    let r = app
        .get("/v1/organisation/security", admin.t())
        .await
        .expect(200);
    assert_eq!(r.body, json!({"staff_mfa": "optional"}));
    let r = app
        .put(
            "/v1/organisation/security",
            admin.t(),
            &json!({"staff_mfa": "mandatory"}),
        )
        .await
        .expect_problem(422);
    assert_eq!(r.error_fields(), ["staff_mfa"]);
    app.put(
        "/v1/organisation/security",
        c.t(),
        &json!({"staff_mfa": "required"}),
    )
    .await
    .expect_problem(403);
    let r = app
        .put(
            "/v1/organisation/security",
            admin.t(),
            &json!({"staff_mfa": "required"}),
        )
        .await
        .expect(200);
    assert_eq!(r.body["staff_mfa"], "required");

    // The counsellor's existing session reaches only their account and its second factor.
    for path in ["/v1/patients", "/v1/alerts", "/v1/organisation/risk-policy"] {
        let r = app.get(path, c.t()).await.expect_problem(403);
        assert!(
            problem_type(&r).ends_with("mfa-enrolment-required"),
            "{path}: {}",
            r.text
        );
    }
    let r = app
        .post(
            "/v1/me/password",
            c.t(),
            &json!({"current_password": PASSWORD, "new_password": "a-brand-new-passphrase"}),
        )
        .await
        .expect_problem(403);
    assert!(problem_type(&r).ends_with("mfa-enrolment-required"));
    app.get("/v1/me", c.t()).await.expect(200);
    let status = app.get("/v1/me/mfa", c.t()).await.expect(200);
    assert_eq!(status.body["required"], true);
    // So does the admin's, once it has set the rule.
    let r = app
        .get("/v1/organisation/security", admin.t())
        .await
        .expect_problem(403);
    assert!(problem_type(&r).ends_with("mfa-enrolment-required"));
    // Patients are not staff: nothing changes for them.
    app.get("/v1/me/summary", patient.t()).await.expect(200);

    enrol(&app, &c).await;
    app.get("/v1/patients", c.t()).await.expect(200);
    enrol(&app, &admin).await;
    app.get("/v1/organisation/security", admin.t())
        .await
        .expect(200);
    // The denials are audited.
    let denied = audit_actions(&app, &admin, "permission.denied").await;
    assert!(denied
        .iter()
        .any(|e| e["actor_id"] == c.id.as_str() && e["target_type"] == "GET /v1/patients"));
}

#[tokio::test]
async fn sensitive_changes_need_a_recent_sign_in_or_the_password() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let c = app.counsellor(&admin).await;
    age_sign_in(&app, &c);
    age_sign_in(&app, &admin);

    let stale = |r: Resp| {
        let r = r.expect_problem(401);
        assert!(
            problem_type(&r).ends_with("reauthentication-required"),
            "{}",
            r.text
        );
        assert!(r.header("www-authenticate").is_some());
    };
    stale(app.post("/v1/me/mfa/totp", c.t(), &json!({})).await);
    stale(
        app.post("/v1/me/mfa/totp/confirm", c.t(), &json!({"code": "123456"}))
            .await,
    );
    // An email change always carries the password, which stands for a recent sign-in: without
    // it the change is refused, with it a stale session may make it.
    let r = app
        .patch(
            "/v1/me",
            c.t(),
            &json!({"email": "someone.else@example.org"}),
        )
        .await
        .expect_problem(422);
    assert_eq!(r.error_fields(), ["current_password"]);
    app.patch(
        "/v1/me",
        c.t(),
        &json!({"email": "someone.else@example.org", "current_password": PASSWORD}),
    )
    .await
    .expect(202);
    stale(
        app.post(
            "/v1/organisation/webhooks",
            admin.t(),
            &json!({"url": "https://example.org/hook", "events": ["alert.created"]}),
        )
        .await,
    );
    stale(
        app.put(
            "/v1/organisation/security",
            admin.t(),
            &json!({"staff_mfa": "required"}),
        )
        .await,
    );
    // What is not sensitive goes on.
    app.patch("/v1/me", c.t(), &json!({"display_name": "Alex R."}))
        .await
        .expect(200);
    app.get("/v1/patients", c.t()).await.expect(200);

    // A refresh keeps the session's sign-in time: it is not a sign-in.
    let r = app
        .post(
            "/v1/auth/refresh",
            None,
            &json!({"refresh_token": c.refresh}),
        )
        .await
        .expect(200);
    let refreshed = r.body["access_token"].as_str().unwrap().to_owned();
    stale(
        app.post("/v1/me/mfa/totp", Some(&refreshed), &json!({}))
            .await,
    );

    // The password in the request is enough.
    app.post(
        "/v1/me/password",
        Some(&refreshed),
        &json!({"current_password": PASSWORD, "new_password": "a-brand-new-passphrase"}),
    )
    .await
    .expect(204);

    // Signing in again opens the sensitive changes.
    let fresh = app
        .login("someone.else@example.org", "a-brand-new-passphrase")
        .await;
    app.post("/v1/me/mfa/totp", fresh.t(), &json!({}))
        .await
        .expect(200);
    let admin_again = app.login(&admin.email, PASSWORD).await;
    app.put(
        "/v1/organisation/security",
        admin_again.t(),
        &json!({"staff_mfa": "optional"}),
    )
    .await
    .expect(200);
}

#[tokio::test]
async fn the_second_factor_is_turned_off_with_the_password_and_a_code() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let c = app.counsellor(&admin).await;
    let patient = app.patient(&c).await;
    let (secret, codes) = enrol(&app, &c).await;
    // Long signed in: the password in the request stands in for a recent sign-in.
    age_sign_in(&app, &c);

    let r = app
        .send(
            "DELETE",
            "/v1/me/mfa/totp",
            c.t(),
            Some(&json!({"password": "not-the-password-at-all", "code": code(&secret, 0)})),
        )
        .await
        .expect_problem(422);
    assert_eq!(r.error_fields(), ["password"]);
    let r = app
        .send(
            "DELETE",
            "/v1/me/mfa/totp",
            c.t(),
            Some(&json!({"password": PASSWORD, "code": "abcd-efgh-ijkl-mnop"})),
        )
        .await
        .expect_problem(422);
    assert_eq!(r.error_fields(), ["code"]);
    // A lost phone: a recovery code turns it off.
    app.send(
        "DELETE",
        "/v1/me/mfa/totp",
        c.t(),
        Some(&json!({"password": PASSWORD, "code": codes[0]})),
    )
    .await
    .expect(204);
    let status = app.get("/v1/me/mfa", c.t()).await.expect(200);
    assert_eq!(status.body["totp_enabled"], false);
    assert_eq!(status.body["recovery_codes_remaining"], 0);
    // The password alone signs in again.
    app.login(&c.email, PASSWORD).await;
    app.send(
        "DELETE",
        "/v1/me/mfa/totp",
        c.t(),
        Some(&json!({"password": PASSWORD, "code": code(&secret, 0)})),
    )
    .await
    .expect_problem(409);

    // Patients have no staff second factor.
    app.post("/v1/me/mfa/totp", patient.t(), &json!({}))
        .await
        .expect_problem(403);

    for action in ["mfa.enrolment_started", "mfa.enabled", "mfa.disabled"] {
        let events = audit_actions(&app, &admin, action).await;
        assert_eq!(events.len(), 1, "{action}");
        assert_eq!(events[0]["actor_id"], c.id);
    }
    assert_eq!(
        audit_actions(&app, &admin, "mfa.disable_failed")
            .await
            .len(),
        2
    );
    assert_eq!(
        audit_actions(&app, &admin, "mfa.recovery_code_used")
            .await
            .len(),
        1
    );
}

#[tokio::test]
async fn the_same_code_sent_twice_at_once_signs_in_once() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let c = app.counsellor(&admin).await;
    let (secret, _) = enrol(&app, &c).await;

    let (t1, t2) = (
        first_step(&app, &c.email).await,
        first_step(&app, &c.email).await,
    );
    let now = code(&secret, 0);
    let (a, b) = tokio::join!(second_step(&app, &t1, &now), second_step(&app, &t2, &now));
    let mut statuses = [a.status, b.status];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 401], "{} / {}", a.text, b.text);
}
