//! A patient's daily check-in, evaluated by the risk engine; and the SOS button.
//!
//! One transaction per action: the check-in, the alerts it raises or updates, their pending
//! deliveries and the audit record commit together or not at all.

use chrono::{NaiveDate, NaiveDateTime, TimeDelta, TimeZone};

use crate::auth::Caller;
use crate::domain::check_in::{check_date_window, CheckInSource, ValidCheckIn};
use crate::domain::crisis;
use crate::domain::episode::rule_values;
use crate::domain::policy::{Phase, PolicyOverrides, RiskPolicy};
use crate::domain::risk::{
    self, CrisisResource, DayRecord, Finding, PatientContext, PhaseSpan, SupportMessage,
};
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::accounts::OrganisationRow;
use crate::store::check_ins::{self, CheckInRow};
use crate::store::patients::{self, PatientRow};
use crate::store::{self, accounts, DbConnection};

use super::alerts as alert_service;
use super::audit;

/// The patient's timezone, defaulting to UTC for a name that no longer parses.
pub fn tz(name: &str) -> chrono_tz::Tz {
    name.parse().unwrap_or(chrono_tz::UTC)
}

/// The patient's local date now.
pub fn local_today(timezone: &str) -> NaiveDate {
    chrono::Utc::now().with_timezone(&tz(timezone)).date_naive()
}

/// UTC instant of local midnight starting `date` in `timezone` (the earliest valid instant on
/// days whose midnight a DST change skips).
pub fn local_midnight_utc(timezone: &str, date: NaiveDate) -> NaiveDateTime {
    let zone = tz(timezone);
    let mut t = date.and_hms_opt(0, 0, 0).unwrap_or_default();
    for _ in 0..4 {
        if let Some(dt) = zone.from_local_datetime(&t).earliest() {
            return dt.naive_utc();
        }
        t += TimeDelta::minutes(30);
    }
    date.and_hms_opt(0, 0, 0).unwrap_or_default()
}

/// The organisation's default policy.
pub fn organisation_policy(org: &OrganisationRow) -> RiskPolicy {
    serde_json::from_str(&org.risk_policy).unwrap_or_default()
}

/// The patient's overrides.
pub fn patient_overrides(p: &PatientRow) -> PolicyOverrides {
    p.risk_overrides
        .as_deref()
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or_default()
}

/// The effective policy for a patient.
pub fn effective_policy(conn: &mut DbConnection, p: &PatientRow) -> Result<RiskPolicy, ApiError> {
    let org = accounts::find_organisation(conn, &p.organisation_id)?;
    Ok(organisation_policy(&org).merged(&patient_overrides(p)))
}

/// Crisis resources for a patient, by their country (profile, else timezone): the
/// organisation's list for it, the built-in one, the organisation's default, the fallback.
pub fn crisis_resources(
    org: &OrganisationRow,
    patient: &PatientRow,
    timezone: &str,
) -> Vec<CrisisResource> {
    let country = crisis::patient_country(patient.country.as_deref(), timezone);
    crisis::OrganisationLists::from_stored(org.crisis_resources.as_deref())
        .resolve(country.as_deref())
}

/// The engine's view of a stored check-in.
pub fn day_record(r: &CheckInRow) -> DayRecord {
    DayRecord {
        date: r.date,
        craving: r.craving,
        mood: r.mood,
        exercise_minutes: r.exercise_minutes,
        meals: r.meals,
        used_substance: r.used_substance,
        substances: serde_json::from_str(&r.substances).unwrap_or_default(),
        sleep_hours: r.sleep_hours,
        anxiety: r.anxiety,
        irritability: r.irritability,
        loneliness: r.loneliness,
        took_medication: r.took_medication,
        attended_support: r.attended_support,
        withdrawal_score: r.withdrawal_score,
        self_harm_thoughts: r.self_harm_thoughts,
    }
}

/// The patient context the engine needs on `date`. The patient row already stores the first
/// check-in date and the last reported use, so only the phase history is read, and the last
/// use before `date` only when the stored one is not before it.
pub fn context(
    conn: &mut DbConnection,
    p: &PatientRow,
    date: NaiveDate,
) -> Result<PatientContext, ApiError> {
    let phases = phase_spans(conn, &p.user_id)?;
    context_with(conn, p, phases, date)
}

