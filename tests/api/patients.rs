//! Patients as the care team sees them: start dates before enrolment, the caseload's fields
//! and order, the staff summary and the trend chart.

use serde_json::{json, Value};

use crate::helpers::*;

const NEW_YORK: &str = "America/New_York";

fn phases(detail: &Value) -> Vec<(String, String)> {
    detail["phase_history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["phase"].as_str().unwrap().to_owned(),
                h["started_on"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn pair(phase: &str, on: chrono::NaiveDate) -> (String, String) {
    (phase.to_owned(), on.to_string())
}

#[tokio::test]
async fn a_patient_who_left_detox_ten_days_before_enrolling_is_at_overdose_risk() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let counsellor = app.counsellor(&admin).await;
    let left_detox = local_day(NEW_YORK, -10);
    let code = app
        .invite(
            &counsellor,
            json!({"role": "patient", "phase": "treatment", "detox_ended_on": left_detox}),
        )
        .await;
    let patient = app.register(&code, "patient", NEW_YORK).await;

    let d = app
        .get(&format!("/v1/patients/{}", patient.id), counsellor.t())
        .await
        .expect(200);
    assert_eq!(d.body["phase"], "treatment");
    assert_eq!(d.body["phase_started_on"], left_detox.to_string());
    assert_eq!(
        phases(&d.body),
        vec![pair("detox", left_detox), pair("treatment", left_detox)]
    );

    app.checkin(
        &patient,
        today(NEW_YORK),
        &calm_with(json!({"used_substance": true})),
    )
    .await
    .expect(201);
    let finding = &app
        .alerts_for_rule(&counsellor, &patient, "substance_use")
        .await[0];
    assert_eq!(finding["severity"], "critical", "{finding}");
    let why = finding["explanation"].as_str().unwrap();
    assert!(why.contains("10 days after leaving detox"), "{why}");
}

#[tokio::test]
async fn without_a_detox_date_a_first_use_is_high_not_critical() {
    // The contrast that makes the test above mean something.
    let app = spawn_app().await;
    let admin = app.admin().await;
    let counsellor = app.counsellor(&admin).await;
    let patient = app.patient_in(&counsellor, NEW_YORK, "treatment").await;
    app.checkin(
        &patient,
        today(NEW_YORK),
        &calm_with(json!({"used_substance": true})),
    )
    .await
    .expect(201);
    let finding = &app
        .alerts_for_rule(&counsellor, &patient, "substance_use")
        .await[0];
    assert_eq!(finding["severity"], "high", "{finding}");
}

#[tokio::test]
async fn an_aftercare_patient_enrolled_late_has_detox_then_treatment_then_aftercare() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let counsellor = app.counsellor(&admin).await;
    let (left, started) = (local_day(NEW_YORK, -20), local_day(NEW_YORK, -5));
    let code = app
        .invite(
            &admin,
            json!({"role": "patient", "phase": "aftercare", "counsellor_id": counsellor.id,
                "phase_started_on": started, "detox_ended_on": left}),
        )
        .await;
    let patient = app.register(&code, "patient", NEW_YORK).await;
    let d = app
        .get(&format!("/v1/patients/{}", patient.id), counsellor.t())
        .await
        .expect(200);
    assert_eq!(d.body["phase"], "aftercare");
    assert_eq!(d.body["phase_started_on"], started.to_string());
    assert_eq!(
        phases(&d.body),
        vec![
            pair("detox", left),
            pair("treatment", left),
            pair("aftercare", started)
        ]
    );

    // Only a phase start date: the history starts then.
    let code = app
        .invite(
            &counsellor,
            json!({"role": "patient", "phase": "detox", "phase_started_on": local_day(NEW_YORK, -3)}),
        )
        .await;
    let other = app.register(&code, "patient", NEW_YORK).await;
    let d = app
        .get(&format!("/v1/patients/{}", other.id), counsellor.t())
        .await
        .expect(200);
    assert_eq!(
        phases(&d.body),
        vec![pair("detox", local_day(NEW_YORK, -3))]
    );
}

#[tokio::test]
async fn incoherent_enrolment_dates_are_refused_naming_the_field() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let counsellor = app.counsellor(&admin).await;
    let cases = [
        (
            json!({"role": "patient", "phase": "detox", "detox_ended_on": local_day(NEW_YORK, -2)}),
            "detox_ended_on",
        ),
        (
            json!({"role": "patient", "phase": "treatment", "detox_ended_on": local_day(NEW_YORK, 3)}),
            "detox_ended_on",
        ),
        (
            json!({"role": "patient", "phase_started_on": local_day(NEW_YORK, -400)}),
            "phase_started_on",
        ),
        (
            json!({"role": "patient", "phase_started_on": local_day(NEW_YORK, 3)}),
            "phase_started_on",
        ),
        (
            json!({"role": "patient", "phase": "aftercare",
                "phase_started_on": local_day(NEW_YORK, -9), "detox_ended_on": local_day(NEW_YORK, -4)}),
            "detox_ended_on",
        ),
        (
            json!({"role": "patient", "phase": "treatment",
                "phase_started_on": local_day(NEW_YORK, -4), "detox_ended_on": local_day(NEW_YORK, -9)}),
            "phase_started_on",
        ),
    ];
    for (body, field) in cases {
        let r = app
            .post("/v1/invitations", counsellor.t(), &body)
            .await
            .expect_problem(422);
        assert_eq!(r.error_fields(), vec![field], "{body}: {}", r.text);
    }
    let r = app
        .post(
            "/v1/invitations",
            admin.t(),
            &json!({"role": "counsellor", "detox_ended_on": local_day(NEW_YORK, -2)}),
        )
        .await
        .expect_problem(422);
    assert_eq!(r.error_fields(), vec!["detox_ended_on"]);
}

