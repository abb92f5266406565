//! Behaviour that keeps the service trustworthy under retries, races and misuse: login
//! throttling under concurrency and behind a proxy, retried check-ins, webhooks for every
//! change, the live stream ending for a disabled account, the audit trail's integrity.

use std::time::{Duration, Instant};

use crate::receivers::http::HttpSink;
use futures_util::StreamExt;
use serde_json::{json, Value};

use crate::helpers::{calm, local_day, spawn_app, spawn_app_with, today, PASSWORD};

const TZ: &str = "Europe/London";

#[tokio::test]
async fn concurrent_guesses_cannot_slip_past_the_login_limit() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let body = json!({"email": admin.email, "password": "not-the-password-at-all"});
    let guesses = (0..12).map(|_| app.post("/v1/auth/login", None, &body));
    let answers: Vec<u16> = futures_util::future::join_all(guesses)
        .await
        .into_iter()
        .map(|r| r.status)
        .collect();
    let wrong = answers.iter().filter(|s| **s == 401).count();
    let throttled = answers.iter().filter(|s| **s == 429).count();
    assert_eq!(wrong + throttled, 12, "{answers:?}");
    // The default limit is five failures per account, however the guesses interleave.
    assert_eq!(wrong, 5, "{answers:?}");
    // And the right password does not get through the block either.
    app.post(
        "/v1/auth/login",
        None,
        &json!({"email": admin.email, "password": PASSWORD}),
    )
    .await
    .expect_problem(429);
}

async fn login_from(app: &crate::helpers::TestApp, forwarded_for: &str, email: &str) -> u16 {
    app.client
        .post(app.url("/v1/auth/login"))
        .header("X-Forwarded-For", forwarded_for)
        .json(&json!({"email": email, "password": "not-the-password-at-all"}))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_client_address_is_throttled_on_its_own() {
    let app = spawn_app_with(&[
        ("AFTERCARE_TRUSTED_PROXIES", "127.0.0.1"),
        ("AFTERCARE_LOGIN_MAX_FAILURES_PER_ADDRESS", "3"),
    ])
    .await;
    // Different accounts each time, so only the per-address limit can bite.
    for n in 0..3 {
        let status = login_from(&app, "203.0.113.9", &format!("nobody{n}@example.org")).await;
        assert_eq!(status, 401);
    }
    // The address is throttled: an account already failed from it gets no second try (a
    // first try at another account still gets its answer: see tests/api/abuse.rs).
    assert_eq!(
        login_from(&app, "203.0.113.9", "nobody0@example.org").await,
        429
    );
    // Another clinic behind the same balancer is not locked out with it.
    assert_eq!(
        login_from(&app, "198.51.100.4", "nobody0@example.org").await,
        401
    );
    // A client cannot pick its own address by writing one in front of the proxy's entry.
    assert_eq!(
        login_from(&app, "192.0.2.1, 203.0.113.9", "nobody1@example.org").await,
        429
    );
}

#[tokio::test]
async fn without_a_trusted_proxy_a_forwarded_for_header_changes_nothing() {
    let app = spawn_app_with(&[("AFTERCARE_LOGIN_MAX_FAILURES_PER_ADDRESS", "3")]).await;
    for n in 0..3 {
        let ip = format!("203.0.113.{n}");
        assert_eq!(
            login_from(&app, &ip, &format!("nobody{n}@example.org")).await,
            401
        );
    }
    // All came from 127.0.0.1, whatever the header claimed.
    assert_eq!(
        login_from(&app, "198.51.100.7", "nobody0@example.org").await,
        429
    );
}

#[tokio::test]
async fn a_phone_retrying_the_same_check_in_changes_nothing() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let counsellor = app.counsellor(&admin).await;
    let patient = app.patient_in(&counsellor, TZ, "aftercare").await;
    let mut body = calm();
    body["craving"] = json!(9);
    let date = today(TZ);
    let first = app.checkin(&patient, date, &body).await.expect(201);
    let again = app.checkin(&patient, date, &body).await.expect(200);
    assert_eq!(again.body["check_in"]["version"], 1, "{}", again.text);
    assert_eq!(
        again.body["check_in"]["received_at"],
        first.body["check_in"]["received_at"]
    );
    // The patient sees the same support as the first time…
    assert_eq!(again.body["support"], first.body["support"]);
    // …and the counsellor's alert did not count the retry as a second finding.
    let alerts = app
        .alerts_for_rule(&counsellor, &patient, "craving_high")
        .await;
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0]["occurrences"], 1, "{:?}", alerts[0]);

    // A real correction is still a new version.
    body["craving"] = json!(8);
    let corrected = app.checkin(&patient, date, &body).await.expect(200);
    assert_eq!(corrected.body["check_in"]["version"], 2);
}