/// [`context`] with the phase history already read.
fn context_with(
    conn: &mut DbConnection,
    p: &PatientRow,
    phase_history: Vec<PhaseSpan>,
    date: NaiveDate,
) -> Result<PatientContext, ApiError> {
    let last_use = match p.last_use_on {
        None => None,
        Some(l) if l < date => Some(l),
        Some(_) => check_ins::last_use_before(conn, &p.user_id, date)?,
    };
    // The same pure function the backtest replay builds its context with.
    Ok(risk::patient_context_on(
        date,
        phase_history,
        p.first_check_in_on,
        p.enrolment_last_use_on,
        last_use,
    ))
}

/// The patient's phases as the engine reads them, oldest first.
fn phase_spans(conn: &mut DbConnection, patient_id: &str) -> Result<Vec<PhaseSpan>, ApiError> {
    Ok(patients::phase_history(conn, patient_id)?
        .iter()
        .filter_map(|h| {
            Phase::parse(&h.phase).map(|phase| PhaseSpan {
                phase,
                started_on: h.started_on,
            })
        })
        .collect())
}

/// When the sweep should next look at this patient for missed check-ins.
pub fn missed_due(timezone: &str, last: NaiveDate, policy: &RiskPolicy) -> Option<NaiveDateTime> {
    risk::next_missed_check_in_due(last, policy).map(|d| local_midnight_utc(timezone, d))
}

/// The date the silence clock starts from: the last check-in (or enrolment), or the return to
/// care when the patient came back from discharge since (a patient back in care is not
/// "missing" the months they were discharged).
pub fn silence_since(
    conn: &mut DbConnection,
    patient: &PatientRow,
    timezone: &str,
) -> Result<NaiveDate, ApiError> {
    let history = phase_spans(conn, &patient.user_id)?;
    Ok(silence_since_in(patient, timezone, &history))
}

/// [`silence_since`] with the patient's phase history already read (the sweep reads a whole
/// batch's histories in one query).
pub fn silence_since_in(patient: &PatientRow, timezone: &str, history: &[PhaseSpan]) -> NaiveDate {
    let enrolled = patient
        .created_at
        .and_utc()
        .with_timezone(&tz(timezone))
        .date_naive();
    // The same pure function the backtest replay measures silences with.
    risk::silence_since_on(patient.last_check_in_on, enrolled, history)
}

/// Re-plans a patient's missed-check-in review after something it depends on changed (the
/// policy, their timezone, their phase): a review planned too late is brought forward, one
/// missing (after a discharge) is planned again. A review already past its first finding is
/// left to the sweep, which re-plans it itself.
pub fn reschedule_missed_review(conn: &mut DbConnection, patient_id: &str) -> Result<(), ApiError> {
    // A closed account is reviewed no more.
    let Some(p) = patients::find(conn, patient_id)?.filter(|p| p.closed_at.is_none()) else {
        return Ok(());
    };
    let Some(user) = accounts::find_user(conn, patient_id)? else {
        return Ok(());
    };
    let org = accounts::find_organisation(conn, &p.organisation_id)?;
    reschedule(conn, &p, &user, &organisation_policy(&org))
}

/// [`reschedule_missed_review`] for every patient of an organisation whose default policy
/// changed: the organisation is read once, its patients in one query.
pub fn reschedule_organisation(
    conn: &mut DbConnection,
    organisation_id: &str,
) -> Result<(), ApiError> {
    let org = accounts::find_organisation(conn, organisation_id)?;
    let policy = organisation_policy(&org);
    for (p, user) in patients::list_with_users(conn, organisation_id, None)? {
        reschedule(conn, &p, &user, &policy)?;
    }
    Ok(())
}

fn reschedule(
    conn: &mut DbConnection,
    p: &PatientRow,
    user: &crate::store::accounts::UserRow,
    org_policy: &RiskPolicy,
) -> Result<(), ApiError> {
    if user.disabled || p.phase == "discharged" {
        return Ok(());
    }
    let policy = org_policy.merged(&patient_overrides(p));
    let since = silence_since(conn, p, &user.timezone)?;
    let candidate = missed_due(&user.timezone, since, &policy);
    let open = crate::store::alerts::find_unresolved(conn, &p.user_id)?.filter(|a| {
        alert_service::episode_of(a)
            .findings
            .iter()
            .any(|f| f.rule == crate::domain::policy::RuleId::MissedCheckIns)
    });
    let now = store::now();
    let next = match (p.missed_check_due_at, candidate) {
        (None, Some(c)) => Some(c.max(now)),
        (Some(s), Some(c)) if c < s && open.is_none() => Some(c.max(now)),
        (stored, _) => stored,
    };
    if next != p.missed_check_due_at {
        patients::set_missed_due(conn, &p.user_id, next)?;
    }
    Ok(())
}