#[tokio::test]
async fn a_phase_change_can_start_in_the_past_but_not_before_the_current_phase() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let counsellor = app.counsellor(&admin).await;
    let began = local_day(NEW_YORK, -30);
    let code = app
        .invite(
            &counsellor,
            json!({"role": "patient", "phase": "treatment", "phase_started_on": began}),
        )
        .await;
    let patient = app.register(&code, "patient", NEW_YORK).await;
    let path = format!("/v1/patients/{}", patient.id);

    for (started_on, why) in [
        (local_day(NEW_YORK, -31), "before the current phase"),
        (local_day(NEW_YORK, 1), "in the future"),
        (local_day(NEW_YORK, -400), "more than a year back"),
    ] {
        let r = app
            .patch(
                &path,
                counsellor.t(),
                &json!({"phase": "aftercare", "started_on": started_on}),
            )
            .await
            .expect_problem(422);
        assert_eq!(r.error_fields(), vec!["started_on"], "{why}");
    }

    let moved = local_day(NEW_YORK, -5);
    let r = app
        .patch(
            &path,
            counsellor.t(),
            &json!({"phase": "aftercare", "started_on": moved}),
        )
        .await
        .expect(200);
    assert_eq!(r.body["phase"], "aftercare");
    assert_eq!(r.body["phase_started_on"], moved.to_string());
    assert_eq!(
        phases(&r.body),
        vec![pair("treatment", began), pair("aftercare", moved)]
    );
    let row = app
        .get("/v1/patients", counsellor.t())
        .await
        .expect(200)
        .body["items"][0]
        .clone();
    assert_eq!(row["phase_started_on"], moved.to_string());
}

fn order(caseload: &Resp) -> Vec<String> {
    caseload.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_owned())
        .collect()
}

fn row<'a>(caseload: &'a Resp, patient: &Login) -> &'a Value {
    caseload.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == patient.id.as_str())
        .unwrap()
}

