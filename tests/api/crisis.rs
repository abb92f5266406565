//! Crisis help that fits where the patient is: the lines of their own country (their profile's
//! `country`, else their timezone's), the organisation's own where it keeps them; the SOS
//! answer says the care team was told; and the slow slide flagged before any single day would.

use serde_json::{json, Value};

use crate::helpers::{calm, calm_with, local_day, spawn_app, support_rules, Login, TestApp};

const BERLIN: &str = "Europe/Berlin";
const NEW_YORK: &str = "America/New_York";

/// The contacts of a list of crisis resources.
fn contacts(list: &Value) -> Vec<String> {
    list.as_array()
        .expect("crisis_resources is a list")
        .iter()
        .map(|r| r["contact"].as_str().unwrap().to_owned())
        .collect()
}

/// Whether an alert is about `rule`: its headline rule, or one of its findings (alerts are
/// becoming one per episode, each listing every rule involved).
fn is_about(alert: &Value, rule: &str) -> bool {
    alert["rule"] == rule
        || alert["findings"]
            .as_array()
            .is_some_and(|f| f.iter().any(|x| x["rule"] == rule))
}

/// The patient's alerts that are about `rule`, as `viewer` lists them.
async fn alerts_about(app: &TestApp, viewer: &Login, patient: &Login, rule: &str) -> Vec<Value> {
    app.alerts_of(viewer, patient)
        .await
        .into_iter()
        .filter(|a| is_about(a, rule))
        .collect()
}

/// `patient` (in `timezone`) reports thoughts of self-harm today; the response is returned.
async fn self_harm(app: &TestApp, patient: &Login, timezone: &str) -> Value {
    app.checkin(
        patient,
        local_day(timezone, 0),
        &calm_with(json!({"self_harm_thoughts": true})),
    )
    .await
    .expect(201)
    .body
}

fn assert_no_north_american_numbers(contacts: &[String]) {
    assert!(
        contacts
            .iter()
            .all(|c| !c.contains("988") && !c.contains("911")),
        "no 988 or 911 outside North America: {contacts:?}"
    );
}

#[tokio::test]
async fn a_patient_in_berlin_reporting_self_harm_thoughts_sees_german_lines() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let counsellor = app.counsellor(&admin).await;
    let patient = app.patient_in(&counsellor, BERLIN, "aftercare").await;

    let me = app.get("/v1/me", patient.t()).await.expect(200);
    assert_eq!(me.body["country"], Value::Null, "{}", me.text);
    assert_eq!(me.body["crisis_country"], "DE");

    let r = self_harm(&app, &patient, BERLIN).await;
    let c = contacts(&r["crisis_resources"]);
    assert!(
        c.iter().any(|x| x.contains("0800 111 0 111")),
        "TelefonSeelsorge: {c:?}"
    );
    assert!(c.iter().any(|x| x.contains("112")), "Notruf 112: {c:?}");
    assert_no_north_american_numbers(&c);
    for m in r["support"].as_array().unwrap() {
        let text = m["message"].as_str().unwrap();
        assert!(!text.contains("911") && !text.contains("988"), "{text}");
    }
    assert_eq!(
        alerts_about(&app, &counsellor, &patient, "self_harm")
            .await
            .len(),
        1
    );
}

#[tokio::test]
async fn a_patient_in_new_york_sees_988_and_staff_do_not_have_a_country() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let counsellor = app.counsellor(&admin).await;
    let patient = app.patient_in(&counsellor, NEW_YORK, "aftercare").await;
    let r = self_harm(&app, &patient, NEW_YORK).await;
    let c = contacts(&r["crisis_resources"]);
    assert!(c.iter().any(|x| x == "Call or text 988"), "{c:?}");
    assert!(c.iter().any(|x| x == "Call 911"), "{c:?}");

    let me = app.get("/v1/me", counsellor.t()).await.expect(200);
    assert!(me.body.get("country").is_none(), "{}", me.text);
    let r = app
        .patch("/v1/me", counsellor.t(), &json!({"country": "US"}))
        .await
        .expect_problem(422);
    assert_eq!(r.error_fields(), vec!["country"]);
}

#[tokio::test]
async fn a_country_on_the_profile_overrides_the_timezone_until_it_is_cleared() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let counsellor = app.counsellor(&admin).await;
    // An Irish patient whose phone is set to Berlin time (say, working there for a month).
    let patient = app.patient_in(&counsellor, BERLIN, "aftercare").await;
    let me = app
        .patch("/v1/me", patient.t(), &json!({"country": "ie"}))
        .await
        .expect(200);
    assert_eq!(me.body["country"], "IE", "{}", me.text);
    assert_eq!(me.body["crisis_country"], "IE");
    assert_eq!(me.body["timezone"], BERLIN);

    let r = self_harm(&app, &patient, BERLIN).await;
    let c = contacts(&r["crisis_resources"]);
    assert!(c.iter().any(|x| x.contains("116 123")), "Samaritans: {c:?}");
    assert!(c.iter().any(|x| x.contains("112 or 999")), "{c:?}");
    assert!(!c.iter().any(|x| x.contains("0800 111 0 111")), "{c:?}");

    // Other profile changes leave the country alone; null goes back to the timezone's.
    let me = app
        .patch("/v1/me", patient.t(), &json!({"display_name": "Aoife"}))
        .await
        .expect(200);
    assert_eq!(me.body["country"], "IE");
    let me = app
        .patch("/v1/me", patient.t(), &json!({"country": null}))
        .await
        .expect(200);
    assert_eq!(me.body["country"], Value::Null);
    assert_eq!(me.body["crisis_country"], "DE");
    let r = app
        .post("/v1/me/sos", patient.t(), &json!({}))
        .await
        .expect(202);
    let c = contacts(&r.body["crisis_resources"]);
    assert!(c.iter().any(|x| x.contains("0800 111 0 111")), "{c:?}");
}