/// The stored form of a validated check-in.
pub fn new_row(
    v: ValidCheckIn,
    patient_id: String,
    date: NaiveDate,
    now: NaiveDateTime,
) -> CheckInRow {
    CheckInRow {
        id: store::new_id(),
        patient_id,
        date,
        craving: v.craving,
        mood: v.mood,
        exercise_minutes: v.exercise_minutes,
        meals: v.meals,
        used_substance: v.used_substance,
        substances: serde_json::to_string(&v.substances).unwrap_or_else(|_| "[]".into()),
        sleep_hours: v.sleep_hours,
        anxiety: v.anxiety,
        irritability: v.irritability,
        loneliness: v.loneliness,
        triggers: serde_json::to_string(&v.triggers).unwrap_or_else(|_| "[]".into()),
        took_medication: v.took_medication,
        attended_support: v.attended_support,
        withdrawal: v
            .withdrawal
            .as_ref()
            .and_then(|w| serde_json::to_string(w).ok()),
        withdrawal_score: v.withdrawal_score,
        self_harm_thoughts: v.self_harm_thoughts,
        note: v.note,
        answered_at: v.answered_at.map(|t| t.naive_utc()),
        received_at: now,
        created_at: now,
        updated_at: now,
        version: 1,
        source: CheckInSource::App.as_str().into(),
        imported_from: None,
    }
}

/// Whether two check-ins of one date carry the same answers.
fn same_answers(a: &CheckInRow, b: &CheckInRow) -> bool {
    a.craving == b.craving
        && a.mood == b.mood
        && a.exercise_minutes == b.exercise_minutes
        && a.meals == b.meals
        && a.used_substance == b.used_substance
        && a.substances == b.substances
        && a.sleep_hours == b.sleep_hours
        && a.anxiety == b.anxiety
        && a.irritability == b.irritability
        && a.loneliness == b.loneliness
        && a.triggers == b.triggers
        && a.took_medication == b.took_medication
        && a.attended_support == b.attended_support
        && a.withdrawal == b.withdrawal
        && a.withdrawal_score == b.withdrawal_score
        && a.self_harm_thoughts == b.self_harm_thoughts
        && a.note == b.note
        && a.answered_at == b.answered_at
}

/// What a check-in submission returns.
pub struct Submitted {
    /// The stored check-in.
    pub row: CheckInRow,
    /// Whether it was new (201) or replaced one (200).
    pub created: bool,
    /// Supportive messages for what fired.
    pub support: Vec<SupportMessage>,
    /// Crisis resources, when what fired calls for them.
    pub crisis_resources: Vec<CrisisResource>,
}

/// The caller's own patient row, locked for their action (PostgreSQL), unless the account was
/// closed: a check-in or an SOS racing the closure is refused, never stored after it.
fn own_open_record(conn: &mut DbConnection, caller: &Caller) -> Result<PatientRow, ApiError> {
    let patient = patients::find_for_update(conn, &caller.user_id)?.ok_or(ApiError::Forbidden)?;
    if patient.closed_at.is_some() {
        return Err(ApiError::Unauthorized("This account was closed.".into()));
    }
    Ok(patient)
}

/// Stores a check-in, evaluates it, raises alerts, queues deliveries and audits, at once.
pub async fn submit(
    state: &AppState,
    caller: &Caller,
    date: NaiveDate,
    input: ValidCheckIn,
) -> Result<Submitted, ApiError> {
    submit_as_of(state, caller, date, input, None).await
}

/// [`submit`], with the submission window judged against `today` (and the records stamped that
/// evening) instead of the
/// patient's local today when given. Only the demo data generator passes a date: it writes
/// weeks of history, each day "as of" that day, through exactly the path a phone takes.
pub async fn submit_as_of(
    state: &AppState,
    caller: &Caller,
    date: NaiveDate,
    input: ValidCheckIn,
    today: Option<NaiveDate>,
) -> Result<Submitted, ApiError> {
    // Two submissions for one date at the same moment (a phone retrying on a poor line) race
    // for the same row or the same unresolved alert; the loser's transaction rolled back
    // whole, so it is simply run again against what the winner stored.
    let mut attempt = 0;
    loop {
        attempt += 1;
        match submit_once(state, caller, date, input.clone(), today).await {
            Err(ApiError::Conflict(_)) if attempt < 4 => continue,
            other => return other,
        }
    }
}

