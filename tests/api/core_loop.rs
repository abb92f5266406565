//! The core loop, told as the people in it live it: a patient checks in, the risk engine looks
//! for patterns in what they said (and in what they stopped saying), and their counsellor is
//! alerted with the reason, acts, and tunes the thresholds.
//!
//! Every date is computed from the patient's local today in their own timezone.

use serde_json::{json, Value};

use crate::helpers::{
    calm, calm_with, finding, local_day, read, spawn_app, support_rules, today, Login, Resp,
    TestApp, SOWS_ITEMS,
};

const NEW_YORK: &str = "America/New_York";
const AUCKLAND: &str = "Pacific/Auckland";

/// All 16 SOWS items at `level`.
fn sows(level: i64) -> serde_json::Map<String, Value> {
    SOWS_ITEMS
        .into_iter()
        .map(|k| (k.to_owned(), json!(level)))
        .collect()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

fn crisis_contacts(v: &Value) -> Vec<String> {
    v.as_array()
        .expect("crisis_resources is a list")
        .iter()
        .map(|c| c["contact"].as_str().unwrap().to_owned())
        .collect()
}

async fn stored(app: &TestApp, patient: &Login, date: chrono::NaiveDate) -> Value {
    app.get(&format!("/v1/me/check-ins/{date}"), patient.t())
        .await
        .expect(200)
        .body
}

/// A counsellor with one patient (New York, aftercare).
async fn clinic(app: &TestApp) -> (Login, Login, Login) {
    let admin = app.admin().await;
    let counsellor = app.counsellor(&admin).await;
    let patient = app.patient(&counsellor).await;
    (admin, counsellor, patient)
}

#[tokio::test]
async fn a_patient_checks_in_and_corrects_the_same_day() {
    let app = spawn_app().await;
    let (_, _, patient) = clinic(&app).await;
    let today = today(NEW_YORK);

    let first = app.checkin(&patient, today, &calm()).await.expect(201);
    assert_eq!(first.header("cache-control"), Some("no-store"));
    let c = &first.body["check_in"];
    assert_eq!(c["date"], today.to_string());
    assert_eq!(c["version"], 1);
    assert_eq!(c["late"], false);
    assert_eq!(c["craving"], 2);
    assert_eq!(c["sleep_hours"], 7.5);
    assert_eq!(
        first.body["support"],
        json!([]),
        "a calm day needs no support"
    );
    assert_eq!(first.body["crisis_resources"], json!([]));

    // The app corrects an answer: the same date is replaced, not duplicated.
    let second = app
        .checkin(
            &patient,
            today,
            &calm_with(json!({"craving": 4, "note": "rough morning"})),
        )
        .await
        .expect(200);
    let c2 = &second.body["check_in"];
    assert_eq!(c2["version"], 2);
    assert_eq!(c2["craving"], 4);
    assert_eq!(c2["late"], false);
    assert_ne!(c2["updated_at"], c["updated_at"]);

    let got = app
        .get(&format!("/v1/me/check-ins/{today}"), patient.t())
        .await
        .expect(200);
    assert_eq!(got.header("cache-control"), Some("no-store"));
    assert_eq!(got.body["version"], 2);
    assert_eq!(got.body["craving"], 4);
    assert_eq!(got.body["note"], "rough morning");
    assert_eq!(got.body["updated_at"], c2["updated_at"]);

    let list = app.get("/v1/me/check-ins", patient.t()).await.expect(200);
    assert_eq!(list.header("cache-control"), Some("no-store"));
    assert_eq!(list.body["items"].as_array().unwrap().len(), 1);

    app.get(
        &format!("/v1/me/check-ins/{}", local_day(NEW_YORK, -1)),
        patient.t(),
    )
    .await
    .expect_problem(404);
}

#[tokio::test]
async fn the_date_window_follows_the_patients_own_timezone() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let counsellor = app.counsellor(&admin).await;
    let patient = app.patient_in(&counsellor, AUCKLAND, "detox").await;
    let day = |n| local_day(AUCKLAND, n);

    let late = app.checkin(&patient, day(-3), &calm()).await.expect(201);
    assert_eq!(late.body["check_in"]["late"], true);
    let oldest = app.checkin(&patient, day(-7), &calm()).await.expect(201);
    assert_eq!(oldest.body["check_in"]["late"], true);

    let r = app
        .checkin(&patient, day(-8), &calm())
        .await
        .expect_problem(422);
    assert_eq!(r.error_fields(), vec!["date"]);
    let r = app
        .checkin(&patient, day(2), &calm())
        .await
        .expect_problem(422);
    assert_eq!(r.error_fields(), vec!["date"]);
    // Crossing the date line: tomorrow is accepted, and not late.
    let tomorrow = app.checkin(&patient, day(1), &calm()).await.expect(201);
    assert_eq!(tomorrow.body["check_in"]["late"], false);

    let r = app
        .put("/v1/me/check-ins/last-tuesday", patient.t(), &calm())
        .await
        .expect_problem(422);
    assert_eq!(r.error_fields(), vec!["date"]);

    let list = app.get("/v1/me/check-ins", patient.t()).await.expect(200);
    let dates: Vec<&str> = list.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["date"].as_str().unwrap())
        .collect();
    let expected = [day(1), day(-3), day(-7)].map(|d| d.to_string());
    assert_eq!(dates, expected, "newest first, refused dates not stored");
}