#[tokio::test]
async fn a_check_in_sent_on_its_own_day_stays_on_time_in_the_history() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let counsellor = app.counsellor(&admin).await;
    let patient = app.patient_in(&counsellor, TZ, "aftercare").await;
    let yesterday = local_day(TZ, -1);
    let r = app.checkin(&patient, yesterday, &calm()).await.expect(201);
    assert_eq!(r.body["check_in"]["late"], true);
    // Pretend it arrived yesterday evening, as if the phone had sent it then: it was on time.
    app.sql(
        &format!(
        "UPDATE check_ins SET created_at = created_at - INTERVAL_EXPR WHERE date = '{yesterday}'"
    )
        .replace(
            "created_at - INTERVAL_EXPR",
            if app.pg.is_some() {
                "created_at - INTERVAL '1 day'"
            } else {
                "datetime(created_at, '-1 day')"
            },
        ),
    );
    let history = app
        .get("/v1/me/check-ins", patient.t())
        .await
        .expect(200)
        .body;
    assert_eq!(history["items"][0]["date"], yesterday.to_string());
    assert_eq!(history["items"][0]["late"], false, "{history}");
    let one = app
        .get(&format!("/v1/me/check-ins/{yesterday}"), patient.t())
        .await
        .expect(200)
        .body;
    assert_eq!(one["late"], false);
}

#[tokio::test]
async fn webhook_subscribers_hear_about_acknowledgement_and_resolution() {
    let sink = HttpSink::start().await;
    let app = spawn_app().await;
    app.start_delivery_worker();
    let admin = app.admin().await;
    let counsellor = app.counsellor(&admin).await;
    let patient = app.patient_in(&counsellor, TZ, "aftercare").await;
    app.post(
        "/v1/organisation/webhooks",
        admin.t(),
        &json!({"url": sink.url("/updates"), "events": ["alert.updated"]}),
    )
    .await
    .expect(201);
    let sos = app
        .post("/v1/me/sos", patient.t(), &json!({}))
        .await
        .expect(202);
    let id = sos.body["alert_id"].as_str().unwrap().to_owned();
    app.post(
        &format!("/v1/alerts/{id}/acknowledge"),
        counsellor.t(),
        &json!({}),
    )
    .await
    .expect(200);
    app.post(
        &format!("/v1/alerts/{id}/resolve"),
        counsellor.t(),
        &json!({"outcome": "contacted", "note": "Called her; she is safe at her sister's."}),
    )
    .await
    .expect(200);
    let got = sink.wait_for_requests(2, Duration::from_secs(15)).await;
    let bodies: Vec<Value> = got
        .iter()
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect();
    let mut statuses: Vec<&str> = bodies
        .iter()
        .map(|b| b["data"]["status"].as_str().unwrap())
        .collect();
    statuses.sort_unstable();
    assert_eq!(statuses, ["acknowledged", "resolved"], "{bodies:?}");
    assert!(bodies.iter().all(|b| b["type"] == "alert.updated"));
    // Never the counsellor's note.
    assert!(got
        .iter()
        .all(|r| !String::from_utf8_lossy(&r.body).contains("sister")));
}

#[tokio::test]
async fn the_live_stream_ends_when_the_account_is_disabled() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let counsellor = app.counsellor(&admin).await;
    let patient = app.patient(&counsellor).await;
    let r = app
        .client
        .get(app.url("/v1/alerts/stream"))
        .bearer_auth(&counsellor.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let mut stream = r.bytes_stream();
    tokio::time::sleep(Duration::from_millis(300)).await;
    app.patch(
        &format!("/v1/users/{}", counsellor.id),
        admin.t(),
        &json!({"disabled": true}),
    )
    .await
    .expect(200);
    app.post("/v1/me/sos", patient.t(), &json!({}))
        .await
        .expect(202);
    // The stream closes instead of showing the alert to an account that may no longer see it.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen = String::new();
    let ended = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.next()).await {
            Ok(Some(Ok(chunk))) => seen.push_str(&String::from_utf8_lossy(&chunk)),
            Ok(Some(Err(_)) | None) => break true,
            Err(_) => break false,
        }
    };
    assert!(ended, "the stream stayed open: {seen}");
    assert!(!seen.contains("alert.created"), "{seen}");
    // Reconnecting is refused.
    app.get("/v1/alerts/stream", Some(&counsellor.token))
        .await
        .expect_problem(401);
}

