//! `aftercare-load seed`: fills the database named by the `AFTERCARE_*` variables directly
//! with one organisation of many patients and days of check-in history each, in large
//! transactions of multi-row `INSERT`s, so a benchmark can start from a database of a
//! realistic size in seconds instead of importing it through the API for hours.
//!
//! The rows are the ones the service itself would have written for patients who checked in
//! every day (first/last check-in dates on the patient row, the enrolment phase entry, the
//! care team, the next missed-check-in review), so every read and the sweeps see a consistent
//! database. Seeded check-ins raise no alerts: they are calm days.

use std::time::Instant;

use anyhow::{anyhow, Context};
use chrono::{NaiveDate, NaiveDateTime, TimeDelta};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use aftercare::domain::policy::RiskPolicy;
use aftercare::service::check_ins::{local_today, missed_due};
use aftercare::store::check_ins::CheckInRow;
use aftercare::store::schema::{care_team_members, organisations, patients, phase_changes, users};
use aftercare::store::{self, DbConnection};

use crate::{PATIENT_PASSWORD, TIMEZONES};

/// What to seed.
#[derive(Debug, Clone, clap::Args)]
pub struct SeedArgs {
    /// Patients in the new organisation.
    #[arg(long, default_value_t = 2_000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub patients: u32,
    /// Days of check-in history per patient, one check-in a day.
    #[arg(long, default_value_t = 730, value_parser = clap::value_parser!(u32).range(0..=3_650))]
    pub days: u32,
    /// Percentage of patients who stopped checking in 2 to 6 days ago (so the missed-check-in
    /// sweep has them due now); the others checked in yesterday.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=100))]
    pub silent_percent: u8,
    /// Patients per counsellor (each patient is on one counsellor's care team).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub caseload: u32,
    /// Random seed for the check-in values.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
}

/// Rows per multi-row `INSERT`: 500 rows of at most 28 columns stay under SQLite's 32,766 and
/// PostgreSQL's 65,535 bound parameters.
const CHUNK: usize = 500;
/// Patients per transaction: big enough that commits (fsyncs) are rare, small enough that a
/// transaction's rows fit comfortably in memory (1,000 × 730 days is 730k check-ins).
const PATIENTS_PER_TX: usize = 250;

// The service's row types leave `None` to mean "the column's default", which SQLite cannot
// say inside a multi-row `VALUES`; these carry explicit NULLs.

#[derive(Insertable)]
#[diesel(table_name = organisations, treat_none_as_null = true)]
struct NewOrganisation {
    id: String,
    name: String,
    risk_policy: String,
    crisis_resources: Option<String>,
    created_at: NaiveDateTime,
}

#[derive(Insertable, Clone)]
#[diesel(table_name = users, treat_none_as_null = true)]
struct NewUser {
    id: String,
    organisation_id: String,
    role: String,
    email: String,
    password_hash: String,
    display_name: String,
    timezone: String,
    disabled: bool,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
    password_changed_at: NaiveDateTime,
}

#[derive(Insertable)]
#[diesel(table_name = patients, treat_none_as_null = true)]
struct NewPatient {
    user_id: String,
    organisation_id: String,
    phase: String,
    phase_started_on: NaiveDate,
    enrolment_last_use_on: Option<NaiveDate>,
    risk_overrides: Option<String>,
    first_check_in_on: Option<NaiveDate>,
    last_check_in_on: Option<NaiveDate>,
    last_use_on: Option<NaiveDate>,
    missed_check_due_at: Option<NaiveDateTime>,
    created_at: NaiveDateTime,
    country: Option<String>,
}

#[derive(Insertable)]
#[diesel(table_name = phase_changes, treat_none_as_null = true)]
struct NewPhase {
    id: String,
    patient_id: String,
    phase: String,
    started_on: NaiveDate,
    changed_by: Option<String>,
    created_at: NaiveDateTime,
}

#[derive(Insertable)]
#[diesel(table_name = care_team_members)]
struct NewMember {
    patient_id: String,
    counsellor_id: String,
    is_primary: bool,
    added_at: NaiveDateTime,
}

/// Multi-row `INSERT`s of `CHUNK` rows each, on the backend's own connection (diesel's
/// multi-connection cannot build them).
macro_rules! insert_all {
    ($conn:expr, $table:expr, $rows:expr) => {{
        let mut n = 0_usize;
        for chunk in $rows.chunks(CHUNK) {
            let q = diesel::insert_into($table).values(chunk);
            n += match &mut *$conn {
                DbConnection::Postgresql(c) => q.execute(c)?,
                DbConnection::Sqlite(c) => q.execute(c)?,
            };
        }
        n
    }};
}

