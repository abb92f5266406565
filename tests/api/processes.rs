//! Real server processes: several behind one database never deliver a webhook twice, and a
//! process killed with SIGKILL right after an alert was raised loses nothing, and SIGTERM lets
//! the requests in flight finish before the process exits 0.

use std::collections::HashSet;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::receivers::http::HttpSink;
use serde_json::json;

use crate::helpers::{fresh_database, read, DropDatabase, PASSWORD};

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
    start_with(db, dir, workers, &[]).await
}

/// [`start`] with extra environment variables.
async fn start_with(
    db: &str,
    dir: &std::path::Path,
    workers: bool,
    env: &[(&str, &str)],
) -> Server {
    let port = free_port();
    let mut command = command(db, dir);
    command
        .env("AFTERCARE_BIND", format!("127.0.0.1:{port}"))
        .env("AFTERCARE_WORKERS", if workers { "true" } else { "false" });
    for (k, v) in env {
        command.env(k, v);
    }
    let child = command.spawn().expect("start aftercare");
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
    let (db, pg) = fresh_database(dir.path());
    // Declared before the servers: dropped after they are killed.
    let _db = DropDatabase(pg);
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
    let (db, pg) = fresh_database(dir.path());
    // Declared before the servers: dropped after they are killed.
    let _db = DropDatabase(pg);
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

#[tokio::test]
async fn sigterm_lets_in_flight_logins_finish_then_exits_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let (db, pg) = fresh_database(dir.path());
    let _db = DropDatabase(pg);
    // One hash at a time: the logins queue for the hasher, so they are still in flight when
    // the signal arrives and the last of them finishes well after it.
    let mut server = start_with(
        &db,
        dir.path(),
        true,
        &[("AFTERCARE_MAX_CONCURRENT_HASHES", "1")],
    )
    .await;
    const N: usize = 8;
    // An account per login, so the logins run in parallel (attempts on one account are
    // checked one after another).
    clinic(&db, dir.path(), &server.base, N).await;
    // A dashboard holds the live stream open: shutdown must not wait out the timeout for it.
    let admin = post(
        &server.base,
        "/v1/auth/login",
        None,
        json!({"email": "admin@example.org", "password": PASSWORD}),
    )
    .await
    .expect(200);
    let stream = reqwest::Client::new()
        .get(format!("{}/v1/alerts/stream", server.base))
        .bearer_auth(admin.body["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    let dashboard = tokio::spawn(async move {
        let mut body = stream.bytes_stream();
        while let Some(Ok(_)) = futures_util::StreamExt::next(&mut body).await {}
        Instant::now()
    });

    let mut logins = Vec::new();
    for i in 0..N {
        let url = format!("{}/v1/auth/login", server.base);
        // A wrong password now and then: 401 is as normal an answer as 200.
        let (password, expected) = if i % 4 == 3 {
            ("wrong-lantern-harbour", 401)
        } else {
            (PASSWORD, 200)
        };
        logins.push(tokio::spawn(async move {
            // A client each, so a connection each.
            let outcome = match reqwest::Client::new()
                .post(url)
                .json(&json!({"email": format!("p{i}@example.org"), "password": password}))
                .send()
                .await
            {
                Ok(r) => {
                    let status = r.status().as_u16();
                    r.text().await.map(|text| (status, text))
                }
                Err(e) => Err(e),
            };
            (expected, outcome, Instant::now())
        }));
    }
    // Long enough for every connection to be accepted (a connection still in the kernel's
    // queue when the listener closes is reset, which is not what this test is about); short
    // enough that the queued hashes are still running.
    tokio::time::sleep(Duration::from_millis(60)).await;

    let signalled = Instant::now();
    let kill = tokio::process::Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .await
        .unwrap();
    assert!(kill.success());

    // The listener closes at once: new connections are refused while accepted ones finish.
    let addr = server.base.trim_start_matches("http://").to_owned();
    let refused_after = loop {
        match tokio::net::TcpStream::connect(&addr).await {
            // Refused, or reset: a probe that landed in the accept queue just as the listener
            // closed is reset by the kernel. Either way, no new connection is being accepted.
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::ConnectionReset
                ) =>
            {
                break signalled.elapsed()
            }
            Err(e) => panic!("unexpected connect error during shutdown: {e}"),
            Ok(probe) => drop(probe),
        }
        assert!(
            signalled.elapsed() < Duration::from_secs(5),
            "still accepting connections 5 s after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    };

    let (mut answered_after_signal, mut never_accepted) = (0, 0);
    let mut last_answer = Duration::ZERO;
    for login in logins {
        let (expected, outcome, done) = login.await.unwrap();
        match outcome {
            Ok((status, text)) => {
                assert_eq!(status, expected, "a login during shutdown: {text}");
                if done > signalled {
                    answered_after_signal += 1;
                    last_answer = last_answer.max(done - signalled);
                }
            }
            // Not yet connected when the listener closed: refused, never accepted.
            Err(e) if e.is_connect() => never_accepted += 1,
            Err(e) => panic!("a login accepted before SIGTERM was cut off: {e:?}"),
        }
    }
    assert!(
        answered_after_signal > 0,
        "no login was still in flight at SIGTERM; the test proved nothing"
    );

    let status = loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            signalled.elapsed() < Duration::from_secs(10),
            "still running 10 s after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let exited_after = signalled.elapsed();
    assert!(status.success(), "exit status after SIGTERM: {status:?}");
    assert_eq!(status.code(), Some(0));
    // The open stream was ended rather than waited for (the graceful timeout is 30 s).
    let stream_ended = dashboard.await.unwrap() - signalled;
    assert!(
        exited_after < Duration::from_secs(5),
        "exit took {exited_after:?}"
    );

    let after = reqwest::Client::new()
        .get(format!("{}/health/ready", server.base))
        .send()
        .await
        .unwrap_err();
    assert!(after.is_connect(), "after exit: {after:?}");
    eprintln!(
        "SIGTERM: {answered_after_signal}/{N} logins answered after it (last {last_answer:?}), \
         {never_accepted} never accepted; refusing connections after {refused_after:?}, \
         live stream ended after {stream_ended:?}, exited 0 after {exited_after:?}"
    );
}
