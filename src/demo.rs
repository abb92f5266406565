//! `aftercare demo`: fills an empty database with a demo clinic — an admin, two counsellors
//! and twelve patients with up to five weeks of check-ins ending today — and reports the
//! logins, so a newcomer can sign in and see the whole loop at once.
//!
//! Everything goes through the service layer, exactly as the API would do it: the admin is
//! created like `aftercare create-admin`, counsellors and patients are invited and register,
//! and every check-in is submitted through [`service::check_ins::submit_as_of`] — the path a
//! phone's `PUT /v1/me/check-ins/{date}` takes — "as of" its own date, in date order, so the
//! risk engine sees each day as it would have then. Older alerts are resolved by the
//! counsellor two days after they fired, as a clinic would. At the end the missed-check-in
//! sweep runs once.
//!
//! The data come from a fixed-seed generator: the same values every run (the dates move with
//! today).

use chrono::{NaiveDate, TimeDelta, Utc};
use diesel::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::auth::{Caller, Role};
use crate::domain::check_in::{CheckInInput, Sows, Trigger};
use crate::error::ApiError;
use crate::service;
use crate::service::accounts::{InvitationRequest, Registration};
use crate::state::AppState;
use crate::store::alerts::{self as alert_store, AlertFilter, Scope};
use crate::store::schema;

/// The one password every demo account shares (it passes the password policy).
pub const PASSWORD: &str = "demo-password-2026";
/// The demo organisation's name.
pub const ORGANISATION: &str = "Harbour Recovery (demo)";
/// The admin's email.
pub const ADMIN_EMAIL: &str = "admin@harbour-demo.example.org";
const SEED: u64 = 2026;
const DOMAIN: &str = "harbour-demo.example.org";

/// One demo login.
#[derive(Debug, Clone)]
pub struct Account {
    /// `admin`, `counsellor` or `patient`.
    pub role: &'static str,
    /// Display name.
    pub name: String,
    /// Email (the login).
    pub email: String,
    /// What to look for (patients: phase, timezone and story).
    pub note: String,
    /// The TOTP secret (base32) of an account that signs in with a second factor.
    pub totp_secret: Option<String>,
}

/// What the demo created.
#[derive(Debug, Clone)]
pub struct Report {
    /// The organisation's id.
    pub organisation_id: String,
    /// Every login, admin first.
    pub accounts: Vec<Account>,
    /// Check-ins stored.
    pub check_ins: usize,
    /// Alerts in the organisation, any status.
    pub alerts: i64,
    /// Alerts not yet resolved.
    pub open_alerts: i64,
    /// The connected app: (name, client id, client secret, the consenting patient's name).
    pub integration: Option<(String, String, String, String)>,
}

/// A patient's five weeks, in short.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Story {
    /// Doing well, with one craving spike three weeks ago that the counsellor followed up.
    SteadyWithOldSpike,
    /// Doing well; has not checked in yet today.
    NotYetToday,
    /// Sliding towards a lapse: rising craving, falling mood and sleep, missed meals.
    Sliding,
    /// Weeks abstinent, then used yesterday evening.
    Lapse,
    /// Stopped checking in five days ago.
    Quiet,
    /// Low mood for days, then thoughts of self-harm today.
    SelfHarm,
    /// Pain and cravings; pressed SOS today.
    Sos,
    /// Six days into detox; severe withdrawal at the start.
    DetoxSevere,
    /// Four days into detox; moderate withdrawal.
    DetoxMild,
    /// On medication (MOUD); missed it the last two days.
    MedicationMissed,
    /// Stopped going to meetings two weeks ago and stopped exercising last week.
    Disengaged,
    /// Discharged; still checks in every few days.
    Discharged,
}

struct PatientSpec {
    name: &'static str,
    email: &'static str,
    timezone: &'static str,
    phase: &'static str,
    counsellor: usize,
    days: i64,
    story: Story,
    note: &'static str,
}

const COUNSELLORS: [(&str, &str, &str); 2] = [
    ("Alex Rivera", "alex.rivera", "America/New_York"),
    ("Jordan Lee", "jordan.lee", "Europe/London"),
];

