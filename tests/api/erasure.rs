//! Closing an account and erasing a patient (SPEC §10): sign-in and sessions stop at once,
//! consents are revoked, pending deliveries dropped, and the clinical content erased after the
//! organisation's retention delay, leaving only who, what and when.

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use serde_json::{json, Value};

use crate::helpers::{calm_with, local_day, read, spawn_app, Login, Resp, TestApp};

const TZ: &str = "America/New_York";
/// Free text the patient and their counsellor wrote; none of it may survive an erasure.
const NOTE: &str = "erasure-marker-note: slept at my brother's";
const SOS: &str = "erasure-marker-sos: I am at the bridge";
const RESOLVE_NOTE: &str = "erasure-marker-resolve: called her sister";
const SUBSTANCE: &str = "erasure-marker-substance";
const SOURCE: &str = "erasure-marker-ehr";
const MARKER: &str = "erasure-marker";

#[derive(QueryableByName)]
struct Name {
    #[diesel(sql_type = diesel::sql_types::Text)]
    name: String,
}

#[derive(QueryableByName)]
struct RowText {
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    row: Option<String>,
}

/// Every row of every table of the test's database, as text: (table, row).
fn every_row(app: &TestApp) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if let Some(path) = app.database_url.strip_prefix("sqlite://") {
        let mut c = diesel::SqliteConnection::establish(path).expect("sqlite");
        c.batch_execute("PRAGMA busy_timeout = 10000;").unwrap();
        let tables: Vec<Name> = diesel::sql_query(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
        )
        .load(&mut c)
        .unwrap();
        for t in tables {
            let cols: Vec<Name> =
                diesel::sql_query(format!("SELECT name FROM pragma_table_info('{}')", t.name))
                    .load(&mut c)
                    .unwrap();
            let expr = cols
                .iter()
                .map(|col| format!("coalesce(CAST(\"{}\" AS TEXT), '')", col.name))
                .collect::<Vec<_>>()
                .join(" || '|' || ");
            let rows: Vec<RowText> =
                diesel::sql_query(format!("SELECT {expr} AS row FROM \"{}\"", t.name))
                    .load(&mut c)
                    .unwrap();
            out.extend(
                rows.into_iter()
                    .map(|r| (t.name.clone(), r.row.unwrap_or_default())),
            );
        }
    } else {
        let mut c = diesel::PgConnection::establish(&app.database_url).expect("pg");
        let tables: Vec<Name> = diesel::sql_query(
            "SELECT table_name::text AS name FROM information_schema.tables \
             WHERE table_schema = 'public' AND table_type = 'BASE TABLE'",
        )
        .load(&mut c)
        .unwrap();
        for t in tables {
            let rows: Vec<RowText> =
                diesel::sql_query(format!("SELECT t::text AS row FROM \"{}\" t", t.name))
                    .load(&mut c)
                    .unwrap();
            out.extend(
                rows.into_iter()
                    .map(|r| (t.name.clone(), r.row.unwrap_or_default())),
            );
        }
    }
    assert!(out.len() > 20, "the scan read the database: {out:?}");
    out
}

/// The rows that still hold any of the markers.
fn rows_with_markers(app: &TestApp) -> Vec<(String, String)> {
    every_row(app)
        .into_iter()
        .filter(|(_, row)| row.contains(MARKER))
        .collect()
}

async fn delete(app: &TestApp, path: &str, who: &Login, body: Option<Value>) -> Resp {
    let mut rb = app.client.delete(app.url(path)).bearer_auth(&who.token);
    if let Some(b) = body {
        rb = rb.json(&b);
    }
    read(rb.send().await.expect("request")).await
}

/// A patient with a record worth erasing: imported history, a check-in with a note and a
/// substance, an SOS with a message (resolved by the counsellor with a note), and today's
/// check-in raising an alert that is still open.
async fn patient_with_record(app: &TestApp, counsellor: &Login) -> Login {
    let patient = app.patient(counsellor).await;
    let mut old = calm_with(json!({"note": NOTE}));
    old["date"] = json!(local_day(TZ, -5).to_string());
    app.post(
        &format!("/v1/patients/{}/check-ins/import", patient.id),
        counsellor.t(),
        &json!({"source": SOURCE, "check_ins": [old]}),
    )
    .await
    .expect(201);
    app.checkin(
        &patient,
        local_day(TZ, -1),
        &calm_with(json!({"used_substance": true, "substances": [SUBSTANCE], "note": NOTE})),
    )
    .await
    .expect(201);
    let sos = app
        .post("/v1/me/sos", patient.t(), &json!({"message": SOS}))
        .await
        .expect(202);
    let alert_id = sos.body["alert_id"].as_str().unwrap().to_owned();
    app.post(
        &format!("/v1/alerts/{alert_id}/resolve"),
        counsellor.t(),
        &json!({"outcome": "contacted", "note": RESOLVE_NOTE}),
    )
    .await
    .expect(200);
    app.checkin(
        &patient,
        local_day(TZ, 0),
        &calm_with(json!({"craving": 9, "mood": 2, "note": NOTE})),
    )
    .await
    .expect(201);
    let open = app
        .get(
            &format!("/v1/alerts?patient_id={}&status=open", patient.id),
            counsellor.t(),
        )
        .await
        .expect(200);
    assert_eq!(
        open.body["items"].as_array().unwrap().len(),
        1,
        "today's check-in opened an alert: {}",
        open.text
    );
    assert!(
        !rows_with_markers(app).is_empty(),
        "the record holds the markers"
    );
    patient
}

