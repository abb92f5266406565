//! Input the server cannot store or must not trust, refused at the edge with a clear answer:
//! NUL characters, arrays where objects are declared, timestamps from the future, requests
//! from the wrong role (refused before their body or query is read), and the headers every
//! response carries.

use serde_json::{json, Value};

use crate::helpers::{calm, calm_with, spawn_app, today, Resp, PASSWORD, SOWS_ITEMS};

const NY: &str = "America/New_York";

/// No message a client sees names a Rust type.
#[track_caller]
fn names_no_internal_type(r: &Resp) {
    for word in [
        "struct ",
        "enum ",
        "Request",
        "RiskPolicy",
        "Sows",
        "CheckInInput",
    ] {
        assert!(!r.text.contains(word), "`{word}` in {}", r.text);
    }
}

#[tokio::test]
async fn a_nul_in_any_json_string_is_a_422_naming_the_field() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let counsellor = app.counsellor(&admin).await;
    let patient = app.patient(&counsellor).await;

    let r = app
        .post(
            "/v1/auth/login",
            None,
            &json!({"email": "\u{0}", "password": "whatever-it-is"}),
        )
        .await
        .expect_problem(422);
    assert_eq!(r.error_fields(), vec!["email"]);

    let r = app
        .patch("/v1/me", patient.t(), &json!({"display_name": "Sam\u{0}"}))
        .await
        .expect_problem(422);
    assert_eq!(r.error_fields(), vec!["display_name"]);

    let r = app
        .post(
            "/v1/invitations",
            counsellor.t(),
            &json!({"role": "patient", "email": "a\u{0}@example.org"}),
        )
        .await
        .expect_problem(422);
    assert_eq!(r.error_fields(), vec!["email"]);

    // Nested, in a list: named by its path.
    let r = app
        .post(
            &format!("/v1/patients/{}/check-ins/import", patient.id),
            counsellor.t(),
            &json!({"source": "paper", "check_ins": [
                calm_with(json!({"date": "2026-01-05", "note": "fine\u{0}"}))
            ]}),
        )
        .await
        .expect_problem(422);
    assert_eq!(r.error_fields(), vec!["check_ins[0].note"]);

    // The server is still well and nothing was changed.
    let me = app.get("/v1/me", patient.t()).await.expect(200);
    assert_eq!(me.body["display_name"], "patient person");
}

#[tokio::test]
async fn a_nul_in_a_path_or_query_is_not_found_or_a_bad_query() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let counsellor = app.counsellor(&admin).await;
    let patient = app.patient(&counsellor).await;

    app.get("/v1/patients/%00", counsellor.t())
        .await
        .expect_problem(404);
    app.get("/v1/alerts/%00", counsellor.t())
        .await
        .expect_problem(404);
    app.get("/v1/me/check-ins/%00", patient.t())
        .await
        .expect_problem(404);
    let r = app
        .get("/v1/patients?cursor=%00", counsellor.t())
        .await
        .expect_problem(400);
    assert_eq!(r.error_fields(), vec!["cursor"]);
    let r = app
        .get("/v1/alerts?status=open%00", counsellor.t())
        .await
        .expect_problem(400);
    assert_eq!(r.error_fields(), vec!["status"]);
    // A filter by something that is no id at all is a bad query, not an empty page.
    // (An upper-case UUID is another spelling of an id: it names nothing stored either.)
    for bad in ["", "not-an-id", "0193A6F2-7C1E-7D40-9A55-3F1F6F1D2B10"] {
        let r = app
            .get(&format!("/v1/alerts?patient_id={bad}"), counsellor.t())
            .await
            .expect_problem(400);
        assert_eq!(r.error_fields(), vec!["patient_id"]);
        for param in ["patient_id", "actor_id"] {
            let r = app
                .get(
                    &format!("/v1/organisation/audit-events?{param}={bad}"),
                    admin.t(),
                )
                .await
                .expect_problem(400);
            assert_eq!(r.error_fields(), vec![param]);
        }
    }
    let r = app
        .get("/v1/organisation/audit-events?outcome=AAA", admin.t())
        .await
        .expect_problem(400);
    assert_eq!(r.error_fields(), vec!["outcome"]);
    // A probe with something that is no id is audited as a denial of that text, and never
    // as a patient.
    app.get("/v1/patients/not-a-patient", counsellor.t())
        .await
        .expect_problem(404);
    let r = app
        .get(
            "/v1/organisation/audit-events?action=object.denied",
            admin.t(),
        )
        .await
        .expect(200);
    let probe = r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["target_id"] == "not-a-patient")
        .cloned()
        .unwrap_or_else(|| panic!("no denial audited: {}", r.text));
    assert_eq!(probe["patient_id"], Value::Null, "{probe}");
}