#[tokio::test]
async fn a_refused_check_in_says_why_and_loses_nothing() {
    let app = spawn_app().await;
    let (_, _, patient) = clinic(&app).await;
    let today = today(NEW_YORK);
    app.checkin(&patient, today, &calm()).await.expect(201);
    let before = stored(&app, &patient, today).await;

    // A typo must not vanish silently.
    let r = app
        .checkin(&patient, today, &calm_with(json!({"cravings": 9})))
        .await
        .expect_problem(422);
    assert_eq!(r.error_fields(), vec!["cravings"]);

    let r = app
        .checkin(&patient, today, &json!({}))
        .await
        .expect_problem(422);
    assert_eq!(
        sorted(r.error_fields()),
        vec![
            "craving",
            "exercise_minutes",
            "meals",
            "mood",
            "used_substance"
        ]
    );

    let r = app
        .checkin(&patient, today, &calm_with(json!({"craving": 11})))
        .await
        .expect_problem(422);
    assert_eq!(r.error_fields(), vec!["craving"]);

    let mut w = sows(1);
    w.insert("shaking".into(), json!(5));
    let r = app
        .checkin(&patient, today, &calm_with(json!({"withdrawal": w})))
        .await
        .expect_problem(422);
    assert_eq!(r.error_fields(), vec!["withdrawal.shaking"]);

    let mut w = sows(1);
    w.insert("yawnin".into(), json!(1));
    let r = app
        .checkin(&patient, today, &calm_with(json!({"withdrawal": w})))
        .await
        .expect_problem(422);
    assert_eq!(r.error_fields(), vec!["withdrawal.yawnin"]);

    let malformed = read(
        app.client
            .put(app.url(&format!("/v1/me/check-ins/{today}")))
            .bearer_auth(&patient.token)
            .header("content-type", "application/json")
            .body(r#"{"craving": 3, "mood": "#)
            .send()
            .await
            .unwrap(),
    )
    .await
    .expect_problem(400);
    assert!(malformed.error_fields().is_empty());

    let after = stored(&app, &patient, today).await;
    assert_eq!(
        after, before,
        "a refused correction leaves the stored one as it was"
    );
    assert_eq!(after["version"], 1);

    // A complete SOWS is stored with its total.
    let ok = app
        .checkin(&patient, today, &calm_with(json!({"withdrawal": sows(2)})))
        .await
        .expect(200);
    assert_eq!(ok.body["check_in"]["withdrawal_score"], 32);
    assert_eq!(ok.body["check_in"]["version"], 2);
}

#[tokio::test]
async fn thoughts_of_self_harm_alert_the_counsellor_and_show_crisis_help_at_once() {
    let app = spawn_app().await;
    let (_, counsellor, patient) = clinic(&app).await;
    let today = today(NEW_YORK);

    let r = app
        .checkin(
            &patient,
            today,
            &calm_with(json!({"mood": 3, "self_harm_thoughts": true})),
        )
        .await
        .expect(201);
    let contacts = crisis_contacts(&r.body["crisis_resources"]);
    assert!(
        contacts.iter().any(|c| c.contains("988")),
        "crisis lines shown at once: {contacts:?}"
    );
    assert!(support_rules(&r).contains(&"self_harm".to_owned()));

    let alerts = app.alerts_of(&counsellor, &patient).await;
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    let a = &alerts[0];
    assert_eq!(a["rule"], "self_harm");
    assert_eq!(a["severity"], "critical");
    assert_eq!(a["status"], "open");
    assert_eq!(a["patient_id"], patient.id);
    assert_eq!(a["check_in_date"], today.to_string());
    assert_eq!(a["occurrences"], 1);
    assert!(!a["explanation"].as_str().unwrap().is_empty());
    assert_eq!(
        a["evidence"]["check_ins"][0]["date"],
        today.to_string(),
        "{}",
        a["evidence"]
    );

    // A calm day raises nothing new.
    let calm_day = app
        .checkin(&patient, local_day(NEW_YORK, 1), &calm())
        .await
        .expect(201);
    assert_eq!(calm_day.body["crisis_resources"], json!([]));
    assert_eq!(app.alerts_of(&counsellor, &patient).await.len(), 1);
}

#[tokio::test]
async fn high_craving_two_days_running_raises_one_alert_and_escalates_its_severity() {
    let app = spawn_app().await;
    let (_, counsellor, patient) = clinic(&app).await;
    let (d1, d2) = (local_day(NEW_YORK, -2), local_day(NEW_YORK, -1));

    let r = app
        .checkin(
            &patient,
            d1,
            &calm_with(json!({"craving": 9, "triggers": ["stress"]})),
        )
        .await
        .expect(201);
    assert_eq!(r.body["check_in"]["late"], true);
    assert!(support_rules(&r).contains(&"craving_high".to_owned()));
    assert_eq!(r.body["crisis_resources"], json!([]));
    let first = app
        .alerts_for_rule(&counsellor, &patient, "craving_high")
        .await;
    assert_eq!(first.len(), 1);
    assert_eq!(first[0]["severity"], "warning");
    assert_eq!(first[0]["occurrences"], 1);

    app.checkin(&patient, d2, &calm_with(json!({"craving": 9})))
        .await
        .expect(201);
    let all = app
        .alerts_for_rule(&counsellor, &patient, "craving_high")
        .await;
    assert_eq!(all.len(), 1, "one unresolved alert per rule: {all:?}");
    let a = &all[0];
    assert_eq!(a["id"], first[0]["id"]);
    assert_eq!(a["severity"], "high");
    assert_eq!(a["occurrences"], 2);
    assert_eq!(a["check_in_date"], d2.to_string());
    let explanation = a["explanation"].as_str().unwrap();
    assert!(
        explanation.contains(&d1.to_string()) && explanation.contains(&d2.to_string()),
        "{explanation}"
    );
    let evidence_dates: Vec<&str> = a["evidence"]["check_ins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["date"].as_str().unwrap())
        .collect();
    assert_eq!(evidence_dates, vec![d1.to_string(), d2.to_string()]);
}

#[tokio::test]
async fn low_mood_on_three_consecutive_days_is_flagged_on_the_third() {
    let app = spawn_app().await;
    let (_, counsellor, patient) = clinic(&app).await;
    let days = [-2, -1, 0].map(|n| local_day(NEW_YORK, n));

    for (i, (d, mood)) in days.iter().zip([1, 2, 1]).enumerate() {
        let r = app
            .checkin(&patient, *d, &calm_with(json!({"mood": mood})))
            .await
            .expect(201);
        let flagged = !app
            .alerts_for_rule(&counsellor, &patient, "mood_low")
            .await
            .is_empty();
        assert_eq!(flagged, i == 2, "after day {}", i + 1);
        assert_eq!(support_rules(&r).contains(&"mood_low".to_owned()), i == 2);
    }
    let a = &app.alerts_for_rule(&counsellor, &patient, "mood_low").await[0];
    assert_eq!(a["severity"], "warning");
    assert!(!a["explanation"].as_str().unwrap().is_empty());
    let evidence: Vec<(String, i64)> = a["evidence"]["check_ins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["date"].as_str().unwrap().to_owned(),
                e["mood"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        evidence,
        vec![
            (days[0].to_string(), 1),
            (days[1].to_string(), 2),
            (days[2].to_string(), 1)
        ]
    );
}

#[tokio::test]
async fn a_late_check_in_that_completes_a_pattern_is_flagged() {
    let app = spawn_app().await;
    let (_, counsellor, patient) = clinic(&app).await;
    let day = |n| local_day(NEW_YORK, n);

    // Offline for a day: the phone sends the days around it first, then the missing one.
    app.checkin(&patient, day(-3), &calm_with(json!({"mood": 1})))
        .await
        .expect(201);
    app.checkin(
        &patient,
        day(-1),
        &calm_with(json!({"mood": 1, "craving": 9})),
    )
    .await
    .expect(201);
    app.checkin(&patient, day(0), &calm_with(json!({"craving": 9})))
        .await
        .expect(201);
    assert!(app
        .alerts_for_rule(&counsellor, &patient, "mood_low")
        .await
        .is_empty());
    let craving = app
        .finding_of(&counsellor, &patient, "craving_high")
        .await
        .unwrap();
    assert_eq!(craving["occurrences"], 2);

    let r = app
        .checkin(&patient, day(-2), &calm_with(json!({"mood": 2})))
        .await
        .expect(201);
    assert_eq!(r.body["check_in"]["late"], true);
    assert!(
        support_rules(&r).contains(&"mood_low".to_owned()),
        "{}",
        r.text
    );
    let mood = app.alerts_for_rule(&counsellor, &patient, "mood_low").await;
    assert_eq!(
        mood.len(),
        1,
        "three low days in a row, whatever order they arrived in"
    );
    let mood_finding = finding(&mood[0], "mood_low").unwrap();
    let dates: Vec<&str> = mood_finding["evidence"]["check_ins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["date"].as_str().unwrap())
        .collect();
    assert_eq!(
        dates,
        vec![
            day(-3).to_string(),
            day(-2).to_string(),
            day(-1).to_string()
        ]
    );
    assert_eq!(mood_finding["last_seen_on"], day(-1).to_string());

    // What the late check-in does not change is not raised again.
    let craving = app
        .alerts_for_rule(&counsellor, &patient, "craving_high")
        .await;
    assert_eq!(craving.len(), 1);
    let craving = finding(&craving[0], "craving_high").unwrap();
    assert_eq!(craving["occurrences"], 2);
    assert_eq!(craving["last_seen_on"], day(0).to_string());
}

#[tokio::test]
async fn use_after_weeks_of_abstinence_is_an_overdose_risk() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let counsellor = app.counsellor(&admin).await;
    let code = app
        .invite(
            &counsellor,
            json!({"role": "patient", "last_use_date": local_day(NEW_YORK, -30)}),
        )
        .await;
    let patient = app.register(&code, "abstinent", NEW_YORK).await;

    for n in [-2, -1] {
        let r = app
            .checkin(&patient, local_day(NEW_YORK, n), &calm())
            .await
            .expect(201);
        assert_eq!(r.body["support"], json!([]));
    }
    let today = today(NEW_YORK);
    let r = app
        .checkin(
            &patient,
            today,
            &calm_with(json!({"used_substance": true, "substances": ["heroin"], "craving": 6})),
        )
        .await
        .expect(201);
    assert_eq!(r.body["check_in"]["substances"], json!(["heroin"]));
    let contacts = crisis_contacts(&r.body["crisis_resources"]);
    assert!(
        contacts.iter().any(|c| c.contains("911")),
        "crisis help at once: {contacts:?}"
    );
    let support = &r.body["support"];
    assert!(
        support
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["rule"] == "substance_use"
                && m["message"].as_str().unwrap().contains("tolerance")),
        "{support}"
    );

    let alerts = app
        .alerts_for_rule(&counsellor, &patient, "substance_use")
        .await;
    assert_eq!(alerts.len(), 1);
    let a = &alerts[0];
    assert_eq!(a["severity"], "critical");
    let explanation = a["explanation"].as_str().unwrap();
    assert!(
        explanation.contains("overdose") && explanation.contains("29 abstinent days"),
        "{explanation}"
    );
    assert_eq!(a["evidence"]["check_ins"][0]["date"], today.to_string());
    assert_eq!(a["evidence"]["abstinent_days_before"], 29);
}

#[tokio::test]
async fn use_without_a_recent_abstinent_stretch_is_high_without_crisis_lines() {
    let app = spawn_app().await;
    let (_, counsellor, patient) = clinic(&app).await;
    let today = today(NEW_YORK);
    let r = app
        .checkin(&patient, today, &calm_with(json!({"used_substance": true})))
        .await
        .expect(201);
    assert_eq!(r.body["crisis_resources"], json!([]));
    assert_eq!(support_rules(&r), vec!["substance_use"]);

    let alerts = app
        .alerts_for_rule(&counsellor, &patient, "substance_use")
        .await;
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0]["severity"], "high");
    assert!(!alerts[0]["explanation"]
        .as_str()
        .unwrap()
        .contains("overdose"));
    assert_eq!(
        alerts[0]["evidence"]["check_ins"][0]["date"],
        today.to_string()
    );
}