async fn caseload_ids(app: &TestApp, who: &Login) -> Vec<String> {
    let r = app.get("/v1/patients", who.t()).await.expect(200);
    r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn audit_actions(app: &TestApp, admin: &Login, patient: &Login) -> Vec<String> {
    let r = app
        .get(
            &format!(
                "/v1/organisation/audit-events?patient_id={}&limit=200",
                patient.id
            ),
            admin.t(),
        )
        .await
        .expect(200);
    r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_patient_closes_their_account_and_nothing_clinical_is_left_behind() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let counsellor = app.counsellor(&admin).await;
    // A webhook nobody delivers to during the test: its deliveries stay pending.
    let hook = app
        .post(
            "/v1/organisation/webhooks",
            admin.t(),
            &json!({"url": "http://127.0.0.1:9/hook", "events": ["alert.created", "alert.updated"]}),
        )
        .await
        .expect(201);
    let hook_id = hook.body["id"].as_str().unwrap().to_owned();
    // An integration the patient consents to.
    let reg = app
        .post(
            "/v1/organisation/integrations",
            admin.t(),
            &json!({"name": "Pillbox", "description": "Reminders",
                    "scopes": ["wellbeing.read"], "token_endpoint_auth_method": "client_secret_basic"}),
        )
        .await
        .expect(201);
    let patient = patient_with_record(&app, &counsellor).await;
    app.post(
        "/v1/me/consents",
        patient.t(),
        &json!({"integration_id": reg.body["id"], "categories": ["wellbeing"],
                "purpose": "Reminders"}),
    )
    .await
    .expect(201);
    let token = read(
        app.client
            .post(app.url("/oauth/token"))
            .basic_auth(
                reg.body["client_id"].as_str().unwrap(),
                reg.body["client_secret"].as_str(),
            )
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap(),
    )
    .await
    .expect(200);
    let app_token = token.body["access_token"].as_str().unwrap().to_owned();
    let integration_reads = |token: String| {
        let (app, id) = (&app, patient.id.clone());
        async move {
            app.get(&format!("/v1/integration/patients/{id}"), Some(&token))
                .await
                .status
        }
    };
    assert_eq!(integration_reads(app_token.clone()).await, 200);
    let pending = |r: &Resp| {
        r.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["status"] == "pending")
            .count()
    };
    let deliveries = app
        .get(
            &format!("/v1/organisation/webhooks/{hook_id}/deliveries"),
            admin.t(),
        )
        .await
        .expect(200);
    assert!(pending(&deliveries) > 0, "{}", deliveries.text);

    // A wrong password changes nothing.
    let r = delete(
        &app,
        "/v1/me",
        &patient,
        Some(json!({"password": "not-my-password-at-all"})),
    )
    .await
    .expect_problem(422);
    assert_eq!(r.error_fields(), vec!["password"]);
    app.get("/v1/me", patient.t()).await.expect(200);
    // Unknown fields and a missing password are refused.
    delete(&app, "/v1/me", &patient, Some(json!({})))
        .await
        .expect_problem(422);
    // Staff close no account of their own this way.
    delete(
        &app,
        "/v1/me",
        &counsellor,
        Some(json!({"password": crate::helpers::PASSWORD})),
    )
    .await
    .expect_problem(403);

    let r = delete(
        &app,
        "/v1/me",
        &patient,
        Some(json!({"password": crate::helpers::PASSWORD})),
    )
    .await
    .expect(200);
    assert_eq!(r.body["patient_id"], patient.id.as_str());
    assert!(r.body["closed_at"].is_string(), "{}", r.text);
    assert!(
        r.body["erased_at"].is_string(),
        "no retention delay: erased at once: {}",
        r.text
    );

    // No way back in: the access token, the refresh token and the password all stop.
    app.get("/v1/me", patient.t()).await.expect_problem(401);
    app.post(
        "/v1/auth/refresh",
        None,
        &json!({"refresh_token": patient.refresh}),
    )
    .await
    .expect_problem(401);
    app.post(
        "/v1/auth/login",
        None,
        &json!({"email": patient.email, "password": crate::helpers::PASSWORD}),
    )
    .await
    .expect_problem(401);
    // An admin cannot enable it again.
    app.patch(
        &format!("/v1/users/{}", patient.id),
        admin.t(),
        &json!({"disabled": false}),
    )
    .await
    .expect_problem(409);

    // The consent is revoked: the integration no longer sees the patient.
    assert_eq!(integration_reads(app_token).await, 404);
    // Pending deliveries were dropped, not sent later.
    let deliveries = app
        .get(
            &format!("/v1/organisation/webhooks/{hook_id}/deliveries"),
            admin.t(),
        )
        .await
        .expect(200);
    assert_eq!(pending(&deliveries), 0, "{}", deliveries.text);

    // The patient is gone from the care team's view.
    for who in [&counsellor, &admin] {
        app.get(&format!("/v1/patients/{}", patient.id), who.t())
            .await
            .expect_problem(404);
        assert!(!caseload_ids(&app, who).await.contains(&patient.id));
        let alerts = app.get("/v1/alerts", who.t()).await.expect(200);
        assert!(
            alerts.body["items"].as_array().unwrap().is_empty(),
            "{}",
            alerts.text
        );
        app.get(&format!("/v1/patients/{}/export", patient.id), who.t())
            .await
            .expect_problem(404);
    }

    // Nothing the patient or their counsellor wrote is left in any table.
    let left = rows_with_markers(&app);
    assert!(left.is_empty(), "clinical text left behind: {left:#?}");
    // The audit trail keeps who did what and when.
    let actions = audit_actions(&app, &admin, &patient).await;
    for action in ["patient.closed", "patient.erased", "check_in.write"] {
        assert!(
            actions.iter().any(|a| a == action),
            "{action} in {actions:?}"
        );
    }

    // The address is free again: the person may enrol anew one day.
    let code = app.invite(&counsellor, json!({"role": "patient"})).await;
    app.post(
        "/v1/auth/register",
        None,
        &json!({"invitation_code": code, "email": patient.email,
                "password": crate::helpers::PASSWORD, "display_name": "New start",
                "timezone": TZ}),
    )
    .await
    .expect(201);
}