const PATIENTS: [PatientSpec; 12] = [
    PatientSpec {
        name: "Priya Raman",
        email: "priya.raman",
        timezone: "Asia/Kolkata",
        phase: "treatment",
        counsellor: 0,
        days: 35,
        story: Story::Lapse,
        note: "used after 5 weeks abstinent -> critical substance_use",
    },
    PatientSpec {
        name: "Lena Fischer",
        email: "lena.fischer",
        timezone: "Europe/Berlin",
        phase: "treatment",
        counsellor: 1,
        days: 30,
        story: Story::SelfHarm,
        note: "low mood for days, self-harm thoughts today",
    },
    PatientSpec {
        name: "Diego Alvarez",
        email: "diego.alvarez",
        timezone: "America/Los_Angeles",
        phase: "aftercare",
        counsellor: 0,
        days: 35,
        story: Story::Sos,
        note: "pain and cravings, pressed SOS today",
    },
    PatientSpec {
        name: "Tom Brennan",
        email: "tom.brennan",
        timezone: "Europe/London",
        phase: "aftercare",
        counsellor: 1,
        days: 35,
        story: Story::Sliding,
        note: "sliding: craving up, mood/sleep down, skipping meals",
    },
    PatientSpec {
        name: "Jake Morrison",
        email: "jake.morrison",
        timezone: "America/Chicago",
        phase: "aftercare",
        counsellor: 0,
        days: 33,
        story: Story::Quiet,
        note: "went quiet 5 days ago -> missed_check_ins",
    },
    PatientSpec {
        name: "Aroha Ngata",
        email: "aroha.ngata",
        timezone: "Pacific/Auckland",
        phase: "detox",
        counsellor: 1,
        days: 6,
        story: Story::DetoxSevere,
        note: "day 6 of detox, severe withdrawal early on",
    },
    PatientSpec {
        name: "Sam Whitfield",
        email: "sam.whitfield",
        timezone: "Australia/Sydney",
        phase: "treatment",
        counsellor: 0,
        days: 28,
        story: Story::MedicationMissed,
        note: "on MOUD, missed it the last 2 days",
    },
    PatientSpec {
        name: "Chloe Dubois",
        email: "chloe.dubois",
        timezone: "Europe/Paris",
        phase: "aftercare",
        counsellor: 1,
        days: 35,
        story: Story::Disengaged,
        note: "stopped meetings and exercise",
    },
    PatientSpec {
        name: "Maya Okafor",
        email: "maya.okafor",
        timezone: "America/New_York",
        phase: "aftercare",
        counsellor: 0,
        days: 35,
        story: Story::SteadyWithOldSpike,
        note: "steady; an old craving alert, resolved",
    },
    PatientSpec {
        name: "Ben Kowalski",
        email: "ben.kowalski",
        timezone: "America/Toronto",
        phase: "detox",
        counsellor: 1,
        days: 4,
        story: Story::DetoxMild,
        note: "day 4 of detox, moderate withdrawal",
    },
    PatientSpec {
        name: "Fatima Haddad",
        email: "fatima.haddad",
        timezone: "Asia/Dubai",
        phase: "aftercare",
        counsellor: 0,
        days: 35,
        story: Story::NotYetToday,
        note: "steady; not checked in yet today",
    },
    PatientSpec {
        name: "Marcus Reid",
        email: "marcus.reid",
        timezone: "America/Denver",
        phase: "discharged",
        counsellor: 1,
        days: 35,
        story: Story::Discharged,
        note: "discharged; checks in every few days",
    },
];

fn email(local: &str) -> String {
    format!("{local}@{DOMAIN}")
}

/// An [`ApiError`] as a readable message (validation errors name their fields).
fn explain(context: &str, e: ApiError) -> anyhow::Error {
    match e {
        ApiError::Validation(errors) | ApiError::BadQuery(errors) => {
            let lines: Vec<String> = errors
                .iter()
                .map(|e| format!("{}: {}", e.field, e.message))
                .collect();
            anyhow::anyhow!("{context}: {}", lines.join("; "))
        }
        other => anyhow::anyhow!("{context}: {other}"),
    }
}

