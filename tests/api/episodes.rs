//! One alert per episode, as a counsellor lives with it: a bad stretch arrives as one alert
//! whose findings name every rule; it is delivered again only when it gets more serious; a
//! correction is marked, not lost; the inbox filters what changed.

use std::time::Duration;

use crate::receivers::http::HttpSink;
use serde_json::{json, Value};

use crate::delivery::{next_event, open_stream, register_hook};
use crate::helpers::{calm_with, finding, local_day, spawn_app, Login, TestApp};

const NEW_YORK: &str = "America/New_York";

async fn clinic(app: &TestApp) -> (Login, Login, Login) {
    let admin = app.admin().await;
    let counsellor = app.counsellor(&admin).await;
    let patient = app.patient(&counsellor).await;
    (admin, counsellor, patient)
}

/// Event types of webhook deliveries in the order they were raised (a batch is sent
/// concurrently, so arrival order is not raising order; webhook ids are time-ordered).
fn event_types(requests: &[crate::receivers::http::RecordedRequest]) -> Vec<String> {
    let mut requests = requests.to_vec();
    requests.sort_by_key(|r| r.header("webhook-id").map(str::to_owned));
    requests
        .iter()
        .map(|r| {
            let body: Value = serde_json::from_slice(&r.body).unwrap();
            body["type"].as_str().unwrap().to_owned()
        })
        .collect()
}

#[tokio::test]
async fn a_bad_stretch_arrives_as_one_alert_delivered_again_only_when_it_gets_worse() {
    let sink = HttpSink::start().await;
    let app = spawn_app().await;
    app.start_delivery_worker();
    let (admin, counsellor, patient) = clinic(&app).await;
    register_hook(
        &app,
        &admin,
        &sink.url("/episodes"),
        &["alert.created", "alert.updated", "alert.escalated"],
    )
    .await;
    let day = |n| local_day(NEW_YORK, n);

    // Four days going wrong in four different ways.
    for (n, changes) in [
        (-3, json!({"craving": 8})),
        (-2, json!({"craving": 8, "mood": 1, "meals": 1})),
        (-1, json!({"craving": 5, "mood": 2, "meals": 1})),
        (0, json!({"craving": 4, "mood": 1, "meals": 3})),
    ] {
        app.checkin(&patient, day(n), &calm_with(changes))
            .await
            .expect(201);
    }

    let alerts = app.alerts_of(&counsellor, &patient).await;
    assert_eq!(alerts.len(), 1, "one episode, not one alert per rule");
    let a = &alerts[0];
    let rules: Vec<&str> = a["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rule"].as_str().unwrap())
        .collect();
    assert_eq!(rules, vec!["craving_high", "meals_skipped", "mood_low"]);
    assert_eq!(a["severity"], "high", "the highest of its findings");
    assert_eq!(a["rule"], "craving_high", "led by the most severe finding");
    assert_eq!(a["title"], finding(a, "craving_high").unwrap()["title"]);
    let craving = finding(a, "craving_high").unwrap();
    assert_eq!(craving["severity"], "high");
    assert_eq!(craving["occurrences"], 2);
    assert_eq!(craving["first_seen_on"], day(-3).to_string());
    assert_eq!(craving["last_seen_on"], day(-2).to_string());
    let mood = finding(a, "mood_low").unwrap();
    assert_eq!(mood["severity"], "warning");
    assert!(mood["explanation"].as_str().unwrap().contains("Mood"));
    assert_eq!(mood["corrected_at"], Value::Null);

    // Delivered when it opened and when it rose to high; the two findings that only joined
    // it did not notify anyone again.
    let hooks = sink.wait_for_requests(2, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        event_types(&sink.requests()),
        vec!["alert.created", "alert.updated"],
        "{hooks:?}"
    );
    let mut requests = sink.requests();
    requests.sort_by_key(|r| r.header("webhook-id").map(str::to_owned));
    let bodies: Vec<Value> = requests
        .iter()
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect();
    assert_eq!(bodies[1]["data"]["severity"], "high");
    assert!(bodies.iter().all(|b| b["data"]["alert_id"] == a["id"]));

    // Resolved: the next finding opens a new episode.
    let id = a["id"].as_str().unwrap();
    app.post(
        &format!("/v1/alerts/{id}/resolve"),
        counsellor.t(),
        &json!({"outcome": "contacted", "note": "Talked it through."}),
    )
    .await
    .expect(200);
    app.checkin(&patient, day(0), &calm_with(json!({"craving": 9})))
        .await
        .expect(200);
    let alerts = app.alerts_of(&counsellor, &patient).await;
    assert_eq!(alerts.len(), 2);
    assert_ne!(alerts[0]["id"], a["id"]);
    assert_eq!(alerts[0]["status"], "open");
}