#[tokio::test]
async fn a_country_that_is_not_an_iso_code_is_refused_naming_the_field() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let counsellor = app.counsellor(&admin).await;
    let patient = app.patient_in(&counsellor, BERLIN, "aftercare").await;
    for bad in [
        json!("UK"),
        json!("Germany"),
        json!("D"),
        json!(""),
        json!(49),
    ] {
        let r = app
            .patch("/v1/me", patient.t(), &json!({"country": bad}))
            .await;
        assert_eq!(r.status, 422, "{bad}: {}", r.text);
        assert_eq!(r.error_fields(), vec!["country"], "{bad}: {}", r.text);
    }
    let me = app.get("/v1/me", patient.t()).await.expect(200);
    assert_eq!(me.body["country"], Value::Null, "nothing was stored");

    let line = json!([{"name": "Ours", "contact": "Call 555-0100", "description": "On call."}]);
    let r = app
        .put(
            "/v1/organisation/crisis-resources",
            admin.t(),
            &json!({"items": [], "by_country": {"UK": line}}),
        )
        .await
        .expect_problem(422);
    assert_eq!(r.error_fields(), vec!["by_country.UK"]);
    let r = app
        .put(
            "/v1/organisation/crisis-resources",
            admin.t(),
            &json!({"items": [], "by_country": {"DE": []}}),
        )
        .await
        .expect_problem(422);
    assert_eq!(r.error_fields(), vec!["by_country.DE"]);
}

#[tokio::test]
async fn the_organisations_list_for_a_country_comes_first_then_built_in_then_its_default() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let counsellor = app.counsellor(&admin).await;
    let berlin = app.patient_in(&counsellor, BERLIN, "aftercare").await;
    let new_york = app.patient_in(&counsellor, NEW_YORK, "aftercare").await;
    // UTC names no country: without any list of the organisation's, general advice only.
    let nowhere = app.patient_in(&counsellor, "UTC", "aftercare").await;
    let r = self_harm(&app, &nowhere, "UTC").await;
    let c = contacts(&r["crisis_resources"]);
    assert!(
        c.iter().any(|x| x == "Call your local emergency number"),
        "{c:?}"
    );
    assert!(c.iter().any(|x| x.contains("findahelpline.com")), "{c:?}");
    assert_no_north_american_numbers(&c);

    let body = json!({
        "items": [{"name": "Harbour on-call team", "contact": "Call +44 20 7946 0000", "description": "Our own counsellors, 24/7."}],
        "by_country": {"de": [{"name": "Harbour Berlin", "contact": "Call 030 1234567", "description": "Our Berlin team."}]}
    });
    let put = app
        .put("/v1/organisation/crisis-resources", admin.t(), &body)
        .await
        .expect(200);
    assert_eq!(
        put.body["by_country"]["DE"][0]["name"], "Harbour Berlin",
        "{}",
        put.text
    );
    assert_eq!(put.body["items_built_in"], false);
    let got = app
        .get("/v1/organisation/crisis-resources", counsellor.t())
        .await
        .expect(200);
    assert_eq!(got.body["items"][0]["name"], "Harbour on-call team");
    assert_eq!(got.body["by_country"]["DE"][0]["name"], "Harbour Berlin");
    assert!(got.body["built_in"]["DE"].is_array());

    let c = contacts(&self_harm(&app, &berlin, BERLIN).await["crisis_resources"]);
    assert_eq!(
        c,
        vec!["Call 030 1234567"],
        "the organisation's Berlin list"
    );
    let r = app
        .post("/v1/me/sos", new_york.t(), &json!({}))
        .await
        .expect(202);
    let c = contacts(&r.body["crisis_resources"]);
    assert!(
        c.iter().any(|x| x == "Call or text 988"),
        "a built-in list for the country beats the organisation's default: {c:?}"
    );
    let r = app
        .post("/v1/me/sos", nowhere.t(), &json!({}))
        .await
        .expect(202);
    assert_eq!(
        contacts(&r.body["crisis_resources"]),
        vec!["Call +44 20 7946 0000"],
        "no country: the organisation's default"
    );
}

