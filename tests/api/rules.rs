//! One story per risk rule, told through `PUT /v1/me/check-ins/{date}`: the patient's answers
//! come one short of the rule's default threshold and nothing is raised; the next answer
//! reaches it, and the counsellor's inbox holds the alert with its severity, an explanation and
//! the evidence (dates and values) that made it fire, while the patient's own response carries
//! the supportive message at once.
//!
//! Every date lies in the window a phone may still send (today and the 7 days before it, in the
//! patient's own timezone), so no history is planted behind the API's back.

use chrono::NaiveDate;
use serde_json::{json, Value};

use crate::helpers::{
    calm, calm_with, local_day, spawn_app, support_rules, Login, Resp, TestApp, SOWS_ITEMS,
};

const NEW_YORK: &str = "America/New_York";

/// The patient's local date `n` days from today (negative: the past).
fn day(n: i64) -> NaiveDate {
    local_day(NEW_YORK, n)
}

/// The 16 SOWS items, scored to add up to `total` (at most 64): as many 4s as fit, then the
/// remainder on the next item, the rest 0.
fn sows_totalling(total: i64) -> Value {
    assert!((0..=64).contains(&total));
    let mut left = total;
    let items: serde_json::Map<String, Value> = SOWS_ITEMS
        .into_iter()
        .map(|k| {
            let v = left.min(4);
            left -= v;
            (k.to_owned(), json!(v))
        })
        .collect();
    Value::Object(items)
}

/// A counsellor with one patient in New York, in `phase`.
async fn clinic(app: &TestApp, phase: &str) -> (Login, Login) {
    let admin = app.admin().await;
    let counsellor = app.counsellor(&admin).await;
    let patient = app.patient_in(&counsellor, NEW_YORK, phase).await;
    (counsellor, patient)
}

/// `patient` checks in for `date` (a new date: 201), and the response is returned.
async fn check_in(app: &TestApp, patient: &Login, date: NaiveDate, body: &Value) -> Resp {
    app.checkin(patient, date, body).await.expect(201)
}

/// Asserts that `rule` has neither raised an alert nor answered in the response `r`.
async fn assert_quiet(
    app: &TestApp,
    counsellor: &Login,
    patient: &Login,
    r: &Resp,
    rule: &str,
    when: &str,
) {
    let alerts = app.alerts_for_rule(counsellor, patient, rule).await;
    assert!(alerts.is_empty(), "{rule} raised {when}: {alerts:?}");
    assert!(
        !support_rules(r).contains(&rule.to_owned()),
        "{rule} support shown {when}: {}",
        r.text
    );
}