#[tokio::test]
async fn a_self_harm_check_in_with_a_nul_in_its_note_is_stored_and_raises_the_alert() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let counsellor = app.counsellor(&admin).await;
    let patient = app.patient(&counsellor).await;

    let r = app
        .checkin(
            &patient,
            today(NY),
            &calm_with(json!({"self_harm_thoughts": true, "note": "I can't go on\u{0}"})),
        )
        .await
        .expect(201);
    assert_eq!(r.body["check_in"]["self_harm_thoughts"], true);
    assert_eq!(r.body["check_in"]["note"], "I can't go on\u{FFFD}");
    assert!(
        !r.body["crisis_resources"].as_array().unwrap().is_empty(),
        "{}",
        r.text
    );
    // The app is told what was changed.
    assert_eq!(r.body["adjusted"][0]["field"], "note");

    let alerts = app
        .alerts_for_rule(&counsellor, &patient, "self_harm")
        .await;
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    let stored = app
        .get(&format!("/v1/me/check-ins/{}", today(NY)), patient.t())
        .await
        .expect(200);
    assert_eq!(stored.body["note"], "I can't go on\u{FFFD}");

    // Nor for a note longer than a note may be: it is cut, and said so.
    let r = app
        .checkin(
            &patient,
            today(NY),
            &calm_with(json!({"self_harm_thoughts": true, "note": "x".repeat(2500)})),
        )
        .await
        .expect(200);
    assert_eq!(r.body["check_in"]["self_harm_thoughts"], true);
    assert_eq!(
        r.body["check_in"]["note"].as_str().unwrap().chars().count(),
        2000
    );
    assert_eq!(r.body["adjusted"][0]["field"], "note");
    assert!(!r.body["crisis_resources"].as_array().unwrap().is_empty());
    // Without thoughts of self-harm the patient is asked to shorten it.
    app.checkin(
        &patient,
        today(NY),
        &calm_with(json!({"note": "x".repeat(2500)})),
    )
    .await
    .expect_problem(422);

    // A calm check-in says nothing about adjustments.
    let r = app.checkin(&patient, today(NY), &calm()).await.expect(200);
    assert!(r.body.get("adjusted").is_none(), "{}", r.text);

    // SOS is never refused for its message either.
    app.post("/v1/me/sos", patient.t(), &json!({"message": "help\u{0}"}))
        .await
        .expect(202);
}

