//! Real server processes: several behind one database never deliver a webhook twice, and a
//! process killed with SIGKILL right after an alert was raised loses nothing.

use std::collections::HashSet;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aftercare::delivery::testing_http::HttpSink;
use serde_json::json;

use crate::helpers::{fresh_database, read, PASSWORD};

struct Server {
    child: Child,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn command(db: &str, dir: &std::path::Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_aftercare"));
    c.current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AFTERCARE_DATABASE_URL", db)
        .env("AFTERCARE_LOG", "warn")
        .env("AFTERCARE_HTTP_WORKERS", "1")
        .env("AFTERCARE_WEBHOOK_ALLOW_PRIVATE_NETWORKS", "true")
        .env("AFTERCARE_DELIVERY_RETRY_BASE_MS", "100")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    c
}

async fn start(db: &str, dir: &std::path::Path, workers: bool) -> Server {
    let port = free_port();
    let child = command(db, dir)
        .env("AFTERCARE_BIND", format!("127.0.0.1:{port}"))
        .env("AFTERCARE_WORKERS", if workers { "true" } else { "false" })
        .spawn()
        .expect("start aftercare");
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let started = Instant::now();
    loop {
        if let Ok(r) = client.get(format!("{base}/health/ready")).send().await {
            if r.status() == 200 {
                break;
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "server did not become ready"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Server { child, base }
}

async fn post(
    base: &str,
    path: &str,
    token: Option<&str>,
    body: serde_json::Value,
) -> crate::helpers::Resp {
    let mut rb = reqwest::Client::new()
        .post(format!("{base}{path}"))
        .json(&body);
    if let Some(t) = token {
        rb = rb.bearer_auth(t);
    }
    read(rb.send().await.unwrap()).await
}

async fn put(base: &str, path: &str, token: &str, body: serde_json::Value) -> crate::helpers::Resp {
    read(
        reqwest::Client::new()
            .put(format!("{base}{path}"))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap(),
    )
    .await
}

/// Creates an admin with the real CLI, a counsellor, and `n` patients; returns tokens.
async fn clinic(db: &str, dir: &std::path::Path, base: &str, n: usize) -> (String, Vec<String>) {
    let out = command(db, dir)
        .env("AFTERCARE_ADMIN_PASSWORD", PASSWORD)
        .args([
            "create-admin",
            "--organisation",
            "Harbour Recovery",
            "--email",
            "admin@example.org",
        ])
        .status()
        .unwrap();
    assert!(out.success());
    let admin = post(
        base,
        "/v1/auth/login",
        None,
        json!({"email": "admin@example.org", "password": PASSWORD}),
    )
    .await
    .expect(200);
    let admin_token = admin.body["access_token"].as_str().unwrap().to_owned();
    let code = post(
        base,
        "/v1/invitations",
        Some(&admin_token),
        json!({"role": "counsellor"}),
    )
    .await
    .expect(201);
    let counsellor = post(
        base,
        "/v1/auth/register",
        None,
        json!({"invitation_code": code.body["code"], "email": "c@example.org", "password": PASSWORD, "display_name": "C", "timezone": "UTC"}),
    )
    .await
    .expect(201);
    let ct = counsellor.body["access_token"].as_str().unwrap().to_owned();
    let mut patients = Vec::new();
    for i in 0..n {
        let code = post(
            base,
            "/v1/invitations",
            Some(&ct),
            json!({"role": "patient"}),
        )
        .await
        .expect(201);
        let p = post(
            base,
            "/v1/auth/register",
            None,
            json!({"invitation_code": code.body["code"], "email": format!("p{i}@example.org"), "password": PASSWORD, "display_name": format!("P{i}"), "timezone": "UTC"}),
        )
        .await
        .expect(201);
        patients.push(p.body["access_token"].as_str().unwrap().to_owned());
    }
    (admin_token, patients)
}

fn today() -> String {
    chrono::Utc::now().date_naive().to_string()
}

fn crisis() -> serde_json::Value {
    json!({"craving": 2, "mood": 1, "exercise_minutes": 0, "meals": 2, "used_substance": false, "self_harm_thoughts": true})
}

#[tokio::test]
async fn two_processes_on_one_database_deliver_each_webhook_once() {
    let dir = tempfile::tempdir().unwrap();
    let (db, _) = fresh_database(dir.path());
    let a = start(&db, dir.path(), true).await;
    let b = start(&db, dir.path(), true).await;
    let sink = HttpSink::start().await;
    let (admin, patients) = clinic(&db, dir.path(), &a.base, 6).await;
    post(
        &b.base,
        "/v1/organisation/webhooks",
        Some(&admin),
        json!({"url": sink.url("/h"), "events": ["alert.created"]}),
    )
    .await
    .expect(201);
    let started = Instant::now();
    for (i, p) in patients.iter().enumerate() {
        // Alternate processes: tokens from one verify on the other (one shared key).
        let base = if i % 2 == 0 { &a.base } else { &b.base };
        put(base, &format!("/v1/me/check-ins/{}", today()), p, crisis())
            .await
            .expect(201);
    }
    let got = sink
        .wait_for_requests(patients.len(), Duration::from_secs(20))
        .await;
    eprintln!(
        "check-in to webhook for {} alerts across two processes: {:?}",
        patients.len(),
        started.elapsed()
    );
    // Give a duplicate time to show up, if one were coming.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let all = sink.requests();
    let ids: HashSet<&str> = all.iter().filter_map(|r| r.header("webhook-id")).collect();
    assert_eq!(got.len(), patients.len());
    assert_eq!(all.len(), patients.len(), "each delivery exactly once");
    assert_eq!(ids.len(), patients.len());
}

#[tokio::test]
async fn a_process_killed_right_after_raising_an_alert_loses_no_delivery() {
    let dir = tempfile::tempdir().unwrap();
    let (db, _) = fresh_database(dir.path());
    let sink = HttpSink::start().await;
    // The first process has no delivery worker: whatever it raised is only in the outbox when
    // it dies, exactly as after a crash between "check-in saved" and "counsellor told".
    let mut first = start(&db, dir.path(), false).await;
    let (admin, patients) = clinic(&db, dir.path(), &first.base, 1).await;
    post(
        &first.base,
        "/v1/organisation/webhooks",
        Some(&admin),
        json!({"url": sink.url("/h"), "events": ["alert.created"]}),
    )
    .await
    .expect(201);
    put(
        &first.base,
        &format!("/v1/me/check-ins/{}", today()),
        &patients[0],
        crisis(),
    )
    .await
    .expect(201);
    first.child.kill().unwrap(); // SIGKILL
    first.child.wait().unwrap();
    assert!(sink.requests().is_empty());

    let restarted = Instant::now();
    let _second = start(&db, dir.path(), true).await;
    let got = sink.wait_for_requests(1, Duration::from_secs(20)).await;
    assert_eq!(got.len(), 1, "the outbox survived the kill");
    let body: serde_json::Value = serde_json::from_slice(&got[0].body).unwrap();
    assert_eq!(body["data"]["rule"], "self_harm");
    eprintln!("delivered {:?} after restart", restarted.elapsed());
}
