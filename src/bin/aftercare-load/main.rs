//! `aftercare-load`: a load benchmark for a running aftercare server (not a test).
//!
//! It enrols patients through the API as a clinic would (the admin invites a counsellor, the
//! counsellor invites patients, each patient registers), then for a fixed time drives
//! concurrent check-ins (`PUT /v1/me/check-ins/{today}`, varied values, so the risk engine and
//! alert deduplication do real work), then the same for an authenticated read and for sign-ins
//! (one argon2id verification each), and prints throughput, latency percentiles and errors for
//! each phase (`--json`: one JSON object on stdout instead).
//!
//! By default each client sends its next request when the previous one answered (closed
//! loop). `--rate N` schedules N arrivals per second at fixed times instead, whatever the
//! server does (open loop), and counts each latency from its scheduled time, so a stall shows
//! in the percentiles rather than hiding as fewer requests (coordinated omission).
//! `--history-days N` imports N days of history for every enrolled patient through
//! `POST /v1/patients/{id}/check-ins/import` before the timed phases.
//!
//! `aftercare-load seed --patients N --days D` instead fills the database named by the
//! `AFTERCARE_*` variables directly with an organisation of N patients and D days of
//! check-ins each, and prints the sign-ins.
//!
//! It only talks to the URL it is given, which must be a loopback address unless
//! `--allow-remote`; it stops by itself.
//!
//! ```sh
//! AFTERCARE_ADMIN_PASSWORD=... aftercare create-admin --organisation Load --email load@example.org
//! aftercare-load --url http://127.0.0.1:8080 --email load@example.org --password ...
//! aftercare-load --create-admin --rate 200 --history-days 730 --json
//! aftercare-load seed --patients 2000 --days 730
//! ```

mod seed;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use chrono::NaiveDate;
use clap::{Parser, Subcommand, ValueEnum};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

/// Load benchmark for a running aftercare server: enrols patients through the API, then
/// drives concurrent check-ins and reads for a fixed time and reports throughput and latency.
#[derive(Debug, Parser)]
#[command(
    name = "aftercare-load",
    version,
    about,
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
struct Args {
    #[command(subcommand)]
    command: Option<Command>,
    /// The server's base URL; must be a loopback address unless --allow-remote.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// An admin's email (see `aftercare create-admin`).
    #[arg(long, required_unless_present = "create_admin")]
    email: Option<String>,
    /// The admin's password.
    #[arg(long, env = "AFTERCARE_LOAD_PASSWORD", hide_env_values = true)]
    password: Option<String>,
    /// Create a fresh organisation and admin directly in the server's database, configured by
    /// the same AFTERCARE_* variables as the server, instead of --email/--password.
    #[arg(long, conflicts_with = "email")]
    create_admin: bool,
    /// Patients to enrol.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    patients: u32,
    /// Seconds each measured phase runs.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=3_600))]
    seconds: u64,
    /// Concurrent clients.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=1_024))]
    concurrency: u32,
    /// The read measured after the check-ins.
    #[arg(long, value_enum, default_value_t = Read::Summary)]
    read: Read,
    /// Allow a non-loopback URL (only against a server you run and may load).
    #[arg(long)]
    allow_remote: bool,
    /// Print one JSON object on stdout (per phase: ok_per_s, p50_ms, p95_ms, p99_ms, errors
    /// by status); progress goes to stderr.
    #[arg(long)]
    json: bool,
    /// Open loop: this many arrivals per second, each phase, at fixed times whatever the
    /// server answers, with latency counted from the scheduled time (default: closed loop,
    /// each client sends when its previous request answered). --concurrency caps the requests
    /// in flight; arrivals beyond it wait, and the wait counts.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    rate: Option<u32>,
    /// Days of history imported for every enrolled patient before the timed phases
    /// (POST /v1/patients/{id}/check-ins/import, in requests of up to 5,000 days).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=3_650))]
    history_days: u32,
}

