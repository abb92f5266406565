//! Cheap denial of service and the throttles that must not lock out the right people: a
//! sign-in flood, a stalled request body, a lock held on `check_ins`, a clinic behind one
//! network address, an account under attack, and passwords a guesser would try first.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{calm, read, spawn_app_with, today, Login, Resp, TestApp, PASSWORD};

async fn login_via(app: &TestApp, network: &str, email: &str, password: &str) -> Resp {
    read(
        app.client
            .post(app.url("/v1/auth/login"))
            .header("X-Forwarded-For", network)
            .json(&json!({"email": email, "password": password}))
            .send()
            .await
            .unwrap(),
    )
    .await
}

#[tokio::test]
async fn a_sign_in_flood_is_refused_quickly_past_the_hashing_queue() {
    let app = spawn_app_with(&[
        ("AFTERCARE_MAX_CONCURRENT_HASHES", "1"),
        ("AFTERCARE_HASH_QUEUE", "4"),
        ("AFTERCARE_LOGIN_MAX_FAILURES_PER_ADDRESS", "10000"),
    ])
    .await;
    let admin = app.admin().await;
    // Forty wrong sign-ins at once, each on its own account so no throttle steps in: one
    // hashing thread and four waiting places cannot take them all.
    let flood = (0..40).map(|n| {
        let body =
            json!({"email": format!("nobody{n}@example.org"), "password": "wrong-guess-here"});
        let app = &app;
        async move { app.post("/v1/auth/login", None, &body).await }
    });
    let answers = futures_util::future::join_all(flood).await;
    let busy: Vec<&Resp> = answers.iter().filter(|r| r.status == 503).collect();
    let wrong = answers.iter().filter(|r| r.status == 401).count();
    let statuses: Vec<u16> = answers.iter().map(|r| r.status).collect();
    assert_eq!(busy.len() + wrong, 40, "only 401s and 503s: {statuses:?}");
    assert!(
        !busy.is_empty(),
        "the queue is bounded: some are refused at once"
    );
    for r in &busy {
        assert_eq!(r.header("retry-after"), Some("2"));
        assert_eq!(r.header("content-type"), Some("application/problem+json"));
        assert_eq!(r.body["status"], 503);
    }
    // Once the flood has passed, the owner signs in as usual.
    app.login(&admin.email, PASSWORD).await;
}

/// Sends a request head declaring a 64-byte body, then `first`, then (when `drip`) a byte
/// every 150 ms that never completes it; returns what the server answered within 8 s and
/// whether it then closed the connection.
async fn stalled_body(app: &TestApp, first: &[u8], drip: bool) -> (String, bool) {
    let socket = tokio::net::TcpStream::connect(("127.0.0.1", app.port))
        .await
        .unwrap();
    let (mut rd, mut wr) = socket.into_split();
    let head = "POST /v1/auth/login HTTP/1.1\r\nHost: localhost\r\n\
                Content-Type: application/json\r\nContent-Length: 64\r\n\r\n";
    wr.write_all(head.as_bytes()).await.unwrap();
    wr.write_all(first).await.unwrap();
    let dripping = tokio::spawn(async move {
        for _ in 0..60 {
            if !drip || wr.write_all(b" ").await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
        // Hold the write half open (a stalled client does not hang up).
        tokio::time::sleep(Duration::from_secs(10)).await;
    });
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(8), rd.read_to_end(&mut buf)).await;
    dripping.abort();
    (String::from_utf8_lossy(&buf).into_owned(), read.is_ok())
}

#[tokio::test]
async fn a_request_body_that_stalls_is_cut_off_with_408() {
    let app = spawn_app_with(&[("AFTERCARE_BODY_TIMEOUT_MS", "1000")]).await;
    // One byte, then nothing.
    let (answer, closed) = stalled_body(&app, b"{", false).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("application/problem+json"), "{answer}");
    assert!(closed, "the server closes the connection after the 408");
    // A byte at a time, never finishing: cut off at the same deadline.
    let (answer, closed) = stalled_body(&app, b"{", true).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(closed);
    // A whole body on time is read as usual.
    app.get("/health/ready", None).await.expect(200);
}