/// The one alert `rule` raised, as the counsellor lists it, after asserting what every fresh
/// alert holds: the severity, open, once, on `date`, with a title, an explanation that names
/// `date`, and evidence. The response `r` that raised it must carry the rule's support message
/// and, for these rules, no crisis lines.
async fn the_alert(
    app: &TestApp,
    counsellor: &Login,
    patient: &Login,
    r: &Resp,
    rule: &str,
    severity: &str,
    date: NaiveDate,
) -> Value {
    let alerts = app.alerts_for_rule(counsellor, patient, rule).await;
    assert_eq!(alerts.len(), 1, "one {rule} alert: {alerts:?}");
    let a = alerts.into_iter().next().unwrap();
    assert_eq!(a["severity"], severity, "{a}");
    assert_eq!(a["status"], "open");
    assert_eq!(a["patient_id"], patient.id);
    assert_eq!(a["occurrences"], 1);
    assert_eq!(a["check_in_date"], date.to_string());
    assert!(!a["title"].as_str().unwrap().is_empty(), "{a}");
    let explanation = a["explanation"].as_str().unwrap();
    assert!(
        explanation.contains(&date.to_string()),
        "the explanation names the day: {explanation}"
    );
    assert!(
        a["evidence"].as_object().is_some_and(|o| !o.is_empty()),
        "evidence: {}",
        a["evidence"]
    );
    let rules = support_rules(r);
    assert!(rules.contains(&rule.to_owned()), "support: {}", r.text);
    let message = r.body["support"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["rule"] == rule)
        .unwrap()["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(!message.is_empty());
    assert_eq!(r.body["crisis_resources"], json!([]), "{}", r.text);
    a
}

/// `(date, value)` pairs of evidence entries `[{"date", key}]`.
fn dated(evidence: &Value, key: &str) -> Vec<(String, Value)> {
    evidence
        .as_array()
        .unwrap_or_else(|| panic!("a list of dated values: {evidence}"))
        .iter()
        .map(|e| (e["date"].as_str().unwrap().to_owned(), e[key].clone()))
        .collect()
}

#[tokio::test]
async fn craving_three_points_above_the_patients_own_baseline_is_flagged() {
    let app = spawn_app().await;
    let (counsellor, patient) = clinic(&app, "aftercare").await;

    // Three days of a modest, slowly climbing craving: a baseline with mean 3. With fewer than
    // three earlier check-ins there is no baseline at all.
    for (n, craving) in [(-3, 2), (-2, 3), (-1, 4)] {
        let r = check_in(
            &app,
            &patient,
            day(n),
            &calm_with(json!({"craving": craving})),
        )
        .await;
        assert_quiet(
            &app,
            &counsellor,
            &patient,
            &r,
            "craving_rising",
            "while building a baseline",
        )
        .await;
    }

    // Today 5: two points above the mean, one short.
    let r = check_in(&app, &patient, day(0), &calm_with(json!({"craving": 5}))).await;
    assert_quiet(&app, &counsellor, &patient, &r, "craving_rising", "at +2").await;

    // The patient corrects today's answer to 6: three points above, well under craving_high's 8.
    let r = app
        .checkin(&patient, day(0), &calm_with(json!({"craving": 6})))
        .await
        .expect(200);
    assert_eq!(r.body["check_in"]["craving"], 6);
    let a = the_alert(
        &app,
        &counsellor,
        &patient,
        &r,
        "craving_rising",
        "warning",
        day(0),
    )
    .await;
    assert!(
        app.alerts_for_rule(&counsellor, &patient, "craving_high")
            .await
            .is_empty(),
        "6 is below the absolute threshold"
    );
    let explanation = a["explanation"].as_str().unwrap();
    assert!(explanation.contains("6/10"), "{explanation}");
    let e = &a["evidence"];
    assert_eq!(
        dated(&e["check_ins"], "craving"),
        vec![(day(0).to_string(), json!(6))]
    );
    assert_eq!(
        dated(&e["baseline"], "craving"),
        vec![
            (day(-3).to_string(), json!(2)),
            (day(-2).to_string(), json!(3)),
            (day(-1).to_string(), json!(4)),
        ]
    );
    assert_eq!(e["baseline_mean"].as_f64(), Some(3.0), "{e}");
    assert_eq!(e["rise"], 3);
}

#[tokio::test]
async fn a_sows_score_of_21_in_detox_is_severe_withdrawal() {
    let app = spawn_app().await;
    let (counsellor, patient) = clinic(&app, "detox").await;

    // Yesterday's SOWS adds up to 20: one point short.
    let r = check_in(
        &app,
        &patient,
        day(-1),
        &calm_with(json!({"craving": 5, "withdrawal": sows_totalling(20)})),
    )
    .await;
    assert_eq!(r.body["check_in"]["withdrawal_score"], 20);
    assert_quiet(
        &app,
        &counsellor,
        &patient,
        &r,
        "withdrawal_severe",
        "at 20",
    )
    .await;

    // Today it adds up to 21.
    let r = check_in(
        &app,
        &patient,
        day(0),
        &calm_with(json!({"craving": 5, "withdrawal": sows_totalling(21)})),
    )
    .await;
    assert_eq!(r.body["check_in"]["withdrawal_score"], 21);
    let a = the_alert(
        &app,
        &counsellor,
        &patient,
        &r,
        "withdrawal_severe",
        "high",
        day(0),
    )
    .await;
    let explanation = a["explanation"].as_str().unwrap();
    assert!(explanation.contains("21"), "{explanation}");
    let e = &a["evidence"];
    assert_eq!(
        dated(&e["check_ins"], "withdrawal_score"),
        vec![(day(0).to_string(), json!(21))]
    );
    assert_eq!(e["threshold"], 21);
}

#[tokio::test]
async fn under_five_hours_of_sleep_three_nights_running_is_flagged_on_the_third() {
    let app = spawn_app().await;
    let (counsellor, patient) = clinic(&app, "treatment").await;

    // 5.0 hours is not under 5; then two short nights: a run of two.
    for (n, hours) in [(-3, 5.0), (-2, 4.5), (-1, 4.0)] {
        let r = check_in(
            &app,
            &patient,
            day(n),
            &calm_with(json!({"sleep_hours": hours})),
        )
        .await;
        assert_quiet(
            &app,
            &counsellor,
            &patient,
            &r,
            "sleep_poor",
            &format!("after {hours}h on day {n}"),
        )
        .await;
    }

    // The third short night in a row.
    let r = check_in(
        &app,
        &patient,
        day(0),
        &calm_with(json!({"sleep_hours": 4.9})),
    )
    .await;
    let a = the_alert(
        &app,
        &counsellor,
        &patient,
        &r,
        "sleep_poor",
        "warning",
        day(0),
    )
    .await;
    let e = &a["evidence"];
    assert_eq!(
        dated(&e["check_ins"], "sleep_hours"),
        vec![
            (day(-2).to_string(), json!(4.5)),
            (day(-1).to_string(), json!(4.0)),
            (day(0).to_string(), json!(4.9)),
        ]
    );
    assert_eq!(e["below_hours"].as_f64(), Some(5.0), "{e}");
    assert!(
        app.alerts_for_rule(&counsellor, &patient, "halt")
            .await
            .is_empty(),
        "tiredness alone is one HALT sign"
    );
}

#[tokio::test]
async fn at_most_one_meal_two_days_running_is_flagged_on_the_second() {
    let app = spawn_app().await;
    let (counsellor, patient) = clinic(&app, "treatment").await;

    // Two meals is not skipping; one meal after it is a run of one.
    for (n, meals) in [(-2, 2), (-1, 1)] {
        let r = check_in(&app, &patient, day(n), &calm_with(json!({"meals": meals}))).await;
        assert_quiet(
            &app,
            &counsellor,
            &patient,
            &r,
            "meals_skipped",
            &format!("after {meals} meal(s) on day {n}"),
        )
        .await;
    }

    let r = check_in(&app, &patient, day(0), &calm_with(json!({"meals": 0}))).await;
    let a = the_alert(
        &app,
        &counsellor,
        &patient,
        &r,
        "meals_skipped",
        "warning",
        day(0),
    )
    .await;
    let e = &a["evidence"];
    assert_eq!(
        dated(&e["check_ins"], "meals"),
        vec![
            (day(-1).to_string(), json!(1)),
            (day(0).to_string(), json!(0))
        ]
    );
    assert_eq!(e["at_most"], 1);
}

#[tokio::test]
async fn three_halt_signs_in_one_check_in_are_flagged_as_high() {
    let app = spawn_app().await;
    let (counsellor, patient) = clinic(&app, "aftercare").await;

    // Angry and lonely, but two meals and exactly 5 hours' sleep: two signs, the others at
    // their edges.
    let r = check_in(
        &app,
        &patient,
        day(-1),
        &calm_with(json!({"meals": 2, "irritability": 7, "loneliness": 7, "sleep_hours": 5.0})),
    )
    .await;
    assert_quiet(&app, &counsellor, &patient, &r, "halt", "with two signs").await;

    // Hungry too: three signs at once.
    let r = check_in(
        &app,
        &patient,
        day(0),
        &calm_with(json!({"meals": 1, "irritability": 7, "loneliness": 8, "sleep_hours": 6.0})),
    )
    .await;
    let a = the_alert(&app, &counsellor, &patient, &r, "halt", "high", day(0)).await;
    let explanation = a["explanation"].as_str().unwrap();
    for sign in ["hungry", "angry", "lonely"] {
        assert!(explanation.contains(sign), "{explanation}");
    }
    assert!(!explanation.contains("tired"), "{explanation}");
    let e = &a["evidence"];
    assert_eq!(e["date"], day(0).to_string());
    assert_eq!(e["needed"], 3);
    assert_eq!(
        e["signals"],
        json!([
            {"signal": "hungry", "values": {"meals": 1}},
            {"signal": "angry", "values": {"irritability": 7}},
            {"signal": "lonely", "values": {"loneliness": 8}},
        ])
    );
    assert!(
        app.alerts_for_rule(&counsellor, &patient, "meals_skipped")
            .await
            .is_empty(),
        "one hungry day is not a run"
    );
}

#[tokio::test]
async fn a_week_without_exercise_after_exercising_is_flagged_on_the_seventh_day() {
    let app = spawn_app().await;
    // In treatment, so eight check-ins without a support meeting raise nothing else.
    let (counsellor, patient) = clinic(&app, "treatment").await;

    // Forty minutes a week ago, then nothing: six idle days are one short.
    let r = check_in(
        &app,
        &patient,
        day(-7),
        &calm_with(json!({"exercise_minutes": 40})),
    )
    .await;
    assert_quiet(
        &app,
        &counsellor,
        &patient,
        &r,
        "exercise_lapsed",
        "after exercising",
    )
    .await;
    for n in -6..=-1 {
        let r = check_in(
            &app,
            &patient,
            day(n),
            &calm_with(json!({"exercise_minutes": 0})),
        )
        .await;
        assert_quiet(
            &app,
            &counsellor,
            &patient,
            &r,
            "exercise_lapsed",
            &format!("after idle day {n}"),
        )
        .await;
    }

    // The seventh idle day in a row.
    let r = check_in(
        &app,
        &patient,
        day(0),
        &calm_with(json!({"exercise_minutes": 0})),
    )
    .await;
    let a = the_alert(
        &app,
        &counsellor,
        &patient,
        &r,
        "exercise_lapsed",
        "info",
        day(0),
    )
    .await;
    let explanation = a["explanation"].as_str().unwrap();
    assert!(
        explanation.contains("40 minutes") && explanation.contains(&day(-7).to_string()),
        "names the last exercise: {explanation}"
    );
    let e = &a["evidence"];
    assert_eq!(
        e["run"],
        json!({"from": day(-6).to_string(), "to": day(0).to_string(), "days": 7})
    );
    assert_eq!(
        e["last_exercise"],
        json!({"date": day(-7).to_string(), "exercise_minutes": 40})
    );
}

#[tokio::test]
async fn medication_not_taken_two_days_running_is_flagged_on_the_second() {
    let app = spawn_app().await;
    let (counsellor, patient) = clinic(&app, "treatment").await;

    // A missed dose, a dose taken, a missed dose: never two misses in a row.
    for (n, took) in [(-3, false), (-2, true), (-1, false)] {
        let r = check_in(
            &app,
            &patient,
            day(n),
            &calm_with(json!({"took_medication": took})),
        )
        .await;
        assert_eq!(r.body["check_in"]["took_medication"], took);
        assert_quiet(
            &app,
            &counsellor,
            &patient,
            &r,
            "medication_missed",
            &format!("on day {n}"),
        )
        .await;
    }

    let r = check_in(
        &app,
        &patient,
        day(0),
        &calm_with(json!({"took_medication": false})),
    )
    .await;
    let a = the_alert(
        &app,
        &counsellor,
        &patient,
        &r,
        "medication_missed",
        "warning",
        day(0),
    )
    .await;
    assert_eq!(
        dated(&a["evidence"]["check_ins"], "took_medication"),
        vec![
            (day(-1).to_string(), json!(false)),
            (day(0).to_string(), json!(false)),
        ]
    );
}

#[tokio::test]
async fn medication_not_prescribed_is_never_missed() {
    let app = spawn_app().await;
    let (counsellor, patient) = clinic(&app, "treatment").await;

    // `took_medication` null (not prescribed) or left out, day after day.
    for n in -2..=0 {
        let body = if n == -1 {
            calm()
        } else {
            calm_with(json!({"took_medication": null}))
        };
        let r = check_in(&app, &patient, day(n), &body).await;
        assert_eq!(
            r.body["check_in"]["took_medication"],
            Value::Null,
            "{}",
            r.text
        );
        assert_quiet(
            &app,
            &counsellor,
            &patient,
            &r,
            "medication_missed",
            &format!("on day {n}"),
        )
        .await;
    }
}

/// Moves the start of `patient`'s current phase back to `date`. No endpoint takes a past start
/// date yet (invitations are gaining `phase_started_on`), so the record is changed directly.
fn phase_started_on(app: &TestApp, patient: &Login, date: NaiveDate) {
    app.sql(&format!(
        "UPDATE patients SET phase_started_on = '{date}' WHERE user_id = '{id}';
         UPDATE phase_changes SET started_on = '{date}' WHERE patient_id = '{id}';",
        id = patient.id
    ));
}

#[tokio::test]
async fn seven_check_ins_in_aftercare_without_a_meeting_are_flagged() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let counsellor = app.counsellor(&admin).await;
    let patient = app.patient_in(&counsellor, NEW_YORK, "aftercare").await;
    phase_started_on(&app, &patient, day(-20));
    // The same answers from a patient still in treatment never raise it: the rule is about
    // keeping up support after treatment ends.
    let in_treatment = app.patient_in(&counsellor, NEW_YORK, "treatment").await;
    phase_started_on(&app, &in_treatment, day(-20));
    // Nor from one who entered aftercare today: fourteen days without a meeting have not
    // passed yet.
    let new_in_aftercare = app.patient_in(&counsellor, NEW_YORK, "aftercare").await;

    // Six check-ins answering no: one short of the seven needed.
    let no = calm_with(json!({"attended_support": false}));
    for n in -6..=-1 {
        let r = check_in(&app, &patient, day(n), &no).await;
        assert_quiet(
            &app,
            &counsellor,
            &patient,
            &r,
            "support_disengaged",
            &format!("after day {n}"),
        )
        .await;
        check_in(&app, &in_treatment, day(n), &no).await;
        check_in(&app, &new_in_aftercare, day(n), &no).await;
    }

    // A seventh check-in that leaves the question out says nothing about meetings.
    let r = check_in(&app, &patient, day(0), &calm()).await;
    assert_quiet(
        &app,
        &counsellor,
        &patient,
        &r,
        "support_disengaged",
        "after an unanswered seventh",
    )
    .await;

    // Answering it (no) is the seventh answer.
    let r = app.checkin(&patient, day(0), &no).await.expect(200);
    let a = the_alert(
        &app,
        &counsellor,
        &patient,
        &r,
        "support_disengaged",
        "info",
        day(0),
    )
    .await;
    let from = local_day(NEW_YORK, -13).to_string();
    let explanation = a["explanation"].as_str().unwrap();
    assert!(
        explanation.contains("14 days") && explanation.contains(&from),
        "{explanation}"
    );
    assert_eq!(a["evidence"]["from"], from);
    assert_eq!(a["evidence"]["to"], day(0).to_string());
    assert_eq!(a["evidence"]["check_ins"], 7);
    assert_eq!(a["evidence"]["days"], 14);
    assert_eq!(a["evidence"]["aftercare_since"], day(-20).to_string());
    assert_eq!(a["evidence"]["answered"].as_array().unwrap().len(), 7);

    for (who, what) in [
        (&in_treatment, "in treatment"),
        (&new_in_aftercare, "in aftercare since today"),
    ] {
        let r = check_in(&app, who, day(0), &no).await;
        assert_quiet(&app, &counsellor, who, &r, "support_disengaged", what).await;
    }
}

#[tokio::test]
async fn a_support_meeting_within_fourteen_days_keeps_the_patient_engaged() {
    let app = spawn_app().await;
    let (counsellor, patient) = clinic(&app, "aftercare").await;
    phase_started_on(&app, &patient, day(-20));

    // A meeting a week ago, then seven check-ins without one: the meeting is still inside the
    // 14-day window, so eight check-ins raise nothing.
    let r = check_in(
        &app,
        &patient,
        day(-7),
        &calm_with(json!({"attended_support": true})),
    )
    .await;
    assert_quiet(
        &app,
        &counsellor,
        &patient,
        &r,
        "support_disengaged",
        "after a meeting",
    )
    .await;
    for n in -6..=0 {
        let r = check_in(
            &app,
            &patient,
            day(n),
            &calm_with(json!({"attended_support": false})),
        )
        .await;
        assert_quiet(
            &app,
            &counsellor,
            &patient,
            &r,
            "support_disengaged",
            &format!("on day {n}"),
        )
        .await;
    }
}