async fn submit_once(
    state: &AppState,
    caller: &Caller,
    date: NaiveDate,
    input: ValidCheckIn,
    today: Option<NaiveDate>,
) -> Result<Submitted, ApiError> {
    let caller = caller.clone();
    let settings = state.settings.clone();
    state
        .store
        .transaction(move |conn| -> Result<Submitted, ApiError> {
            // "As of" a past day, the check-in and what it raises are stamped that evening,
            // so the history reads as it happened (never later than now).
            let now = match today {
                Some(d) => (local_midnight_utc(&caller.timezone, d) + TimeDelta::hours(20))
                    .min(store::now()),
                None => store::now(),
            };
            let patient = own_open_record(conn, &caller)?;
            let today = today.unwrap_or_else(|| local_today(&caller.timezone));
            check_date_window(date, today).map_err(|e| ApiError::Validation(vec![e]))?;
            let org = accounts::find_organisation(conn, &patient.organisation_id)?;
            let policy = organisation_policy(&org).merged(&patient_overrides(&patient));

            // The history the engine reads and this date's earlier check-in, in one query.
            let window = policy.history_window_days();
            let mut history_rows =
                check_ins::range(conn, &patient.user_id, date - TimeDelta::days(window), date)?;
            let previous = match history_rows.last() {
                Some(last) if last.date == date => history_rows.pop(),
                _ => None,
            };
            let history: Vec<DayRecord> = history_rows.iter().map(day_record).collect();
            drop(history_rows);
            let row = new_row(input, caller.user_id.clone(), date, now);
            // A phone retrying a request whose answer it lost sends the same check-in again:
            // that is not a correction, so nothing is stored, raised or delivered a second
            // time, and the answer is the same as the first one.
            let unchanged = previous.as_ref().filter(|p| same_answers(p, &row)).cloned();
            let repeat = unchanged.is_some();
            let (row, created) = match unchanged {
                Some(p) => (p, false),
                None => check_ins::upsert_over(conn, row, previous.as_ref())?,
            };

            // The patient's dates as they stand with this check-in stored, worked out from
            // what the row already holds; the last use is looked up only when a correction
            // took back the use it recorded.
            let mut updated = patient.clone();
            if !repeat {
                updated.first_check_in_on =
                    Some(patient.first_check_in_on.map_or(date, |f| f.min(date)));
                updated.last_check_in_on =
                    Some(patient.last_check_in_on.map_or(date, |l| l.max(date)));
                updated.last_use_on = if row.used_substance {
                    Some(patient.last_use_on.map_or(date, |l| l.max(date)))
                } else if patient.last_use_on == Some(date) {
                    // Any later date will do; not NaiveDate::MAX, whose text form SQLite
                    // compares wrongly.
                    check_ins::last_use_before(
                        conn,
                        &patient.user_id,
                        date.max(today) + TimeDelta::days(2),
                    )?
                } else {
                    patient.last_use_on
                };
            }
            let phases = phase_spans(conn, &patient.user_id)?;
            let ctx = context_with(conn, &updated, phases.clone(), date)?;
            let findings = risk::evaluate_check_in(&day_record(&row), &history, &ctx, &policy);
            if repeat {
                audit::record(
                    conn,
                    &caller,
                    audit::Event::patient(
                        "check_in.write_unchanged",
                        &caller.user_id,
                        "check_in",
                        Some(&row.id),
                    ),
                )?;
                let crisis = if risk::needs_crisis_resources(&findings) {
                    crisis_resources(&org, &patient, &caller.timezone)
                } else {
                    Vec::new()
                };
                return Ok(Submitted {
                    row,
                    created,
                    support: risk::support_messages(&findings),
                    crisis_resources: crisis,
                });
            }
            // Only a check-in dated before the latest one can reveal anything later.
            let (revealed, later_corrections) =
                if patient.last_check_in_on.is_some_and(|l| l > date) {
                    revealed_later(conn, &updated, &phases, &row, previous.as_ref(), &policy)?
                } else {
                    (Vec::new(), Vec::new())
                };

            let last = updated.last_check_in_on.unwrap_or(date);
            let due = missed_due(&caller.timezone, last, &policy);
            if (
                updated.first_check_in_on,
                updated.last_check_in_on,
                updated.last_use_on,
                due,
            ) != (
                patient.first_check_in_on,
                patient.last_check_in_on,
                patient.last_use_on,
                patient.missed_check_due_at,
            ) {
                check_ins::update_patient_dates(
                    conn,
                    &patient.user_id,
                    updated.first_check_in_on,
                    updated.last_check_in_on,
                    updated.last_use_on,
                    due,
                )?;
            }

            // For staff, each finding's evidence carries the patient's own note of that day.
            let findings: Vec<Finding> = findings
                .into_iter()
                .map(|f| with_note(f, row.note.as_deref()))
                .collect();
            // An edit re-evaluates the day, but a finding is news only when the new answers
            // change it: a rule that did not fire before, fires more seriously, or whose own
            // answers changed (craving 9 corrected to 10 is reported again). What the earlier
            // answers raised was told then; an edited note must not raise a resolved alert
            // again.
            let before_record = previous.as_ref().map(day_record);
            let before: Vec<Finding> = before_record
                .as_ref()
                .map(|p| risk::evaluate_check_in(p, &history, &ctx, &policy))
                .unwrap_or_default();
            let now_record = day_record(&row);
            let mut seen: Vec<alert_service::Seen<'_>> = findings
                .iter()
                .filter(|f| {
                    let told = before
                        .iter()
                        .any(|b| b.rule == f.rule && b.severity >= f.severity);
                    let same_answers = before_record.as_ref().is_some_and(|p| {
                        rule_values(f.rule, p) == rule_values(f.rule, &now_record)
                    });
                    !(told && same_answers)
                })
                .map(|finding| alert_service::Seen { finding, on: date })
                .collect();
            seen.extend(revealed.iter().map(|(later, finding)| alert_service::Seen {
                finding,
                on: *later,
            }));
            // A correction: what the earlier answers of this date raised and the new ones no
            // longer support is marked corrected on the episode, never dropped.
            let mut corrections: Vec<alert_service::Correction> = previous
                .as_ref()
                .map(|_| alert_service::Correction {
                    on: date,
                    record: day_record(&row),
                    still_firing: findings.clone(),
                })
                .into_iter()
                .collect();
            corrections.extend(later_corrections);
            alert_service::record(
                conn,
                &settings,
                &patient,
                &seen,
                &corrections,
                Some(date),
                &policy,
                now,
            )?;
            drop(seen);
            let findings: Vec<Finding> = findings
                .into_iter()
                .chain(revealed.into_iter().map(|(_, f)| f))
                .collect();
            audit::record(
                conn,
                &caller,
                audit::Event::patient("check_in.write", &caller.user_id, "check_in", Some(&row.id)),
            )?;
            // Integrations subscribed to check-ins hear of it, under the patient's consent.
            crate::service::integration_webhooks::queue_check_in(
                conn,
                &patient.organisation_id,
                &patient.user_id,
                date,
                previous.is_some(),
                now,
            )?;
            let crisis = if risk::needs_crisis_resources(&findings) {
                crisis_resources(&org, &patient, &caller.timezone)
            } else {
                Vec::new()
            };
            Ok(Submitted {
                row,
                created,
                support: risk::support_messages(&findings),
                crisis_resources: crisis,
            })
        })
        .await
}