#[tokio::test]
async fn the_sos_answer_says_the_care_team_was_told() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let counsellor = app.counsellor(&admin).await;
    let patient = app.patient_in(&counsellor, BERLIN, "aftercare").await;
    let r = app
        .post(
            "/v1/me/sos",
            patient.t(),
            &json!({"message": "I can't do this"}),
        )
        .await
        .expect(202);
    assert_eq!(r.body["care_team_told"], true, "{}", r.text);
    let message = r.body["message"].as_str().unwrap();
    assert!(message.contains("care team has been told"), "{message}");
    assert!(
        !message.contains("911") && !message.contains("988"),
        "{message}"
    );
    assert!(r.body["alert_id"].is_string());
    assert_no_north_american_numbers(&contacts(&r.body["crisis_resources"]));
    let sos = alerts_about(&app, &counsellor, &patient, "sos").await;
    assert_eq!(sos.len(), 1, "and it was: {sos:?}");
}

#[tokio::test]
async fn an_sos_press_with_a_null_body_is_a_press() {
    // The document says the body is optional: none, or `null`, is a press without a message.
    let app = spawn_app().await;
    let admin = app.admin().await;
    let counsellor = app.counsellor(&admin).await;
    let patient = app.patient_in(&counsellor, BERLIN, "aftercare").await;
    let r = app
        .send(
            "POST",
            "/v1/me/sos",
            patient.t(),
            Some(&serde_json::Value::Null),
        )
        .await
        .expect(202);
    assert_eq!(r.body["care_team_told"], true, "{}", r.text);
    let sos = alerts_about(&app, &counsellor, &patient, "sos").await;
    assert_eq!(sos.len(), 1, "and it was: {sos:?}");
}

#[tokio::test]
async fn a_slow_slide_over_a_week_is_flagged_before_any_single_day_threshold() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let counsellor = app.counsellor(&admin).await;
    let patient = app.patient_in(&counsellor, NEW_YORK, "aftercare").await;

    // Craving up a point a day (1 → 7), mood down a point a day (8 → 2), sleep down half an
    // hour a night (8 → 5): no day reaches craving 8, three days of mood ≤ 2 or of sleep < 5,
    // and no day is 3 points above the three before it.
    let mut last = None;
    for i in 0..7i64 {
        let date = local_day(NEW_YORK, i - 6);
        let body = calm_with(json!({
            "craving": 1 + i,
            "mood": 8 - i,
            "sleep_hours": 8.0 - 0.5 * i as f64,
        }));
        let r = app.checkin(&patient, date, &body).await.expect(201);
        if i < 6 {
            let alerts = app.alerts_of(&counsellor, &patient).await;
            assert!(alerts.is_empty(), "nothing yet on day {i}: {alerts:?}");
        }
        last = Some(r);
    }
    let r = last.unwrap();
    assert!(
        support_rules(&r).contains(&"slide".to_owned()),
        "{}",
        r.text
    );
    assert_eq!(r.body["crisis_resources"], json!([]));

    let alerts = app.alerts_of(&counsellor, &patient).await;
    let slide: Vec<&Value> = alerts.iter().filter(|a| is_about(a, "slide")).collect();
    assert_eq!(slide.len(), 1, "{alerts:?}");
    let a = slide[0];
    for rule in ["craving_high", "craving_rising", "mood_low", "sleep_poor"] {
        assert!(
            !alerts.iter().any(|x| is_about(x, rule)),
            "{rule}: {alerts:?}"
        );
    }
    // The slide's own account, from the alert or from its finding.
    let f = a["findings"]
        .as_array()
        .and_then(|f| f.iter().find(|x| x["rule"] == "slide"))
        .unwrap_or(a);
    assert_eq!(f["severity"], "high", "all three slide together: {f}");
    let explanation = f["explanation"].as_str().unwrap();
    assert!(
        explanation.contains("raving rose by 6.0 points")
            && explanation.contains("mood fell by 6.0 points")
            && explanation.contains("sleep fell by 3.0 hours")
            && explanation.contains(&local_day(NEW_YORK, -6).to_string())
            && explanation.contains(&local_day(NEW_YORK, 0).to_string()),
        "{explanation}"
    );
    let e = &f["evidence"];
    assert_eq!(e["trends"]["craving"]["change"], 6.0, "{e}");
    assert_eq!(e["trends"]["mood"]["change"], -6.0);
    assert_eq!(e["trends"]["sleep_hours"]["change"], -3.0);
    assert_eq!(e["trends"]["sleep_hours"]["threshold"], -2.0);
    assert_eq!(e["check_ins"].as_array().unwrap().len(), 7);
    assert_eq!(e["check_ins"][0]["craving"], 1);

    // A calm patient over the same week raises nothing.
    let steady = app.patient_in(&counsellor, NEW_YORK, "aftercare").await;
    for n in -6..=0 {
        app.checkin(&steady, local_day(NEW_YORK, n), &calm())
            .await
            .expect(201);
    }
    assert!(app.alerts_of(&counsellor, &steady).await.is_empty());
}