#[tokio::test]
async fn a_counsellor_acknowledges_and_resolves_and_the_next_finding_opens_a_new_alert() {
    let app = spawn_app().await;
    let (_, counsellor, patient) = clinic(&app).await;
    let today = today(NEW_YORK);
    app.checkin(&patient, today, &calm_with(json!({"craving": 9})))
        .await
        .expect(201);
    let first = app
        .alerts_for_rule(&counsellor, &patient, "craving_high")
        .await;
    assert_eq!(first.len(), 1);
    let id = first[0]["id"].as_str().unwrap().to_owned();

    let acked = app
        .post(
            &format!("/v1/alerts/{id}/acknowledge"),
            counsellor.t(),
            &json!({}),
        )
        .await
        .expect(200);
    assert_eq!(acked.body["status"], "acknowledged");
    assert_eq!(acked.body["acknowledged_by"], counsellor.id);
    assert!(acked.body["acknowledged_at"].is_string());

    let bad = app
        .post(
            &format!("/v1/alerts/{id}/resolve"),
            counsellor.t(),
            &json!({"outcome": "sorted", "note": "Called, safe"}),
        )
        .await
        .expect_problem(422);
    assert_eq!(bad.error_fields(), vec!["outcome"]);
    let still = app
        .get(&format!("/v1/alerts/{id}"), counsellor.t())
        .await
        .expect(200);
    assert_eq!(still.body["status"], "acknowledged");

    let resolved = app
        .post(
            &format!("/v1/alerts/{id}/resolve"),
            counsellor.t(),
            &json!({"outcome": "contacted", "note": "Called, safe"}),
        )
        .await
        .expect(200);
    assert_eq!(resolved.body["status"], "resolved");
    assert_eq!(resolved.body["outcome"], "contacted");
    assert_eq!(resolved.body["note"], "Called, safe");
    assert_eq!(resolved.body["resolved_by"], counsellor.id);
    assert!(resolved.body["resolved_at"].is_string());

    app.post(
        &format!("/v1/alerts/{id}/resolve"),
        counsellor.t(),
        &json!({"outcome": "contacted", "note": "Again"}),
    )
    .await
    .expect_problem(409);
    app.post(
        &format!("/v1/alerts/{id}/acknowledge"),
        counsellor.t(),
        &json!({}),
    )
    .await
    .expect_problem(409);

    // The patient's craving is still high the next time they answer: a new alert.
    app.checkin(&patient, today, &calm_with(json!({"craving": 10})))
        .await
        .expect(200);
    let all = app
        .alerts_for_rule(&counsellor, &patient, "craving_high")
        .await;
    assert_eq!(all.len(), 2, "{all:?}");
    let new = all.iter().find(|a| a["id"] != id.as_str()).unwrap();
    assert_eq!(new["status"], "open");
    assert_eq!(new["occurrences"], 1);
    let old = app
        .get(&format!("/v1/alerts/{id}"), counsellor.t())
        .await
        .expect(200);
    assert_eq!(old.body["status"], "resolved");
    assert_eq!(
        old.body["occurrences"], 1,
        "the resolved alert is left alone"
    );

    let open = app
        .get(
            &format!("/v1/alerts?status=open&patient_id={}", patient.id),
            counsellor.t(),
        )
        .await
        .expect(200);
    let open_ids: Vec<&Value> = open.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| &a["id"])
        .collect();
    assert_eq!(open_ids, vec![&new["id"]]);
}