fn caller(user_id: &str, organisation_id: &str, role: Role, timezone: &str) -> Caller {
    Caller {
        user_id: user_id.to_owned(),
        organisation_id: organisation_id.to_owned(),
        role,
        timezone: timezone.to_owned(),
        request_id: None,
        signed_in_at: None,
        must_enrol_mfa: false,
    }
}

/// Fills the (empty) database behind `state` with the demo clinic. Refuses when any
/// organisation exists.
pub async fn run(state: &AppState) -> anyhow::Result<Report> {
    let existing = state
        .store
        .run(|conn| -> Result<i64, ApiError> {
            Ok(schema::organisations::table.count().get_result(conn)?)
        })
        .await
        .map_err(|e| explain("cannot read the database", e))?;
    if existing > 0 {
        anyhow::bail!(
            "the database already has {existing} organisation(s); `aftercare demo` only fills an \
             empty database. Point AFTERCARE_DATABASE_URL at a new one, e.g. \
             AFTERCARE_DATABASE_URL=sqlite://demo.db aftercare demo"
        );
    }

    let mut accounts = Vec::new();
    let (organisation_id, admin_id) = service::admin::create_admin(
        state,
        ORGANISATION,
        ADMIN_EMAIL,
        PASSWORD.to_owned(),
        crate::startup::default_policy_json(),
    )
    .await
    .map_err(|e| explain("cannot create the admin", e))?;
    accounts.push(Account {
        role: "admin",
        name: "Administrator".into(),
        email: ADMIN_EMAIL.into(),
        note: "invites, care teams, policy, audit log".into(),
        totp_secret: None,
    });
    let admin = caller(&admin_id, &organisation_id, Role::Admin, "UTC");

    let mut counsellors = Vec::new();
    for (name, local, timezone) in COUNSELLORS {
        let id = enrol(
            state,
            &admin,
            "counsellor",
            None,
            None,
            name,
            local,
            timezone,
        )
        .await?;
        counsellors.push(caller(&id, &organisation_id, Role::Counsellor, timezone));
        accounts.push(Account {
            role: "counsellor",
            name: name.into(),
            email: email(local),
            note: "caseload of 6".into(),
            totp_secret: None,
        });
    }
    // The second counsellor signs in with a second factor, as staff of a clinic requiring one
    // would: enrolled and confirmed through the service, as the API does it.
    let secret = enrol_totp(state, counsellors.get(MFA_COUNSELLOR)).await?;
    if let Some(account) = accounts.get_mut(1 + MFA_COUNSELLOR) {
        account.note = "caseload of 6; signs in with a second factor (TOTP)".into();
        account.totp_secret = Some(secret);
    }

    let mut rng = StdRng::seed_from_u64(SEED);
    let mut check_ins = 0;
    for spec in &PATIENTS {
        let Some(counsellor) = counsellors.get(spec.counsellor) else {
            anyhow::bail!("demo data names a counsellor that does not exist");
        };
        let today = service::check_ins::local_today(spec.timezone);
        // Last use before enrolment: the day before the history starts (detox), or weeks
        // before it.
        let last_use = match spec.story {
            Story::DetoxSevere | Story::DetoxMild => today - TimeDelta::days(spec.days),
            _ => today - TimeDelta::days(spec.days + rng.gen_range(5..40)),
        };
        let patient_id = enrol(
            state,
            counsellor,
            "patient",
            Some(spec.phase),
            Some(last_use),
            spec.name,
            spec.email,
            spec.timezone,
        )
        .await?;
        // The patient joined when their history starts, as a real one would have: silences
        // count from enrolment, never from before it.
        let enrolled = service::check_ins::local_midnight_utc(
            spec.timezone,
            today - TimeDelta::days(spec.days),
        );
        let id = patient_id.clone();
        state
            .store
            .run(move |conn| -> Result<usize, ApiError> {
                Ok(diesel::update(schema::patients::table.find(id))
                    .set(schema::patients::created_at.eq(enrolled))
                    .execute(conn)?)
            })
            .await
            .map_err(|e| explain("cannot date the enrolment", e))?;
        let patient = caller(&patient_id, &organisation_id, Role::Patient, spec.timezone);
        check_ins += history(state, &mut rng, spec, &patient, counsellor, today).await?;
        if spec.story == Story::Sos {
            service::check_ins::sos(
                state,
                &patient,
                Some("Pain is bad tonight and I'm craving hard. Please call me.".into()),
                None,
            )
            .await
            .map_err(|e| explain("cannot press SOS", e))?;
        }
        accounts.push(Account {
            role: "patient",
            name: spec.name.into(),
            email: email(spec.email),
            note: format!(
                "{}, {}, {}: {}",
                spec.phase,
                spec.timezone,
                COUNSELLORS.get(spec.counsellor).map_or("", |c| c.0),
                spec.note
            ),
            totp_secret: None,
        });
    }

    service::sweep::run_once(state)
        .await
        .map_err(|e| explain("the missed-check-in sweep failed", e))?;

    // One connected app, and one patient who consented to it (SPEC §9).
    let integration = connect_app(state, &admin, &organisation_id).await?;

    let org = organisation_id.clone();
    let (alerts, open_alerts) = state
        .store
        .run(move |conn| -> Result<(i64, i64), ApiError> {
            use schema::alerts::dsl;
            let all = dsl::alerts
                .filter(dsl::organisation_id.eq(&org))
                .count()
                .get_result(conn)?;
            let open = dsl::alerts
                .filter(dsl::organisation_id.eq(&org))
                .filter(dsl::status.ne("resolved"))
                .count()
                .get_result(conn)?;
            Ok((all, open))
        })
        .await
        .map_err(|e| explain("cannot count alerts", e))?;

    Ok(Report {
        organisation_id,
        accounts,
        check_ins,
        alerts,
        open_alerts,
        integration,
    })
}

