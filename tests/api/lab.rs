//! The policy lab's backtests over imported history (SPEC §11).

use serde_json::{json, Value};

use crate::helpers::*;

const TZ: &str = "America/New_York";

/// Calm history for the local days `from..=to` (offsets from today), with `change` applied to
/// each day's answers by its offset.
fn history(from: i64, to: i64, change: impl Fn(i64, &mut Value)) -> Vec<Value> {
    (from..=to)
        .map(|d| {
            let mut c = calm();
            c["date"] = json!(local_day(TZ, d).to_string());
            change(d, &mut c);
            c
        })
        .collect()
}

async fn import(app: &TestApp, by: &Login, patient: &Login, days: Vec<Value>) {
    app.post(
        &format!("/v1/patients/{}/check-ins/import", patient.id),
        by.t(),
        &json!({"source": "OldCare EHR", "check_ins": days}),
    )
    .await
    .expect(201);
}

fn backtest_body(patient: &Login, from: i64, to: i64) -> Value {
    json!({
        "from": local_day(TZ, from).to_string(),
        "to": local_day(TZ, to).to_string(),
        "patient_ids": [patient.id],
    })
}

/// (rule, severity, date) of every finding of every alert.
fn findings(r: &Resp) -> Vec<(String, String, String)> {
    r.body["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|a| a["findings"].as_array().unwrap().clone())
        .map(|f| {
            (
                f["rule"].as_str().unwrap().to_owned(),
                f["severity"].as_str().unwrap().to_owned(),
                f["date"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_backtest_replays_imported_history_as_episodes() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let c = app.counsellor(&admin).await;
    let p = app.patient(&c).await;
    // Sixty calm days, two with craving 9 (40 and 39 days ago) and a use 20 days ago, after
    // weeks of abstinence.
    let days = history(-70, -11, |d, c| {
        if d == -40 || d == -39 {
            c["craving"] = json!(9);
        }
        if d == -20 {
            c["used_substance"] = json!(true);
            c["substances"] = json!(["fentanyl"]);
        }
    });
    import(&app, &c, &p, days).await;
    // The import raised nothing live.
    assert!(app.alerts_of(&c, &p).await.is_empty());

    let r = app
        .post(
            "/v1/organisation/risk-policy/backtest",
            admin.t(),
            &backtest_body(&p, -70, -11),
        )
        .await
        .expect(200);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_eq!(r.body["from"], local_day(TZ, -70).to_string());
    assert_eq!(r.body["patients"], 1);
    assert_eq!(r.body["patient_weeks"].as_f64().unwrap(), 60.0 / 7.0);
    let alerts = r.body["alerts"].as_array().unwrap();
    let craving = alerts
        .iter()
        .find(|a| a["opened_on"] == local_day(TZ, -40).to_string())
        .expect("an alert the first craving day");
    assert_eq!(craving["patient_id"], p.id.as_str());
    assert!(craving["rules"]
        .as_array()
        .unwrap()
        .contains(&json!("craving_high")));
    let f = findings(&r);
    assert!(f.contains(&(
        "craving_high".into(),
        "high".into(),
        local_day(TZ, -39).to_string()
    )));
    assert!(f.contains(&(
        "substance_use".into(),
        "critical".into(),
        local_day(TZ, -20).to_string()
    )));
    let use_alert = alerts
        .iter()
        .find(|a| a["opened_on"] == local_day(TZ, -20).to_string())
        .unwrap();
    assert_eq!(use_alert["severity"], "critical");
    assert_eq!(r.body["per_rule"]["craving_high"]["findings"], 2);
    assert_eq!(r.body["per_rule"]["craving_high"]["patients"], 1);
    assert_eq!(r.body["per_rule"]["craving_high"]["by_severity"]["high"], 1);
    assert_eq!(
        r.body["per_rule"]["substance_use"]["by_severity"]["critical"],
        1
    );
    assert_eq!(r.body["per_rule"]["mood_low"]["findings"], 0);
    let per_week = r.body["alerts_per_patient_week"].as_f64().unwrap();
    assert!((per_week - alerts.len() as f64 / (60.0 / 7.0)).abs() < 1e-9);
    // Assumed open for a week, the two craving days are one alert.
    let mut body = backtest_body(&p, -70, -11);
    body["assume_resolved_after_days"] = json!(7);
    let week = app
        .post("/v1/organisation/risk-policy/backtest", admin.t(), &body)
        .await
        .expect(200);
    assert!(week.body["alerts"].as_array().unwrap().len() < alerts.len());

    // A stricter candidate policy (craving_high from 5) raises more over the same history.
    let mut policy = app
        .get("/v1/organisation/risk-policy", admin.t())
        .await
        .expect(200)
        .body;
    policy["rules"]["craving_high"]["threshold"] = json!(2);
    let mut body = backtest_body(&p, -70, -11);
    body["policy"] = policy.clone();
    let strict = app
        .post("/v1/organisation/risk-policy/backtest", admin.t(), &body)
        .await
        .expect(200);
    assert!(
        strict.body["per_rule"]["craving_high"]["findings"]
            .as_u64()
            .unwrap()
            > 50,
        "{}",
        strict.body["per_rule"]["craving_high"]
    );
    assert!(
        strict.body["alerts"].as_array().unwrap().len() > alerts.len(),
        "{}",
        strict.body["alerts"]
    );

    // The counsellor previews the same override on the patient before saving it.
    let preview = app
        .post(
            &format!("/v1/patients/{}/risk-policy/backtest", p.id),
            c.t(),
            &json!({"overrides": {"rules": {"craving_high": {"threshold": 2}}}}),
        )
        .await
        .expect(200);
    // Default stretch: the last 90 days, ending today.
    assert_eq!(preview.body["to"], today(TZ).to_string());
    assert_eq!(preview.body["from"], local_day(TZ, -89).to_string());
    assert!(
        preview.body["per_rule"]["craving_high"]["findings"]
            .as_u64()
            .unwrap()
            > 50
    );
    let stored = app
        .get(&format!("/v1/patients/{}/risk-policy", p.id), c.t())
        .await
        .expect(200);
    assert_eq!(stored.body["overrides"], json!({}));
}

#[tokio::test]
async fn outcomes_count_how_counsellors_resolved_the_real_alerts() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let c = app.counsellor(&admin).await;
    let p = app.patient(&c).await;
    let other = app.patient(&c).await;
    app.checkin(&p, today(TZ), &calm_with(json!({"craving": 9})))
        .await
        .expect(201);
    app.checkin(&other, today(TZ), &calm_with(json!({"craving": 9})))
        .await
        .expect(201);
    let alert = app.alerts_for_rule(&c, &p, "craving_high").await;
    let id = alert[0]["id"].as_str().unwrap();
    app.post(
        &format!("/v1/alerts/{id}/resolve"),
        c.t(),
        &json!({"outcome": "false_alarm", "note": "Watching a film about it; fine."}),
    )
    .await
    .expect(200);
    let r = app
        .post(
            "/v1/organisation/risk-policy/backtest",
            admin.t(),
            &json!({"from": local_day(TZ, -1).to_string(), "to": local_day(TZ, 1).to_string()}),
        )
        .await
        .expect(200);
    assert_eq!(r.body["patients"], 2);
    assert_eq!(
        r.body["outcomes"]["craving_high"],
        json!({"contacted": 0, "no_contact": 0, "false_alarm": 1, "emergency_services": 0,
               "other": 0, "unresolved": 1})
    );
    assert_eq!(r.body["outcomes"]["substance_use"]["unresolved"], 0);
    // The replay of the same day raises what live did: one alert each, led by the craving.
    assert_eq!(r.body["per_rule"]["craving_high"]["findings"], 2);
    assert_eq!(r.body["per_rule"]["craving_high"]["patients"], 2);
    // Only one patient named: only their outcome.
    let mut body = backtest_body(&p, -1, 1);
    body["patient_ids"] = json!([p.id]);
    let one = app
        .post("/v1/organisation/risk-policy/backtest", admin.t(), &body)
        .await
        .expect(200);
    assert_eq!(one.body["outcomes"]["craving_high"]["false_alarm"], 1);
    assert_eq!(one.body["outcomes"]["craving_high"]["unresolved"], 0);
}

#[tokio::test]
async fn backtests_are_for_staff_within_reach_and_validated() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let c = app.counsellor(&admin).await;
    let stranger = app.counsellor(&admin).await;
    let p = app.patient(&c).await;
    let org = "/v1/organisation/risk-policy/backtest";
    let own = format!("/v1/patients/{}/risk-policy/backtest", p.id);
    let body = backtest_body(&p, -30, 0);
    // Patients: neither; counsellors: not the organisation's.
    app.post(org, p.t(), &body).await.expect_problem(403);
    app.post(&own, p.t(), &json!({"overrides": {}}))
        .await
        .expect_problem(403);
    app.post(org, c.t(), &body).await.expect_problem(403);
    // Off the care team: no such patient.
    app.post(&own, stranger.t(), &json!({"overrides": {}}))
        .await
        .expect_problem(404);
    app.post(&own, c.t(), &json!({"overrides": {}}))
        .await
        .expect(200);

    // A bad candidate policy names the field.
    let mut policy = app
        .get("/v1/organisation/risk-policy", admin.t())
        .await
        .expect(200)
        .body;
    policy["rules"]["self_harm"]["enabled"] = json!(false);
    let mut b = body.clone();
    b["policy"] = policy;
    let r = app.post(org, admin.t(), &b).await.expect_problem(422);
    assert_eq!(r.error_fields(), ["policy.rules.self_harm.enabled"]);
    let r = app
        .post(
            &own,
            c.t(),
            &json!({"overrides": {"rules": {"craving_high": {"threshold": 99}}}}),
        )
        .await
        .expect_problem(422);
    assert_eq!(r.error_fields(), ["overrides.rules.craving_high.threshold"]);
    // Unknown fields, a backwards or too long range, a stranger's id, a silly resolution.
    let mut b = body.clone();
    b["polcy"] = json!({});
    app.post(org, admin.t(), &b).await.expect_problem(422);
    let r = app
        .post(org, admin.t(), &backtest_body(&p, 0, -30))
        .await
        .expect_problem(422);
    assert_eq!(r.error_fields(), ["to"]);
    let r = app
        .post(org, admin.t(), &backtest_body(&p, -6 * 366, 0))
        .await
        .expect_problem(422);
    assert_eq!(r.error_fields(), ["to"]);
    let mut b = body.clone();
    b["patient_ids"] = json!([p.id, "nobody"]);
    let r = app.post(org, admin.t(), &b).await.expect_problem(422);
    assert_eq!(r.error_fields(), ["patient_ids[1]"]);
    let mut b = body.clone();
    b["assume_resolved_after_days"] = json!(0);
    let r = app.post(org, admin.t(), &b).await.expect_problem(422);
    assert_eq!(r.error_fields(), ["assume_resolved_after_days"]);
}

#[tokio::test]
async fn live_check_ins_and_the_backtest_agree_on_the_same_history() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let c = app.counsellor(&admin).await;
    let code = app
        .invite(
            &c,
            json!({"role": "patient", "last_use_date": local_day(TZ, -40)}),
        )
        .await;
    let p = app.register(&code, "agree", TZ).await;

    // A week sliding live, oldest first: craving up a point a day, mood and sleep falling,
    // two days of skipped meals, then use after weeks of abstinence.
    for d in -6..=0i64 {
        let k = d + 6;
        let mut body = calm_with(json!({
            "craving": 1 + k,
            "mood": 8 - k,
            "sleep_hours": 8.0 - 0.5 * k as f64,
        }));
        if d == -3 || d == -2 {
            body["meals"] = json!(1);
        }
        if d == 0 {
            body["used_substance"] = json!(true);
            body["substances"] = json!(["fentanyl"]);
        }
        app.checkin(&p, local_day(TZ, d), &body).await;
    }
    let live = app.alerts_of(&c, &p).await;
    assert_eq!(live.len(), 1, "one episode live");
    let live = &live[0];

    let mut body = backtest_body(&p, -6, 0);
    body["assume_resolved_after_days"] = json!(30);
    let r = app
        .post("/v1/organisation/risk-policy/backtest", admin.t(), &body)
        .await
        .expect(200);
    let replayed = r.body["alerts"].as_array().unwrap();
    assert_eq!(replayed.len(), 1, "one episode replayed: {}", r.text);
    assert_eq!(replayed[0]["severity"], live["severity"]);

    // Rule by rule: the same days, the same count, the same severity.
    let fired = findings(&r);
    let mut live_rules: Vec<(String, String, String, String, i64)> = live["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["rule"].as_str().unwrap().to_owned(),
                f["severity"].as_str().unwrap().to_owned(),
                f["first_seen_on"].as_str().unwrap().to_owned(),
                f["last_seen_on"].as_str().unwrap().to_owned(),
                f["occurrences"].as_i64().unwrap(),
            )
        })
        .collect();
    live_rules.sort();
    let mut replay_rules: Vec<(String, String, String, String, i64)> = Vec::new();
    for rule in replayed[0]["rules"].as_array().unwrap() {
        let rule = rule.as_str().unwrap();
        let mine: Vec<&(String, String, String)> =
            fired.iter().filter(|(r, _, _)| r == rule).collect();
        let severity = ["critical", "high", "warning", "info"]
            .into_iter()
            .find(|s| mine.iter().any(|(_, sev, _)| sev == s))
            .unwrap();
        replay_rules.push((
            rule.to_owned(),
            severity.to_owned(),
            mine.iter().map(|f| f.2.clone()).min().unwrap(),
            mine.iter().map(|f| f.2.clone()).max().unwrap(),
            mine.len() as i64,
        ));
    }
    replay_rules.sort();
    assert_eq!(live_rules, replay_rules);
    let rules: Vec<&str> = live_rules.iter().map(|r| r.0.as_str()).collect();
    for expected in ["slide", "meals_skipped", "substance_use"] {
        assert!(rules.contains(&expected), "{rules:?}");
    }
}