#[tokio::test]
async fn arrays_are_refused_where_objects_are_declared() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let counsellor = app.counsellor(&admin).await;
    let patient = app.patient(&counsellor).await;

    // `[true]` would be `{"disabled": true}`.
    let r = app
        .patch(
            &format!("/v1/users/{}", counsellor.id),
            admin.t(),
            &json!([true]),
        )
        .await
        .expect_problem(422);
    assert_eq!(r.error_fields(), vec!["body"]);
    names_no_internal_type(&r);
    app.get("/v1/me", counsellor.t()).await.expect(200);

    // `["email", "password"]` would sign in.
    let r = app
        .post("/v1/auth/login", None, &json!([patient.email, PASSWORD]))
        .await
        .expect_problem(422);
    assert!(r.body.get("access_token").is_none());
    names_no_internal_type(&r);

    let r = app
        .put("/v1/organisation/risk-policy", admin.t(), &json!([]))
        .await
        .expect_problem(422);
    names_no_internal_type(&r);

    // 16 fours would score 64.
    let r = app
        .checkin(
            &patient,
            today(NY),
            &calm_with(json!({"withdrawal": vec![4; 16]})),
        )
        .await
        .expect_problem(422);
    assert_eq!(r.error_fields(), vec!["withdrawal"]);
    assert_eq!(
        r.body["errors"][0]["message"],
        "must be an object, not a list"
    );
    names_no_internal_type(&r);

    // Other wrong shapes are told in plain words, never by type name.
    let r = app
        .checkin(
            &patient,
            today(NY),
            &calm_with(json!({"withdrawal": "bad"})),
        )
        .await
        .expect_problem(422);
    names_no_internal_type(&r);
    let r = app
        .checkin(
            &patient,
            today(NY),
            &calm_with(json!({"triggers": [{"stress": 1}]})),
        )
        .await
        .expect_problem(422);
    assert_eq!(r.error_fields(), vec!["triggers[0]"]);
    names_no_internal_type(&r);

    // The object itself still works.
    let sows: serde_json::Map<String, Value> = SOWS_ITEMS
        .iter()
        .map(|k| (k.to_string(), json!(1)))
        .collect();
    let r = app
        .checkin(&patient, today(NY), &calm_with(json!({"withdrawal": sows})))
        .await
        .expect(201);
    assert_eq!(r.body["check_in"]["withdrawal_score"], 16);
}

#[tokio::test]
async fn an_answer_time_more_than_a_day_ahead_is_refused() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let counsellor = app.counsellor(&admin).await;
    let patient = app.patient(&counsellor).await;

    let r = app
        .checkin(
            &patient,
            today(NY),
            &calm_with(json!({"answered_at": "3000-01-01T00:00:00Z"})),
        )
        .await
        .expect_problem(422);
    assert_eq!(r.error_fields(), vec!["answered_at"]);
    let soon = (chrono::Utc::now() + chrono::TimeDelta::hours(23)).to_rfc3339();
    app.checkin(
        &patient,
        today(NY),
        &calm_with(json!({"answered_at": soon})),
    )
    .await
    .expect(201);
}

#[tokio::test]
async fn a_wrong_role_learns_nothing_about_a_routes_body_or_query() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let counsellor = app.counsellor(&admin).await;
    let patient = app.patient(&counsellor).await;

    app.put("/v1/organisation/risk-policy", patient.t(), &json!({}))
        .await
        .expect_problem(403);
    app.get("/v1/users?x=1", patient.t())
        .await
        .expect_problem(403);
    app.get("/v1/users?limit=nine", counsellor.t())
        .await
        .expect_problem(403);
    // The right role does get the validation answer.
    app.put("/v1/organisation/risk-policy", admin.t(), &json!({"x": 1}))
        .await
        .expect_problem(422);
    app.get("/v1/users?x=1", admin.t())
        .await
        .expect_problem(400);
    // And without a token nothing about the body is told either.
    app.put("/v1/organisation/risk-policy", None, &json!({}))
        .await
        .expect_problem(401);
}

/// A concrete path for a route's pattern, ids made up.
fn concrete(pattern: &str) -> String {
    pattern
        .replace("{id}", &uuid::Uuid::now_v7().to_string())
        .replace("{date}", "2026-01-05")
}