#[derive(Debug, Clone, Subcommand)]
enum Command {
    /// Fill the database named by the AFTERCARE_* variables directly (not through the API)
    /// with an organisation of --patients patients and --days days of check-ins each, and
    /// print the sign-ins.
    Seed(seed::SeedArgs),
    /// Run the missed-check-in sweep on the database named by the AFTERCARE_* variables until
    /// nobody is due, and print how long it took (e.g. after `seed --silent-percent 10`).
    Sweep,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Read {
    /// GET /v1/me/summary
    Summary,
    /// GET /v1/me/check-ins?limit=7
    CheckIns,
}

const TIMEZONES: [&str; 6] = [
    "America/New_York",
    "Europe/London",
    "America/Los_Angeles",
    "Asia/Kolkata",
    "Australia/Sydney",
    "UTC",
];
const PATIENT_PASSWORD: &str = "bench-passphrase-river-7";
/// The most days one import request carries (the endpoint's bound).
const IMPORT_BATCH: u32 = 5_000;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let outcome = match args.command.clone() {
        Some(Command::Seed(seed)) => seed::run(seed).await,
        Some(Command::Sweep) => seed::sweep().await,
        None => run(args).await,
    };
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("aftercare-load: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// The base URL, checked: http(s), and loopback unless allowed otherwise.
fn base_url(raw: &str, allow_remote: bool) -> anyhow::Result<String> {
    let url = url::Url::parse(raw).with_context(|| format!("--url {raw:?} is not a URL"))?;
    if !matches!(url.scheme(), "http" | "https") {
        bail!("--url must be http:// or https://");
    }
    let loopback = match url.host() {
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    };
    if !loopback && !allow_remote {
        bail!(
            "--url {raw} is not a loopback address; this tool generates heavy load and \
             creates accounts, so it only targets a remote server with --allow-remote"
        );
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

struct Api {
    client: reqwest::Client,
    base: String,
}

impl Api {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> anyhow::Result<(u16, Value)> {
        let mut rb = self
            .client
            .request(method.clone(), format!("{}{path}", self.base));
        if let Some(t) = token {
            rb = rb.bearer_auth(t);
        }
        if let Some(b) = body {
            rb = rb.json(b);
        }
        let resp = rb
            .send()
            .await
            .with_context(|| format!("{method} {path}"))?;
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
    }

    /// POSTs and insists on `expected`, returning the body.
    async fn post_ok(
        &self,
        path: &str,
        token: Option<&str>,
        body: &Value,
        expected: u16,
    ) -> anyhow::Result<Value> {
        let (status, v) = self
            .call(reqwest::Method::POST, path, token, Some(body))
            .await?;
        if status != expected {
            bail!("POST {path} answered {status} (expected {expected}): {v}");
        }
        Ok(v)
    }

    /// [`Api::post_ok`] for enrolment, which is setup rather than measurement: a 5xx or 429
    /// is retried (the server rolled the transaction back) up to five times with backoff,
    /// and counted in `retries`.
    async fn post_retrying(
        &self,
        path: &str,
        token: Option<&str>,
        body: &Value,
        expected: u16,
        retries: &AtomicU64,
    ) -> anyhow::Result<Value> {
        let mut attempt = 0_u32;
        loop {
            let (status, v) = self
                .call(reqwest::Method::POST, path, token, Some(body))
                .await?;
            if status == expected {
                return Ok(v);
            }
            if attempt >= 5 || !(status >= 500 || status == 429) {
                bail!("POST {path} answered {status} (expected {expected}): {v}");
            }
            retries.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(50 << attempt)).await;
            attempt += 1;
        }
    }
}

fn string(v: &Value, key: &str) -> anyhow::Result<String> {
    v[key]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("the response has no {key:?}: {v}"))
}

/// Creates an organisation and admin in the database (as `aftercare create-admin` does);
/// returns (email, password).
async fn create_admin(run_id: &str) -> anyhow::Result<(String, String)> {
    let settings = aftercare::config::Settings::from_env().map_err(|e| anyhow!("{e}"))?;
    let state = aftercare::startup::build_state(settings).await?;
    let email = format!("load-admin-{run_id}@example.org");
    let password = format!("{}-{}", uuid::Uuid::new_v4().simple(), run_id);
    aftercare::service::admin::create_admin(
        &state,
        &format!("Load test {run_id}"),
        &email,
        password.clone(),
        aftercare::startup::default_policy_json(),
    )
    .await
    .map_err(|e| anyhow!("cannot create the admin: {e}"))?;
    Ok((email, password))
}

struct Patient {
    id: String,
    token: String,
    email: String,
    timezone: &'static str,
}

/// Enrols `n` patients: the admin invites a counsellor, who invites the patients; each
/// registers (registration hashes the password, so this is the slow part). Returns the
/// counsellor's token (every patient is on their care team) and the patients.
async fn enrol(
    api: &Arc<Api>,
    admin_token: &str,
    run_id: &str,
    n: u32,
    concurrency: u32,
    retries: &Arc<AtomicU64>,
) -> anyhow::Result<(String, Vec<Patient>)> {
    let inv = api
        .post_retrying(
            "/v1/invitations",
            Some(admin_token),
            &json!({"role": "counsellor"}),
            201,
            retries,
        )
        .await?;
    let reg = api
        .post_retrying(
            "/v1/auth/register",
            None,
            &json!({
                "invitation_code": string(&inv, "code")?,
                "email": format!("load-{run_id}-counsellor@example.org"),
                "password": PATIENT_PASSWORD,
                "display_name": "Load counsellor",
                "timezone": "UTC",
            }),
            201,
            retries,
        )
        .await?;
    let counsellor = Arc::new(string(&reg, "access_token")?);

    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..concurrency.min(n) {
        let (api, counsellor, run_id) = (api.clone(), counsellor.clone(), run_id.to_owned());
        let retries = retries.clone();
        tasks.spawn(async move {
            let mut out = Vec::new();
            for i in (w..n).step_by(usize::try_from(concurrency).unwrap_or(1)) {
                let timezone = TIMEZONES[usize::try_from(i).unwrap_or(0) % TIMEZONES.len()];
                let inv = api
                    .post_retrying(
                        "/v1/invitations",
                        Some(&counsellor),
                        &json!({"role": "patient", "phase": "aftercare"}),
                        201,
                        &retries,
                    )
                    .await?;
                let email = format!("load-{run_id}-p{i}@example.org");
                let reg = api
                    .post_retrying(
                        "/v1/auth/register",
                        None,
                        &json!({
                            "invitation_code": string(&inv, "code")?,
                            "email": email,
                            "password": PATIENT_PASSWORD,
                            "display_name": format!("Load patient {i}"),
                            "timezone": timezone,
                        }),
                        201,
                        &retries,
                    )
                    .await?;
                out.push(Patient {
                    id: reg["user"]["id"]
                        .as_str()
                        .map(str::to_owned)
                        .ok_or_else(|| anyhow!("the registration has no user id: {reg}"))?,
                    token: string(&reg, "access_token")?,
                    email,
                    timezone,
                });
            }
            anyhow::Ok(out)
        });
    }
    let mut patients = Vec::new();
    while let Some(done) = tasks.join_next().await {
        patients.extend(done??);
    }
    Ok((counsellor.to_string(), patients))
}

/// Imports `days` days of history, ending yesterday, for every patient, through the API as a
/// clinic would (setup, not measurement: 5xx and 429 are retried). Returns the days imported.
async fn import_history(
    api: &Arc<Api>,
    patients: &Arc<Vec<Patient>>,
    counsellor: &str,
    days: u32,
    concurrency: u32,
    retries: &Arc<AtomicU64>,
) -> anyhow::Result<u64> {
    let token = Arc::new(counsellor.to_owned());
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..concurrency.min(u32::try_from(patients.len()).unwrap_or(u32::MAX)) {
        let (api, patients, token, retries) = (
            api.clone(),
            patients.clone(),
            token.clone(),
            retries.clone(),
        );
        tasks.spawn(async move {
            let mut rng = StdRng::seed_from_u64(1_000 + u64::from(w));
            let mut imported = 0_u64;
            let step = usize::try_from(concurrency).unwrap_or(1);
            for p in patients
                .iter()
                .skip(usize::try_from(w).unwrap_or(0))
                .step_by(step)
            {
                let today = local_today(p.timezone);
                let mut start = 0;
                while start < days {
                    let n = IMPORT_BATCH.min(days - start);
                    // Oldest first: days `days - start` … `days - start - n + 1` before today.
                    let check_ins: Vec<Value> = (0..n)
                        .map(|k| {
                            let back = i64::from(days - start - k);
                            let mut c = check_in_body(&mut rng);
                            c["date"] = json!((today - chrono::TimeDelta::days(back)).to_string());
                            c
                        })
                        .collect();
                    api.post_retrying(
                        &format!("/v1/patients/{}/check-ins/import", p.id),
                        Some(&token),
                        &json!({"source": "aftercare-load", "check_ins": check_ins}),
                        201,
                        &retries,
                    )
                    .await?;
                    imported += u64::from(n);
                    start += n;
                }
            }
            anyhow::Ok(imported)
        });
    }
    let mut total = 0;
    while let Some(done) = tasks.join_next().await {
        total += done??;
    }
    Ok(total)
}

fn local_today(timezone: &str) -> NaiveDate {
    let tz: chrono_tz::Tz = timezone.parse().unwrap_or(chrono_tz::UTC);
    chrono::Utc::now().with_timezone(&tz).date_naive()
}

fn check_in_body(rng: &mut StdRng) -> Value {
    let craving: u8 = rng.gen_range(0..=10);
    let used = rng.gen_bool(0.03);
    let mut body = json!({
        "craving": craving,
        "mood": rng.gen_range(0..=10),
        "exercise_minutes": rng.gen_range(0..=12) * 5,
        "meals": rng.gen_range(0..=4),
        "used_substance": used,
        "sleep_hours": f64::from(rng.gen_range(30_u8..=95)) / 10.0,
        "anxiety": rng.gen_range(0..=10),
        "irritability": rng.gen_range(0..=10),
        "loneliness": rng.gen_range(0..=10),
        "attended_support": rng.gen_bool(0.4),
        "took_medication": rng.gen_bool(0.9),
    });
    if craving >= 5 {
        body["triggers"] = json!(["stress", "people"]);
    }
    if used {
        body["substances"] = json!(["heroin"]);
    }
    body
}

/// What one phase measured.
#[derive(Default)]
struct Tally {
    latencies: Vec<Duration>,
    ok: u64,
    by_status: BTreeMap<u16, u64>,
    transport_errors: u64,
}

impl Tally {
    fn merge(&mut self, other: Tally) {
        self.latencies.extend(other.latencies);
        self.ok += other.ok;
        for (s, n) in other.by_status {
            *self.by_status.entry(s).or_default() += n;
        }
        self.transport_errors += other.transport_errors;
    }

    /// Latencies are kept for successful requests only: a fast error must not flatter them.
    fn record(&mut self, took: Duration, outcome: Result<u16, reqwest::Error>) {
        match outcome {
            Ok(s) if (200..300).contains(&s) => {
                self.ok += 1;
                self.latencies.push(took);
            }
            Ok(s) => *self.by_status.entry(s).or_default() += 1,
            Err(_) => self.transport_errors += 1,
        }
    }
}

fn percentile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    // Nearest rank.
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms_f(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0 * 100.0).round() / 100.0
}

/// What one phase measured, summed up.
struct Summary {
    label: &'static str,
    key: &'static str,
    requests: u64,
    ok: u64,
    seconds: f64,
    p50: Duration,
    p95: Duration,
    p99: Duration,
    max: Duration,
    by_status: BTreeMap<u16, u64>,
    transport_errors: u64,
}

impl Summary {
    fn new(label: &'static str, key: &'static str, mut t: Tally, elapsed: Duration) -> Self {
        t.latencies.sort();
        let errors: u64 = t.by_status.values().sum::<u64>() + t.transport_errors;
        Self {
            label,
            key,
            requests: t.ok + errors,
            ok: t.ok,
            seconds: elapsed.as_secs_f64().max(1e-9),
            p50: percentile(&t.latencies, 0.50),
            p95: percentile(&t.latencies, 0.95),
            p99: percentile(&t.latencies, 0.99),
            max: t.latencies.last().copied().unwrap_or_default(),
            by_status: t.by_status,
            transport_errors: t.transport_errors,
        }
    }