/// What a late (or corrected) check-in reveals about the check-ins already stored after it:
/// a pattern over consecutive dates that it completes (the middle day of a run sent last,
/// after the phone was offline) or makes more severe. Each later check-in is evaluated with
/// and without the new answer; only what the new answer changes is returned, with the later
/// date, so a finding already raised is not counted again. For a correction, also what each
/// later date still raises, so a pattern the corrected day no longer completes (a run of low
/// mood it was part of) is marked corrected too.
type Revealed = (Vec<(NaiveDate, Finding)>, Vec<alert_service::Correction>);

fn revealed_later(
    conn: &mut DbConnection,
    patient: &PatientRow,
    phases: &[PhaseSpan],
    row: &CheckInRow,
    previous: Option<&CheckInRow>,
    policy: &RiskPolicy,
) -> Result<Revealed, ApiError> {
    let window = policy.history_window_days();
    let later = check_ins::range(
        conn,
        &patient.user_id,
        row.date + TimeDelta::days(1),
        row.date + TimeDelta::days(window),
    )?;
    if later.is_empty() {
        return Ok((Vec::new(), Vec::new()));
    }
    let span: Vec<DayRecord> = check_ins::range(
        conn,
        &patient.user_id,
        row.date - TimeDelta::days(window),
        row.date + TimeDelta::days(window),
    )?
    .iter()
    .map(day_record)
    .collect();
    let before = previous.map(day_record);
    let mut out = Vec::new();
    let mut corrections = Vec::new();
    for l in &later {
        let history = |with_new: bool| -> Vec<DayRecord> {
            span.iter()
                .filter(|d| d.date < l.date && d.date >= l.date - TimeDelta::days(window))
                .filter_map(|d| match (d.date == row.date, with_new) {
                    (false, _) | (true, true) => Some(d.clone()),
                    (true, false) => before.clone(),
                })
                .collect()
        };
        let ctx = context_with(conn, patient, phases.to_vec(), l.date)?;
        let current = day_record(l);
        // For staff, each later finding carries that day's own note, as live ones do.
        let with: Vec<Finding> = risk::evaluate_check_in(&current, &history(true), &ctx, policy)
            .into_iter()
            .map(|f| with_note(f, l.note.as_deref()))
            .collect();
        let without = risk::evaluate_check_in(&current, &history(false), &ctx, policy);
        if previous.is_some() {
            corrections.push(alert_service::Correction {
                on: l.date,
                still_firing: with.clone(),
                record: day_record(row),
            });
        }
        for f in with {
            let known = without
                .iter()
                .any(|w| w.rule == f.rule && w.severity >= f.severity);
            if !known {
                out.push((l.date, f));
            }
        }
    }
    Ok((out, corrections))
}