#[tokio::test]
async fn every_sos_press_reaches_the_one_episode() {
    let app = spawn_app().await;
    let (_, counsellor, patient) = clinic(&app).await;

    let with_message = app
        .post("/v1/me/sos", patient.t(), &json!({"message": "help"}))
        .await
        .expect(202);
    assert!(!crisis_contacts(&with_message.body["crisis_resources"]).is_empty());
    let without_body = app
        .send("POST", "/v1/me/sos", patient.t(), None)
        .await
        .expect(202);
    assert!(!crisis_contacts(&without_body.body["crisis_resources"]).is_empty());

    // One episode: the second press joins the first's alert, and keeps its message.
    let a = with_message.body["alert_id"].as_str().unwrap();
    let b = without_body.body["alert_id"].as_str().unwrap();
    assert_eq!(a, b);
    let alert = app
        .get(&format!("/v1/alerts/{a}"), counsellor.t())
        .await
        .expect(200);
    assert_eq!(alert.body["rule"], "sos");
    assert_eq!(alert.body["severity"], "critical");
    assert_eq!(alert.body["status"], "open");
    assert_eq!(alert.body["patient_id"], patient.id);
    let sos = finding(&alert.body, "sos").unwrap();
    assert_eq!(sos["occurrences"], 2);
    assert_eq!(sos["evidence"]["message"], Value::Null);
    assert_eq!(sos["evidence"]["earlier_presses"][0]["message"], "help");
    assert_eq!(app.alerts_of(&counsellor, &patient).await.len(), 1);
}

#[tokio::test]
async fn the_caseload_puts_the_patient_most_at_risk_first() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let counsellor = app.counsellor(&admin).await;
    let today = today(NEW_YORK);

    // Created calm first and critical last, so the order cannot come from enrolment.
    let code = app
        .invite(
            &counsellor,
            json!({"role": "patient", "last_use_date": local_day(NEW_YORK, -10)}),
        )
        .await;
    let calm_patient = app.register(&code, "calm", NEW_YORK).await;
    let warning = app.patient(&counsellor).await;
    let critical = app.patient(&counsellor).await;
    let elsewhere = app.patient(&app.counsellor(&admin).await).await;

    app.checkin(&calm_patient, today, &calm()).await.expect(201);
    app.checkin(&warning, today, &calm_with(json!({"craving": 8})))
        .await
        .expect(201);
    app.checkin(
        &critical,
        today,
        &calm_with(json!({"craving": 8, "self_harm_thoughts": true})),
    )
    .await
    .expect(201);

    let r = app.get("/v1/patients", counsellor.t()).await.expect(200);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let items = r.body["items"].as_array().unwrap();
    let ids: Vec<&str> = items.iter().map(|p| p["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        vec![
            critical.id.as_str(),
            warning.id.as_str(),
            calm_patient.id.as_str()
        ],
        "critical, then warning, then calm; another counsellor's patient not listed"
    );
    assert!(!ids.contains(&elsewhere.id.as_str()));

    assert_eq!(items[0]["open_alerts"], 1, "one episode, not one per rule");
    assert_eq!(items[0]["highest_open_severity"], "critical");
    assert_eq!(items[1]["open_alerts"], 1);
    assert_eq!(items[1]["highest_open_severity"], "warning");
    assert_eq!(items[2]["open_alerts"], 0);
    assert_eq!(items[2]["highest_open_severity"], Value::Null);
    for p in items {
        assert_eq!(p["last_check_in_date"], today.to_string());
        assert_eq!(p["phase"], "aftercare");
    }
    // Last use ten days before today: ten abstinent days, today included.
    assert_eq!(items[2]["days_since_last_use"], 10);
    // No use ever reported, first check-in today: one day.
    assert_eq!(items[0]["days_since_last_use"], 1);

    // The admin sees the whole organisation, in the same order of risk.
    let all = app.get("/v1/patients", admin.t()).await.expect(200);
    let all_ids: Vec<&str> = all.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(all_ids.len(), 4);
    assert_eq!(&all_ids[..2], &[critical.id.as_str(), warning.id.as_str()]);
}

