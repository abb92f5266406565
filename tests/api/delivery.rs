//! Alert delivery beyond the inbox, with real receivers started by the tests: a local HTTP
//! server for webhooks, a local SMTP listener for email, and the live event stream.

use std::time::{Duration, Instant};

use crate::receivers::http::HttpSink;
use crate::receivers::smtp as testing_smtp;
use aftercare::delivery::signing;
use futures_util::StreamExt;
use serde_json::{json, Value};

use crate::helpers::{calm, spawn_app, spawn_app_with, Login, TestApp};

fn today(tz: &str) -> String {
    let zone: chrono_tz::Tz = tz.parse().unwrap();
    chrono::Utc::now()
        .with_timezone(&zone)
        .date_naive()
        .to_string()
}

async fn self_harm(app: &TestApp, patient: &Login) -> Value {
    let mut body = calm();
    body["self_harm_thoughts"] = json!(true);
    body["note"] = json!("private words for my counsellor");
    app.put(
        &format!("/v1/me/check-ins/{}", today("America/New_York")),
        patient.t(),
        &body,
    )
    .await
    .expect(201)
    .body
}

pub(crate) async fn register_hook(
    app: &TestApp,
    admin: &Login,
    url: &str,
    events: &[&str],
) -> (String, String) {
    let r = app
        .post(
            "/v1/organisation/webhooks",
            admin.t(),
            &json!({"url": url, "events": events}),
        )
        .await
        .expect(201);
    assert!(r.body["secret"].as_str().unwrap().starts_with("whsec_"));
    (
        r.body["id"].as_str().unwrap().to_owned(),
        r.body["secret"].as_str().unwrap().to_owned(),
    )
}