/// Registers the demo's connected app and has the first patient consent to it.
async fn connect_app(
    state: &AppState,
    admin: &Caller,
    organisation_id: &str,
) -> anyhow::Result<Option<(String, String, String, String)>> {
    let admin = Caller {
        signed_in_at: Some(crate::store::now()),
        ..admin.clone()
    };
    let app = service::integrations::register(
        state,
        &admin,
        service::integrations::Registration {
            name: "Pillbox pharmacy reminders".into(),
            description: "Sends medication reminders and refill notices.".into(),
            scopes: vec!["medication.read".into(), "alerts.read".into()],
            token_endpoint_auth_method: "client_secret_basic".into(),
            jwks: None,
        },
    )
    .await
    .map_err(|e| explain("cannot register the demo app", e))?;
    let Some(spec) = PATIENTS.first() else {
        return Ok(None);
    };
    let who = email(spec.email);
    let user = state
        .store
        .run(move |conn| -> Result<_, ApiError> {
            Ok(crate::store::accounts::find_user_by_email(conn, &who)?)
        })
        .await
        .map_err(|e| explain("cannot find the demo patient", e))?;
    let Some(user) = user else {
        return Ok(None);
    };
    let patient = caller(&user.id, organisation_id, Role::Patient, spec.timezone);
    service::consents::give(
        state,
        &patient,
        service::consents::NewConsent {
            integration_id: app.row.id.clone(),
            categories: vec!["medication".into(), "alerts".into()],
            purpose: "Medication reminders from my pharmacy".into(),
            expires_on: None,
        },
    )
    .await
    .map_err(|e| explain("cannot record the demo consent", e))?;
    Ok(app.client_secret.map(|secret| {
        (
            app.row.name,
            app.row.client_id,
            secret,
            spec.name.to_owned(),
        )
    }))
}

/// How to use the demo's connected app.
fn integration_note(report: &Report) -> String {
    let Some((name, client_id, secret, patient)) = &report.integration else {
        return String::new();
    };
    format!(
        "
Connected app \"{name}\" (medication.read, alerts.read); {patient} consented to it.\n  \
         client_id {client_id}\n  client_secret {secret}\n  Take a token and read what it \
         may:\n  curl -s localhost:8080/oauth/token -u '{client_id}:{secret}' -d \
         grant_type=client_credentials\n  curl -s localhost:8080/v1/integration/patients -H \
         'authorization: Bearer …'\n"
    )
}