#[tokio::test]
async fn an_oversized_sos_body_is_refused_as_too_large() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let counsellor = app.counsellor(&admin).await;
    let patient = app.patient(&counsellor).await;
    let huge = json!({"message": "x".repeat(70 * 1024)});
    app.post("/v1/me/sos", patient.t(), &huge)
        .await
        .expect_problem(413);
    // Nothing was raised by the refused press.
    assert!(app
        .alerts_for_rule(&counsellor, &patient, "sos")
        .await
        .is_empty());
}

#[tokio::test]
async fn role_denials_are_in_the_audit_trail_with_the_route() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let counsellor = app.counsellor(&admin).await;
    let patient = app.patient(&counsellor).await;
    app.get("/v1/patients", patient.t())
        .await
        .expect_problem(403);
    app.get("/v1/organisation/audit-events", counsellor.t())
        .await
        .expect_problem(403);
    let r = app
        .get(
            "/v1/organisation/audit-events?action=permission.denied",
            admin.t(),
        )
        .await
        .expect(200);
    let items = r.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{}", r.text);
    let mut who: Vec<&str> = items
        .iter()
        .map(|e| e["actor_id"].as_str().unwrap())
        .collect();
    who.sort_unstable();
    let mut expected = vec![patient.id.as_str(), counsellor.id.as_str()];
    expected.sort_unstable();
    assert_eq!(who, expected);
    assert!(
        items.iter().any(|e| e["target_type"] == "GET /v1/patients"),
        "{}",
        r.text
    );

    // Asking for a patient off one's care team is recorded too, with the patient asked for.
    let other = app.counsellor(&admin).await;
    app.get(&format!("/v1/patients/{}", patient.id), other.t())
        .await
        .expect_problem(404);
    let r = app
        .get(
            "/v1/organisation/audit-events?action=object.denied",
            admin.t(),
        )
        .await
        .expect(200);
    let items = r.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{}", r.text);
    assert_eq!(items[0]["actor_id"], other.id.as_str());
    assert_eq!(items[0]["patient_id"], patient.id.as_str());
    assert_eq!(items[0]["target_type"], "GET /v1/patients/{id}");
}

#[tokio::test]
async fn the_audit_trail_cannot_be_edited_or_deleted_even_in_the_database() {
    let app = spawn_app().await;
    let _admin = app.admin().await;
    assert!(app
        .try_sql("UPDATE audit_events SET outcome = 'x'")
        .is_err());
    assert!(app.try_sql("DELETE FROM audit_events").is_err());
    // Appending still works (the service just did, signing the admin in).
    app.try_sql("SELECT 1").unwrap();
}

#[tokio::test]
async fn a_disabled_counsellor_cannot_be_put_on_a_care_team() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let alice = app.counsellor(&admin).await;
    let gone = app.counsellor(&admin).await;
    let patient = app.patient(&alice).await;
    app.patch(
        &format!("/v1/users/{}", gone.id),
        admin.t(),
        &json!({"disabled": true}),
    )
    .await
    .expect(200);
    let r = app
        .put(
            &format!("/v1/patients/{}/care-team", patient.id),
            admin.t(),
            &json!({"counsellor_ids": [alice.id, gone.id]}),
        )
        .await
        .expect_problem(422);
    assert_eq!(r.error_fields(), vec!["counsellor_ids[1]"]);
    // The team is as it was.
    let p = app
        .get(&format!("/v1/patients/{}", patient.id), admin.t())
        .await
        .expect(200);
    assert_eq!(
        p.body["care_team"].as_array().unwrap().len(),
        1,
        "{}",
        p.text
    );
}