#[tokio::test]
async fn an_acknowledged_episode_that_turns_critical_is_open_again_and_escalates() {
    let sink = HttpSink::start().await;
    let app = spawn_app().await;
    app.start_delivery_worker();
    let (admin, counsellor, patient) = clinic(&app).await;
    register_hook(&app, &admin, &sink.url("/esc"), &["alert.escalated"]).await;
    let today = local_day(NEW_YORK, 0);

    app.checkin(&patient, today, &calm_with(json!({"craving": 9})))
        .await
        .expect(201);
    let id = app.alerts_of(&counsellor, &patient).await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.post(
        &format!("/v1/alerts/{id}/acknowledge"),
        counsellor.t(),
        &json!({}),
    )
    .await
    .expect(200);

    // Later that day the patient adds that they are thinking of harming themselves.
    let r = app
        .checkin(
            &patient,
            today,
            &calm_with(json!({"craving": 9, "self_harm_thoughts": true})),
        )
        .await
        .expect(200);
    assert!(!r.body["crisis_resources"].as_array().unwrap().is_empty());
    let a = app
        .get(&format!("/v1/alerts/{id}"), counsellor.t())
        .await
        .expect(200)
        .body;
    assert_eq!(a["severity"], "critical");
    assert_eq!(a["rule"], "self_harm");
    assert_eq!(
        a["status"], "open",
        "more serious than what was acknowledged"
    );
    assert_eq!(a["acknowledged_at"], Value::Null);
    assert!(finding(&a, "craving_high").is_some());

    // Its escalation timer restarted when it rose: not yet due, then due.
    let report = aftercare::service::sweep::run_once(&app.state)
        .await
        .unwrap();
    assert_eq!(report.escalated, 0);
    app.sql(&format!(
        "UPDATE alerts SET escalation_due_at = '2000-01-01 00:00:00' WHERE id = '{id}'"
    ));
    let report = aftercare::service::sweep::run_once(&app.state)
        .await
        .unwrap();
    assert_eq!(report.escalated, 1);
    let hooks = sink.wait_for_requests(1, Duration::from_secs(10)).await;
    assert_eq!(event_types(&hooks), vec!["alert.escalated"]);
    let history = app
        .get(&format!("/v1/alerts/{id}/history"), counsellor.t())
        .await
        .expect(200);
    let changes: Vec<&str> = history
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["change"].as_str().unwrap())
        .collect();
    assert_eq!(
        changes,
        vec![
            "created",
            "acknowledged",
            "severity_raised",
            "findings_added",
            "escalated"
        ]
    );
}