/// Which of [`COUNSELLORS`] has a second factor on.
const MFA_COUNSELLOR: usize = 1;

/// Turns TOTP on for a demo counsellor; returns the secret (base32).
async fn enrol_totp(state: &AppState, counsellor: Option<&Caller>) -> anyhow::Result<String> {
    let Some(c) = counsellor else {
        anyhow::bail!("demo data names a counsellor that does not exist");
    };
    // Enrolling needs a recent sign-in; the demo acts for the counsellor just now.
    let c = Caller {
        signed_in_at: Some(crate::store::now()),
        ..c.clone()
    };
    let enrolment = service::mfa::begin(state, &c)
        .await
        .map_err(|e| explain("cannot start TOTP enrolment", e))?;
    let secret = crate::auth::totp::from_base32(&enrolment.secret)
        .ok_or_else(|| anyhow::anyhow!("the new TOTP secret is not base32"))?;
    let step = crate::auth::totp::step_of(Utc::now().timestamp());
    let code = crate::auth::totp::code_at(&secret, step)
        .ok_or_else(|| anyhow::anyhow!("cannot compute a TOTP code"))?;
    service::mfa::confirm(state, &c, code)
        .await
        .map_err(|e| explain("cannot confirm TOTP enrolment", e))?;
    Ok(enrolment.secret)
}

/// Invites and registers one counsellor or patient; returns the new user's id.
#[allow(clippy::too_many_arguments)]
async fn enrol(
    state: &AppState,
    by: &Caller,
    role: &str,
    phase: Option<&str>,
    last_use_date: Option<NaiveDate>,
    name: &str,
    local: &str,
    timezone: &str,
) -> anyhow::Result<String> {
    let (_, code) = service::accounts::invite(
        state,
        by,
        InvitationRequest {
            role: role.to_owned(),
            email: Some(email(local)),
            counsellor_id: None,
            phase: phase.map(str::to_owned),
            last_use_date,
        },
        None,
    )
    .await
    .map_err(|e| explain(&format!("cannot invite {name}"), e))?;
    let session = service::accounts::register(
        state,
        Registration {
            invitation_code: code,
            email: email(local),
            password: PASSWORD.to_owned(),
            display_name: name.to_owned(),
            timezone: timezone.to_owned(),
        },
        None,
        None,
    )
    .await
    .map_err(|e| explain(&format!("cannot register {name}"), e))?;
    Ok(session.user.id)
}

/// Submits a patient's history, oldest first, each day as of that day; the counsellor
/// resolves alerts two days after they fired, except in the last week. Returns how many
/// check-ins were stored.
async fn history(
    state: &AppState,
    rng: &mut StdRng,
    spec: &PatientSpec,
    patient: &Caller,
    counsellor: &Caller,
    today: NaiveDate,
) -> anyhow::Result<usize> {
    let mut stored = 0;
    for k in (0..spec.days).rev() {
        let date = today - TimeDelta::days(k);
        if k >= 7 {
            resolve_followed_up(state, counsellor, &patient.user_id, date).await?;
        }
        let Some(input) = day(rng, spec, k) else {
            continue;
        };
        let answered = service::check_ins::local_midnight_utc(spec.timezone, date)
            + TimeDelta::minutes(rng.gen_range(19 * 60..22 * 60));
        let input = CheckInInput {
            answered_at: Some(answered.and_utc().min(Utc::now())),
            ..input
        };
        let valid = input
            .validate()
            .map_err(|errors| explain("demo check-in is invalid", ApiError::Validation(errors)))?;
        service::check_ins::submit_as_of(state, patient, date, valid, Some(date))
            .await
            .map_err(|e| explain(&format!("cannot store {}'s check-in", spec.name), e))?;
        stored += 1;
    }
    Ok(stored)
}

