//! `spawn_app()` and a client with one helper per endpoint.

#![allow(dead_code)]

use std::collections::HashMap;

use aftercare::config::Settings;
use aftercare::startup::Application;
use diesel::connection::SimpleConnection;
use diesel::Connection;
use serde_json::Value;

/// A running server on its own database.
pub struct TestApp {
    pub address: String,
    pub port: u16,
    pub client: reqwest::Client,
    pub database_url: String,
    /// The PostgreSQL admin URL and this test's database name, when on PostgreSQL.
    pub pg: Option<(String, String)>,
    pub state: aftercare::state::AppState,
    pub key_file: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

/// A response, read whole.
pub struct Resp {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts the status, showing the body when it differs.
    #[track_caller]
    pub fn expect(self, status: u16) -> Self {
        assert_eq!(
            self.status, status,
            "unexpected status; body: {}",
            self.text
        );
        self
    }

    /// The `field`s named in a problem's `errors`.
    pub fn error_fields(&self) -> Vec<String> {
        self.body["errors"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|e| e["field"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Asserts a problem+json body with this status.
    #[track_caller]
    pub fn expect_problem(self, status: u16) -> Self {
        let s = self.expect(status);
        assert_eq!(
            s.header("content-type"),
            Some("application/problem+json"),
            "problem content type; body: {}",
            s.text
        );
        assert_eq!(s.body["status"], status);
        assert!(
            s.body["title"].is_string()
                && s.body["type"].is_string()
                && s.body["detail"].is_string()
        );
        s
    }
}

pub async fn read(resp: reqwest::Response) -> Resp {
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().await.unwrap_or_default();
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Resp {
        status,
        headers,
        body,
        text,
    }
}

/// Environment for a test server, before overrides.
pub fn base_env(database_url: &str) -> HashMap<String, String> {
    let mut env = HashMap::new();
    env.insert("AFTERCARE_BIND".into(), "127.0.0.1:0".into());
    env.insert("AFTERCARE_DATABASE_URL".into(), database_url.into());
    env.insert("AFTERCARE_HTTP_WORKERS".into(), "1".into());
    env.insert("AFTERCARE_DB_POOL_SIZE".into(), "4".into());
    env.insert("AFTERCARE_DB_TIMEOUT_MS".into(), "2000".into());
    env.insert("AFTERCARE_LOG".into(), "warn".into());
    env.insert(
        "AFTERCARE_WEBHOOK_ALLOW_PRIVATE_NETWORKS".into(),
        "true".into(),
    );
    env
}

/// Makes a fresh database: a new PostgreSQL database when `TEST_DATABASE_URL` is set,
/// else a SQLite file in `dir`. Returns its URL and, on PostgreSQL, (admin URL, name).
pub fn fresh_database(dir: &std::path::Path) -> (String, Option<(String, String)>) {
    match std::env::var("TEST_DATABASE_URL") {
        Ok(admin) if !admin.is_empty() => {
            let name = format!("aftercare_test_{}", uuid::Uuid::new_v4().simple());
            let mut conn =
                diesel::PgConnection::establish(&admin).expect("connect to TEST_DATABASE_URL");
            conn.batch_execute(&format!("CREATE DATABASE {name}"))
                .expect("create test database");
            let base = admin
                .rsplit_once('/')
                .map(|(b, _)| b.to_owned())
                .unwrap_or(admin.clone());
            (format!("{base}/{name}"), Some((admin, name)))
        }
        _ => (
            format!("sqlite://{}", dir.join("aftercare.db").display()),
            None,
        ),
    }
}

/// Drops a test's PostgreSQL database: `DROP DATABASE IF EXISTS .. WITH (FORCE)` on the admin
/// connection, which also ends the sessions a server still holds in its pool. Errors are
/// ignored: this runs from `Drop`, possibly while a failed test unwinds. Set
/// `TEST_KEEP_DATABASES=1` to keep them for a post-mortem.
pub fn drop_pg_database(admin: &str, name: &str) {
    if std::env::var_os("TEST_KEEP_DATABASES").is_some() {
        return;
    }
    let Ok(mut conn) = diesel::PgConnection::establish(admin) else {
        return;
    };
    let _ = conn.batch_execute(&format!(
        "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
        name.replace('"', "\"\"")
    ));
}

/// Drops the database from [`fresh_database`] when it goes out of scope (nothing on SQLite).
/// Declare it before anything that uses the database, so it is dropped after them.
pub struct DropDatabase(pub Option<(String, String)>);

impl Drop for DropDatabase {
    fn drop(&mut self) {
        if let Some((admin, name)) = self.0.take() {
            drop_pg_database(&admin, &name);
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // The in-process server still holds pooled connections: FORCE ends them.
        if let Some((admin, name)) = self.pg.take() {
            drop_pg_database(&admin, &name);
        }
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(&[]).await
}

/// A test server with the given `AFTERCARE_*` overrides. Background work (the delivery worker
/// and the sweeps) is off unless `AFTERCARE_WORKERS` is overridden: a test that needs a worker
/// starts it with [`TestApp::start_delivery_worker`] or runs a sweep itself, so no test races
/// a sweep it did not ask for.
pub async fn spawn_app_with(overrides: &[(&str, &str)]) -> TestApp {
    let dir = tempfile::tempdir().expect("tempdir");
    let (database_url, pg) = fresh_database(dir.path());
    let mut env = base_env(&database_url);
    env.insert("AFTERCARE_WORKERS".into(), "false".into());
    env.insert(
        "AFTERCARE_JWT_PRIVATE_KEY_FILE".into(),
        dir.path().join("jwt.key").display().to_string(),
    );
    for (k, v) in overrides {
        env.insert((*k).into(), (*v).into());
    }
    let settings = Settings::from_lookup(&move |k| env.get(k).cloned()).expect("settings");
    let key_file = settings.jwt_private_key_file.clone().unwrap_or_default();
    let app = Application::build(settings).await.expect("build app");
    let port = app.port();
    let state = app.state().clone();
    tokio::spawn(app.run_until_stopped());
    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        port,
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client"),
        database_url,
        pg,
        state,
        key_file,
        _dir: dir,
    }
}

impl TestApp {
    /// Starts the outbox delivery worker (webhooks, email) in the background, as a server
    /// with `AFTERCARE_WORKERS=true` does, without the sweeps.
    pub fn start_delivery_worker(&self) {
        let worker =
            aftercare::delivery::worker::Worker::new(self.state.clone()).expect("delivery worker");
        tokio::spawn(worker.run_forever());
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Resp {
        let mut rb = self.client.get(self.url(path));
        if let Some(t) = token {
            rb = rb.bearer_auth(t);
        }
        read(rb.send().await.expect("request")).await
    }

    pub async fn send(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Resp {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut rb = self.client.request(method, self.url(path));
        if let Some(t) = token {
            rb = rb.bearer_auth(t);
        }
        if let Some(b) = body {
            rb = rb.json(b);
        }
        read(rb.send().await.expect("request")).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> Resp {
        self.send("POST", path, token, Some(body)).await
    }

    pub async fn put(&self, path: &str, token: Option<&str>, body: &Value) -> Resp {
        self.send("PUT", path, token, Some(body)).await
    }

    pub async fn patch(&self, path: &str, token: Option<&str>, body: &Value) -> Resp {
        self.send("PATCH", path, token, Some(body)).await
    }

    pub async fn raw(
        &self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> Resp {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut rb = self.client.request(method, self.url(path)).body(body);
        if let Some(ct) = content_type {
            rb = rb.header("content-type", ct);
        }
        read(rb.send().await.expect("request")).await
    }
}

pub const PASSWORD: &str = "correct-lantern-harbour";

/// A signed-in user.
#[derive(Debug, Clone)]
pub struct Login {
    pub token: String,
    pub refresh: String,
    pub id: String,
    pub email: String,
    pub organisation_id: String,
}

impl Login {
    pub fn t(&self) -> Option<&str> {
        Some(self.token.as_str())
    }
}

fn unique_email(prefix: &str) -> String {
    format!(
        "{prefix}-{}@example.org",
        &uuid::Uuid::new_v4().simple().to_string()[..10]
    )
}

impl TestApp {
    /// Runs SQL on the test database (to age an invitation, say).
    pub fn sql(&self, statement: &str) {
        let url = self.database_url.clone();
        if let Some(path) = url.strip_prefix("sqlite://") {
            let mut c = diesel::SqliteConnection::establish(path).expect("sqlite");
            // The server's workers write concurrently: wait for the lock like they do.
            c.batch_execute("PRAGMA busy_timeout = 10000;")
                .expect("busy timeout");
            c.batch_execute(statement).expect("sql");
        } else {
            let mut c = diesel::PgConnection::establish(&url).expect("pg");
            c.batch_execute(statement).expect("sql");
        }
    }

    /// Runs SQL on the test database and says whether the database accepted it.
    pub fn try_sql(&self, statement: &str) -> Result<(), String> {
        let url = self.database_url.clone();
        if let Some(path) = url.strip_prefix("sqlite://") {
            let mut c = diesel::SqliteConnection::establish(path).map_err(|e| e.to_string())?;
            c.batch_execute("PRAGMA busy_timeout = 10000;")
                .map_err(|e| e.to_string())?;
            c.batch_execute(statement).map_err(|e| e.to_string())
        } else {
            let mut c = diesel::PgConnection::establish(&url).map_err(|e| e.to_string())?;
            c.batch_execute(statement).map_err(|e| e.to_string())
        }
    }

    /// Creates an organisation with an admin (as `aftercare create-admin` does) and signs in.
    pub async fn admin(&self) -> Login {
        let email = unique_email("admin");
        aftercare::service::admin::create_admin(
            &self.state,
            "Harbour Recovery",
            &email,
            PASSWORD.into(),
            aftercare::startup::default_policy_json(),
        )
        .await
        .expect("create admin");
        self.login(&email, PASSWORD).await
    }

    pub async fn login(&self, email: &str, password: &str) -> Login {
        let r = self
            .post(
                "/v1/auth/login",
                None,
                &serde_json::json!({"email": email, "password": password}),
            )
            .await
            .expect(200);
        login_from(&r, email)
    }

    pub async fn invite(&self, by: &Login, body: Value) -> String {
        let r = self
            .post("/v1/invitations", by.t(), &body)
            .await
            .expect(201);
        r.body["code"].as_str().unwrap().to_owned()
    }

    pub async fn register(&self, code: &str, prefix: &str, timezone: &str) -> Login {
        let email = unique_email(prefix);
        let r = self
            .post(
                "/v1/auth/register",
                None,
                &serde_json::json!({"invitation_code": code, "email": email, "password": PASSWORD,
                    "display_name": format!("{prefix} person"), "timezone": timezone}),
            )
            .await
            .expect(201);
        login_from(&r, &email)
    }

    pub async fn counsellor(&self, admin: &Login) -> Login {
        let code = self
            .invite(admin, serde_json::json!({"role": "counsellor"}))
            .await;
        self.register(&code, "counsellor", "America/New_York").await
    }

    /// A patient on `counsellor`'s care team, in the given timezone and phase.
    pub async fn patient_in(&self, counsellor: &Login, timezone: &str, phase: &str) -> Login {
        let code = self
            .invite(
                counsellor,
                serde_json::json!({"role": "patient", "phase": phase}),
            )
            .await;
        self.register(&code, "patient", timezone).await
    }

    pub async fn patient(&self, counsellor: &Login) -> Login {
        self.patient_in(counsellor, "America/New_York", "aftercare")
            .await
    }
}

/// The local date now in an IANA timezone: a patient's "today", as the server sees it.
pub fn today(timezone: &str) -> chrono::NaiveDate {
    let tz: chrono_tz::Tz = timezone.parse().expect("an IANA timezone");
    chrono::Utc::now().with_timezone(&tz).date_naive()
}

/// `today(timezone)` shifted by `days` (negative: the past).
pub fn local_day(timezone: &str, days: i64) -> chrono::NaiveDate {
    today(timezone) + chrono::TimeDelta::days(days)
}

impl TestApp {
    /// `patient` submits (or corrects) the check-in for `date`.
    pub async fn checkin(&self, patient: &Login, date: chrono::NaiveDate, body: &Value) -> Resp {
        self.put(&format!("/v1/me/check-ins/{date}"), patient.t(), body)
            .await
    }

    /// Every alert of `patient` that `viewer` can list in the inbox, newest first.
    pub async fn alerts_of(&self, viewer: &Login, patient: &Login) -> Vec<Value> {
        let r = self
            .get(
                &format!("/v1/alerts?patient_id={}&limit=200", patient.id),
                viewer.t(),
            )
            .await
            .expect(200);
        r.body["items"].as_array().cloned().unwrap_or_default()
    }

    /// The alerts of `patient` with a finding of one rule (leading or not), as `viewer` lists
    /// them.
    pub async fn alerts_for_rule(&self, viewer: &Login, patient: &Login, rule: &str) -> Vec<Value> {
        self.alerts_of(viewer, patient)
            .await
            .into_iter()
            .filter(|a| finding(a, rule).is_some())
            .collect()
    }

    /// The finding of `rule` in the patient's alerts (newest alert first), if any.
    pub async fn finding_of(&self, viewer: &Login, patient: &Login, rule: &str) -> Option<Value> {
        self.alerts_of(viewer, patient)
            .await
            .iter()
            .find_map(|a| finding(a, rule))
    }
}

/// An alert's finding of one rule.
pub fn finding(alert: &Value, rule: &str) -> Option<Value> {
    alert["findings"]
        .as_array()?
        .iter()
        .find(|f| f["rule"] == rule)
        .cloned()
}

fn login_from(r: &Resp, email: &str) -> Login {
    Login {
        token: r.body["access_token"].as_str().unwrap().to_owned(),
        refresh: r.body["refresh_token"].as_str().unwrap().to_owned(),
        id: r.body["user"]["id"].as_str().unwrap().to_owned(),
        email: email.to_owned(),
        organisation_id: r.body["user"]["organisation_id"]
            .as_str()
            .unwrap()
            .to_owned(),
    }
}

/// A calm day: nothing in it should raise an alert.
pub fn calm() -> Value {
    serde_json::json!({"craving": 2, "mood": 6, "exercise_minutes": 30, "meals": 3,
        "used_substance": false, "sleep_hours": 7.5})
}

/// A calm day with some answers changed.
pub fn calm_with(changes: Value) -> Value {
    let mut v = calm();
    for (k, x) in changes.as_object().expect("an object") {
        v[k] = x.clone();
    }
    v
}

/// The 16 SOWS (withdrawal) items.
pub const SOWS_ITEMS: [&str; 16] = [
    "anxious",
    "yawning",
    "perspiring",
    "eyes_tearing",
    "nose_running",
    "goosebumps",
    "shaking",
    "hot_flushes",
    "cold_flushes",
    "bones_aching",
    "restless",
    "nauseous",
    "vomiting",
    "muscles_twitching",
    "stomach_cramps",
    "feel_like_using",
];

/// The rules named in a check-in response's support messages.
pub fn support_rules(r: &Resp) -> Vec<String> {
    r.body["support"]
        .as_array()
        .expect("support is a list")
        .iter()
        .map(|m| m["rule"].as_str().unwrap().to_owned())
        .collect()
}
