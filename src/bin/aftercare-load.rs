//! `aftercare-load`: a load benchmark for a running aftercare server (not a test).
//!
//! It enrols patients through the API as a clinic would (the admin invites a counsellor, the
//! counsellor invites patients, each patient registers), then for a fixed time drives
//! concurrent check-ins (`PUT /v1/me/check-ins/{today}`, varied values, so the risk engine and
//! alert deduplication do real work), then the same for an authenticated read and for sign-ins
//! (one argon2id verification each), and prints throughput, latency percentiles and errors for
//! each phase.
//!
//! It only talks to the URL it is given, which must be a loopback address unless
//! `--allow-remote`; it stops by itself.
//!
//! ```sh
//! AFTERCARE_ADMIN_PASSWORD=... aftercare create-admin --organisation Load --email load@example.org
//! aftercare-load --url http://127.0.0.1:8080 --email load@example.org --password ...
//! ```

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use chrono::NaiveDate;
use clap::{Parser, ValueEnum};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

/// Load benchmark for a running aftercare server: enrols patients through the API, then
/// drives concurrent check-ins and reads for a fixed time and reports throughput and latency.
#[derive(Debug, Parser)]
#[command(name = "aftercare-load", version, about)]
struct Args {
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

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    match run(args).await {
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
    token: String,
    email: String,
    timezone: &'static str,
}

/// Enrols `n` patients: the admin invites a counsellor, who invites the patients; each
/// registers (registration hashes the password, so this is the slow part).
async fn enrol(
    api: &Arc<Api>,
    admin_token: &str,
    run_id: &str,
    n: u32,
    concurrency: u32,
    retries: &Arc<AtomicU64>,
) -> anyhow::Result<Vec<Patient>> {
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
    Ok(patients)
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

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn report(label: &str, mut t: Tally, elapsed: Duration) {
    t.latencies.sort();
    let errors: u64 = t.by_status.values().sum::<u64>() + t.transport_errors;
    let n = t.ok + errors;
    let secs = elapsed.as_secs_f64().max(1e-9);
    println!("{label}");
    println!(
        "  {n} requests in {:.1} s: {:.0} req/s, {:.0} ok/s ({} ok, {errors} errors)",
        elapsed.as_secs_f64(),
        n as f64 / secs,
        t.ok as f64 / secs,
        t.ok,
    );
    println!(
        "  latency of ok requests: p50 {}  p95 {}  p99 {}  max {}",
        ms(percentile(&t.latencies, 0.50)),
        ms(percentile(&t.latencies, 0.95)),
        ms(percentile(&t.latencies, 0.99)),
        ms(t.latencies.last().copied().unwrap_or_default()),
    );
    if errors > 0 {
        let parts: Vec<String> = t
            .by_status
            .iter()
            .map(|(s, c)| format!("HTTP {s}: {c}"))
            .chain((t.transport_errors > 0).then(|| format!("transport: {}", t.transport_errors)))
            .collect();
        println!("  errors: {}", parts.join(", "));
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

/// Runs `concurrency` workers for `seconds`, each cycling over its own patients.
async fn drive(
    api: &Arc<Api>,
    patients: &Arc<Vec<Patient>>,
    concurrency: u32,
    seconds: u64,
    phase: Phase,
) -> anyhow::Result<(Tally, Duration)> {
    let start = Instant::now();
    let deadline = start + Duration::from_secs(seconds);
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..concurrency {
        let (api, patients) = (api.clone(), patients.clone());
        tasks.spawn(async move {
            let mut rng = StdRng::seed_from_u64(u64::from(w));
            let mut tally = Tally::default();
            // Worker w owns patients w, w+c, w+2c, … so no two workers write one patient's
            // check-in at once (with fewer patients than workers, some share).
            let n = patients.len();
            let step = usize::try_from(concurrency).unwrap_or(1);
            let w = usize::try_from(w).unwrap_or(0);
            let mut own: Vec<usize> = (w..n).step_by(step).collect();
            if own.is_empty() && n > 0 {
                own.push(w % n);
            }
            let mut j = 0;
            while Instant::now() < deadline {
                let Some(p) = own.get(j % own.len().max(1)).and_then(|&i| patients.get(i)) else {
                    break;
                };
                j += 1;
                let rb = match phase {
                    Phase::CheckIns => {
                        let date = local_today(p.timezone);
                        api.client
                            .put(format!("{}/v1/me/check-ins/{date}", api.base))
                            .json(&check_in_body(&mut rng))
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
                };
                let t0 = Instant::now();
                let outcome = match rb.send().await {
                    Ok(resp) => {
                        let status = resp.status().as_u16();
                        // Read the whole body: the latency is the full response.
                        resp.bytes().await.map(|_| status)
                    }
                    Err(e) => Err(e),
                };
                tally.record(t0.elapsed(), outcome);
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

    println!(
        "aftercare-load: {} — {} patients, {} concurrent clients, {} s per phase (run {run_id})",
        api.base, args.patients, args.concurrency, args.seconds
    );
    let t0 = Instant::now();
    let retries = Arc::new(AtomicU64::new(0));
    let patients = enrol(
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
    println!(
        "enrolment (invite + register, argon2id hash per registration)\n  {} patients in {:.1} s: {:.1} registrations/s; {} requests retried after 5xx/429",
        patients.len(),
        took.as_secs_f64(),
        patients.len() as f64 / took.as_secs_f64().max(1e-9),
        retries.load(Ordering::Relaxed),
    );
    let patients = Arc::new(patients);

    let (c, secs) = (args.concurrency, args.seconds);
    let (tally, elapsed) = drive(&api, &patients, c, secs, Phase::CheckIns).await?;
    report("check-ins  PUT /v1/me/check-ins/{today}", tally, elapsed);

    let (tally, elapsed) = drive(&api, &patients, c, secs, Phase::Reads(args.read)).await?;
    let label = match args.read {
        Read::Summary => "reads      GET /v1/me/summary",
        Read::CheckIns => "reads      GET /v1/me/check-ins?limit=7",
    };
    report(label, tally, elapsed);

    let (tally, elapsed) = drive(&api, &patients, c, secs, Phase::SignIns).await?;
    report(
        "sign-ins   POST /v1/auth/login (argon2id verification)",
        tally,
        elapsed,
    );
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