#[tokio::test]
async fn the_caseload_puts_severity_then_escalation_then_the_longest_wait_first() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let counsellor = app.counsellor(&admin).await;
    let today = today(NEW_YORK);
    let used = calm_with(json!({"used_substance": true}));

    // Four patients with a high alert each, raised in this order: the first is acknowledged,
    // the last turns critical, the third is escalated.
    let acknowledged = app.patient(&counsellor).await;
    let waiting_longest = app.patient(&counsellor).await;
    let escalated = app.patient(&counsellor).await;
    let critical = app.patient(&counsellor).await;
    for p in [&acknowledged, &waiting_longest, &escalated] {
        app.checkin(p, today, &used).await.expect(201);
    }
    app.checkin(
        &critical,
        today,
        &calm_with(json!({"self_harm_thoughts": true})),
    )
    .await
    .expect(201);
    let ack_id = app.alerts_of(&counsellor, &acknowledged).await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.post(
        &format!("/v1/alerts/{ack_id}/acknowledge"),
        counsellor.t(),
        &json!({}),
    )
    .await
    .expect(200);
    app.sql(&format!(
        "UPDATE alerts SET escalation_due_at = '2000-01-01 00:00:00' WHERE patient_id = '{}'",
        escalated.id
    ));
    aftercare::service::sweep::run_once(&app.state)
        .await
        .unwrap();

    let c = app.get("/v1/patients", counsellor.t()).await.expect(200);
    assert_eq!(c.header("cache-control"), Some("no-store"));
    assert_eq!(
        order(&c),
        vec![
            critical.id.clone(),
            escalated.id.clone(),
            waiting_longest.id.clone(),
            acknowledged.id.clone()
        ],
        "{}",
        c.text
    );
    assert_eq!(row(&c, &critical)["highest_open_severity"], "critical");
    assert_eq!(row(&c, &escalated)["escalated"], true);
    for p in [&critical, &waiting_longest, &acknowledged] {
        assert_eq!(row(&c, p)["escalated"], false);
    }
    for p in [&escalated, &waiting_longest, &acknowledged] {
        assert_eq!(row(&c, p)["highest_open_severity"], "high");
        assert_eq!(row(&c, p)["open_alerts"], 1);
    }
}

#[tokio::test]
async fn without_alerts_the_longest_silence_comes_first_and_never_checked_in_is_longest() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let counsellor = app.counsellor(&admin).await;
    let berlin = "Europe/Berlin";
    let today_patient = app.patient_in(&counsellor, berlin, "aftercare").await;
    let yesterday_patient = app.patient(&counsellor).await;
    let quiet = app.patient(&counsellor).await;
    let never = app.patient(&counsellor).await;
    app.checkin(
        &quiet,
        local_day(NEW_YORK, -1),
        &calm_with(json!({"craving": 3, "mood": 5})),
    )
    .await
    .expect(201);
    // The quiet patient's last check-in was three days ago; an older one does not count.
    app.sql(&format!(
        "UPDATE check_ins SET date = '{}' WHERE patient_id = '{}'",
        local_day(NEW_YORK, -3),
        quiet.id
    ));
    app.sql(&format!(
        "UPDATE patients SET first_check_in_on = '{d}', last_check_in_on = '{d}' WHERE user_id = '{}'",
        quiet.id,
        d = local_day(NEW_YORK, -3)
    ));
    app.checkin(&yesterday_patient, local_day(NEW_YORK, -1), &calm())
        .await
        .expect(201);
    app.checkin(
        &today_patient,
        today(berlin),
        &calm_with(json!({"craving": 4, "mood": 7, "sleep_hours": 6.5})),
    )
    .await
    .expect(201);

    let c = app.get("/v1/patients", counsellor.t()).await.expect(200);
    assert_eq!(
        order(&c),
        vec![
            never.id.clone(),
            quiet.id.clone(),
            yesterday_patient.id.clone(),
            today_patient.id.clone()
        ],
        "{}",
        c.text
    );

    let t = row(&c, &today_patient);
    assert_eq!(t["timezone"], berlin);
    assert_eq!(t["checked_in_today"], true);
    assert_eq!(t["phase"], "aftercare");
    assert_eq!(t["phase_started_on"], today(berlin).to_string());
    assert_eq!(
        t["latest"],
        json!({"date": today(berlin), "craving": 4, "mood": 7, "sleep_hours": 6.5})
    );
    assert_eq!(t["open_alerts"], 0);
    assert_eq!(t["highest_open_severity"], Value::Null);
    assert_eq!(t["escalated"], false);
    assert_eq!(t["days_since_last_use"], 1);

    let y = row(&c, &yesterday_patient);
    assert_eq!(y["timezone"], NEW_YORK);
    assert_eq!(y["checked_in_today"], false);
    assert_eq!(y["latest"]["date"], local_day(NEW_YORK, -1).to_string());
    assert_eq!(y["last_check_in_date"], local_day(NEW_YORK, -1).to_string());

    let q = row(&c, &quiet);
    assert_eq!(q["latest"]["date"], local_day(NEW_YORK, -3).to_string());
    assert_eq!(q["latest"]["craving"], 3);
    assert_eq!(q["latest"]["mood"], 5);

    let n = row(&c, &never);
    assert_eq!(n["latest"], Value::Null);
    assert_eq!(n["checked_in_today"], false);
    assert_eq!(n["last_check_in_date"], Value::Null);
    assert_eq!(n["days_since_last_use"], Value::Null);

    // Paging keeps the order.
    let first = app
        .get("/v1/patients?limit=3", counsellor.t())
        .await
        .expect(200);
    let cursor = first.body["next_cursor"].as_str().unwrap().to_owned();
    let rest = app
        .get(
            &format!("/v1/patients?limit=3&cursor={cursor}"),
            counsellor.t(),
        )
        .await
        .expect(200);
    assert_eq!(order(&first).len(), 3);
    assert_eq!(order(&rest), vec![today_patient.id.clone()]);
}