#[tokio::test]
async fn a_corrected_report_of_use_is_marked_not_lost_and_stops_escalating() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let counsellor = app.counsellor(&admin).await;
    let code = app
        .invite(
            &counsellor,
            json!({"role": "patient", "last_use_date": local_day(NEW_YORK, -30)}),
        )
        .await;
    let patient = app.register(&code, "corrected", NEW_YORK).await;
    let me = app.get("/v1/me", patient.t()).await.expect(200).body;
    let today = local_day(NEW_YORK, 0);
    let mut stream = open_stream(&app, &counsellor).await;
    let mut buf = String::new();
    tokio::time::sleep(Duration::from_millis(300)).await;

    app.checkin(
        &patient,
        today,
        &calm_with(json!({
            "used_substance": true,
            "substances": ["heroin"],
            "note": "slipped at a party"
        })),
    )
    .await
    .expect(201);
    let (event, created) = next_event(&mut stream, &mut buf, Duration::from_secs(5))
        .await
        .expect("alert.created");
    assert_eq!(event, "alert.created");
    assert_eq!(created["severity"], "critical");
    // For staff the alert names the patient, the substance and carries their note.
    assert_eq!(created["patient"]["id"], patient.id);
    assert_eq!(created["patient"]["display_name"], me["display_name"]);
    assert_eq!(
        created["evidence"]["check_ins"][0]["substances"],
        json!(["heroin"])
    );
    assert_eq!(created["evidence"]["note"], "slipped at a party");

    // A minute later: "I pressed the wrong answer."
    app.checkin(
        &patient,
        today,
        &calm_with(json!({"note": "wrong button, sorry"})),
    )
    .await
    .expect(200);
    let (event, updated) = next_event(&mut stream, &mut buf, Duration::from_secs(5))
        .await
        .expect("alert.updated for the correction");
    assert_eq!(event, "alert.updated");
    assert_eq!(updated["id"], created["id"]);
    let use_finding = finding(&updated, "substance_use").unwrap();
    assert!(use_finding["corrected_at"].is_string(), "{updated}");
    assert_eq!(use_finding["corrected_values"]["used_substance"], false);
    assert_eq!(use_finding["corrected_values"]["date"], today.to_string());
    // The original evidence stays beside the correction.
    assert_eq!(
        use_finding["evidence"]["check_ins"][0]["used_substance"],
        true
    );
    assert_eq!(updated["holds"], false);
    assert_eq!(
        updated["status"], "open",
        "it stays until a counsellor resolves it"
    );
    assert_eq!(updated["severity"], "critical");

    // Nothing holds any more: it does not escalate, even past its deadline.
    let id = updated["id"].as_str().unwrap();
    app.sql(&format!(
        "UPDATE alerts SET escalation_due_at = '2000-01-01 00:00:00' WHERE id = '{id}'"
    ));
    let report = aftercare::service::sweep::run_once(&app.state)
        .await
        .unwrap();
    assert_eq!(report.escalated, 0);
    let a = app
        .get(&format!("/v1/alerts/{id}"), counsellor.t())
        .await
        .expect(200)
        .body;
    assert_eq!(a["escalated_at"], Value::Null);
}

#[tokio::test]
async fn the_inbox_filters_by_status_severity_rule_and_what_changed_since() {
    let app = spawn_app().await;
    let (_, counsellor, craving) = clinic(&app).await;
    let crisis = app.patient(&counsellor).await;
    let today = local_day(NEW_YORK, 0);
    let before = chrono::Utc::now() - chrono::TimeDelta::seconds(5);
    app.checkin(&craving, today, &calm_with(json!({"craving": 9})))
        .await
        .expect(201);
    app.checkin(
        &crisis,
        today,
        &calm_with(json!({"self_harm_thoughts": true, "craving": 9})),
    )
    .await
    .expect(201);
    let craving_alert = app.alerts_of(&counsellor, &craving).await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let crisis_alert = app.alerts_of(&counsellor, &crisis).await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.post(
        &format!("/v1/alerts/{craving_alert}/acknowledge"),
        counsellor.t(),
        &json!({}),
    )
    .await
    .expect(200);

    let ids = |q: &'static str| {
        let (app, counsellor) = (&app, &counsellor);
        async move {
            let r = app
                .get(&format!("/v1/alerts?{q}"), counsellor.t())
                .await
                .expect(200);
            let mut ids: Vec<String> = r.body["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a["id"].as_str().unwrap().to_owned())
                .collect();
            ids.sort();
            ids
        }
    };
    let mut both = vec![craving_alert.clone(), crisis_alert.clone()];
    both.sort();
    assert_eq!(ids("status=open,acknowledged").await, both);
    assert_eq!(ids("status=open").await, vec![crisis_alert.clone()]);
    assert_eq!(ids("severity=warning,critical").await, both);
    assert_eq!(ids("severity=critical").await, vec![crisis_alert.clone()]);
    // A rule that is not leading still finds its episode.
    assert_eq!(ids("rule=craving_high").await, both);
    assert_eq!(ids("rule=self_harm").await, vec![crisis_alert.clone()]);
    assert!(ids("rule=mood_low").await.is_empty());

    let since = |t: chrono::DateTime<chrono::Utc>| {
        format!(
            "/v1/alerts?updated_since={}",
            t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        )
    };
    let r = app.get(&since(before), counsellor.t()).await.expect(200);
    assert_eq!(r.body["items"].as_array().unwrap().len(), 2);
    let later = chrono::Utc::now() + chrono::TimeDelta::hours(1);
    let r = app.get(&since(later), counsellor.t()).await.expect(200);
    assert!(r.body["items"].as_array().unwrap().is_empty());

    for (q, field) in [
        ("status=open,closed", "status"),
        ("severity=urgent", "severity"),
        ("rule=craving", "rule"),
        ("updated_since=yesterday", "updated_since"),
    ] {
        let r = app
            .get(&format!("/v1/alerts?{q}"), counsellor.t())
            .await
            .expect_problem(400);
        assert_eq!(r.error_fields(), vec![field], "{q}");
    }
}