#[tokio::test]
async fn a_counsellor_lowers_one_patients_craving_threshold() {
    let app = spawn_app().await;
    let (_, counsellor, tuned) = clinic(&app).await;
    let other = app.patient(&counsellor).await;
    let today = today(NEW_YORK);
    let path = format!("/v1/patients/{}/risk-policy", tuned.id);

    let r = app
        .put(
            &path,
            counsellor.t(),
            &json!({"rules": {"craving_high": {"threshold": 6}}}),
        )
        .await
        .expect(200);
    assert_eq!(r.body["effective"]["rules"]["craving_high"]["threshold"], 6);
    assert_eq!(
        r.body["effective"]["rules"]["craving_high"]["consecutive_days_for_high"], 2,
        "unnamed fields keep the organisation's value"
    );
    assert_eq!(
        r.body["overrides"],
        json!({"rules": {"craving_high": {"threshold": 6}}})
    );

    let r = app
        .checkin(&tuned, today, &calm_with(json!({"craving": 6})))
        .await
        .expect(201);
    assert_eq!(support_rules(&r), vec!["craving_high"]);
    let r = app
        .checkin(&other, today, &calm_with(json!({"craving": 6})))
        .await
        .expect(201);
    assert_eq!(r.body["support"], json!([]));
    let fired = app
        .alerts_for_rule(&counsellor, &tuned, "craving_high")
        .await;
    assert_eq!(fired.len(), 1);
    assert!(
        fired[0]["explanation"]
            .as_str()
            .unwrap()
            .contains("threshold 6"),
        "{}",
        fired[0]["explanation"]
    );
    assert!(app.alerts_of(&counsellor, &other).await.is_empty());

    // Safety rules stay on, and typos are refused, naming the field.
    let r = app
        .put(
            &path,
            counsellor.t(),
            &json!({"rules": {"self_harm": {"enabled": false}}}),
        )
        .await
        .expect_problem(422);
    assert_eq!(r.error_fields(), vec!["rules.self_harm.enabled"]);
    let r = app
        .put(
            &path,
            counsellor.t(),
            &json!({"rules": {"craving_hihg": {"threshold": 5}}}),
        )
        .await
        .expect_problem(422);
    assert_eq!(r.error_fields(), vec!["rules.craving_hihg"]);
    let r = app
        .put(
            &path,
            counsellor.t(),
            &json!({"rules": {"craving_high": {"threshold": 11}}}),
        )
        .await
        .expect_problem(422);
    assert_eq!(r.error_fields(), vec!["rules.craving_high.threshold"]);

    let kept = app.get(&path, counsellor.t()).await.expect(200);
    assert_eq!(
        kept.body["overrides"],
        json!({"rules": {"craving_high": {"threshold": 6}}}),
        "refused changes leave the patient's policy as it was"
    );
}

#[tokio::test]
async fn the_admin_sets_the_clinics_default_policy() {
    let app = spawn_app().await;
    let (admin, counsellor, patient) = clinic(&app).await;

    let current = app
        .get("/v1/organisation/risk-policy", admin.t())
        .await
        .expect(200);
    let mut policy = current.body.clone();
    assert_eq!(policy["rules"]["craving_high"]["threshold"], 8);
    policy["rules"]["craving_high"]["threshold"] = json!(7);
    policy["rules"]["sleep_poor"]["below_hours"] = json!(5.5);
    policy["escalate_critical_after_minutes"] = json!(10);

    app.put("/v1/organisation/risk-policy", counsellor.t(), &policy)
        .await
        .expect_problem(403);
    app.put("/v1/organisation/risk-policy", patient.t(), &policy)
        .await
        .expect_problem(403);
    let put = app
        .put("/v1/organisation/risk-policy", admin.t(), &policy)
        .await
        .expect(200);
    assert_eq!(put.body, policy);
    let got = app
        .get("/v1/organisation/risk-policy", admin.t())
        .await
        .expect(200);
    assert_eq!(got.body, policy, "the policy round-trips");

    let mut invalid = policy.clone();
    invalid["rules"]["craving_high"]["threshold"] = json!(11);
    let r = app
        .put("/v1/organisation/risk-policy", admin.t(), &invalid)
        .await
        .expect_problem(422);
    assert_eq!(r.error_fields(), vec!["rules.craving_high.threshold"]);
    let mut incomplete = policy.clone();
    incomplete["rules"]
        .as_object_mut()
        .unwrap()
        .remove("mood_low");
    let r = app
        .put("/v1/organisation/risk-policy", admin.t(), &incomplete)
        .await
        .expect_problem(422);
    let named = r.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e.to_string().contains("mood_low"));
    assert!(named, "the missing rule is named: {}", r.text);
    assert_eq!(
        app.get("/v1/organisation/risk-policy", admin.t())
            .await
            .expect(200)
            .body,
        policy
    );

    // The new default applies to the clinic's patients.
    let r = app
        .checkin(&patient, today(NEW_YORK), &calm_with(json!({"craving": 7})))
        .await
        .expect(201);
    assert_eq!(support_rules(&r), vec!["craving_high"]);
    let p = app
        .get(
            &format!("/v1/patients/{}/risk-policy", patient.id),
            counsellor.t(),
        )
        .await
        .expect(200);
    assert_eq!(p.body["effective"]["rules"]["craving_high"]["threshold"], 7);
}