/// Check-ins per multi-row `INSERT` written as SQL text.
const CHECK_IN_CHUNK: usize = 1_000;

/// Inserts check-ins as multi-row `INSERT`s written out as SQL text. The bulk of a seed is
/// millions of these rows, and binding 28 parameters a row through diesel's query builder
/// costs several times what SQLite or PostgreSQL spend storing them; every value here is one
/// this program made (ids, numbers, dates, fixed words), quoted all the same. Dates and
/// timestamps are written as diesel writes them (`YYYY-MM-DD`, `YYYY-MM-DD HH:MM:SS`).
fn insert_check_ins(conn: &mut DbConnection, rows: &[CheckInRow]) -> anyhow::Result<usize> {
    fn text(out: &mut String, v: &str) {
        out.push('\'');
        out.push_str(&v.replace('\'', "''"));
        out.push('\'');
    }
    fn opt<T: std::fmt::Display>(out: &mut String, v: Option<T>) {
        match v {
            Some(v) => out.push_str(&v.to_string()),
            None => out.push_str("NULL"),
        }
    }
    fn flag(out: &mut String, v: Option<bool>) {
        out.push_str(match v {
            Some(true) => "TRUE",
            Some(false) => "FALSE",
            None => "NULL",
        });
    }
    fn opt_text(out: &mut String, v: Option<&str>) {
        match v {
            Some(v) => text(out, v),
            None => out.push_str("NULL"),
        }
    }
    let stamp = |t: NaiveDateTime| t.format("%Y-%m-%d %H:%M:%S%.f").to_string();
    for chunk in rows.chunks(CHECK_IN_CHUNK) {
        let mut sql = String::with_capacity(chunk.len() * 400);
        sql.push_str(
            "INSERT INTO check_ins (id, patient_id, date, craving, mood, exercise_minutes, meals, \
             used_substance, substances, sleep_hours, anxiety, irritability, loneliness, triggers, \
             took_medication, attended_support, withdrawal, withdrawal_score, self_harm_thoughts, \
             note, answered_at, received_at, created_at, updated_at, version, source, \
             imported_from) VALUES ",
        );
        for (i, r) in chunk.iter().enumerate() {
            if i > 0 {
                sql.push(',');
            }
            sql.push('(');
            text(&mut sql, &r.id);
            sql.push(',');
            text(&mut sql, &r.patient_id);
            sql.push(',');
            text(&mut sql, &r.date.to_string());
            sql.push_str(&format!(
                ",{},{},{},{},",
                r.craving, r.mood, r.exercise_minutes, r.meals
            ));
            flag(&mut sql, Some(r.used_substance));
            sql.push(',');
            text(&mut sql, &r.substances);
            sql.push(',');
            opt(&mut sql, r.sleep_hours);
            sql.push(',');
            opt(&mut sql, r.anxiety);
            sql.push(',');
            opt(&mut sql, r.irritability);
            sql.push(',');
            opt(&mut sql, r.loneliness);
            sql.push(',');
            text(&mut sql, &r.triggers);
            sql.push(',');
            flag(&mut sql, r.took_medication);
            sql.push(',');
            flag(&mut sql, r.attended_support);
            sql.push(',');
            opt_text(&mut sql, r.withdrawal.as_deref());
            sql.push(',');
            opt(&mut sql, r.withdrawal_score);
            sql.push(',');
            flag(&mut sql, r.self_harm_thoughts);
            sql.push(',');
            opt_text(&mut sql, r.note.as_deref());
            sql.push(',');
            opt_text(&mut sql, r.answered_at.map(stamp).as_deref());
            for t in [r.received_at, r.created_at, r.updated_at] {
                sql.push(',');
                text(&mut sql, &stamp(t));
            }
            sql.push_str(&format!(",{},", r.version));
            text(&mut sql, &r.source);
            sql.push(',');
            opt_text(&mut sql, r.imported_from.as_deref());
            sql.push(')');
        }
        conn.batch_execute(&sql)?;
    }
    Ok(rows.len())
}

fn at(date: NaiveDate, hour: u32) -> NaiveDateTime {
    date.and_hms_opt(hour, 0, 0).unwrap_or_default()
}