#[tokio::test]
async fn with_a_retention_delay_the_record_is_kept_unchanged_until_housekeeping_erases_it() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let counsellor = app.counsellor(&admin).await;

    // The retention delay: admins only, 0 by default, whole days up to ten years.
    let r = app
        .get("/v1/organisation/retention", admin.t())
        .await
        .expect(200);
    assert_eq!(r.body, json!({"erasure_delay_days": 0}));
    app.get("/v1/organisation/retention", counsellor.t())
        .await
        .expect_problem(403);
    for bad in [json!(-1), json!(3651)] {
        let r = app
            .put(
                "/v1/organisation/retention",
                admin.t(),
                &json!({"erasure_delay_days": bad}),
            )
            .await
            .expect_problem(422);
        assert_eq!(r.error_fields(), vec!["erasure_delay_days"]);
    }
    app.put(
        "/v1/organisation/retention",
        admin.t(),
        &json!({"erasure_delay_days": 30, "extra": true}),
    )
    .await
    .expect_problem(422);
    let r = app
        .put(
            "/v1/organisation/retention",
            admin.t(),
            &json!({"erasure_delay_days": 30}),
        )
        .await
        .expect(200);
    assert_eq!(r.body, json!({"erasure_delay_days": 30}));

    let patient = patient_with_record(&app, &counsellor).await;
    let other = app.patient(&counsellor).await;
    // Only admins erase a patient.
    delete(
        &app,
        &format!("/v1/patients/{}", patient.id),
        &counsellor,
        None,
    )
    .await
    .expect_problem(403);
    let r = delete(&app, &format!("/v1/patients/{}", patient.id), &admin, None)
        .await
        .expect(200);
    assert_eq!(r.body["erased_at"], Value::Null, "{}", r.text);
    let closed_at = r.body["closed_at"].as_str().unwrap().to_owned();
    let due: chrono::DateTime<chrono::Utc> =
        r.body["erasure_due_at"].as_str().unwrap().parse().unwrap();
    let closed: chrono::DateTime<chrono::Utc> = closed_at.parse().unwrap();
    assert_eq!((due - closed).num_days(), 30);
    // Asking again answers with the same closure.
    let again = delete(&app, &format!("/v1/patients/{}", patient.id), &admin, None)
        .await
        .expect(200);
    assert_eq!(again.body["closed_at"], closed_at.as_str());

    // The patient is out at once.
    app.get("/v1/me", patient.t()).await.expect_problem(401);
    app.post(
        "/v1/auth/login",
        None,
        &json!({"email": patient.email, "password": crate::helpers::PASSWORD}),
    )
    .await
    .expect_problem(401);
    // The care team still reads the kept record, unchanged, and the caseload drops it.
    let d = app
        .get(&format!("/v1/patients/{}", patient.id), counsellor.t())
        .await
        .expect(200);
    assert_eq!(d.body["closed_at"], closed_at.as_str());
    let notes = app
        .get(
            &format!("/v1/patients/{}/check-ins", patient.id),
            counsellor.t(),
        )
        .await
        .expect(200);
    assert!(notes.text.contains(NOTE), "{}", notes.text);
    let ids = caseload_ids(&app, &counsellor).await;
    assert!(!ids.contains(&patient.id) && ids.contains(&other.id));
    let open = app
        .get(
            &format!(
                "/v1/alerts?patient_id={}&status=open,acknowledged",
                patient.id
            ),
            counsellor.t(),
        )
        .await
        .expect(200);
    assert!(
        open.body["items"].as_array().unwrap().is_empty(),
        "the open alert was resolved with the account: {}",
        open.text
    );
    app.patch(
        &format!("/v1/patients/{}", patient.id),
        counsellor.t(),
        &json!({"phase": "discharged"}),
    )
    .await
    .expect_problem(409);
    app.put(
        &format!("/v1/patients/{}/risk-policy", patient.id),
        counsellor.t(),
        &json!({}),
    )
    .await
    .expect_problem(409);

    // Housekeeping before the delay has run out erases nothing.
    aftercare::service::sweep::housekeeping_once(&app.state)
        .await
        .unwrap();
    assert!(!rows_with_markers(&app).is_empty());
    app.get(&format!("/v1/patients/{}", patient.id), counsellor.t())
        .await
        .expect(200);

    // Thirty days later (the due time moved into the past), housekeeping erases it.
    app.sql(&format!(
        "UPDATE patients SET erasure_due_at = '2000-01-01 00:00:00' WHERE user_id = '{}'",
        patient.id
    ));
    aftercare::service::sweep::housekeeping_once(&app.state)
        .await
        .unwrap();
    let left = rows_with_markers(&app);
    assert!(left.is_empty(), "clinical text left behind: {left:#?}");
    app.get(&format!("/v1/patients/{}", patient.id), counsellor.t())
        .await
        .expect_problem(404);
    delete(&app, &format!("/v1/patients/{}", patient.id), &admin, None)
        .await
        .expect_problem(404);
    // The other patient's record is untouched.
    app.get(&format!("/v1/patients/{}", other.id), counsellor.t())
        .await
        .expect(200);
    let actions = audit_actions(&app, &admin, &patient).await;
    assert!(actions.iter().any(|a| a == "patient.closed"));
    assert!(actions.iter().any(|a| a == "patient.erased"));
}