#[tokio::test]
async fn an_edited_note_does_not_raise_a_resolved_alert_again_but_an_sos_reopens_one() {
    let app = spawn_app().await;
    let (_, counsellor, patient) = clinic(&app).await;
    let today = local_day(NEW_YORK, 0);
    let answers = |note: &str| calm_with(json!({"self_harm_thoughts": true, "note": note}));
    app.checkin(&patient, today, &answers("a bad night"))
        .await
        .expect(201);
    let id = app.alerts_of(&counsellor, &patient).await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.post(
        &format!("/v1/alerts/{id}/resolve"),
        counsellor.t(),
        &json!({"outcome": "contacted", "note": "Called; safety plan in place."}),
    )
    .await
    .expect(200);

    // The patient adds to their note: nothing new was reported, nobody is paged again.
    app.checkin(&patient, today, &answers("a bad night, better now"))
        .await
        .expect(200);
    let alerts = app.alerts_of(&counsellor, &patient).await;
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0]["status"], "resolved");

    // A new finding opens a new episode; an SOS press on it once acknowledged opens it
    // again with its escalation clock restarted.
    app.checkin(
        &patient,
        today,
        &calm_with(json!({"self_harm_thoughts": true, "craving": 9, "note": "worse"})),
    )
    .await
    .expect(200);
    let alerts = app.alerts_of(&counsellor, &patient).await;
    assert_eq!(alerts.len(), 2);
    let new_id = alerts[0]["id"].as_str().unwrap().to_owned();
    app.post(
        &format!("/v1/alerts/{new_id}/acknowledge"),
        counsellor.t(),
        &json!({}),
    )
    .await
    .expect(200);
    let sos = app
        .post("/v1/me/sos", patient.t(), &json!({"message": "please"}))
        .await
        .expect(202);
    assert_eq!(sos.body["alert_id"], new_id.as_str());
    let a = app
        .get(&format!("/v1/alerts/{new_id}"), counsellor.t())
        .await
        .expect(200)
        .body;
    assert_eq!(a["status"], "open");
    app.sql(&format!(
        "UPDATE alerts SET escalation_due_at = '2000-01-01 00:00:00' WHERE id = '{new_id}' \
         AND escalation_due_at IS NOT NULL"
    ));
    let report = aftercare::service::sweep::run_once(&app.state)
        .await
        .unwrap();
    assert_eq!(report.escalated, 1, "the press restarted its escalation");
}