#[tokio::test]
async fn a_use_reported_for_tomorrow_counts_the_same_in_the_caseload_and_the_summaries() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let counsellor = app.counsellor(&admin).await;
    let patient = app.patient(&counsellor).await;
    for n in [-2, -1, 0] {
        app.checkin(&patient, local_day(NEW_YORK, n), &calm())
            .await
            .expect(201);
    }
    // Across the date line, the app may already send tomorrow's answers.
    app.checkin(
        &patient,
        local_day(NEW_YORK, 1),
        &calm_with(json!({"used_substance": true})),
    )
    .await
    .expect(201);

    let own = app.get("/v1/me/summary", patient.t()).await.expect(200);
    let staff = app
        .get(
            &format!("/v1/patients/{}/summary", patient.id),
            counsellor.t(),
        )
        .await
        .expect(200);
    let c = app.get("/v1/patients", counsellor.t()).await.expect(200);
    assert_eq!(own.body["days_since_last_use"], 3, "{}", own.text);
    assert_eq!(staff.body["days_since_last_use"], 3, "{}", staff.text);
    assert_eq!(row(&c, &patient)["days_since_last_use"], 3, "{}", c.text);
}

#[tokio::test]
async fn staff_read_the_patients_own_summary_within_their_reach() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let counsellor = app.counsellor(&admin).await;
    let colleague = app.counsellor(&admin).await;
    let patient = app.patient(&counsellor).await;
    for n in [-2, -1, 0] {
        app.checkin(&patient, local_day(NEW_YORK, n), &calm())
            .await
            .expect(201);
    }
    let path = format!("/v1/patients/{}/summary", patient.id);

    let own = app.get("/v1/me/summary", patient.t()).await.expect(200);
    let staff = app.get(&path, counsellor.t()).await.expect(200);
    assert_eq!(staff.header("cache-control"), Some("no-store"));
    assert_eq!(staff.body, own.body);
    assert_eq!(staff.body["check_in_streak"], 3);
    assert_eq!(staff.body["checked_in_today"], true);
    assert_eq!(staff.body["today"], today(NEW_YORK).to_string());
    assert_eq!(app.get(&path, admin.t()).await.expect(200).body, own.body);

    app.get(&path, colleague.t()).await.expect_problem(404);
    app.get(&path, patient.t()).await.expect_problem(403);
    let elsewhere = app.admin().await;
    app.get(&path, elsewhere.t()).await.expect_problem(404);
    app.get(
        &format!("/v1/patients/{}/summary", uuid::Uuid::new_v4()),
        counsellor.t(),
    )
    .await
    .expect_problem(404);

    let audit = app
        .get(
            &format!(
                "/v1/organisation/audit-events?action=summary.read&actor_id={}",
                counsellor.id
            ),
            admin.t(),
        )
        .await
        .expect(200);
    let items = audit.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{}", audit.text);
    assert_eq!(items[0]["patient_id"], patient.id.as_str());
}