#[tokio::test]
async fn guessing_the_current_password_is_throttled_and_audited() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let counsellor = app.counsellor(&admin).await;
    let wrong = json!({"current_password": "a-wrong-guess-here", "new_password": "another-long-passphrase-42"});
    for _ in 0..5 {
        let r = app
            .post("/v1/me/password", counsellor.t(), &wrong)
            .await
            .expect_problem(422);
        assert_eq!(r.error_fields(), vec!["current_password"]);
    }
    let r = app
        .post("/v1/me/password", counsellor.t(), &wrong)
        .await
        .expect_problem(429);
    assert!(r.header("retry-after").is_some());
    // The account's sign-in is held back by the same counter.
    app.post(
        "/v1/auth/login",
        None,
        &json!({"email": counsellor.email, "password": PASSWORD}),
    )
    .await
    .expect_problem(429);
    let audit = app
        .get(
            "/v1/organisation/audit-events?action=account.password_change_failed",
            admin.t(),
        )
        .await
        .expect(200);
    assert_eq!(audit.body["items"].as_array().unwrap().len(), 5);
}

#[tokio::test]
async fn a_lesser_repeat_keeps_the_more_serious_account_of_an_alert() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let counsellor = app.counsellor(&admin).await;
    let patient = app.patient_in(&counsellor, TZ, "treatment").await;
    let craving = |c: i64| {
        let mut b = calm();
        b["craving"] = json!(c);
        b
    };
    app.checkin(&patient, local_day(TZ, -4), &craving(8))
        .await
        .expect(201);
    app.checkin(&patient, local_day(TZ, -3), &craving(9))
        .await
        .expect(201);
    let high = app
        .alerts_for_rule(&counsellor, &patient, "craving_high")
        .await;
    assert_eq!(high[0]["severity"], "high");
    app.checkin(&patient, local_day(TZ, -1), &craving(8))
        .await
        .expect(201);
    let after = app
        .alerts_for_rule(&counsellor, &patient, "craving_high")
        .await;
    assert_eq!(after.len(), 1);
    assert_eq!(after[0]["severity"], "high");
    // Seen on three days: warning, then high, then warning again.
    assert_eq!(after[0]["occurrences"], 3);
    assert_eq!(after[0]["title"], high[0]["title"]);
    assert_eq!(after[0]["explanation"], high[0]["explanation"]);
    assert_ne!(after[0]["last_seen_at"], high[0]["last_seen_at"]);
}