#[tokio::test]
async fn a_counsellor_off_the_care_team_sees_nothing_of_the_patient() {
    let app = spawn_app().await;
    let (admin, counsellor, patient) = clinic(&app).await;
    let outsider = app.counsellor(&admin).await;
    let other_clinic_admin = app.admin().await;

    app.checkin(
        &patient,
        today(NEW_YORK),
        &calm_with(json!({"self_harm_thoughts": true})),
    )
    .await
    .expect(201);
    let alert_id = app.alerts_of(&counsellor, &patient).await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let p = &patient.id;

    // The care team and the admin can read all of it.
    app.get(&format!("/v1/patients/{p}/check-ins"), counsellor.t())
        .await
        .expect(200);
    app.get(&format!("/v1/alerts/{alert_id}"), admin.t())
        .await
        .expect(200);

    let missing = app
        .get(
            &format!("/v1/alerts/{}", uuid::Uuid::now_v7()),
            outsider.t(),
        )
        .await
        .expect_problem(404);
    for viewer in [&outsider, &other_clinic_admin] {
        for path in [
            format!("/v1/patients/{p}"),
            format!("/v1/patients/{p}/check-ins"),
            format!("/v1/patients/{p}/risk-policy"),
            format!("/v1/alerts/{alert_id}"),
        ] {
            let r = app.get(&path, viewer.t()).await.expect_problem(404);
            assert_eq!(
                (&r.body["type"], &r.body["title"], &r.body["detail"]),
                (
                    &missing.body["type"],
                    &missing.body["title"],
                    &missing.body["detail"]
                ),
                "{path}: the same answer as for nothing at all"
            );
        }
        app.put(
            &format!("/v1/patients/{p}/risk-policy"),
            viewer.t(),
            &json!({"rules": {"craving_high": {"threshold": 1}}}),
        )
        .await
        .expect_problem(404);
        app.post(
            &format!("/v1/alerts/{alert_id}/acknowledge"),
            viewer.t(),
            &json!({}),
        )
        .await
        .expect_problem(404);
        app.post(
            &format!("/v1/alerts/{alert_id}/resolve"),
            viewer.t(),
            &json!({"outcome": "false_alarm", "note": "not mine"}),
        )
        .await
        .expect_problem(404);
        app.patch(
            &format!("/v1/patients/{p}"),
            viewer.t(),
            &json!({"phase": "discharged"}),
        )
        .await
        .expect_problem(404);

        let inbox = app.get("/v1/alerts", viewer.t()).await.expect(200);
        assert_eq!(inbox.body["items"], json!([]));
        assert!(app.alerts_of(viewer, &patient).await.is_empty());
        let caseload = app.get("/v1/patients", viewer.t()).await.expect(200);
        assert_eq!(caseload.body["items"], json!([]));
    }

    // Nothing the outsiders tried changed anything.
    let a = app
        .get(&format!("/v1/alerts/{alert_id}"), counsellor.t())
        .await
        .expect(200);
    assert_eq!(a.body["status"], "open");
    let pol = app
        .get(&format!("/v1/patients/{p}/risk-policy"), counsellor.t())
        .await
        .expect(200);
    assert_eq!(
        pol.body["effective"]["rules"]["craving_high"]["threshold"],
        8
    );

    // Patients use their own endpoints; the counsellor ones are not for them.
    for path in [
        "/v1/patients".to_owned(),
        "/v1/alerts".to_owned(),
        format!("/v1/patients/{p}"),
        format!("/v1/patients/{p}/check-ins"),
        format!("/v1/patients/{p}/risk-policy"),
        format!("/v1/alerts/{alert_id}"),
    ] {
        app.get(&path, patient.t()).await.expect_problem(403);
    }
    app.post(
        &format!("/v1/alerts/{alert_id}/resolve"),
        patient.t(),
        &json!({"outcome": "false_alarm", "note": "I'm fine"}),
    )
    .await
    .expect_problem(403);
    app.put(
        &format!("/v1/patients/{p}/risk-policy"),
        patient.t(),
        &json!({"rules": {"craving_high": {"threshold": 10}}}),
    )
    .await
    .expect_problem(403);
    // And a counsellor cannot check in.
    app.checkin(&counsellor, today(NEW_YORK), &calm())
        .await
        .expect_problem(403);
}

/// One sweep run reviews everyone due together: a silent patient without an alert gets a new
/// one (delivered like any other), a silent patient in an ongoing episode has the silence
/// joined to it, and the run's duration is on /metrics.
#[tokio::test]
async fn one_sweep_run_opens_and_joins_episodes_for_every_silent_patient() {
    let sink = crate::receivers::http::HttpSink::start().await;
    let app = spawn_app().await;
    app.start_delivery_worker();
    let (admin, counsellor, fresh) = clinic(&app).await;
    let ongoing = app.patient(&counsellor).await;
    crate::delivery::register_hook(&app, &admin, &sink.url("/sweep"), &["alert.created"]).await;
    let today = today(NEW_YORK);
    app.checkin(&fresh, today, &calm()).await.expect(201);
    app.checkin(&ongoing, today, &calm_with(json!({"craving": 9})))
        .await
        .expect(201);
    let open = app.alerts_of(&counsellor, &ongoing).await;
    assert_eq!(open.len(), 1);
    let hooks = sink
        .wait_for_requests(1, std::time::Duration::from_secs(10))
        .await;
    assert_eq!(hooks.len(), 1);

    let last = local_day(NEW_YORK, -3);
    for p in [&fresh, &ongoing] {
        app.sql(&format!(
            "UPDATE patients SET last_check_in_on = '{last}', missed_check_due_at = '2000-01-01 00:00:00', \
             created_at = '2026-01-01 00:00:00' WHERE user_id = '{}'",
            p.id
        ));
    }
    let raised = aftercare::service::sweep::missed_check_ins_once(&app.state)
        .await
        .unwrap();
    assert_eq!(raised, 2);

    let new = app.alerts_of(&counsellor, &fresh).await;
    assert_eq!(new.len(), 1);
    assert_eq!(new[0]["rule"], "missed_check_ins");
    assert_eq!(new[0]["status"], "open");
    assert_eq!(new[0]["evidence"]["missed_days"], 2);
    let joined = app.alerts_of(&counsellor, &ongoing).await;
    assert_eq!(joined.len(), 1, "still one episode");
    assert_eq!(joined[0]["id"], open[0]["id"]);
    let rules: Vec<&str> = joined[0]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rule"].as_str().unwrap())
        .collect();
    assert!(rules.contains(&"missed_check_ins"), "{rules:?}");

    // The new alert went out like any other: on the webhook, after the first one.
    let hooks = sink
        .wait_for_requests(2, std::time::Duration::from_secs(10))
        .await;
    let body: Value = serde_json::from_slice(&hooks[1].body).unwrap();
    assert_eq!(body["type"], "alert.created");
    assert_eq!(body["data"]["patient_id"], fresh.id.as_str());
    assert_eq!(body["data"]["rule"], "missed_check_ins");

    // Both are reviewed: a second run finds nobody due.
    let again = aftercare::service::sweep::missed_check_ins_once(&app.state)
        .await
        .unwrap();
    assert_eq!(again, 0);
    let metrics = app.get("/metrics", None).await.expect(200);
    assert!(
        metrics
            .text
            .contains("sweep_duration_seconds_bucket{sweep=\"missed_check_ins\""),
        "{}",
        metrics.text
    );
}