/// The counsellor resolves the patient's unresolved alerts that fired two or more days
/// before `date`.
async fn resolve_followed_up(
    state: &AppState,
    counsellor: &Caller,
    patient_id: &str,
    date: NaiveDate,
) -> anyhow::Result<()> {
    let c = counsellor.clone();
    let settings = state.settings.clone();
    let filter = AlertFilter {
        patient_id: Some(patient_id.to_owned()),
        ..Default::default()
    };
    state
        .store
        .transaction(move |conn| -> Result<(), ApiError> {
            let rows = alert_store::list(
                conn,
                Scope::Organisation(&c.organisation_id),
                &filter,
                None,
                200,
            )?;
            for alert in rows {
                let old = alert
                    .check_in_date
                    .is_some_and(|d| d <= date - TimeDelta::days(2));
                if alert.status != "resolved" && old {
                    service::alerts::resolve(
                        conn,
                        &settings,
                        &c,
                        alert,
                        "contacted".into(),
                        "Phoned the patient; went through the coping plan together. \
                         Follow up at the next group session."
                            .into(),
                    )?;
                }
            }
            Ok(())
        })
        .await
        .map_err(|e| explain("cannot resolve an alert", e))
}

fn base(rng: &mut StdRng, spec: &PatientSpec) -> CheckInInput {
    let craving = rng.gen_range(0..=3);
    let moud = matches!(
        spec.story,
        Story::MedicationMissed | Story::DetoxSevere | Story::DetoxMild | Story::Lapse
    );
    let support_odds = match spec.phase {
        "aftercare" => 0.45,
        "discharged" => 0.25,
        _ => 0.8,
    };
    let triggers = [
        Trigger::Stress,
        Trigger::Boredom,
        Trigger::People,
        Trigger::Places,
        Trigger::Conflict,
    ];
    CheckInInput {
        craving: Some(craving),
        mood: Some(rng.gen_range(6..=8)),
        exercise_minutes: Some(if rng.gen_bool(0.25) {
            0
        } else {
            rng.gen_range(2..=12) * 5
        }),
        meals: Some(rng.gen_range(2..=4)),
        used_substance: Some(false),
        sleep_hours: Some(f64::from(rng.gen_range(60_i32..=85)) / 10.0),
        anxiety: Some(rng.gen_range(1..=4)),
        irritability: Some(rng.gen_range(1..=3)),
        loneliness: Some(rng.gen_range(1..=4)),
        triggers: (craving >= 3).then(|| vec![triggers[rng.gen_range(0..triggers.len())]]),
        took_medication: moud.then_some(true),
        attended_support: Some(rng.gen_bool(support_odds)),
        ..Default::default()
    }
}

/// Withdrawal items summing to `total` (0–64).
fn sows(rng: &mut StdRng, total: i64) -> Sows {
    let mut items = [0_i64; 16];
    let mut left = total.clamp(0, 64);
    while left > 0 {
        let i = rng.gen_range(0..16);
        if let Some(v) = items.get_mut(i) {
            if *v < 4 {
                *v += 1;
                left -= 1;
            }
        }
    }
    let [anxious, yawning, perspiring, eyes_tearing, nose_running, goosebumps, shaking, hot_flushes, cold_flushes, bones_aching, restless, nauseous, vomiting, muscles_twitching, stomach_cramps, feel_like_using] =
        items.map(Some);
    Sows {
        anxious,
        yawning,
        perspiring,
        eyes_tearing,
        nose_running,
        goosebumps,
        shaking,
        hot_flushes,
        cold_flushes,
        bones_aching,
        restless,
        nauseous,
        vomiting,
        muscles_twitching,
        stomach_cramps,
        feel_like_using,
    }
}

/// Picks `values[index]`, or the last value.
fn at<T: Copy>(values: &[T], index: i64) -> Option<T> {
    usize::try_from(index)
        .ok()
        .and_then(|i| values.get(i))
        .or(values.last())
        .copied()
}