async fn wait_for<F: Fn(&Value) -> bool>(
    app: &TestApp,
    admin: &Login,
    path: &str,
    pred: F,
) -> Value {
    let started = Instant::now();
    loop {
        let r = app.get(path, admin.t()).await.expect(200);
        if pred(&r.body) {
            return r.body;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "timed out waiting on {path}: {}",
            r.text
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_failing_receiver_gets_the_same_signed_delivery_again_until_it_succeeds() {
    let sink = HttpSink::with_statuses([500, 503]).await;
    let app = spawn_app_with(&[("AFTERCARE_DELIVERY_RETRY_BASE_MS", "50")]).await;
    app.start_delivery_worker();
    let admin = app.admin().await;
    let counsellor = app.counsellor(&admin).await;
    let patient = app.patient(&counsellor).await;
    let (hook, secret) = register_hook(
        &app,
        &admin,
        &sink.url("/hooks/aftercare"),
        &["alert.created"],
    )
    .await;

    self_harm(&app, &patient).await;
    let requests = sink.wait_for_requests(3, Duration::from_secs(20)).await;
    assert_eq!(requests.len(), 3, "two failures, then a success");
    let id = requests[0].header("webhook-id").unwrap().to_owned();
    for r in &requests {
        assert_eq!(r.method, "POST");
        assert_eq!(
            r.header("webhook-id"),
            Some(id.as_str()),
            "the same id on every attempt"
        );
        let ts: i64 = r.header("webhook-timestamp").unwrap().parse().unwrap();
        assert!(signing::verify(
            &secret,
            &id,
            ts,
            &r.body,
            r.header("webhook-signature").unwrap()
        ));
    }
    let body: Value = serde_json::from_slice(&requests[2].body).unwrap();
    assert_eq!(body["type"], "alert.created");
    assert_eq!(body["data"]["rule"], "self_harm");
    assert_eq!(body["data"]["severity"], "critical");
    assert_eq!(body["data"]["patient_id"], patient.id);
    let text = String::from_utf8_lossy(&requests[2].body);
    assert!(
        !text.contains("private words"),
        "no free text in webhooks: {text}"
    );
    assert!(
        !text.contains("craving"),
        "no check-in values in webhooks: {text}"
    );

    let log = wait_for(
        &app,
        &admin,
        &format!("/v1/organisation/webhooks/{hook}/deliveries"),
        |b| b["items"][0]["status"] == "delivered",
    )
    .await;
    let d = &log["items"][0];
    assert_eq!(d["attempts"], 3);
    assert_eq!(d["id"], id);
    let codes: Vec<i64> = d["attempt_log"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["status_code"].as_i64().unwrap())
        .collect();
    assert_eq!(codes, vec![500, 503, 200]);
}

#[tokio::test]
async fn deliveries_are_dead_lettered_after_the_last_attempt_and_410_disables_the_webhook() {
    let failing = HttpSink::with_statuses([]).await;
    failing.set_fallback_status(500);
    let gone = HttpSink::with_statuses([410]).await;
    let app = spawn_app_with(&[
        ("AFTERCARE_DELIVERY_RETRY_BASE_MS", "20"),
        ("AFTERCARE_DELIVERY_MAX_ATTEMPTS", "2"),
    ])
    .await;
    app.start_delivery_worker();
    let admin = app.admin().await;
    let counsellor = app.counsellor(&admin).await;
    let patient = app.patient(&counsellor).await;
    let (dead_hook, _) = register_hook(&app, &admin, &failing.url("/x"), &["alert.created"]).await;
    let (gone_hook, _) = register_hook(
        &app,
        &admin,
        &gone.url("/y"),
        &["alert.created", "alert.updated"],
    )
    .await;

    self_harm(&app, &patient).await;
    let log = wait_for(
        &app,
        &admin,
        &format!("/v1/organisation/webhooks/{dead_hook}/deliveries"),
        |b| b["items"][0]["status"] == "dead",
    )
    .await;
    assert_eq!(log["items"][0]["attempts"], 2);
    assert_eq!(log["items"][0]["next_attempt_at"], Value::Null);

    let hook = wait_for(
        &app,
        &admin,
        &format!("/v1/organisation/webhooks/{gone_hook}"),
        |b| b["disabled_at"].is_string(),
    )
    .await;
    assert!(hook["disabled_reason"].as_str().unwrap().contains("410"));
    // A disabled webhook gets nothing more.
    app.post("/v1/me/sos", patient.t(), &json!({}))
        .await
        .expect(202);
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(gone.requests().len(), 1);

    app.send(
        "DELETE",
        &format!("/v1/organisation/webhooks/{dead_hook}"),
        admin.t(),
        None,
    )
    .await
    .expect(204);
    app.get(&format!("/v1/organisation/webhooks/{dead_hook}"), admin.t())
        .await
        .expect_problem(404);
}

#[tokio::test]
async fn webhook_urls_that_reach_inside_the_network_are_refused() {
    let app = spawn_app_with(&[("AFTERCARE_WEBHOOK_ALLOW_PRIVATE_NETWORKS", "false")]).await;
    let admin = app.admin().await;
    for url in [
        "http://127.0.0.1:8080/hook",
        "http://localhost/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://10.0.0.5/hook",
        "http://[::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://2130706433/hook",
        "http://0x7f.1/hook",
        "http://[fd00::1]/hook",
        "ftp://example.org/hook",
        "not a url",
    ] {
        let r = app
            .post(
                "/v1/organisation/webhooks",
                admin.t(),
                &json!({"url": url, "events": ["alert.created"]}),
            )
            .await;
        assert_eq!(r.status, 422, "{url}: {}", r.text);
        assert_eq!(r.error_fields(), vec!["url"], "{url}");
    }
    let r = app
        .post(
            "/v1/organisation/webhooks",
            admin.t(),
            &json!({"url": "https://example.org/h", "events": ["alert.deleted"]}),
        )
        .await
        .expect_problem(422);
    assert!(r.error_fields().contains(&"events[0]".to_owned()));
    let counsellor = app.counsellor(&admin).await;
    app.post(
        "/v1/organisation/webhooks",
        counsellor.t(),
        &json!({"url": "https://example.org/h", "events": ["alert.created"]}),
    )
    .await
    .expect_problem(403);
}

#[tokio::test]
async fn counsellors_get_a_short_email_without_clinical_detail() {
    let smtp = testing_smtp::start().await;
    let url = smtp.smtp_url();
    let app = spawn_app_with(&[
        ("AFTERCARE_SMTP_URL", url.as_str()),
        ("AFTERCARE_SMTP_FROM", "alerts@clinic.example"),
    ])
    .await;
    app.start_delivery_worker();
    let admin = app.admin().await;
    let counsellor = app.counsellor(&admin).await;
    let patient = app.patient(&counsellor).await;
    self_harm(&app, &patient).await;
    let messages = smtp.wait_for_messages(1, Duration::from_secs(15)).await;
    assert_eq!(messages.len(), 1);
    let m = &messages[0];
    assert!(m.contains(&counsellor.email), "{m}");
    assert!(m.to_lowercase().contains("subject:"), "{m}");
    for secret in ["self_harm", "self-harm", "private words", "patient person"] {
        assert!(
            !m.to_lowercase().contains(secret),
            "email leaks {secret}: {m}"
        );
    }
    // A warning-level alert sends no email.
    let mut body = calm();
    body["craving"] = json!(8);
    let yesterday = (chrono::NaiveDate::parse_from_str(&today("America/New_York"), "%Y-%m-%d")
        .unwrap()
        - chrono::TimeDelta::days(1))
    .to_string();
    app.put(&format!("/v1/me/check-ins/{yesterday}"), patient.t(), &body)
        .await
        .expect(201);
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(smtp.messages().len(), 1);
}

/// Reads the next server-sent event (type and data), skipping comments.
pub(crate) async fn next_event(
    stream: &mut (impl futures_util::Stream<Item = reqwest::Result<actix_web::web::Bytes>> + Unpin),
    buf: &mut String,
    within: Duration,
) -> Option<(String, Value)> {
    next_event_with_id(stream, buf, within)
        .await
        .map(|(_, e, d)| (e, d))
}

/// Like [`next_event`], with the event's `id:`.
async fn next_event_with_id(
    stream: &mut (impl futures_util::Stream<Item = reqwest::Result<actix_web::web::Bytes>> + Unpin),
    buf: &mut String,
    within: Duration,
) -> Option<(i64, String, Value)> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(end) = buf.find("\n\n") {
            let frame: String = buf.drain(..end + 2).collect();
            let event = frame
                .lines()
                .find_map(|l| l.strip_prefix("event: "))
                .map(str::to_owned);
            let data = frame
                .lines()
                .find_map(|l| l.strip_prefix("data: "))
                .map(str::to_owned);
            let id = frame
                .lines()
                .find_map(|l| l.strip_prefix("id: "))
                .and_then(|i| i.parse().ok());
            if let (Some(e), Some(d)) = (event, data) {
                return Some((id.unwrap_or(0), e, serde_json::from_str(&d).unwrap()));
            }
            continue;
        }
        let left = deadline.checked_duration_since(Instant::now())?;
        match tokio::time::timeout(left, stream.next()).await {
            Ok(Some(Ok(chunk))) => buf.push_str(&String::from_utf8_lossy(&chunk)),
            _ => return None,
        }
    }
}

pub(crate) async fn open_stream(
    app: &TestApp,
    who: &Login,
) -> impl futures_util::Stream<Item = reqwest::Result<actix_web::web::Bytes>> + Unpin {
    let r = app
        .client
        .get(app.url("/v1/alerts/stream"))
        .bearer_auth(&who.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    r.bytes_stream()
}

#[tokio::test]
async fn the_live_stream_shows_a_counsellor_their_patients_alerts_as_they_happen() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let alice = app.counsellor(&admin).await;
    let bob = app.counsellor(&admin).await;
    let patient = app.patient(&alice).await;
    let mut alice_stream = open_stream(&app, &alice).await;
    let mut bob_stream = open_stream(&app, &bob).await;
    let (mut a_buf, mut b_buf) = (String::new(), String::new());
    // Let the streams settle before the event.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let sent = Instant::now();
    let r = app
        .post(
            "/v1/me/sos",
            patient.t(),
            &json!({"message": "please call"}),
        )
        .await
        .expect(202);
    let (event, alert) = next_event(&mut alice_stream, &mut a_buf, Duration::from_secs(3))
        .await
        .expect("an event for alice");
    let latency = sent.elapsed();
    assert_eq!(event, "alert.created");
    assert_eq!(alert["id"], r.body["alert_id"]);
    assert_eq!(alert["rule"], "sos");
    eprintln!("check-in to stream event: {latency:?}");

    // Bob is not on the care team: nothing for him.
    assert!(
        next_event(&mut bob_stream, &mut b_buf, Duration::from_millis(700))
            .await
            .is_none()
    );

    app.post(
        &format!("/v1/alerts/{}/acknowledge", alert["id"].as_str().unwrap()),
        alice.t(),
        &json!({}),
    )
    .await
    .expect(200);
    let (event, updated) = next_event(&mut alice_stream, &mut a_buf, Duration::from_secs(3))
        .await
        .expect("update");
    assert_eq!(event, "alert.updated");
    assert_eq!(updated["status"], "acknowledged");

    // Patients cannot open the stream.
    app.get("/v1/alerts/stream", patient.t())
        .await
        .expect_problem(403);
}

#[tokio::test]
async fn an_unacknowledged_critical_alert_is_escalated_to_the_team_and_the_admins() {
    let sink = HttpSink::start().await;
    let smtp = testing_smtp::start().await;
    let url = smtp.smtp_url();
    let app = spawn_app_with(&[
        ("AFTERCARE_SMTP_URL", url.as_str()),
        ("AFTERCARE_SMTP_FROM", "alerts@clinic.example"),
    ])
    .await;
    app.start_delivery_worker();
    let admin = app.admin().await;
    let counsellor = app.counsellor(&admin).await;
    let patient = app.patient(&counsellor).await;
    register_hook(&app, &admin, &sink.url("/esc"), &["alert.escalated"]).await;
    let mut stream = open_stream(&app, &counsellor).await;
    let mut buf = String::new();
    tokio::time::sleep(Duration::from_millis(300)).await;

    let sos = app
        .post("/v1/me/sos", patient.t(), &json!({}))
        .await
        .expect(202);
    let id = sos.body["alert_id"].as_str().unwrap().to_owned();
    let (e, _) = next_event(&mut stream, &mut buf, Duration::from_secs(3))
        .await
        .unwrap();
    assert_eq!(e, "alert.created");
    smtp.wait_for_messages(1, Duration::from_secs(10)).await;

    // Fifteen minutes pass without an acknowledgement.
    app.sql(&format!(
        "UPDATE alerts SET escalation_due_at = '2000-01-01 00:00:00' WHERE id = '{id}'"
    ));
    let report = aftercare::service::sweep::run_once(&app.state)
        .await
        .unwrap();
    // The server's own escalation sweep (every ten seconds) may have got there first; either
    // way it happened exactly once, which the event count below shows.
    assert!(report.escalated <= 1);
    let alert = app
        .get(&format!("/v1/alerts/{id}"), counsellor.t())
        .await
        .expect(200);
    assert!(alert.body["escalated_at"].is_string());
    let (e, data) = next_event(&mut stream, &mut buf, Duration::from_secs(3))
        .await
        .unwrap();
    assert_eq!(e, "alert.escalated");
    assert_eq!(data["id"], id.as_str());
    let hooks = sink.wait_for_requests(1, Duration::from_secs(10)).await;
    let body: Value = serde_json::from_slice(&hooks[0].body).unwrap();
    assert_eq!(body["type"], "alert.escalated");
    // The escalation email goes to the care team and the admins.
    let mails = smtp.wait_for_messages(3, Duration::from_secs(10)).await;
    assert_eq!(mails.len(), 3, "{mails:?}");
    assert!(mails[1..].iter().any(|m| m.contains(&admin.email)));
    assert!(mails[1..].iter().any(|m| m.contains(&counsellor.email)));

    // Escalation happens once; an acknowledged alert is not escalated.
    assert_eq!(
        aftercare::service::sweep::run_once(&app.state)
            .await
            .unwrap()
            .escalated,
        0
    );
    let second = app
        .post("/v1/me/sos", patient.t(), &json!({}))
        .await
        .expect(202);
    let id2 = second.body["alert_id"].as_str().unwrap();
    app.post(
        &format!("/v1/alerts/{id2}/acknowledge"),
        counsellor.t(),
        &json!({}),
    )
    .await
    .expect(200);
    app.sql(&format!(
        "UPDATE alerts SET escalation_due_at = '2000-01-01 00:00:00' WHERE id = '{id2}'"
    ));
    assert_eq!(
        aftercare::service::sweep::run_once(&app.state)
            .await
            .unwrap()
            .escalated,
        0
    );
}

#[tokio::test]
async fn a_crashed_workers_claim_is_retaken_when_its_lease_runs_out() {
    let sink = HttpSink::start().await;
    let app = spawn_app().await;
    let admin = app.admin().await;
    let counsellor = app.counsellor(&admin).await;
    let patient = app.patient(&counsellor).await;
    register_hook(&app, &admin, &sink.url("/lease"), &["alert.created"]).await;
    self_harm(&app, &patient).await;

    // Another worker claimed the item and died: while its lease lasts nobody else takes it.
    app.sql(
        "UPDATE outbox SET locked_by = 'worker-that-died', locked_until = '2999-01-01 00:00:00'",
    );
    let worker = aftercare::delivery::worker::Worker::new(app.state.clone()).unwrap();
    assert_eq!(worker.run_once().await.unwrap(), 0);
    assert!(sink.requests().is_empty());

    // The lease runs out: the item is retaken and delivered once.
    app.sql("UPDATE outbox SET locked_until = '2000-01-01 00:00:00'");
    assert_eq!(worker.run_once().await.unwrap(), 1);
    assert_eq!(
        sink.wait_for_requests(1, Duration::from_secs(5))
            .await
            .len(),
        1
    );
    assert_eq!(
        worker.run_once().await.unwrap(),
        0,
        "delivered items are not taken again"
    );
}

#[tokio::test]
async fn a_retried_sos_press_raises_one_alert() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let counsellor = app.counsellor(&admin).await;
    let patient = app.patient(&counsellor).await;
    let press = |key: &'static str, body: &'static str| {
        app.client
            .post(app.url("/v1/me/sos"))
            .bearer_auth(&patient.token)
            .header("idempotency-key", key)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let first = crate::helpers::read(press("press-1", r#"{"message":"help"}"#).await.unwrap())
        .await
        .expect(202);
    let again = crate::helpers::read(press("press-1", r#"{"message":"help"}"#).await.unwrap())
        .await
        .expect(202);
    assert_eq!(first.body["alert_id"], again.body["alert_id"]);
    let other = crate::helpers::read(
        press("press-1", r#"{"message":"different"}"#)
            .await
            .unwrap(),
    )
    .await
    .expect_problem(422);
    assert_eq!(other.error_fields(), vec!["Idempotency-Key"]);
    let second = crate::helpers::read(press("press-2", r#"{"message":"help"}"#).await.unwrap())
        .await
        .expect(202);
    // Another press (another key) is not a retry: it reaches the same episode, kept and
    // delivered again.
    assert_eq!(second.body["alert_id"], first.body["alert_id"]);
    let inbox = app
        .get(
            &format!("/v1/alerts?patient_id={}&limit=10", patient.id),
            counsellor.t(),
        )
        .await
        .expect(200);
    let items = inbox.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(
        crate::helpers::finding(&items[0], "sos").unwrap()["occurrences"],
        2,
        "the retry with the same key was not counted, the second press was"
    );
}

#[tokio::test]
async fn an_organisation_shows_its_own_crisis_lines() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let counsellor = app.counsellor(&admin).await;
    let patient = app.patient(&counsellor).await;
    let defaults = app
        .get("/v1/organisation/crisis-resources", counsellor.t())
        .await
        .expect(200);
    assert_eq!(
        defaults.body["built_in"]["US"][0]["contact"],
        "Call or text 988"
    );
    assert_eq!(defaults.body["items_built_in"], true);
    // The clinic's own line for its patients in the United States: it replaces the national
    // list for them.
    let local = json!({"items": [], "by_country": {"US": [{"name": "Harbour crisis team", "contact": "Call 555-0100, 24/7", "description": "Our own on-call counsellor."}]}});
    app.put("/v1/organisation/crisis-resources", counsellor.t(), &local)
        .await
        .expect_problem(403);
    let bad = app
        .put(
            "/v1/organisation/crisis-resources",
            admin.t(),
            &json!({"items": [{"name": "", "contact": "x", "description": "y"}]}),
        )
        .await
        .expect_problem(422);
    assert_eq!(bad.error_fields(), vec!["items[0].name"]);
    let bad = app
        .put(
            "/v1/organisation/crisis-resources",
            admin.t(),
            &json!({"items": [], "by_country": {"US": [{"name": "", "contact": "x", "description": "y"}]}}),
        )
        .await
        .expect_problem(422);
    assert_eq!(bad.error_fields(), vec!["by_country.US[0].name"]);
    app.put("/v1/organisation/crisis-resources", admin.t(), &local)
        .await
        .expect(200);
    let r = self_harm(&app, &patient).await;
    assert_eq!(r["crisis_resources"][0]["name"], "Harbour crisis team");
    assert_eq!(r["crisis_resources"].as_array().unwrap().len(), 1);
    // A default list of its own comes first, and the national lines still follow it.
    app.put(
        "/v1/organisation/crisis-resources",
        admin.t(),
        &json!({"items": [{"name": "Harbour on call", "contact": "Call 555-0199", "description": "Ours."}]}),
    )
    .await
    .expect(200);
    let r = app
        .post("/v1/me/sos", patient.t(), &json!({}))
        .await
        .expect(202)
        .body;
    let contacts: Vec<&str> = r["crisis_resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["contact"].as_str().unwrap())
        .collect();
    assert_eq!(contacts[0], "Call 555-0199");
    assert!(contacts.contains(&"Call or text 988"), "{contacts:?}");
    app.put(
        "/v1/organisation/crisis-resources",
        admin.t(),
        &json!({"items": []}),
    )
    .await
    .expect(200);
    let r = app
        .post("/v1/me/sos", patient.t(), &json!({}))
        .await
        .expect(202);
    assert_eq!(r.body["crisis_resources"][0]["contact"], "Call or text 988");
}

#[tokio::test]
async fn a_reconnecting_dashboard_gets_what_it_missed_and_the_alert_keeps_its_history() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let counsellor = app.counsellor(&admin).await;
    let patient = app.patient(&counsellor).await;
    let mut stream = open_stream(&app, &counsellor).await;
    let mut buf = String::new();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let first = app
        .post("/v1/me/sos", patient.t(), &json!({}))
        .await
        .expect(202);
    let (last_id, _, _) = next_event_with_id(&mut stream, &mut buf, Duration::from_secs(3))
        .await
        .expect("first event");
    drop(stream);

    // While the dashboard is offline: the alert is acknowledged and another SOS comes in.
    let id = first.body["alert_id"].as_str().unwrap();
    app.post(
        &format!("/v1/alerts/{id}/acknowledge"),
        counsellor.t(),
        &json!({}),
    )
    .await
    .expect(200);
    let second = app
        .post("/v1/me/sos", patient.t(), &json!({}))
        .await
        .expect(202);

    let r = app
        .client
        .get(app.url("/v1/alerts/stream"))
        .bearer_auth(&counsellor.token)
        .header("last-event-id", last_id.to_string())
        .send()
        .await
        .unwrap();
    let mut resumed = r.bytes_stream();
    let mut buf = String::new();
    let (e1, a1) = next_event(&mut resumed, &mut buf, Duration::from_secs(3))
        .await
        .expect("missed update");
    let (e2, a2) = next_event(&mut resumed, &mut buf, Duration::from_secs(3))
        .await
        .expect("missed alert");
    assert_eq!(
        (e1.as_str(), a1["id"].as_str()),
        ("alert.updated", Some(id))
    );
    assert_eq!(
        (e2.as_str(), &a2["id"]),
        ("alert.updated", &second.body["alert_id"])
    );
    assert_eq!(
        second.body["alert_id"], id,
        "the second press joins the episode"
    );

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
    assert_eq!(changes, vec!["created", "acknowledged", "sos_pressed"]);
    // The patient pressed SOS; the counsellor acknowledged; the patient pressed again.
    assert_eq!(history.body[0]["actor_id"], patient.id);
    assert_eq!(history.body[1]["actor_id"], counsellor.id);
    assert_eq!(history.body[2]["actor_id"], patient.id);
    let other = app.counsellor(&admin).await;
    app.get(&format!("/v1/alerts/{id}/history"), other.t())
        .await
        .expect_problem(404);
}

/// Words and values from the check-ins and the SOS below that must never reach an inbox.
const CLINICAL: [&str; 12] = [
    "private words",
    "please call me tonight",
    "self_harm",
    "self-harm",
    "self harm",
    "sos",
    "craving",
    "mood",
    "exercise",
    "used_substance",
    "evidence",
    "patient person",
];

#[tokio::test]
async fn a_critical_alert_emails_each_counsellor_on_the_care_team_and_nobody_else() {
    let smtp = testing_smtp::start().await;
    let url = smtp.smtp_url();
    let app = spawn_app_with(&[
        ("AFTERCARE_SMTP_URL", url.as_str()),
        ("AFTERCARE_SMTP_FROM", "alerts@clinic.example"),
    ])
    .await;
    app.start_delivery_worker();
    let admin = app.admin().await;
    let alice = app.counsellor(&admin).await;
    let bob = app.counsellor(&admin).await;
    let carol = app.counsellor(&admin).await; // not on the care team
    let patient = app.patient(&alice).await;
    let carols_patient = app.patient(&carol).await;
    let team = app
        .put(
            &format!("/v1/patients/{}/care-team", patient.id),
            admin.t(),
            &json!({"counsellor_ids": [alice.id, bob.id], "primary_counsellor_id": alice.id}),
        )
        .await
        .expect(200);
    let mut members: Vec<&str> = team.body["care_team"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["counsellor_id"].as_str().unwrap())
        .collect();
    members.sort();
    let mut expected = vec![alice.id.as_str(), bob.id.as_str()];
    expected.sort();
    assert_eq!(members, expected);

    // A self-harm check-in, then an SOS press with a message: one critical episode, delivered
    // when it opened and again for the press.
    let r = self_harm(&app, &patient).await;
    assert!(!r["crisis_resources"].as_array().unwrap().is_empty());
    app.post(
        "/v1/me/sos",
        patient.t(),
        &json!({"message": "please call me tonight"}),
    )
    .await
    .expect(202);
    let alerts = app.alerts_of(&bob, &patient).await;
    assert_eq!(alerts.len(), 1, "bob sees the one episode in his inbox");
    assert_eq!(alerts[0]["severity"], "critical");
    assert!(crate::helpers::finding(&alerts[0], "self_harm").is_some());
    assert!(crate::helpers::finding(&alerts[0], "sos").is_some());

    let messages = smtp.wait_for_messages(4, Duration::from_secs(15)).await;
    // Give a stray fifth message (to someone off the team) time to show up.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let messages = {
        let later = smtp.messages();
        assert!(later.len() >= messages.len());
        later
    };
    assert_eq!(
        messages.len(),
        4,
        "one email per delivery (the new alert, the SOS press) to each of the two counsellors: {messages:?}"
    );
    for (who, count) in [
        (&alice, 2),
        (&bob, 2),
        (&carol, 0),
        (&admin, 0),
        (&patient, 0),
        (&carols_patient, 0),
    ] {
        assert_eq!(
            messages.iter().filter(|m| m.contains(&who.email)).count(),
            count,
            "emails to {}: {messages:?}",
            who.email
        );
    }
    for m in &messages {
        assert!(m.to_lowercase().contains("subject:"), "{m}");
        // Headers may be folded; unfold so a phrase split over two lines is still found.
        let text = m
            .replace("\r\n ", " ")
            .replace("\r\n\t", " ")
            .to_lowercase();
        for secret in CLINICAL {
            assert!(!text.contains(secret), "email leaks {secret:?}: {m}");
        }
        assert!(
            !text.contains(&patient.email.to_lowercase()) && !text.contains(&patient.id),
            "email names the patient: {m}"
        );
    }
}

#[tokio::test]
async fn an_unacknowledged_high_alert_escalates_on_the_organisations_policy_timer() {
    let sink = HttpSink::start().await;
    let smtp = testing_smtp::start().await;
    let url = smtp.smtp_url();
    let app = spawn_app_with(&[
        ("AFTERCARE_SMTP_URL", url.as_str()),
        ("AFTERCARE_SMTP_FROM", "alerts@clinic.example"),
    ])
    .await;
    app.start_delivery_worker();
    let admin = app.admin().await;
    let counsellor = app.counsellor(&admin).await;
    let bystander = app.counsellor(&admin).await; // same organisation, not on the team
    let patient = app.patient(&counsellor).await;
    register_hook(&app, &admin, &sink.url("/high"), &["alert.escalated"]).await;

    // The organisation shortens the high-alert timer as far as validation allows.
    let mut policy = app
        .get("/v1/organisation/risk-policy", admin.t())
        .await
        .expect(200)
        .body;
    assert_eq!(policy["escalate_high_after_minutes"], 240);
    policy["escalate_high_after_minutes"] = json!(0);
    let r = app
        .put("/v1/organisation/risk-policy", admin.t(), &policy)
        .await
        .expect_problem(422);
    assert_eq!(r.error_fields(), vec!["escalate_high_after_minutes"]);
    policy["escalate_high_after_minutes"] = json!(1);
    app.put("/v1/organisation/risk-policy", admin.t(), &policy)
        .await
        .expect(200);
    let stored = app
        .get("/v1/organisation/risk-policy", admin.t())
        .await
        .expect(200);
    assert_eq!(stored.body["escalate_high_after_minutes"], 1);

    // Use without a recent abstinent stretch: a high alert, emailed to the care team.
    let mut body = calm();
    body["used_substance"] = json!(true);
    app.put(
        &format!("/v1/me/check-ins/{}", today("America/New_York")),
        patient.t(),
        &body,
    )
    .await
    .expect(201);
    let alerts = app
        .alerts_for_rule(&counsellor, &patient, "substance_use")
        .await;
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0]["severity"], "high");
    assert_eq!(alerts[0]["escalated_at"], Value::Null);
    let id = alerts[0]["id"].as_str().unwrap().to_owned();
    let first = smtp.wait_for_messages(1, Duration::from_secs(15)).await;
    assert_eq!(first.len(), 1);
    assert!(first[0].contains(&counsellor.email), "{}", first[0]);
    assert!(!first[0].contains(&admin.email), "{}", first[0]);

    // One minute is the shortest timer validation allows, too slow to wait for in a test.
    // So, as the critical escalation test does, the deadline is moved into the past in the
    // database, and the escalation sweep is run directly with `escalations_once`. The update
    // only applies if the policy put the deadline within a couple of minutes of now: with
    // the default of 240 minutes it would match nothing and the alert would not escalate, so
    // this still proves the policy setting drove the deadline.
    assert_eq!(
        aftercare::service::sweep::escalations_once(&app.state)
            .await
            .unwrap(),
        0,
        "not due before its minute is up"
    );
    let within = (chrono::Utc::now() + chrono::TimeDelta::minutes(2))
        .naive_utc()
        .format("%Y-%m-%d %H:%M:%S");
    app.sql(&format!(
        "UPDATE alerts SET escalation_due_at = '2000-01-01 00:00:00' \
         WHERE id = '{id}' AND escalation_due_at <= '{within}'"
    ));
    // The background sweep may get there first; either way it is escalated exactly once.
    let escalated = aftercare::service::sweep::escalations_once(&app.state)
        .await
        .unwrap();
    assert!(escalated <= 1);
    let alert = app
        .get(&format!("/v1/alerts/{id}"), counsellor.t())
        .await
        .expect(200);
    assert!(
        alert.body["escalated_at"].is_string(),
        "the policy's 1-minute timer should have made the alert due: {}",
        alert.text
    );
    assert_eq!(alert.body["status"], "open");
    assert_eq!(alert.body["severity"], "high");
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
    assert_eq!(changes, vec!["created", "escalated"]);

    // The webhook receives alert.escalated for it.
    let hooks = sink.wait_for_requests(1, Duration::from_secs(15)).await;
    assert_eq!(hooks.len(), 1);
    let event: Value = serde_json::from_slice(&hooks[0].body).unwrap();
    assert_eq!(event["type"], "alert.escalated");
    assert_eq!(event["data"]["alert_id"], id.as_str());
    assert_eq!(event["data"]["severity"], "high");
    assert!(event["data"]["escalated_at"].is_string());

    // The escalation email goes to the care team and the admins, and nobody else.
    smtp.wait_for_messages(3, Duration::from_secs(15)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let all = smtp.messages();
    assert_eq!(
        all.len(),
        3,
        "the creation email, then two escalation emails: {all:?}"
    );
    let mails = &all[1..];
    assert!(mails.iter().any(|m| m.contains(&admin.email)), "{mails:?}");
    assert!(
        mails.iter().any(|m| m.contains(&counsellor.email)),
        "{mails:?}"
    );
    for m in mails {
        assert!(!m.contains(&bystander.email), "{m}");
        let text = m.replace("\r\n ", " ").to_lowercase();
        assert!(text.contains("escalated"), "{m}");
        assert!(!text.contains("substance"), "{m}");
    }

    // Escalation happens once.
    assert_eq!(
        aftercare::service::sweep::escalations_once(&app.state)
            .await
            .unwrap(),
        0
    );
}