/// Reads server-sent events until one with an `id:` arrives: (id, type, alert id).
async fn next_event(
    stream: &mut (impl futures_util::Stream<Item = reqwest::Result<actix_web::web::Bytes>> + Unpin),
    buf: &mut String,
    within: Duration,
) -> Option<(i64, String, String)> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(end) = buf.find("\n\n") {
            let frame: String = buf.drain(..end + 2).collect();
            let field = |name: &str| {
                frame
                    .lines()
                    .find_map(|l| l.strip_prefix(name))
                    .map(str::to_owned)
            };
            if let (Some(id), Some(event), Some(data)) =
                (field("id: "), field("event: "), field("data: "))
            {
                let alert: Value = serde_json::from_str(&data).unwrap();
                return Some((
                    id.parse().unwrap(),
                    event,
                    alert["id"].as_str().unwrap().to_owned(),
                ));
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

#[tokio::test]
async fn an_event_that_commits_out_of_order_still_reaches_the_dashboard() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let counsellor = app.counsellor(&admin).await;
    let patient = app.patient(&counsellor).await;
    let open = |last: Option<i64>| {
        let mut req = app
            .client
            .get(app.url("/v1/alerts/stream"))
            .bearer_auth(&counsellor.token);
        if let Some(id) = last {
            req = req.header("last-event-id", id.to_string());
        }
        req.send()
    };
    let mut stream = open(None).await.unwrap().bytes_stream();
    let mut buf = String::new();
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Two SOS presses: the dashboard sees both, numbered a < b.
    let first = app
        .post("/v1/me/sos", patient.t(), &json!({}))
        .await
        .expect(202);
    let (a, _, _) = next_event(&mut stream, &mut buf, Duration::from_secs(5))
        .await
        .unwrap();
    // Leave a gap in the numbering, as a transaction that took number a + 1 and has not
    // committed yet would.
    app.sql(&if app.pg.is_some() {
        format!("SELECT setval(pg_get_serial_sequence('alert_feed', 'seq'), {a} + 1)")
    } else {
        format!("UPDATE sqlite_sequence SET seq = {a} + 1 WHERE name = 'alert_feed'")
    });
    app.post("/v1/me/sos", patient.t(), &json!({}))
        .await
        .expect(202);
    let (b, _, _) = next_event(&mut stream, &mut buf, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(b, a + 2);
    // That transaction commits only now: an update to the first alert, numbered below what
    // the dashboard has already seen.
    let late = a + 1;
    let now = if app.pg.is_some() {
        "(NOW() AT TIME ZONE 'UTC')"
    } else {
        "strftime('%Y-%m-%d %H:%M:%f', 'now')"
    };
    let first_id = first.body["alert_id"].as_str().unwrap();
    app.sql(&format!(
        "INSERT INTO alert_feed (seq, organisation_id, alert_id, event_type, created_at) \
         VALUES ({late}, '{}', '{first_id}', 'alert.updated', {now})",
        admin.organisation_id
    ));
    let (id, event, alert) = next_event(&mut stream, &mut buf, Duration::from_secs(5))
        .await
        .expect("the late event, live");
    assert_eq!(
        (id, event.as_str(), alert.as_str()),
        (late, "alert.updated", first_id)
    );
    drop(stream);

    // A dashboard that reconnects after b is sent the late one again rather than never.
    let mut resumed = open(Some(b)).await.unwrap().bytes_stream();
    let mut buf = String::new();
    let mut replayed = Vec::new();
    while let Some((id, _, _)) = next_event(&mut resumed, &mut buf, Duration::from_secs(1)).await {
        replayed.push(id);
    }
    assert!(replayed.contains(&late), "{replayed:?}");
    assert!(!replayed.contains(&b), "{replayed:?}");
}

async fn post_with_key(
    app: &crate::helpers::TestApp,
    path: &str,
    token: Option<&str>,
    key: &str,
    body: &Value,
) -> crate::helpers::Resp {
    let mut rb = app
        .client
        .post(app.url(path))
        .header("Idempotency-Key", key)
        .json(body);
    if let Some(t) = token {
        rb = rb.bearer_auth(t);
    }
    crate::helpers::read(rb.send().await.unwrap()).await
}

#[tokio::test]
async fn a_retried_webhook_registration_registers_one_webhook() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let body = json!({"url": "http://127.0.0.1:9/hook", "events": ["alert.created"]});
    let first = post_with_key(
        &app,
        "/v1/organisation/webhooks",
        admin.t(),
        "hook-1",
        &body,
    )
    .await
    .expect(201);
    let again = post_with_key(
        &app,
        "/v1/organisation/webhooks",
        admin.t(),
        "hook-1",
        &body,
    )
    .await
    .expect(201);
    assert_eq!(again.body, first.body);
    let list = app
        .get("/v1/organisation/webhooks", admin.t())
        .await
        .expect(200);
    assert_eq!(
        list.body["items"].as_array().unwrap().len(),
        1,
        "{}",
        list.text
    );
    // The same key for something else is a mistake, said as such.
    let other = json!({"url": "http://127.0.0.1:9/other", "events": ["alert.created"]});
    let r = post_with_key(
        &app,
        "/v1/organisation/webhooks",
        admin.t(),
        "hook-1",
        &other,
    )
    .await
    .expect_problem(422);
    assert_eq!(r.error_fields(), vec!["Idempotency-Key"]);
}

#[tokio::test]
async fn a_retried_invitation_is_the_same_invitation_under_a_new_code() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let counsellor = app.counsellor(&admin).await;
    let body = json!({"role": "patient"});
    let first = post_with_key(&app, "/v1/invitations", counsellor.t(), "inv-1", &body)
        .await
        .expect(201);
    let again = post_with_key(&app, "/v1/invitations", counsellor.t(), "inv-1", &body)
        .await
        .expect(201);
    assert_eq!(again.body["id"], first.body["id"]);
    assert_ne!(again.body["code"], first.body["code"]);
    let register = |code: &Value| {
        json!({"invitation_code": code, "email": "new.patient@example.org",
               "password": PASSWORD, "display_name": "New Patient", "timezone": TZ})
    };
    // The lost response's code no longer works; the new one does.
    let r = app
        .post("/v1/auth/register", None, &register(&first.body["code"]))
        .await
        .expect_problem(422);
    assert_eq!(r.error_fields(), vec!["invitation_code"]);
    app.post("/v1/auth/register", None, &register(&again.body["code"]))
        .await
        .expect(201);
    // Once redeemed, a retry cannot hand the invitation out again.
    post_with_key(&app, "/v1/invitations", counsellor.t(), "inv-1", &body)
        .await
        .expect_problem(409);
}