/// The check-in `k` days before today (None: no check-in that day).
fn day(rng: &mut StdRng, spec: &PatientSpec, k: i64) -> Option<CheckInInput> {
    let b = base(rng, spec);
    // An occasional forgotten day, never in the last ten days.
    let forgot = rng.gen_bool(0.06) && k >= 10;
    match spec.story {
        Story::SteadyWithOldSpike if forgot => None,
        Story::SteadyWithOldSpike if k == 20 => Some(CheckInInput {
            craving: Some(8),
            mood: Some(5),
            triggers: Some(vec![Trigger::Celebration, Trigger::People]),
            note: Some("Friend's wedding. Everyone was drinking and it got to me.".into()),
            ..b
        }),
        Story::SteadyWithOldSpike => Some(b),
        Story::NotYetToday if k == 0 || forgot => None,
        Story::NotYetToday => Some(b),
        Story::Sliding if k < 8 => {
            let i = 7 - k;
            Some(CheckInInput {
                craving: at(&[3, 4, 3, 4, 7, 7, 8, 9], i),
                mood: at(&[6, 5, 5, 4, 3, 2, 2, 1], i),
                sleep_hours: at(&[7.0, 6.5, 6.0, 5.5, 4.8, 4.5, 4.0, 3.5], i),
                meals: at(&[3, 3, 2, 2, 2, 2, 1, 1], i),
                irritability: at(&[3, 4, 4, 5, 6, 7, 8, 8], i),
                loneliness: at(&[3, 4, 5, 5, 6, 7, 7, 8], i),
                anxiety: at(&[4, 4, 5, 5, 6, 7, 7, 8], i),
                exercise_minutes: at(&[30, 20, 20, 0, 10, 0, 0, 0], i),
                attended_support: Some(false),
                triggers: Some(if i >= 4 {
                    vec![Trigger::Stress, Trigger::Conflict, Trigger::Loneliness]
                } else {
                    vec![Trigger::Stress]
                }),
                note: (k == 0).then(|| {
                    "Lost my job on Monday. Haven't told anyone. Not sleeping.".to_owned()
                }),
                ..b
            })
        }
        Story::Sliding if forgot => None,
        Story::Sliding => Some(b),
        Story::Lapse if k == 1 => Some(CheckInInput {
            craving: Some(6),
            mood: Some(5),
            triggers: Some(vec![Trigger::People, Trigger::Places]),
            note: Some("Ran into people I used with, near my old flat.".into()),
            ..b
        }),
        Story::Lapse if k == 0 => Some(CheckInInput {
            craving: Some(8),
            mood: Some(3),
            sleep_hours: Some(5.0),
            used_substance: Some(true),
            substances: Some(vec!["heroin".into()]),
            triggers: Some(vec![Trigger::People, Trigger::Places, Trigger::Stress]),
            note: Some("I used last night. I'm scared and ashamed.".into()),
            ..b
        }),
        Story::Lapse if forgot => None,
        Story::Lapse => Some(b),
        Story::Quiet if k < 5 => None,
        Story::Quiet if k < 10 => Some(CheckInInput {
            craving: Some(rng.gen_range(3..=5)),
            mood: Some(rng.gen_range(4..=5)),
            attended_support: Some(false),
            triggers: Some(vec![Trigger::Boredom]),
            ..b
        }),
        Story::Quiet if forgot => None,
        Story::Quiet => Some(b),
        Story::SelfHarm if k < 5 => Some(CheckInInput {
            mood: at(&[3, 2, 2, 1, 1], 4 - k),
            craving: Some(rng.gen_range(3..=5)),
            loneliness: Some(8),
            sleep_hours: Some(f64::from(rng.gen_range(45_i32..=58)) / 10.0),
            triggers: Some(vec![Trigger::Loneliness]),
            self_harm_thoughts: Some(k == 0),
            note: (k == 0).then(|| "Hard night. The dark thoughts came back.".to_owned()),
            ..b
        }),
        Story::SelfHarm if forgot => None,
        Story::SelfHarm => Some(b),
        Story::Sos if k < 3 => Some(CheckInInput {
            craving: at(&[5, 6, 6], 2 - k),
            mood: Some(4),
            triggers: Some(vec![Trigger::Pain]),
            note: (k == 0).then(|| "Back pain is back. Hard to think of anything else.".to_owned()),
            ..b
        }),
        Story::Sos if forgot => None,
        Story::Sos => Some(b),
        Story::DetoxSevere => {
            let i = spec.days - 1 - k;
            Some(CheckInInput {
                craving: at(&[8, 8, 7, 6, 5, 4], i),
                mood: at(&[2, 3, 3, 4, 5, 5], i),
                sleep_hours: at(&[3.5, 4.0, 5.0, 5.5, 6.0, 6.5], i),
                meals: Some(2),
                exercise_minutes: Some(0),
                withdrawal: Some(sows(rng, at(&[30, 26, 19, 14, 10, 7], i).unwrap_or(10))),
                triggers: Some(vec![Trigger::Withdrawal]),
                attended_support: Some(true),
                ..b
            })
        }
        Story::DetoxMild => {
            let i = spec.days - 1 - k;
            Some(CheckInInput {
                craving: at(&[6, 5, 5, 4], i),
                mood: at(&[4, 4, 5, 5], i),
                exercise_minutes: Some(0),
                withdrawal: Some(sows(rng, at(&[17, 14, 11, 8], i).unwrap_or(8))),
                triggers: Some(vec![Trigger::Withdrawal]),
                attended_support: Some(true),
                ..b
            })
        }
        Story::MedicationMissed if k < 2 => Some(CheckInInput {
            took_medication: Some(false),
            note: (k == 0)
                .then(|| "Ran out of my prescription and the pharmacy was closed.".to_owned()),
            ..b
        }),
        Story::MedicationMissed if forgot => None,
        Story::MedicationMissed => Some(b),
        Story::Disengaged if forgot => None,
        Story::Disengaged => Some(CheckInInput {
            attended_support: Some(k >= 16 && b.attended_support == Some(true)),
            exercise_minutes: Some(if k < 8 { 0 } else { rng.gen_range(4..=12) * 5 }),
            ..b
        }),
        Story::Discharged if k % 3 == 0 => Some(b),
        Story::Discharged => None,
    }
}