#[tokio::test]
async fn erasing_a_patient_needs_a_recent_sign_in_and_stays_within_the_organisation() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let counsellor = app.counsellor(&admin).await;
    let patient = app.patient(&counsellor).await;
    let elsewhere = app.admin().await;

    // Another organisation's admin: 404, as for a patient who does not exist.
    delete(
        &app,
        &format!("/v1/patients/{}", patient.id),
        &elsewhere,
        None,
    )
    .await
    .expect_problem(404);
    delete(
        &app,
        &format!("/v1/patients/{}", uuid::Uuid::now_v7()),
        &admin,
        None,
    )
    .await
    .expect_problem(404);

    let an_hour_ago = (chrono::Utc::now() - chrono::TimeDelta::hours(1))
        .naive_utc()
        .format("%Y-%m-%d %H:%M:%S");
    app.sql(&format!(
        "UPDATE refresh_tokens SET authenticated_at = '{an_hour_ago}' WHERE user_id = '{}'",
        admin.id
    ));
    let r = delete(&app, &format!("/v1/patients/{}", patient.id), &admin, None)
        .await
        .expect_problem(401);
    assert!(
        r.body["type"]
            .as_str()
            .unwrap()
            .ends_with("reauthentication-required"),
        "{}",
        r.text
    );
    app.put(
        "/v1/organisation/retention",
        admin.t(),
        &json!({"erasure_delay_days": 7}),
    )
    .await
    .expect_problem(401);
    // Nothing happened to the patient.
    app.get("/v1/me", patient.t()).await.expect(200);
}