#[tokio::test]
async fn correcting_a_day_that_completed_a_run_marks_the_run_corrected() {
    let app = spawn_app().await;
    let (_, counsellor, patient) = clinic(&app).await;
    let day = |n| local_day(NEW_YORK, n);
    for n in [-3, -2, -1] {
        app.checkin(&patient, day(n), &calm_with(json!({"mood": 1})))
            .await
            .expect(201);
    }
    let alert = &app.alerts_of(&counsellor, &patient).await[0];
    let mood = finding(alert, "mood_low").unwrap();
    assert_eq!(mood["last_seen_on"], day(-1).to_string());
    assert_eq!(mood["corrected_at"], Value::Null);

    // The first of the three days was entered wrongly: the run no longer holds.
    app.checkin(&patient, day(-3), &calm_with(json!({"mood": 7})))
        .await
        .expect(200);
    let alert = &app.alerts_of(&counsellor, &patient).await[0];
    let mood = finding(alert, "mood_low").unwrap();
    assert!(mood["corrected_at"].is_string(), "{alert}");
    assert_eq!(mood["corrected_values"]["date"], day(-3).to_string());
    assert_eq!(mood["corrected_values"]["mood"], 7);
    assert_eq!(alert["holds"], false);
}

#[tokio::test]
async fn a_correction_that_makes_a_later_finding_less_serious_lowers_it_and_keeps_the_old_account()
{
    let app = spawn_app().await;
    let (_, counsellor, patient) = clinic(&app).await;
    let day = |n| local_day(NEW_YORK, n);
    for n in [-2, -1] {
        app.checkin(
            &patient,
            day(n),
            &calm_with(json!({"craving": 9, "note": format!("day {n}")})),
        )
        .await
        .expect(201);
    }
    let alert = &app.alerts_of(&counsellor, &patient).await[0];
    let craving = finding(alert, "craving_high").unwrap();
    assert_eq!(craving["severity"], "high", "{alert}");
    assert_eq!(alert["severity"], "high");

    // The first day's craving was entered wrongly: the second day alone is a warning.
    app.checkin(&patient, day(-2), &calm_with(json!({"craving": 2})))
        .await
        .expect(200);
    let alerts = app.alerts_of(&counsellor, &patient).await;
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    let alert = &alerts[0];
    let craving = finding(alert, "craving_high").unwrap();
    assert_eq!(craving["severity"], "warning", "{alert}");
    assert_eq!(craving["corrected_at"], Value::Null, "it still holds");
    let shown = craving["evidence"]["check_ins"].as_array().unwrap();
    assert_eq!(shown.len(), 1, "{craving}");
    assert_eq!(shown[0]["date"], day(-1).to_string());
    // The later day's own note travels with its finding.
    assert_eq!(craving["evidence"]["note"], "day -1");
    let before = &craving["before_correction"];
    assert_eq!(before["severity"], "high", "{craving}");
    assert_eq!(before["evidence"]["check_ins"].as_array().unwrap().len(), 2);
    assert!(before["corrected_at"].is_string());
    assert_eq!(alert["severity"], "warning");
    assert_eq!(alert["holds"], true);

    let history = app
        .get(
            &format!("/v1/alerts/{}/history", alert["id"].as_str().unwrap()),
            Some(&counsellor.token),
        )
        .await
        .expect(200);
    let kinds: Vec<&str> = history
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["change"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"corrected"), "{kinds:?}");
}

#[tokio::test]
async fn an_alert_whose_findings_cannot_be_read_keeps_its_headline_when_more_joins() {
    let app = spawn_app().await;
    let (_, counsellor, patient) = clinic(&app).await;
    let day = |n| local_day(NEW_YORK, n);
    app.checkin(
        &patient,
        day(-1),
        &calm_with(json!({"used_substance": true, "substances": ["heroin"]})),
    )
    .await
    .expect(201);
    let alert = &app.alerts_of(&counsellor, &patient).await[0];
    let id = alert["id"].as_str().unwrap().to_owned();
    app.sql(&format!(
        "UPDATE alerts SET findings = 'damaged' WHERE id = '{id}'"
    ));

    app.checkin(&patient, day(0), &calm_with(json!({"craving": 9})))
        .await
        .expect(201);
    let alerts = app.alerts_of(&counsellor, &patient).await;
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    let alert = &alerts[0];
    assert_eq!(alert["id"], id.as_str());
    assert!(finding(alert, "substance_use").is_some(), "{alert}");
    assert!(finding(alert, "craving_high").is_some(), "{alert}");
    assert_eq!(alert["rule"], "substance_use");
}