#[tokio::test]
async fn every_documented_route_has_an_access_rule_and_the_wrong_role_gets_403_first() {
    use aftercare::auth::policy::{route_access, Access};
    use aftercare::auth::Role;

    let app = spawn_app().await;
    let admin = app.admin().await;
    let counsellor = app.counsellor(&admin).await;
    let patient = app.patient(&counsellor).await;
    let as_role = |role: Role| match role {
        Role::Admin => &admin,
        Role::Counsellor => &counsellor,
        Role::Patient => &patient,
    };

    // The fourth principal: an integration, with a token for every scope.
    let registered = app
        .post(
            "/v1/organisation/integrations",
            admin.t(),
            &json!({"name": "Table test app", "description": "", "scopes": [
                "wellbeing.read", "substance_use.read", "withdrawal.read", "medication.read",
                "support.read", "safety.read", "alerts.read", "phase.read"],
                "token_endpoint_auth_method": "client_secret_basic"}),
        )
        .await
        .expect(201);
    let token = app
        .client
        .post(app.url("/oauth/token"))
        .basic_auth(
            registered.body["client_id"].as_str().unwrap(),
            registered.body["client_secret"].as_str(),
        )
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(token.status(), 200);
    let token: serde_json::Value = token.json().await.unwrap();
    let integration_token = token["access_token"].as_str().unwrap().to_owned();

    let doc = aftercare::openapi::document();
    let mut missing = Vec::new();
    let mut checked = 0;
    for (path, item) in &doc.paths.paths {
        let ops = [
            ("GET", item.get.is_some()),
            ("PUT", item.put.is_some()),
            ("POST", item.post.is_some()),
            ("DELETE", item.delete.is_some()),
            ("PATCH", item.patch.is_some()),
        ];
        for (method, _) in ops.iter().filter(|(_, present)| *present) {
            let Some(access) = route_access(method, path) else {
                missing.push(format!("{method} {path}"));
                continue;
            };
            let url = format!("{}?x=1&cursor=%00", concrete(path));
            // A body no route accepts, a query parameter no route knows, and one no stored
            // value can match (a NUL): none of them is told before the caller is admitted.
            let body = json!({"not_a_field": [1]});
            let with_body = (*method != "GET" && *method != "DELETE").then_some(&body);
            if access != Access::Public {
                let r = app.send(method, &url, None, with_body).await;
                assert_eq!(r.status, 401, "{method} {path} without a token: {}", r.text);
            }
            match access {
                // No user reaches an integration route.
                Access::Integration => {
                    for role in [Role::Admin, Role::Counsellor, Role::Patient] {
                        let r = app.send(method, &url, as_role(role).t(), with_body).await;
                        assert_eq!(r.status, 403, "{method} {path} as {role:?}: {}", r.text);
                        checked += 1;
                    }
                }
                // And an integration reaches nothing else that needs a token.
                Access::Roles(_) | Access::SignedIn => {
                    let r = app
                        .send(method, &url, Some(&integration_token), with_body)
                        .await;
                    assert_eq!(
                        r.status, 403,
                        "{method} {path} as an integration: {}",
                        r.text
                    );
                    checked += 1;
                }
                Access::Public => {}
            }
            if let Access::Roles(allowed) = access {
                for role in [Role::Admin, Role::Counsellor, Role::Patient] {
                    if allowed.contains(&role) {
                        continue;
                    }
                    let r = app.send(method, &url, as_role(role).t(), with_body).await;
                    assert_eq!(r.status, 403, "{method} {path} as {role:?}: {}", r.text);
                    checked += 1;
                }
            }
        }
    }
    assert!(
        missing.is_empty(),
        "routes without an access rule in auth::policy::ROUTES: {missing:?}"
    );
    assert!(checked > 40, "only {checked} denials checked");
}