/// A calm day's answers: nothing a default-policy rule fires on.
fn calm_day(rng: &mut StdRng, patient_id: &str, date: NaiveDate, now: NaiveDateTime) -> CheckInRow {
    let received = at(date, 20);
    CheckInRow {
        id: store::new_id(),
        patient_id: patient_id.to_owned(),
        date,
        craving: rng.gen_range(0..=4),
        mood: rng.gen_range(5..=9),
        exercise_minutes: rng.gen_range(1..=12) * 5,
        meals: rng.gen_range(2..=4),
        used_substance: false,
        substances: "[]".into(),
        sleep_hours: Some(f64::from(rng.gen_range(60_u8..=90)) / 10.0),
        anxiety: Some(rng.gen_range(0..=5)),
        irritability: Some(rng.gen_range(0..=5)),
        loneliness: Some(rng.gen_range(0..=5)),
        triggers: "[]".into(),
        took_medication: Some(true),
        attended_support: Some(rng.gen_bool(0.5)),
        withdrawal: None,
        withdrawal_score: None,
        self_harm_thoughts: Some(false),
        note: None,
        answered_at: Some(received),
        received_at: received.min(now),
        created_at: received.min(now),
        updated_at: received.min(now),
        version: 1,
        source: "app".into(),
        imported_from: None,
    }
}

/// What was seeded, to sign in with.
pub struct Seeded {
    pub admin_email: String,
    pub counsellor_email: String,
    pub patient_email: String,
    pub password: String,
}

/// Seeds the database; prints progress and the sign-ins on stdout.
pub async fn run(args: SeedArgs) -> anyhow::Result<()> {
    let settings = aftercare::config::Settings::from_env().map_err(|e| anyhow!("{e}"))?;
    let state = aftercare::startup::build_state(settings).await?;
    let run_id = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
    // One hash for every seeded account: argon2id costs tens of milliseconds each.
    let hash = state
        .hasher
        .hash("seed", PATIENT_PASSWORD.to_owned())
        .await
        .map_err(|e| anyhow!("cannot hash the password: {e}"))?;
    let started = Instant::now();
    let store = state.store.clone();
    let a = args.clone();
    let (seeded, rows) = tokio::task::spawn_blocking(move || -> anyhow::Result<(Seeded, usize)> {
        let mut conn = store.conn().map_err(|e| anyhow!("{e}"))?;
        seed(&mut conn, &a, &run_id, &hash)
    })
    .await
    .context("the seeding task failed")??;
    let took = started.elapsed().as_secs_f64();
    println!(
        "seeded {} patients × {} days ({rows} rows) in {took:.1} s: {:.0} rows/s",
        args.patients,
        args.days,
        rows as f64 / took.max(1e-9),
    );
    println!("sign in (password for every seeded account: {PATIENT_PASSWORD}):");
    println!("  admin       {}", seeded.admin_email);
    println!(
        "  counsellor  {} (and -c1, -c2, …)",
        seeded.counsellor_email
    );
    println!("  patient     {} (and -p1, -p2, …)", seeded.patient_email);
    debug_assert_eq!(seeded.password, PATIENT_PASSWORD);
    Ok(())
}