#[tokio::test]
async fn a_retried_registration_signs_the_same_account_in_again() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let code = app.invite(&admin, json!({"role": "counsellor"})).await;
    let body = json!({"invitation_code": code, "email": "sam@example.org",
                      "password": PASSWORD, "display_name": "Sam", "timezone": TZ});
    let first = post_with_key(&app, "/v1/auth/register", None, "reg-1", &body)
        .await
        .expect(201);
    let again = post_with_key(&app, "/v1/auth/register", None, "reg-1", &body)
        .await
        .expect(201);
    assert_ne!(again.body["refresh_token"], first.body["refresh_token"]);
    let me = |r: &crate::helpers::Resp| r.body["access_token"].as_str().unwrap().to_owned();
    let a = app.get("/v1/me", Some(&me(&first))).await.expect(200);
    let b = app.get("/v1/me", Some(&me(&again))).await.expect(200);
    assert_eq!(a.body["id"], b.body["id"]);
    // Without the key, the used code is refused as before.
    app.post("/v1/auth/register", None, &body)
        .await
        .expect_problem(422);
    // The key does not stand in for the password.
    let mut guess = body.clone();
    guess["password"] = json!("someone-elses-guess-99");
    let r = post_with_key(&app, "/v1/auth/register", None, "reg-1", &guess)
        .await
        .expect_problem(422);
    assert!(r.body.get("access_token").is_none());
}

#[tokio::test]
async fn a_database_too_busy_to_write_is_a_retryable_503_and_loses_nothing() {
    let app = spawn_app().await;
    let Some(path) = app
        .database_url
        .strip_prefix("sqlite://")
        .map(str::to_owned)
    else {
        // PostgreSQL has no single writer lock to hold.
        return;
    };
    let admin = app.admin().await;
    let counsellor = app.counsellor(&admin).await;
    let patient = app.patient_in(&counsellor, TZ, "aftercare").await;
    app.checkin(&patient, local_day(TZ, -1), &calm())
        .await
        .expect(201);
    // Another process holds SQLite's write lock for longer than the server will wait.
    let (locked_tx, locked_rx) = std::sync::mpsc::channel();
    let holder = std::thread::spawn(move || {
        use diesel::connection::SimpleConnection;
        use diesel::Connection;
        let mut c = diesel::SqliteConnection::establish(&path).unwrap();
        c.batch_execute("BEGIN IMMEDIATE").unwrap();
        locked_tx.send(()).unwrap();
        std::thread::sleep(Duration::from_secs(7));
        c.batch_execute("ROLLBACK").unwrap();
    });
    locked_rx.recv().unwrap();
    let r = app
        .checkin(&patient, today(TZ), &calm())
        .await
        .expect_problem(503);
    assert!(r.header("retry-after").is_some());
    holder.join().unwrap();
    // Once the lock is gone the retry goes through, and yesterday's check-in is still there.
    app.checkin(&patient, today(TZ), &calm()).await.expect(201);
    app.get(
        &format!("/v1/me/check-ins/{}", local_day(TZ, -1)),
        patient.t(),
    )
    .await
    .expect(200);
}

#[tokio::test]
async fn signing_out_ends_the_session_access_token_included() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let counsellor = app.counsellor(&admin).await;
    // A second session of the same person (another device) is not affected.
    let laptop = app.login(&counsellor.email, PASSWORD).await;
    app.get("/v1/me", counsellor.t()).await.expect(200);
    app.post(
        "/v1/auth/logout",
        None,
        &json!({"refresh_token": counsellor.refresh}),
    )
    .await
    .expect(204);
    app.get("/v1/me", counsellor.t()).await.expect_problem(401);
    app.get("/v1/me", laptop.t()).await.expect(200);
}

#[tokio::test]
async fn a_reused_refresh_token_cuts_off_the_stolen_sessions_access_tokens_at_once() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let counsellor = app.counsellor(&admin).await;
    let rotated = app
        .post(
            "/v1/auth/refresh",
            None,
            &json!({"refresh_token": counsellor.refresh}),
        )
        .await
        .expect(200);
    let fresh = rotated.body["access_token"].as_str().unwrap().to_owned();
    app.get("/v1/me", Some(&fresh)).await.expect(200);
    // The old refresh token comes back: someone copied it. The whole session ends.
    app.post(
        "/v1/auth/refresh",
        None,
        &json!({"refresh_token": counsellor.refresh}),
    )
    .await
    .expect_problem(401);
    app.get("/v1/me", Some(&fresh)).await.expect_problem(401);
    app.get("/v1/me", counsellor.t()).await.expect_problem(401);
}
