//! A clinic imports a patient's history from its earlier system (SPEC §11): validated like
//! check-ins, all or nothing, no live alerts, and history for the engine from then on.

use serde_json::{json, Value};

use crate::helpers::{calm, calm_with, local_day, spawn_app, Login, TestApp};

const TZ: &str = "America/New_York";

fn path(patient: &Login) -> String {
    format!("/v1/patients/{}/check-ins/import", patient.id)
}

/// `days` of calm history ending `ending` days ago (negative offsets), oldest first.
fn history(days: i64, ending: i64) -> Vec<Value> {
    (0..days)
        .map(|i| {
            let mut c = calm();
            c["date"] = json!(local_day(TZ, ending - days + 1 + i).to_string());
            c
        })
        .collect()
}

async fn stored(app: &TestApp, viewer: &Login, patient: &Login) -> Vec<Value> {
    app.get(
        &format!("/v1/patients/{}/check-ins?limit=200", patient.id),
        viewer.t(),
    )
    .await
    .expect(200)
    .body["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// The rules an alert is about: its findings' rules, or its own rule.
fn rules_of(alert: &Value) -> Vec<(String, String)> {
    match alert["findings"].as_array() {
        Some(f) if !f.is_empty() => f
            .iter()
            .map(|x| {
                (
                    x["rule"].as_str().unwrap_or_default().to_owned(),
                    x["severity"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect(),
        _ => vec![(
            alert["rule"].as_str().unwrap_or_default().to_owned(),
            alert["severity"].as_str().unwrap_or_default().to_owned(),
        )],
    }
}

#[tokio::test]
async fn a_counsellor_imports_sixty_days_that_raise_nothing_but_count_as_history() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let counsellor = app.counsellor(&admin).await;
    let patient = app.patient(&counsellor).await;

    // Sixty days up to yesterday, with use and self-harm thoughts weeks ago, and cravings of
    // 9 on the last two days.
    let mut days = history(60, -1);
    days[10] = calm_with(json!({"date": days[10]["date"], "used_substance": true,
        "substances": ["heroin"], "self_harm_thoughts": true, "craving": 9}));
    days[20]["withdrawal"] = json!(crate::helpers::SOWS_ITEMS
        .iter()
        .map(|k| (k.to_string(), json!(3)))
        .collect::<serde_json::Map<_, _>>());
    days[58]["craving"] = json!(9);
    days[59]["craving"] = json!(9);
    let r = app
        .post(
            &path(&patient),
            counsellor.t(),
            &json!({"source": "OldCare EHR", "check_ins": days}),
        )
        .await
        .expect(201);
    assert_eq!(r.body["imported"], 60);
    assert_eq!(r.body["replaced"], 0);
    assert_eq!(r.body["from"], local_day(TZ, -60).to_string());
    assert_eq!(r.body["to"], local_day(TZ, -1).to_string());
    assert_eq!(r.header("cache-control"), Some("no-store"));

    let list = stored(&app, &counsellor, &patient).await;
    assert_eq!(list.len(), 60);
    for c in &list {
        assert_eq!(c["source"], "import", "{c}");
        assert_eq!(c["imported_from"], "OldCare EHR");
        assert_eq!(c["late"], false);
    }
    let used = list.iter().find(|c| c["date"] == days[10]["date"]).unwrap();
    assert_eq!(used["used_substance"], true);
    assert_eq!(used["substances"], json!(["heroin"]));
    assert_eq!(used["self_harm_thoughts"], true);
    assert_eq!(
        list.iter().find(|c| c["date"] == days[20]["date"]).unwrap()["withdrawal_score"],
        48
    );

    // Use, self-harm thoughts, severe withdrawal and two high-craving days: no alert at all.
    assert!(app.alerts_of(&counsellor, &patient).await.is_empty());
    let delivered = app
        .get("/v1/organisation/audit-events?limit=200", admin.t())
        .await
        .expect(200);
    let imports: Vec<&Value> = delivered.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "check_in.import")
        .collect();
    assert_eq!(imports.len(), 1, "{}", delivered.text);
    assert_eq!(imports[0]["patient_id"], patient.id.as_str());
    assert_eq!(imports[0]["actor_id"], counsellor.id.as_str());
    assert_eq!(imports[0]["target_id"], "imported:60,replaced:0");

    // Today's live check-in sees the imported history: a third day of craving 9 in a row is
    // `craving_high` at `high`, which a first day alone never is.
    let live = app
        .checkin(
            &patient,
            local_day(TZ, 0),
            &calm_with(json!({"craving": 9})),
        )
        .await
        .expect(201);
    assert_eq!(live.body["check_in"]["source"], "app");
    assert_eq!(live.body["check_in"]["imported_from"], Value::Null);
    let alerts = app.alerts_of(&counsellor, &patient).await;
    let found: Vec<(String, String)> = alerts.iter().flat_map(rules_of).collect();
    assert!(
        found.contains(&("craving_high".into(), "high".into())),
        "{alerts:?}"
    );
    // The patient's own history shows both, and the streak runs through the imported days.
    let mine = app
        .get("/v1/me/check-ins?limit=200", patient.t())
        .await
        .expect(200);
    assert_eq!(mine.body["items"].as_array().unwrap().len(), 61);
    let summary = app.get("/v1/me/summary", patient.t()).await.expect(200);
    assert_eq!(summary.body["check_in_streak"], 61, "{}", summary.text);
}

#[tokio::test]
async fn a_bad_field_or_a_taken_date_imports_nothing_and_replace_replaces() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let counsellor = app.counsellor(&admin).await;
    let patient = app.patient(&counsellor).await;

    let mut days = history(10, -1);
    days[3]["craving"] = json!(11);
    days[5]["cravings"] = json!(2);
    days[7]["date"] = days[6]["date"].clone();
    let mut future = calm();
    future["date"] = json!(local_day(TZ, 1).to_string());
    days.push(future);
    let r = app
        .post(
            &path(&patient),
            counsellor.t(),
            &json!({"source": "OldCare", "check_ins": days}),
        )
        .await
        .expect_problem(422);
    assert_eq!(
        r.error_fields(),
        vec![
            "check_ins[3].craving",
            "check_ins[5].cravings",
            "check_ins[7].date",
            "check_ins[10].date"
        ]
    );
    assert!(stored(&app, &counsellor, &patient).await.is_empty());
    let r = app
        .post(
            &path(&patient),
            counsellor.t(),
            &json!({"check_ins": history(2, -1)}),
        )
        .await
        .expect_problem(422);
    assert_eq!(r.error_fields(), vec!["source"]);

    // The patient checked in two days ago; an import over that date is refused whole.
    let taken = local_day(TZ, -2);
    app.checkin(&patient, taken, &calm_with(json!({"mood": 9})))
        .await
        .expect(201);
    let r = app
        .post(
            &path(&patient),
            counsellor.t(),
            &json!({"source": "OldCare", "check_ins": history(10, -1)}),
        )
        .await
        .expect_problem(409);
    assert!(
        r.body["detail"]
            .as_str()
            .unwrap()
            .contains(&taken.to_string()),
        "{}",
        r.text
    );
    let list = stored(&app, &counsellor, &patient).await;
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["source"], "app");

    // With replace, the imported day takes its place (as a new version) and the rest go in.
    let r = app
        .post(
            &path(&patient),
            counsellor.t(),
            &json!({"source": "OldCare", "check_ins": history(10, -1), "replace": true}),
        )
        .await
        .expect(201);
    assert_eq!(r.body["imported"], 10);
    assert_eq!(r.body["replaced"], 1);
    let list = stored(&app, &counsellor, &patient).await;
    assert_eq!(list.len(), 10);
    let day = list
        .iter()
        .find(|c| c["date"] == taken.to_string())
        .unwrap();
    assert_eq!(day["source"], "import");
    assert_eq!(day["mood"], 6);
    assert_eq!(day["version"], 2);
}

#[tokio::test]
async fn only_the_care_team_and_admins_import_and_at_most_5000_at_once() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let counsellor = app.counsellor(&admin).await;
    let colleague = app.counsellor(&admin).await;
    let patient = app.patient(&counsellor).await;
    let other_admin = app.admin().await;
    let body = json!({"source": "OldCare", "check_ins": history(3, -1)});

    app.post(&path(&patient), colleague.t(), &body)
        .await
        .expect_problem(404);
    app.post(&path(&patient), other_admin.t(), &body)
        .await
        .expect_problem(404);
    app.post(&path(&patient), patient.t(), &body)
        .await
        .expect_problem(403);
    assert!(stored(&app, &counsellor, &patient).await.is_empty());

    // 5,001 is one too many (and the body, ~600 KB, is over the default limit but within this
    // route's); 5,000 go in.
    let r = app
        .post(
            &path(&patient),
            admin.t(),
            &json!({"source": "OldCare", "check_ins": history(5001, -1)}),
        )
        .await
        .expect_problem(422);
    assert_eq!(r.error_fields(), vec!["check_ins"]);
    assert!(stored(&app, &counsellor, &patient).await.is_empty());
    let key = "import-5000-once";
    let big = json!({"source": "OldCare", "check_ins": history(5000, -1)});
    let send = || {
        app.client
            .post(app.url(&path(&patient)))
            .bearer_auth(&admin.token)
            .header("Idempotency-Key", key)
            .json(&big)
            .send()
    };
    let first = crate::helpers::read(send().await.unwrap())
        .await
        .expect(201);
    assert_eq!(first.body["imported"], 5000);
    // A retry with the same key answers the same without importing twice (which would be a
    // 409 on every date).
    let again = crate::helpers::read(send().await.unwrap())
        .await
        .expect(201);
    assert_eq!(again.body, first.body);
    let total = app
        .get(
            &format!("/v1/patients/{}/check-ins?limit=200", patient.id),
            admin.t(),
        )
        .await
        .expect(200);
    assert_eq!(total.body["items"].as_array().unwrap().len(), 200);
    assert!(app.alerts_of(&admin, &patient).await.is_empty());
}

#[tokio::test]
async fn history_that_ended_weeks_before_enrolment_is_not_a_silence() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let counsellor = app.counsellor(&admin).await;
    let patient = app.patient(&counsellor).await;

    // The clinic's earlier system has 30 days that ended three weeks ago; the patient joined
    // aftercare today.
    app.post(
        &path(&patient),
        counsellor.t(),
        &json!({"source": "OldCare EHR", "check_ins": history(30, -21)}),
    )
    .await
    .expect(201);
    app.sql(&format!(
        "UPDATE patients SET missed_check_due_at = '2000-01-01 00:00:00' WHERE user_id = '{}'",
        patient.id
    ));
    let report = aftercare::service::sweep::run_once(&app.state)
        .await
        .unwrap();
    assert_eq!(report.missed_check_ins, 0);
    assert!(app.alerts_of(&counsellor, &patient).await.is_empty());

    // Silent since they enrolled, the clock runs as for anyone.
    app.sql(&format!(
        "UPDATE patients SET created_at = '{}', missed_check_due_at = '2000-01-01 00:00:00' \
         WHERE user_id = '{}'",
        local_day(TZ, -3).and_hms_opt(12, 0, 0).unwrap(),
        patient.id
    ));
    let report = aftercare::service::sweep::run_once(&app.state)
        .await
        .unwrap();
    assert_eq!(report.missed_check_ins, 1);
    let alerts = app.alerts_of(&counsellor, &patient).await;
    assert_eq!(alerts[0]["rule"], "missed_check_ins");
}