    fn errors(&self) -> u64 {
        self.requests - self.ok
    }

    fn print(&self) {
        println!("{}", self.label);
        println!(
            "  {} requests in {:.1} s: {:.0} req/s, {:.0} ok/s ({} ok, {} errors)",
            self.requests,
            self.seconds,
            self.requests as f64 / self.seconds,
            self.ok as f64 / self.seconds,
            self.ok,
            self.errors(),
        );
        println!(
            "  latency of ok requests: p50 {:.1} ms  p95 {:.1} ms  p99 {:.1} ms  max {:.1} ms",
            ms_f(self.p50),
            ms_f(self.p95),
            ms_f(self.p99),
            ms_f(self.max),
        );
        if self.errors() > 0 {
            let parts: Vec<String> = self
                .by_status
                .iter()
                .map(|(s, c)| format!("HTTP {s}: {c}"))
                .chain(
                    (self.transport_errors > 0)
                        .then(|| format!("transport: {}", self.transport_errors)),
                )
                .collect();
            println!("  errors: {}", parts.join(", "));
        }
    }

    /// The phase as JSON: errors by status code, transport failures under `"transport"`.
    fn json(&self) -> Value {
        let mut errors = serde_json::Map::new();
        for (s, c) in &self.by_status {
            errors.insert(s.to_string(), json!(c));
        }
        if self.transport_errors > 0 {
            errors.insert("transport".into(), json!(self.transport_errors));
        }
        json!({
            "label": self.label,
            "requests": self.requests,
            "ok": self.ok,
            "seconds": (self.seconds * 1000.0).round() / 1000.0,
            "ok_per_s": (self.ok as f64 / self.seconds * 10.0).round() / 10.0,
            "p50_ms": ms_f(self.p50),
            "p95_ms": ms_f(self.p95),
            "p99_ms": ms_f(self.p99),
            "max_ms": ms_f(self.max),
            "errors": errors,
        })
    }
}

/// What a measured phase sends.
#[derive(Debug, Clone, Copy)]
enum Phase {
    /// `PUT /v1/me/check-ins/{today}` with varied values.
    CheckIns,
    /// The chosen authenticated read.
    Reads(Read),
    /// `POST /v1/auth/login` with the patient's password (one argon2id verification each).
    SignIns,
}

fn request(api: &Api, p: &Patient, phase: Phase, rng: &mut StdRng) -> reqwest::RequestBuilder {
    match phase {
        Phase::CheckIns => {
            let date = local_today(p.timezone);
            api.client
                .put(format!("{}/v1/me/check-ins/{date}", api.base))
                .json(&check_in_body(rng))
                .bearer_auth(&p.token)
        }
        Phase::Reads(read) => {
            let path = match read {
                Read::Summary => "/v1/me/summary",
                Read::CheckIns => "/v1/me/check-ins?limit=7",
            };
            api.client
                .get(format!("{}{path}", api.base))
                .bearer_auth(&p.token)
        }
        Phase::SignIns => api
            .client
            .post(format!("{}/v1/auth/login", api.base))
            .json(&json!({"email": p.email, "password": PATIENT_PASSWORD})),
    }
}

/// Sends one request and reads the whole body (the latency is the full response).
async fn send(rb: reqwest::RequestBuilder) -> Result<u16, reqwest::Error> {
    let resp = rb.send().await?;
    let status = resp.status().as_u16();
    resp.bytes().await.map(|_| status)
}

/// How arrivals are paced.
#[derive(Debug, Clone, Copy)]
enum Pace {
    /// Each client sends when its previous request answered.
    Closed,
    /// This many arrivals per second at fixed times.
    Open(u32),
}

/// Runs `concurrency` clients for `seconds`.
///
/// Closed loop: each client cycles over its own patients, so no two clients write one
/// patient's check-in at once (with fewer patients than clients, some share).
///
/// Open loop: arrival k is due at `start + k / rate` and goes to patient k mod n; a free
/// client takes the next arrival and sends it at its time, and when every client is busy the
/// arrival waits — its latency runs from the time it was due, not from when it was sent.
async fn drive(
    api: &Arc<Api>,
    patients: &Arc<Vec<Patient>>,
    concurrency: u32,
    seconds: u64,
    phase: Phase,
    pace: Pace,
) -> anyhow::Result<(Tally, Duration)> {
    let start = tokio::time::Instant::now();
    let deadline = start + Duration::from_secs(seconds);
    let next_arrival = Arc::new(AtomicU64::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..concurrency {
        let (api, patients, next_arrival) = (api.clone(), patients.clone(), next_arrival.clone());
        tasks.spawn(async move {
            let mut rng = StdRng::seed_from_u64(u64::from(w));
            let mut tally = Tally::default();
            let n = patients.len();
            if n == 0 {
                return tally;
            }
            let step = usize::try_from(concurrency).unwrap_or(1);
            let w = usize::try_from(w).unwrap_or(0);
            let mut own: Vec<usize> = (w..n).step_by(step).collect();
            if own.is_empty() {
                own.push(w % n);
            }
            let mut j = 0;
            loop {
                let (p, due) = match pace {
                    Pace::Closed => {
                        if tokio::time::Instant::now() >= deadline {
                            break;
                        }
                        j += 1;
                        (&patients[own[(j - 1) % own.len()]], None)
                    }
                    Pace::Open(rate) => {
                        let k = next_arrival.fetch_add(1, Ordering::Relaxed);
                        let due = start + Duration::from_secs_f64(k as f64 / f64::from(rate));
                        if due >= deadline {
                            break;
                        }
                        tokio::time::sleep_until(due).await;
                        let i = usize::try_from(k % n as u64).unwrap_or(0);
                        (&patients[i], Some(due))
                    }
                };
                let rb = request(&api, p, phase, &mut rng);
                let sent = tokio::time::Instant::now();
                let outcome = send(rb).await;
                tally.record(due.unwrap_or(sent).elapsed(), outcome);
            }
            tally
        });
    }
    let mut total = Tally::default();
    while let Some(done) = tasks.join_next().await {
        total.merge(done?);
    }
    Ok((total, start.elapsed()))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let base = base_url(&args.url, args.allow_remote)?;
    let run_id = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(usize::try_from(args.concurrency).unwrap_or(16))
        .build()?;
    let api = Arc::new(Api { client, base });
    // With --json, stdout carries the one JSON object; progress goes to stderr.
    let say = |line: String| {
        if args.json {
            eprintln!("{line}");
        } else {
            println!("{line}");
        }
    };

    let (status, _) = api
        .call(reqwest::Method::GET, "/health/ready", None, None)
        .await
        .context("the server does not answer")?;
    if status != 200 {
        bail!("{}/health/ready answered {status}", api.base);
    }

    let (email, password) = if args.create_admin {
        create_admin(&run_id).await?
    } else {
        let email = args.email.clone().unwrap_or_default();
        let password = args
            .password
            .clone()
            .ok_or_else(|| anyhow!("--password (or AFTERCARE_LOAD_PASSWORD) is required"))?;
        (email, password)
    };
    let login = api
        .post_ok(
            "/v1/auth/login",
            None,
            &json!({"email": email, "password": password}),
            200,
        )
        .await
        .context("admin sign-in")?;
    let admin_token = string(&login, "access_token")?;

    let pace = args.rate.map_or(Pace::Closed, Pace::Open);
    say(format!(
        "aftercare-load: {} — {} patients, {} concurrent clients, {} s per phase, {} (run {run_id})",
        api.base,
        args.patients,
        args.concurrency,
        args.seconds,
        match pace {
            Pace::Closed => "closed loop".to_owned(),
            Pace::Open(r) => format!("open loop at {r} arrivals/s"),
        },
    ));
    let t0 = Instant::now();
    let retries = Arc::new(AtomicU64::new(0));
    let (counsellor, patients) = enrol(
        &api,
        &admin_token,
        &run_id,
        args.patients,
        args.concurrency,
        &retries,
    )
    .await
    .context("enrolment")?;
    let took = t0.elapsed();
    let registrations_per_s = patients.len() as f64 / took.as_secs_f64().max(1e-9);
    say(format!(
        "enrolment (invite + register, argon2id hash per registration)\n  {} patients in {:.1} s: {registrations_per_s:.1} registrations/s; {} requests retried after 5xx/429",
        patients.len(),
        took.as_secs_f64(),
        retries.load(Ordering::Relaxed),
    ));
    let patients = Arc::new(patients);

    let mut history = Value::Null;
    if args.history_days > 0 {
        let t0 = Instant::now();
        let imported = import_history(
            &api,
            &patients,
            &counsellor,
            args.history_days,
            args.concurrency,
            &retries,
        )
        .await
        .context("history import")?;
        let took = t0.elapsed().as_secs_f64();
        say(format!(
            "history (POST /v1/patients/{{id}}/check-ins/import)\n  {imported} days for {} patients in {took:.1} s: {:.0} days/s",
            patients.len(),
            imported as f64 / took.max(1e-9),
        ));
        history = json!({
            "days_per_patient": args.history_days,
            "imported": imported,
            "seconds": (took * 1000.0).round() / 1000.0,
        });
    }

    let (c, secs) = (args.concurrency, args.seconds);
    let read_label = match args.read {
        Read::Summary => "reads      GET /v1/me/summary",
        Read::CheckIns => "reads      GET /v1/me/check-ins?limit=7",
    };
    let phases = [
        (
            Phase::CheckIns,
            "check-ins  PUT /v1/me/check-ins/{today}",
            "check_ins",
        ),
        (Phase::Reads(args.read), read_label, "reads"),
        (
            Phase::SignIns,
            "sign-ins   POST /v1/auth/login (argon2id verification)",
            "sign_ins",
        ),
    ];
    let mut out = serde_json::Map::new();
    for (phase, label, key) in phases {
        let (tally, elapsed) = drive(&api, &patients, c, secs, phase, pace).await?;
        let summary = Summary::new(label, key, tally, elapsed);
        if args.json {
            eprintln!("{label}: {:.0} ok/s", summary.ok as f64 / summary.seconds);
        } else {
            summary.print();
        }
        out.insert(summary.key.to_owned(), summary.json());
    }
    if args.json {
        let report = json!({
            "url": api.base,
            "run": run_id,
            "patients": patients.len(),
            "concurrency": args.concurrency,
            "seconds_per_phase": args.seconds,
            "rate": args.rate,
            "mode": if args.rate.is_some() { "open" } else { "closed" },
            "enrolment": {
                "patients": patients.len(),
                "seconds": (took.as_secs_f64() * 1000.0).round() / 1000.0,
                "registrations_per_s": (registrations_per_s * 10.0).round() / 10.0,
                "retried": retries.load(Ordering::Relaxed),
            },
            "history": history,
            "phases": out,
        });
        println!("{report}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_without_allow_remote() {
        for ok in [
            "http://127.0.0.1:8080",
            "http://localhost:8080/",
            "http://[::1]:8080",
        ] {
            assert!(base_url(ok, false).is_ok(), "{ok}");
        }
        for bad in [
            "http://10.0.0.5:8080",
            "http://example.org",
            "ftp://127.0.0.1",
        ] {
            assert!(base_url(bad, false).is_err(), "{bad}");
        }
        assert!(base_url("http://example.org", true).is_ok());
    }

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&v, 0.5), Duration::from_millis(50));
        assert_eq!(percentile(&v, 0.99), Duration::from_millis(99));
        assert_eq!(percentile(&[], 0.5), Duration::ZERO);
    }
}