/// Runs the missed-check-in sweep until a pass finds nobody due; prints the time taken.
pub async fn sweep() -> anyhow::Result<()> {
    let settings = aftercare::config::Settings::from_env().map_err(|e| anyhow!("{e}"))?;
    let state = aftercare::startup::build_state(settings).await?;
    let started = Instant::now();
    let (mut passes, mut raised) = (0, 0);
    loop {
        let t = Instant::now();
        let n = aftercare::service::sweep::missed_check_ins_once(&state)
            .await
            .map_err(|e| anyhow!("the sweep failed: {e}"))?;
        passes += 1;
        raised += n;
        println!(
            "  pass {passes}: {n} missed-check-in findings in {:.3} s",
            t.elapsed().as_secs_f64()
        );
        if n == 0 {
            break;
        }
    }
    println!(
        "missed-check-in sweep: {raised} findings in {passes} passes, {:.3} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Writes the organisation, its staff, patients and their history; returns the sign-ins and
/// how many rows went in.
fn seed(
    conn: &mut DbConnection,
    args: &SeedArgs,
    run_id: &str,
    hash: &str,
) -> anyhow::Result<(Seeded, usize)> {
    let now = store::now();
    let policy = RiskPolicy::default();
    let mut rng = StdRng::seed_from_u64(args.seed);
    let org_id = store::new_id();
    let user = |role: &str, email: String, name: String, tz: &str| NewUser {
        id: store::new_id(),
        organisation_id: org_id.clone(),
        role: role.to_owned(),
        email,
        password_hash: hash.to_owned(),
        display_name: name,
        timezone: tz.to_owned(),
        disabled: false,
        created_at: now,
        updated_at: now,
        password_changed_at: now,
    };
    let admin = user(
        "admin",
        format!("seed-{run_id}-admin@example.org"),
        "Administrator".into(),
        "UTC",
    );
    let counsellors: Vec<NewUser> = (0..args.patients.div_ceil(args.caseload))
        .map(|i| {
            user(
                "counsellor",
                format!("seed-{run_id}-c{i}@example.org"),
                format!("Counsellor {i}"),
                "UTC",
            )
        })
        .collect();
    let mut rows = 0;
    conn.transaction(|conn| -> anyhow::Result<()> {
        let org = NewOrganisation {
            id: org_id.clone(),
            name: format!("Seeded clinic {run_id}"),
            risk_policy: serde_json::to_string(&policy)?,
            crisis_resources: None,
            created_at: now,
        };
        rows += insert_all!(conn, organisations::table, [org]);
        rows += insert_all!(conn, users::table, [admin.clone()]);
        rows += insert_all!(conn, users::table, counsellors);
        Ok(())
    })?;

    let ids: Vec<u32> = (0..args.patients).collect();
    for group in ids.chunks(PATIENTS_PER_TX) {
        let (mut new_users, mut new_patients, mut phases, mut members, mut days) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for &i in group {
            let tz = TIMEZONES[usize::try_from(i).unwrap_or(0) % TIMEZONES.len()];
            let u = user(
                "patient",
                format!("seed-{run_id}-p{i}@example.org"),
                format!("Seeded patient {i}"),
                tz,
            );
            let today = local_today(tz);
            let silent = rng.gen_range(0..100) < args.silent_percent;
            let last = if silent {
                today - TimeDelta::days(rng.gen_range(2..=6))
            } else {
                today - TimeDelta::days(1)
            };
            let first = last - TimeDelta::days(i64::from(args.days.max(1)) - 1);
            let enrolled = at(first, 9).min(now);
            for k in 0..args.days {
                days.push(calm_day(
                    &mut rng,
                    &u.id,
                    first + TimeDelta::days(i64::from(k)),
                    now,
                ));
            }
            let last_check_in = (args.days > 0).then_some(last);
            new_patients.push(NewPatient {
                user_id: u.id.clone(),
                organisation_id: org_id.clone(),
                phase: "aftercare".into(),
                phase_started_on: first,
                enrolment_last_use_on: None,
                risk_overrides: None,
                first_check_in_on: (args.days > 0).then_some(first),
                last_check_in_on: last_check_in,
                last_use_on: None,
                missed_check_due_at: missed_due(tz, last_check_in.unwrap_or(first), &policy),
                created_at: enrolled,
                country: None,
            });
            phases.push(NewPhase {
                id: store::new_id(),
                patient_id: u.id.clone(),
                phase: "aftercare".into(),
                started_on: first,
                changed_by: None,
                created_at: enrolled,
            });
            let c = usize::try_from(i / args.caseload).unwrap_or(0);
            members.push(NewMember {
                patient_id: u.id.clone(),
                counsellor_id: counsellors[c.min(counsellors.len() - 1)].id.clone(),
                is_primary: true,
                added_at: enrolled,
            });
            new_users.push(u);
        }
        conn.transaction(|conn| -> anyhow::Result<()> {
            rows += insert_all!(conn, users::table, new_users);
            rows += insert_all!(conn, patients::table, new_patients);
            rows += insert_all!(conn, phase_changes::table, phases);
            rows += insert_all!(conn, care_team_members::table, members);
            rows += insert_check_ins(conn, &days)?;
            Ok(())
        })?;
    }
    Ok((
        Seeded {
            admin_email: admin.email,
            counsellor_email: format!("seed-{run_id}-c0@example.org"),
            patient_email: format!("seed-{run_id}-p0@example.org"),
            password: PATIENT_PASSWORD.to_owned(),
        },
        rows,
    ))
}