#[tokio::test]
async fn the_trend_has_one_entry_per_local_day_with_nulls_where_nothing_came_in() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let counsellor = app.counsellor(&admin).await;
    let colleague = app.counsellor(&admin).await;
    let tokyo = "Asia/Tokyo";
    let patient = app.patient_in(&counsellor, tokyo, "detox").await;
    let mut sows = serde_json::Map::new();
    for item in SOWS_ITEMS {
        sows.insert(item.to_owned(), json!(1));
    }
    app.checkin(
        &patient,
        local_day(tokyo, -2),
        &calm_with(
            json!({"craving": 5, "mood": 4, "exercise_minutes": 10, "meals": 2,
            "sleep_hours": 5.5, "withdrawal": sows}),
        ),
    )
    .await
    .expect(201);
    app.checkin(
        &patient,
        local_day(tokyo, 0),
        &json!({"craving": 1, "mood": 8, "exercise_minutes": 45, "meals": 3, "used_substance": false}),
    )
    .await
    .expect(201);
    // A check-in outside the window is not charted.
    app.checkin(&patient, local_day(tokyo, -5), &calm())
        .await
        .expect(201);
    let path = format!("/v1/patients/{}/trends", patient.id);

    let r = app
        .get(&format!("{path}?days=3"), counsellor.t())
        .await
        .expect(200);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_eq!(
        r.body,
        json!([
            {"date": local_day(tokyo, -2), "craving": 5, "mood": 4, "sleep_hours": 5.5,
             "exercise_minutes": 10, "meals": 2, "withdrawal_score": 16},
            {"date": local_day(tokyo, -1), "craving": null, "mood": null, "sleep_hours": null,
             "exercise_minutes": null, "meals": null, "withdrawal_score": null},
            {"date": local_day(tokyo, 0), "craving": 1, "mood": 8, "sleep_hours": null,
             "exercise_minutes": 45, "meals": 3, "withdrawal_score": null},
        ]),
        "{}",
        r.text
    );

    let default = app.get(&path, admin.t()).await.expect(200);
    let days = default.body.as_array().unwrap();
    assert_eq!(days.len(), 35);
    assert_eq!(days[0]["date"], local_day(tokyo, -34).to_string());
    assert_eq!(days[34]["date"], today(tokyo).to_string());
    assert_eq!(days[29]["craving"], 2, "the check-in five days ago");
    assert_eq!(
        app.get(&format!("{path}?days=365"), counsellor.t())
            .await
            .expect(200)
            .body
            .as_array()
            .unwrap()
            .len(),
        365
    );

    for bad in ["0", "366", "-1", "week"] {
        let r = app
            .get(&format!("{path}?days={bad}"), counsellor.t())
            .await
            .expect_problem(400);
        assert_eq!(r.error_fields(), vec!["days"], "days={bad}");
    }
    app.get(&format!("{path}?weeks=5"), counsellor.t())
        .await
        .expect_problem(400);
    app.get(&path, colleague.t()).await.expect_problem(404);
    app.get(&path, patient.t()).await.expect_problem(403);
    let elsewhere = app.admin().await;
    app.get(&path, elsewhere.t()).await.expect_problem(404);

    let audit = app
        .get(
            &format!(
                "/v1/organisation/audit-events?action=trends.read&patient_id={}",
                patient.id
            ),
            admin.t(),
        )
        .await
        .expect(200);
    assert_eq!(
        audit.body["items"].as_array().unwrap().len(),
        3,
        "{}",
        audit.text
    );
}