#[tokio::test]
async fn the_sweep_notices_a_patient_who_stopped_checking_in() {
    let app = spawn_app().await;
    let (_, counsellor, silent) = clinic(&app).await;
    let regular = app.patient(&counsellor).await;
    let newcomer = app.patient(&counsellor).await;
    let today = today(NEW_YORK);
    app.checkin(&silent, today, &calm()).await.expect(201);
    app.checkin(&regular, today, &calm()).await.expect(201);

    // The silent patient's last check-in was three local days ago, and the sweep is due.
    let last = local_day(NEW_YORK, -3);
    app.sql(&format!(
        "UPDATE patients SET last_check_in_on = '{last}', missed_check_due_at = '2000-01-01 00:00:00', \
         created_at = '2026-01-01 00:00:00' WHERE user_id = '{}'",
        silent.id
    ));

    let report = aftercare::service::sweep::run_once(&app.state)
        .await
        .unwrap();
    assert_eq!(report.missed_check_ins, 1);
    let alerts = app
        .alerts_for_rule(&counsellor, &silent, "missed_check_ins")
        .await;
    assert_eq!(alerts.len(), 1);
    let a = &alerts[0];
    assert_eq!(a["severity"], "warning");
    assert_eq!(a["evidence"]["last_check_in_date"], last.to_string());
    assert_eq!(a["evidence"]["missed_days"], 2);
    assert!(a["explanation"]
        .as_str()
        .unwrap()
        .contains(&last.to_string()));
    for p in [&regular, &newcomer] {
        assert!(app.alerts_of(&counsellor, p).await.is_empty());
    }

    // Another pass changes nothing.
    let again = aftercare::service::sweep::run_once(&app.state)
        .await
        .unwrap();
    assert_eq!(again.missed_check_ins, 0);
    let alerts = app
        .alerts_for_rule(&counsellor, &silent, "missed_check_ins")
        .await;
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0]["occurrences"], 1);

    // Two more silent days: the same alert is raised to high, not duplicated.
    let last = local_day(NEW_YORK, -5);
    app.sql(&format!(
        "UPDATE patients SET last_check_in_on = '{last}', missed_check_due_at = '2000-01-01 00:00:00', \
         created_at = '2026-01-01 00:00:00' WHERE user_id = '{}'",
        silent.id
    ));
    aftercare::service::sweep::run_once(&app.state)
        .await
        .unwrap();
    let alerts = app
        .alerts_for_rule(&counsellor, &silent, "missed_check_ins")
        .await;
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0]["id"], a["id"]);
    assert_eq!(alerts[0]["severity"], "high");
    assert_eq!(alerts[0]["evidence"]["missed_days"], 4);
}