/// Holds a write lock on `check_ins` from a connection of its own until `release` is set (at
/// most 30 s): `LOCK TABLE … IN EXCLUSIVE MODE` on PostgreSQL (reads go on, writes wait), the
/// database's single write lock (`BEGIN IMMEDIATE`) on SQLite.
fn hold_lock(app: &TestApp, release: Arc<AtomicBool>) -> std::sync::mpsc::Receiver<()> {
    use diesel::connection::SimpleConnection;
    use diesel::Connection;
    let (held_tx, held_rx) = std::sync::mpsc::channel();
    let url = app.database_url.clone();
    std::thread::spawn(move || {
        let wait = |release: &AtomicBool| {
            for _ in 0..300 {
                if release.load(Ordering::SeqCst) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        };
        if url.starts_with("postgres") {
            let mut c = diesel::PgConnection::establish(&url).unwrap();
            c.batch_execute("BEGIN; LOCK TABLE check_ins IN EXCLUSIVE MODE;")
                .unwrap();
            held_tx.send(()).unwrap();
            wait(&release);
            c.batch_execute("COMMIT").unwrap();
        } else {
            let path = url.trim_start_matches("sqlite://");
            let mut c = diesel::SqliteConnection::establish(path).unwrap();
            c.batch_execute("BEGIN IMMEDIATE").unwrap();
            held_tx.send(()).unwrap();
            wait(&release);
            c.batch_execute("COMMIT").unwrap();
        }
    });
    held_rx
}

#[tokio::test]
async fn a_lock_held_on_check_ins_gives_503_and_the_rest_of_the_api_keeps_answering() {
    let app = spawn_app_with(&[("AFTERCARE_DB_LOCK_TIMEOUT_MS", "500")]).await;
    let admin = app.admin().await;
    let counsellor = app.counsellor(&admin).await;
    let mut patients: Vec<Login> = Vec::new();
    for _ in 0..3 {
        patients.push(app.patient(&counsellor).await);
    }
    let release = Arc::new(AtomicBool::new(false));
    let held = hold_lock(&app, release.clone());
    held.recv_timeout(Duration::from_secs(10)).unwrap();
    // Check-ins wait a bounded time for the lock (PostgreSQL's lock_timeout; on SQLite its
    // busy_timeout), then answer 503 with Retry-After and give their connection back, while
    // the lock is still held. More check-ins than the pool has connections (4 in tests).
    let date = today("America/New_York");
    let body = calm();
    let attempts = patients
        .iter()
        .flat_map(|p| [p, p])
        .map(|p| app.checkin(p, date, &body));
    let answers = futures_util::future::join_all(attempts).await;
    assert!(!release.load(Ordering::SeqCst));
    for r in &answers {
        assert_eq!(r.status, 503, "{}", r.text);
        assert_eq!(r.header("retry-after"), Some("5"));
    }
    // The rest of the API answers meanwhile.
    app.get("/health/ready", None).await.expect(200);
    app.get("/v1/me", counsellor.t()).await.expect(200);
    let list = app.get("/v1/patients", counsellor.t()).await;
    if app.pg.is_some() {
        list.expect(200);
    } else {
        // SQLite has one write lock for the whole database, and reading patient data writes
        // its audit record: the list waits busy_timeout for it, then answers 503, not a hang.
        list.expect_problem(503);
    }
    release.store(true, Ordering::SeqCst);
    // And the retried check-in is saved once the lock is gone.
    let mut saved = None;
    for _ in 0..50 {
        let r = app.checkin(&patients[0], date, &body).await;
        if r.status != 503 {
            saved = Some(r);
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    saved.expect("saved after the lock").expect(201);
}

/// An app behind a trusted proxy, so each test can sign in from the networks it names.
async fn clinic_app(extra: &[(&str, &str)]) -> TestApp {
    let mut env = vec![("AFTERCARE_TRUSTED_PROXIES", "127.0.0.1")];
    env.extend_from_slice(extra);
    spawn_app_with(&env).await
}

const CLINIC: &str = "203.0.113.50";
const ELSEWHERE: &str = "198.51.100.7";

#[tokio::test]
async fn thirty_right_sign_ins_at_once_from_one_clinic_network_all_succeed() {
    let app = clinic_app(&[("AFTERCARE_LOGIN_MAX_FAILURES_PER_ADDRESS", "20")]).await;
    let admin = app.admin().await;
    let mut staff = vec![admin.email.clone()];
    for _ in 0..5 {
        staff.push(app.counsellor(&admin).await.email);
    }
    // Someone at the clinic has been failing all morning: the network is throttled.
    for n in 0..20 {
        let r = login_via(
            &app,
            CLINIC,
            &format!("typo{n}@example.org"),
            "wrong-guess-here",
        )
        .await;
        assert_eq!(r.status, 401);
    }
    // Thirty right passwords at once from the same address, five per account.
    let sign_ins = (0..30).map(|i| login_via(&app, CLINIC, &staff[i % 6], PASSWORD));
    let answers = futures_util::future::join_all(sign_ins).await;
    let statuses: Vec<u16> = answers.iter().map(|r| r.status).collect();
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
}

#[tokio::test]
async fn a_sign_in_flood_from_one_network_does_not_keep_another_networks_right_password_out() {
    let app = clinic_app(&[
        ("AFTERCARE_MAX_CONCURRENT_HASHES", "1"),
        ("AFTERCARE_HASH_QUEUE", "4"),
        ("AFTERCARE_LOGIN_MAX_FAILURES_PER_ADDRESS", "10000"),
    ])
    .await;
    let admin = app.admin().await;
    // Twenty clients on one network guess without pause, each on accounts of its own, so
    // the hashing queue stays full of them while the flood lasts.
    let flooding = Arc::new(AtomicBool::new(true));
    let flood: Vec<_> = (0..20)
        .map(|n| {
            let (app, flooding) = (&app, flooding.clone());
            async move {
                let mut statuses = Vec::new();
                let mut i = 0;
                while flooding.load(Ordering::Relaxed) {
                    let email = format!("guess{n}-{i}@example.org");
                    statuses.push(
                        login_via(app, ELSEWHERE, &email, "wrong-guess-here")
                            .await
                            .status,
                    );
                    i += 1;
                }
                statuses
            }
        })
        .collect();
    let owner = async {
        tokio::time::sleep(Duration::from_millis(400)).await;
        let mut answers = Vec::new();
        for _ in 0..3 {
            answers.push(login_via(&app, CLINIC, &admin.email, PASSWORD).await.status);
        }
        flooding.store(false, Ordering::Relaxed);
        answers
    };
    let (flood, owner) = tokio::join!(futures_util::future::join_all(flood), owner);
    assert_eq!(
        owner,
        vec![200, 200, 200],
        "the owner's network is served in turn"
    );
    let statuses: Vec<u16> = flood.into_iter().flatten().collect();
    assert!(
        statuses.contains(&503),
        "the flood did fill the queue: {statuses:?}"
    );
}

#[tokio::test]
async fn eight_right_sign_ins_at_once_to_one_account_all_succeed() {
    let app = clinic_app(&[]).await;
    let admin = app.admin().await;
    // Four failures on the account from elsewhere, one short of its limit.
    for _ in 0..4 {
        let r = login_via(&app, ELSEWHERE, &admin.email, "wrong-guess-here").await;
        assert_eq!(r.status, 401);
    }
    let sign_ins = (0..8).map(|_| login_via(&app, CLINIC, &admin.email, PASSWORD));
    let statuses: Vec<u16> = futures_util::future::join_all(sign_ins)
        .await
        .iter()
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses, vec![200; 8]);
}

#[tokio::test]
async fn an_account_under_attack_stays_open_from_its_usual_network() {
    let app = clinic_app(&[]).await;
    let admin = app.admin().await;
    login_via(&app, CLINIC, &admin.email, PASSWORD)
        .await
        .expect(200);
    for _ in 0..5 {
        login_via(&app, ELSEWHERE, &admin.email, "wrong-guess-here")
            .await
            .expect_problem(401);
    }
    // The attacker's network is held back, even with the right password...
    let r = login_via(&app, ELSEWHERE, &admin.email, PASSWORD)
        .await
        .expect_problem(429);
    assert!(r.header("retry-after").is_some());
    // ...and so is any network the account never signed in from,
    login_via(&app, "192.0.2.33", &admin.email, PASSWORD)
        .await
        .expect_problem(429);
    // but the owner at the clinic gets in, and their own typos count only against them.
    login_via(&app, CLINIC, &admin.email, PASSWORD)
        .await
        .expect(200);
    for _ in 0..5 {
        login_via(&app, CLINIC, &admin.email, "owner-typo-here")
            .await
            .expect(401);
    }
    login_via(&app, CLINIC, &admin.email, PASSWORD)
        .await
        .expect_problem(429);
}

#[tokio::test]
async fn a_throttled_network_still_lets_a_right_password_in_on_the_first_try() {
    let app = clinic_app(&[("AFTERCARE_LOGIN_MAX_FAILURES_PER_ADDRESS", "3")]).await;
    let admin = app.admin().await;
    for n in 0..3 {
        login_via(
            &app,
            CLINIC,
            &format!("typo{n}@example.org"),
            "wrong-guess-here",
        )
        .await
        .expect(401);
    }
    // An account that never signed in from the clinic, not under attack: let in.
    login_via(&app, CLINIC, &admin.email, PASSWORD)
        .await
        .expect(200);
    // An account already failed from the throttled network gets no second try.
    login_via(&app, CLINIC, "typo0@example.org", "another-guess-here")
        .await
        .expect_problem(429);
    // A first try at another account still counts as a failure.
    login_via(&app, CLINIC, "typo9@example.org", "another-guess-here")
        .await
        .expect(401);
}

#[tokio::test]
async fn guessable_passwords_are_refused_naming_the_field() {
    let app = spawn_app_with(&[]).await;
    let admin = app.admin().await;
    let counsellor = app.counsellor(&admin).await;
    for weak in [
        "michael12345",
        "ashley123456",
        "trustno1trustno1",
        "iloveyouiloveyou",
        "heroinheroin",
        "aftercare2026",
    ] {
        let r = app
            .post(
                "/v1/me/password",
                counsellor.t(),
                &json!({"current_password": PASSWORD, "new_password": weak}),
            )
            .await
            .expect_problem(422);
        assert_eq!(r.error_fields(), vec!["new_password"], "{weak}");
        let message = r.body["errors"][0]["message"].as_str().unwrap();
        assert!(message.starts_with("is too"), "{weak}: {message}");
    }
    // Built from the user's own name and email, at registration.
    for weak in [
        "okafordana12",
        "Dana-Okafor-1",
        "rofako-anad!",
        "dana.okafor.2026",
    ] {
        let code = app.invite(&admin, json!({"role": "counsellor"})).await;
        let r = app
            .post(
                "/v1/auth/register",
                None,
                &json!({"invitation_code": code, "email": "dana.okafor@example.org",
                    "password": weak, "display_name": "Dana Okafor",
                    "timezone": "Europe/London"}),
            )
            .await
            .expect_problem(422);
        assert_eq!(r.error_fields(), vec!["password"], "{weak}");
    }
    // A passphrase of unrelated words is fine.
    app.post(
        "/v1/me/password",
        counsellor.t(),
        &json!({"current_password": PASSWORD, "new_password": "quiet-orchard-tin-kettle"}),
    )
    .await
    .expect(204);
}