/// Adds the patient's note of the check-in to a finding's evidence (for staff; webhooks and
/// integrations never carry evidence).
fn with_note(mut f: Finding, note: Option<&str>) -> Finding {
    if let (Some(note), Some(o)) = (note, f.evidence.as_object_mut()) {
        o.insert("note".into(), serde_json::Value::String(note.to_owned()));
    }
    f
}

/// What an SOS press returns.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct SosOutcome {
    /// The critical alert raised.
    pub alert_id: String,
    /// Where to turn right now.
    pub crisis_resources: Vec<CrisisResource>,
}

/// The patient pressed SOS: a critical alert of its own, delivered at once; crisis resources
/// come back immediately. With an idempotency key, a retried press returns the first answer
/// instead of raising a second alert.
pub async fn sos(
    state: &AppState,
    caller: &Caller,
    message: Option<String>,
    key: Option<super::idempotency::Key>,
) -> Result<SosOutcome, ApiError> {
    // A press at the moment a check-in (or the sweep) opens the patient's episode races it
    // for the one unresolved alert; the loser rolled back whole and simply runs again, so a
    // patient in crisis never gets a conflict.
    let mut attempt = 0;
    loop {
        attempt += 1;
        match sos_once(state, caller, message.clone(), key.clone()).await {
            Err(ApiError::Conflict(_)) if attempt < 4 => continue,
            other => return other,
        }
    }
}

async fn sos_once(
    state: &AppState,
    caller: &Caller,
    message: Option<String>,
    key: Option<super::idempotency::Key>,
) -> Result<SosOutcome, ApiError> {
    let caller = caller.clone();
    let settings = state.settings.clone();
    state
        .store
        .transaction(move |conn| -> Result<SosOutcome, ApiError> {
            if let Some(k) = &key {
                if let Some(body) = super::idempotency::replay(conn, &caller.user_id, k)? {
                    return serde_json::from_str(&body).map_err(ApiError::internal);
                }
            }
            let now = store::now();
            // Locked like a check-in, so one patient's actions reach their episode in turn.
            let patient = own_open_record(conn, &caller)?;
            let org = accounts::find_organisation(conn, &patient.organisation_id)?;
            let policy = organisation_policy(&org).merged(&patient_overrides(&patient));
            let finding = risk::sos_finding(message.as_deref());
            let today = local_today(&caller.timezone);
            let (alert, _) =
                alert_service::raise(conn, &settings, &patient, &finding, today, &policy, now)?;
            audit::record(
                conn,
                &caller,
                audit::Event::patient("sos.write", &caller.user_id, "alert", Some(&alert.id)),
            )?;
            let outcome = SosOutcome {
                alert_id: alert.id,
                crisis_resources: crisis_resources(&org, &patient, &caller.timezone),
            };
            if let Some(k) = &key {
                let body = serde_json::to_string(&outcome).map_err(ApiError::internal)?;
                super::idempotency::remember(conn, &caller.user_id, k, 202, &body)?;
            }
            Ok(outcome)
        })
        .await
}