#[tokio::test]
async fn an_unacknowledged_critical_alert_is_escalated_and_an_acknowledged_one_is_not() {
    let app = spawn_app().await;
    let (_, counsellor, patient) = clinic(&app).await;
    let waiting = app
        .post(
            "/v1/me/sos",
            patient.t(),
            &json!({"message": "please call"}),
        )
        .await
        .expect(202)
        .body["alert_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let other = app.patient(&counsellor).await;
    let seen = app
        .post("/v1/me/sos", other.t(), &json!({}))
        .await
        .expect(202)
        .body["alert_id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.post(
        &format!("/v1/alerts/{seen}/acknowledge"),
        counsellor.t(),
        &json!({}),
    )
    .await
    .expect(200);

    // Not yet due: nothing escalates.
    let report = aftercare::service::sweep::run_once(&app.state)
        .await
        .unwrap();
    assert_eq!(report.escalated, 0);

    app.sql(&format!(
        "UPDATE alerts SET escalation_due_at = '2000-01-01 00:00:00' WHERE patient_id IN ('{}', '{}')",
        patient.id, other.id
    ));
    let report = aftercare::service::sweep::run_once(&app.state)
        .await
        .unwrap();
    assert_eq!(report.escalated, 1);

    let escalated = app
        .get(&format!("/v1/alerts/{waiting}"), counsellor.t())
        .await
        .expect(200);
    assert!(
        escalated.body["escalated_at"].is_string(),
        "{}",
        escalated.text
    );
    assert_eq!(escalated.body["status"], "open");
    let acknowledged = app
        .get(&format!("/v1/alerts/{seen}"), counsellor.t())
        .await
        .expect(200);
    assert_eq!(acknowledged.body["escalated_at"], Value::Null);
    assert_eq!(acknowledged.body["status"], "acknowledged");

    // Escalation happens once.
    let report = aftercare::service::sweep::run_once(&app.state)
        .await
        .unwrap();
    assert_eq!(report.escalated, 0);
    let again = app
        .get(&format!("/v1/alerts/{waiting}"), counsellor.t())
        .await
        .expect(200);
    assert_eq!(again.body["escalated_at"], escalated.body["escalated_at"]);
}

#[tokio::test]
async fn the_summary_counts_the_streak_and_the_abstinent_days() {
    let app = spawn_app().await;
    let (_, _, patient) = clinic(&app).await;
    let today = today(NEW_YORK);

    let empty = app.get("/v1/me/summary", patient.t()).await.expect(200);
    assert_eq!(empty.body["check_in_streak"], 0);
    assert_eq!(empty.body["days_since_last_use"], Value::Null);
    assert_eq!(empty.body["last_7_days"]["check_ins"], 0);

    // An older check-in, then a gap, then three days running ending today.
    for n in [-5, -2, -1, 0] {
        app.checkin(&patient, local_day(NEW_YORK, n), &calm())
            .await
            .expect(201);
    }
    let s = app.get("/v1/me/summary", patient.t()).await.expect(200);
    assert_eq!(s.header("cache-control"), Some("no-store"));
    assert_eq!(s.body["today"], today.to_string());
    assert_eq!(s.body["checked_in_today"], true);
    assert_eq!(s.body["check_in_streak"], 3, "{}", s.text);
    assert_eq!(s.body["last_7_days"]["check_ins"], 4);
    assert_eq!(s.body["last_7_days"]["exercise_minutes_total"], 120);
    assert_eq!(s.body["last_7_days"]["days_used"], 0);
    // Abstinent since the first check-in, five days ago: six days, today included.
    assert_eq!(s.body["days_since_last_use"], 6);

    // Yesterday's answer is corrected to a use: the abstinent streak restarts today.
    app.checkin(
        &patient,
        local_day(NEW_YORK, -1),
        &calm_with(json!({"used_substance": true})),
    )
    .await
    .expect(200);
    let s = app.get("/v1/me/summary", patient.t()).await.expect(200);
    assert_eq!(s.body["days_since_last_use"], 1);
    assert_eq!(s.body["last_7_days"]["days_used"], 1);
    assert_eq!(s.body["check_in_streak"], 3);
}

#[tokio::test]
async fn a_phase_change_keeps_the_history_and_counts_for_overdose_risk() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let counsellor = app.counsellor(&admin).await;
    let patient = app.patient_in(&counsellor, NEW_YORK, "detox").await;
    let path = format!("/v1/patients/{}", patient.id);
    let today = today(NEW_YORK);

    let before = app.get(&path, counsellor.t()).await.expect(200);
    assert_eq!(before.body["phase"], "detox");
    assert_eq!(before.body["phase_history"].as_array().unwrap().len(), 1);

    let r = app
        .patch(&path, counsellor.t(), &json!({"phase": "aftercare"}))
        .await
        .expect(200);
    assert_eq!(r.body["phase"], "aftercare");
    assert_eq!(r.body["phase_started_on"], today.to_string());
    let history: Vec<&str> = r.body["phase_history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["phase"].as_str().unwrap())
        .collect();
    assert_eq!(history, vec!["detox", "aftercare"]);

    let bad = app
        .patch(&path, counsellor.t(), &json!({"phase": "rehab"}))
        .await
        .expect_problem(422);
    assert_eq!(bad.error_fields(), vec!["phase"]);
    app.patch(&path, patient.t(), &json!({"phase": "discharged"}))
        .await
        .expect_problem(403);
    let after = app.get(&path, counsellor.t()).await.expect(200);
    assert_eq!(after.body["phase"], "aftercare");
    assert_eq!(after.body["phase_history"].as_array().unwrap().len(), 2);

    // Fresh out of detox, tolerance is low: any use is critical.
    let r = app
        .checkin(&patient, today, &calm_with(json!({"used_substance": true})))
        .await
        .expect(201);
    assert!(!crisis_contacts(&r.body["crisis_resources"]).is_empty());
    let a = &app
        .alerts_for_rule(&counsellor, &patient, "substance_use")
        .await[0];
    assert_eq!(a["severity"], "critical");
    assert!(
        a["explanation"]
            .as_str()
            .unwrap()
            .contains("after leaving detox"),
        "{}",
        a["explanation"]
    );
}

#[tokio::test]
async fn every_check_in_write_is_in_the_audit_trail() {
    let app = spawn_app().await;
    let (admin, counsellor, patient) = clinic(&app).await;
    let other = app.patient(&counsellor).await;
    let today = today(NEW_YORK);
    app.checkin(&patient, today, &calm()).await.expect(201);
    app.checkin(&patient, today, &calm_with(json!({"mood": 7})))
        .await
        .expect(200);
    app.checkin(&other, today, &calm()).await.expect(201);

    let r = app
        .get(
            &format!(
                "/v1/organisation/audit-events?patient_id={}&action=check_in.write",
                patient.id
            ),
            admin.t(),
        )
        .await
        .expect(200);
    let items = r.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{}", r.text);
    for e in items {
        assert_eq!(e["action"], "check_in.write");
        assert_eq!(e["actor_id"], patient.id);
        assert_eq!(e["patient_id"], patient.id);
        assert_eq!(e["outcome"], "success");
        assert_eq!(e["target_type"], "check_in");
    }
    assert_eq!(
        items[0]["target_id"], items[1]["target_id"],
        "a correction writes the same check-in"
    );
    app.get("/v1/organisation/audit-events", counsellor.t())
        .await
        .expect_problem(403);
}

#[tokio::test]
async fn simultaneous_submissions_all_succeed_and_every_version_counts() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let counsellor = app.counsellor(&admin).await;
    let patients = [
        app.patient(&counsellor).await,
        app.patient(&counsellor).await,
        app.patient(&counsellor).await,
    ];
    let date = today("America/New_York");
    // Eight different answers for one date at once (corrections racing; an identical resend
    // would change nothing), and other patients writing at the same time.
    let mut tasks = Vec::new();
    for i in 0..8 {
        for p in &patients {
            let client = app.client.clone();
            let url = app.url(&format!("/v1/me/check-ins/{date}"));
            let token = p.token.clone();
            tasks.push(tokio::spawn(async move {
                let body = json!({"craving": i, "mood": 6, "exercise_minutes": 10, "meals": 3, "used_substance": false});
                client.put(url).bearer_auth(token).json(&body).send().await.unwrap().status().as_u16()
            }));
        }
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 201),
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        3,
        "one creation per patient"
    );
    for p in &patients {
        let r = app
            .get(&format!("/v1/me/check-ins/{date}"), p.t())
            .await
            .expect(200);
        assert_eq!(r.body["version"], 8, "no correction lost");
    }
}

#[tokio::test]
async fn the_caseload_counts_abstinence_from_the_latest_reported_use() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let counsellor = app.counsellor(&admin).await;
    let patient = app.patient(&counsellor).await;
    let tz = "America/New_York";
    let calm = json!({"craving": 2, "mood": 6, "exercise_minutes": 20, "meals": 3, "used_substance": false});
    let mut used = calm.clone();
    used["used_substance"] = json!(true);
    app.put(
        &format!("/v1/me/check-ins/{}", local_day(tz, -4)),
        patient.t(),
        &calm,
    )
    .await
    .expect(201);
    app.put(
        &format!("/v1/me/check-ins/{}", local_day(tz, -3)),
        patient.t(),
        &used,
    )
    .await
    .expect(201);
    app.put(
        &format!("/v1/me/check-ins/{}", local_day(tz, 0)),
        patient.t(),
        &calm,
    )
    .await
    .expect(201);
    let days = |r: &Resp| r.body["items"][0]["days_since_last_use"].clone();
    let r = app.get("/v1/patients", counsellor.t()).await.expect(200);
    assert_eq!(
        days(&r),
        json!(3),
        "clean days after the use: -2, -1 and today"
    );
    let s = app.get("/v1/me/summary", patient.t()).await.expect(200);
    assert_eq!(s.body["days_since_last_use"], 3);
    // A use today resets it.
    app.put(
        &format!("/v1/me/check-ins/{}", local_day(tz, 0)),
        patient.t(),
        &used,
    )
    .await
    .expect(200);
    let r = app.get("/v1/patients", counsellor.t()).await.expect(200);
    assert_eq!(days(&r), json!(0));
}