/// How to sign in as the demo's counsellor with a second factor.
fn mfa_note(report: &Report) -> String {
    let Some((email, secret)) = report
        .accounts
        .iter()
        .find_map(|a| a.totp_secret.as_ref().map(|s| (&a.email, s)))
    else {
        return String::new();
    };
    format!(
        "\n{email} signs in with a second factor. TOTP secret (base32): {secret}\n  Add it to an \
         authenticator app, or compute a code with `oathtool --totp -b {secret}`. POST \
         /v1/auth/login answers 401 `mfa-required` with an mfa_token; send it with the code:\n  \
         curl -s localhost:8080/v1/auth/mfa -H 'content-type: application/json' \\\n    \
         -d '{{\"mfa_token\":\"…\",\"code\":\"'$(oathtool --totp -b {secret})'\"}}'\n"
    )
}

/// The table `aftercare demo` prints.
pub fn render(report: &Report) -> String {
    let mut rows = vec![[
        "role".to_owned(),
        "name".to_owned(),
        "email".to_owned(),
        "password".to_owned(),
        "notes".to_owned(),
    ]];
    for a in &report.accounts {
        rows.push([
            a.role.to_owned(),
            a.name.clone(),
            a.email.clone(),
            PASSWORD.to_owned(),
            a.note.clone(),
        ]);
    }
    let mut widths = [0_usize; 5];
    for r in &rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = format!(
        "Created the demo organisation \"{ORGANISATION}\" ({}).\n\n",
        report.organisation_id
    );
    for (i, r) in rows.iter().enumerate() {
        let line: Vec<String> = r
            .iter()
            .zip(widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
        if i == 0 {
            let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
            out.push_str(&rule.join("  "));
            out.push('\n');
        }
    }
    out.push_str(&format!(
        "\n{} check-ins, {} alerts ({} open).\n{}{}\nNext: `cargo run --release` (same \
         AFTERCARE_DATABASE_URL), sign in with POST /v1/auth/login as any of the above, e.g.\n  \
         curl -s localhost:8080/v1/auth/login -H 'content-type: application/json' \\\n    \
         -d '{{\"email\":\"{}\",\"password\":\"{PASSWORD}\"}}'\nthen GET /v1/patients (the \
         caseload, riskiest first) and GET /v1/alerts; the API is browsable at /docs/.\n",
        report.check_ins,
        report.alerts,
        report.open_alerts,
        mfa_note(report),
        integration_note(report),
        email(COUNSELLORS[0].1),
    ));
    out
}