#[tokio::test]
async fn an_email_change_needs_the_password_and_never_tells_whether_the_address_is_taken() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let counsellor = app.counsellor(&admin).await;
    let patient = app.patient(&counsellor).await;
    // A patient of another organisation: the address a prober wants to test.
    let other_admin = app.admin().await;
    let other_counsellor = app.counsellor(&other_admin).await;
    let secret = app.patient(&other_counsellor).await;

    // No password: refused, nothing changed.
    let r = app
        .patch("/v1/me", counsellor.t(), &json!({"email": secret.email}))
        .await
        .expect_problem(422);
    assert_eq!(r.error_fields(), vec!["current_password"]);
    let r = app
        .patch(
            "/v1/me",
            counsellor.t(),
            &json!({"email": "free@example.org", "current_password": "not-my-password"}),
        )
        .await
        .expect_problem(422);
    assert_eq!(r.error_fields(), vec!["current_password"]);

    // Taken and free get the same answer.
    let taken = app
        .patch(
            "/v1/me",
            counsellor.t(),
            &json!({"email": secret.email, "current_password": PASSWORD}),
        )
        .await
        .expect(202);
    let free = app
        .patch(
            "/v1/me",
            counsellor.t(),
            &json!({"email": "Fresh.Address@example.org", "current_password": PASSWORD}),
        )
        .await
        .expect(202);
    assert_eq!(taken.body, free.body);
    assert_eq!(taken.text, free.text);

    // The taken address still belongs to its owner; the free one is now the counsellor's.
    app.login(&secret.email, PASSWORD).await;
    app.login("fresh.address@example.org", PASSWORD).await;
    let me = app.get("/v1/me", counsellor.t()).await.expect(200);
    assert_eq!(me.body["email"], "fresh.address@example.org");

    // Audited, alike for both.
    let events = app
        .get("/v1/organisation/audit-events?limit=200", admin.t())
        .await
        .expect(200);
    let actions: Vec<&str> = events.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["action"].as_str())
        .filter(|a| a.starts_with("account.email"))
        .collect();
    assert_eq!(
        actions
            .iter()
            .filter(|a| **a == "account.email_change_requested")
            .count(),
        2,
        "{actions:?}"
    );
    assert!(
        actions.contains(&"account.email_change_failed"),
        "{actions:?}"
    );

    // And throttled: five changes per window, then 429.
    let mut statuses = Vec::new();
    for n in 0..6 {
        let r = app
            .patch(
                "/v1/me",
                patient.t(),
                &json!({"email": format!("probe{n}@example.org"), "current_password": PASSWORD}),
            )
            .await;
        statuses.push(r.status);
    }
    assert_eq!(statuses, vec![202, 202, 202, 202, 202, 429]);
}

#[tokio::test]
async fn every_response_says_nosniff_and_the_docs_cannot_be_framed() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    for r in [
        app.get("/health/live", None).await,
        app.get("/v1/me", admin.t()).await,
        app.get("/v1/me", None).await,
        app.get("/v1/nowhere", None).await,
        app.get("/docs/", None).await,
    ] {
        assert_eq!(
            r.header("x-content-type-options"),
            Some("nosniff"),
            "{}",
            r.text
        );
    }
    let docs = app.get("/docs/", None).await.expect(200);
    assert_eq!(docs.header("x-frame-options"), Some("DENY"));
    let csp = docs.header("content-security-policy").unwrap_or_default();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(csp.contains("default-src 'self'"), "{csp}");
    // The API's own answers are not pages to frame either.
    let me = app.get("/v1/me", admin.t()).await;
    assert_eq!(me.header("x-frame-options"), Some("DENY"));
}

#[tokio::test]
async fn a_whole_number_written_as_a_float_is_that_number_and_a_fraction_is_refused() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let counsellor = app.counsellor(&admin).await;
    let patient = app.patient(&counsellor).await;

    // JSON Schema's `integer` is a value: 9.0 is 9 (a client writing every number as a
    // float sends it so), and it counts for the rules as 9 does.
    let r = app
        .checkin(
            &patient,
            today(NY),
            &calm_with(json!({"craving": 9.0, "meals": 3.0})),
        )
        .await
        .expect(201);
    assert_eq!(r.body["check_in"]["craving"], 9);
    assert_eq!(r.body["check_in"]["meals"], 3);
    // 8.5 is not a whole number: refused, naming the field, and the stored one stays.
    let r = app
        .checkin(&patient, today(NY), &calm_with(json!({"craving": 8.5})))
        .await
        .expect_problem(422);
    assert_eq!(r.error_fields(), vec!["craving"]);
    let stored = app
        .get(&format!("/v1/me/check-ins/{}", today(NY)), patient.t())
        .await
        .expect(200);
    assert_eq!(stored.body["craving"], 9);
}

#[tokio::test]
async fn a_text_limit_counts_what_was_sent_as_the_document_says() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    // 100 characters of name inside blanks is more than the 100 the schema allows.
    let padded = format!("  {}  ", "n".repeat(100));
    let r = app
        .patch("/v1/me", admin.t(), &json!({"display_name": padded}))
        .await
        .expect_problem(422);
    assert_eq!(r.error_fields(), vec!["display_name"]);
    // Blanks around a name that fits are trimmed.
    let r = app
        .patch("/v1/me", admin.t(), &json!({"display_name": "  Dana  "}))
        .await
        .expect(200);
    assert_eq!(r.body["display_name"], "Dana");
}
