//! Closing an account and erasing a patient's clinical content (SPEC §10), and the
//! organisation's retention delay.
//!
//! Closing — the patient's own `DELETE /v1/me` with their password, or an admin's
//! `DELETE /v1/patients/{id}` — is one transaction: the account is disabled (no sign-in, and it
//! cannot be enabled again), every session ends, every consent is revoked, undelivered
//! deliveries are dropped, the unresolved alert is resolved (so no sweep escalates it and the
//! caseload drops the patient), and the erasure is scheduled after the organisation's retention
//! delay. With no delay the clinical content is erased in the same transaction; otherwise the
//! housekeeping erases it when it is due ([`erase_due_once`]). Until then the record stays
//! readable by the care team and admins (that is what retention is for); afterwards the patient
//! is out of everyone's reach (404), and only the audit trail, the accounting of disclosures and
//! the consent records remain, holding who, what and when.

use chrono::{NaiveDateTime, TimeDelta};

use crate::auth::{policy, Caller, Role};
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::audit::{self as audit_store, AuditRow};
use crate::store::{self, alerts, consents, erasure, patients, sessions, DbConnection};

use super::audit;

/// The longest retention delay an organisation may set: ten years.
pub const MAX_DELAY_DAYS: i32 = 3650;

/// Where a closed account stands.
#[derive(Debug, Clone)]
pub struct Closure {
    /// The patient.
    pub patient_id: String,
    /// When the account was closed.
    pub closed_at: NaiveDateTime,
    /// When the clinical content is (or was) due to be erased.
    pub erasure_due_at: Option<NaiveDateTime>,
    /// When it was erased; `None` while the retention delay runs.
    pub erased_at: Option<NaiveDateTime>,
}

/// The patient closes their own account; the request carries their password.
pub async fn close_own_account(
    state: &AppState,
    caller: &Caller,
    password: String,
    client_ip: &str,
) -> Result<Closure, ApiError> {
    caller.require(&[Role::Patient])?;
    let user = super::accounts::caller_user(state, caller).await?;
    let keys = super::accounts::check_current_password(
        state,
        caller,
        &user,
        password,
        ("password", "account.close_failed"),
        client_ip,
    )
    .await?;
    let c = caller.clone();
    state
        .store
        .transaction(move |conn| -> Result<Closure, ApiError> {
            super::sign_in_throttle::record_success(conn, &keys, store::now())?;
            close(conn, &c, &c.user_id)
        })
        .await
}

/// An admin erases a patient of their organisation (a sign-in within the last 10 minutes);
/// asking again while the retention delay runs answers with the same closure.
pub async fn erase_patient(
    state: &AppState,
    caller: &Caller,
    patient_id: String,
) -> Result<Closure, ApiError> {
    caller.require(&[Role::Admin])?;
    let c = caller.clone();
    state
        .store
        .transaction(move |conn| -> Result<Closure, ApiError> {
            policy::reachable_patient(conn, &c, &patient_id)?;
            c.require_recent_sign_in()?;
            close(conn, &c, &patient_id)
        })
        .await
}

/// Closes the account in the caller's transaction (see the module's documentation).
fn close(conn: &mut DbConnection, caller: &Caller, patient_id: &str) -> Result<Closure, ApiError> {
    let patient = patients::find_for_update(conn, patient_id)?.ok_or(ApiError::NotFound)?;
    if patient.erased_at.is_some() {
        return Err(ApiError::NotFound);
    }
    if let Some(closed_at) = patient.closed_at {
        return Ok(Closure {
            patient_id: patient.user_id,
            closed_at,
            erasure_due_at: patient.erasure_due_at,
            erased_at: None,
        });
    }
    let now = store::now();
    let delay = erasure::delay_days(conn, &patient.organisation_id)?;
    let due = now + TimeDelta::days(i64::from(delay));
    erasure::close(conn, patient_id, &caller.user_id, now, due)?;
    erasure::lock_out(conn, patient_id, now)?;
    sessions::revoke_user(conn, patient_id, now)?;
    consents::revoke_all_of_patient(conn, patient_id, now)?;
    erasure::drop_pending_deliveries(conn, patient_id, now)?;
    if let Some(alert) = alerts::find_unresolved(conn, patient_id)? {
        super::alerts::close_with_account(conn, alert, &caller.user_id, now)?;
    }
    audit::record(
        conn,
        caller,
        audit::Event::patient("patient.closed", patient_id, "patient", Some(patient_id)),
    )?;
    let erased_at = if delay == 0 {
        erase(conn, &patient.organisation_id, patient_id, now)?;
        Some(now)
    } else {
        None
    };
    Ok(Closure {
        patient_id: patient_id.to_owned(),
        closed_at: now,
        erasure_due_at: Some(due),
        erased_at,
    })
}

/// Erases the clinical content and records it in the audit trail (by the service itself).
fn erase(
    conn: &mut DbConnection,
    organisation_id: &str,
    patient_id: &str,
    now: NaiveDateTime,
) -> Result<(), ApiError> {
    erasure::erase(conn, patient_id, now)?;
    audit_store::insert_many(
        conn,
        &[AuditRow {
            id: store::new_id(),
            organisation_id: Some(organisation_id.to_owned()),
            actor_id: None,
            actor_role: None,
            action: "patient.erased".into(),
            patient_id: Some(patient_id.to_owned()),
            target_type: Some("patient".into()),
            target_id: Some(patient_id.to_owned()),
            outcome: "success".into(),
            request_id: None,
            created_at: now,
        }],
    )?;
    Ok(())
}

/// How many patients one housekeeping transaction erases at most.
const ERASE_BATCH: i64 = 50;

/// Erases every closed patient whose retention delay has run out by `now`; returns how many.
pub async fn erase_due_once(state: &AppState, now: NaiveDateTime) -> Result<usize, ApiError> {
    let mut count = 0;
    loop {
        let erased = state
            .store
            .transaction(move |conn| -> Result<usize, ApiError> {
                let due = erasure::due(conn, now, ERASE_BATCH)?;
                for id in &due {
                    let Some(p) = patients::find(conn, id)? else {
                        continue;
                    };
                    erase(conn, &p.organisation_id, id, store::now())?;
                }
                Ok(due.len())
            })
            .await?;
        count += erased;
        if erased < ERASE_BATCH as usize {
            break;
        }
    }
    if count > 0 {
        tracing::info!(erased = count, "erasure");
    }
    Ok(count)
}

/// The organisation's retention delay in days (admins).
pub async fn retention(state: &AppState, caller: &Caller) -> Result<i32, ApiError> {
    caller.require(&[Role::Admin])?;
    let org = caller.organisation_id.clone();
    state
        .store
        .run(move |conn| -> Result<i32, ApiError> { Ok(erasure::delay_days(conn, &org)?) })
        .await
}

/// Sets the organisation's retention delay (admins; a sign-in within the last 10 minutes,
/// since a shorter delay erases records sooner). It applies to accounts closed from now on;
/// erasures already scheduled keep their date.
pub async fn set_retention(state: &AppState, caller: &Caller, days: i32) -> Result<i32, ApiError> {
    caller.require(&[Role::Admin])?;
    if !(0..=MAX_DELAY_DAYS).contains(&days) {
        return Err(ApiError::field(
            "erasure_delay_days",
            format!("must be a whole number of days from 0 to {MAX_DELAY_DAYS}"),
        ));
    }
    caller.require_recent_sign_in()?;
    let c = caller.clone();
    state
        .store
        .transaction(move |conn| -> Result<(), ApiError> {
            erasure::set_delay_days(conn, &c.organisation_id, days)?;
            audit::record(
                conn,
                &c,
                audit::Event::other(
                    "organisation.retention_write",
                    "organisation",
                    Some(&c.organisation_id),
                ),
            )?;
            Ok(())
        })
        .await?;
    Ok(days)
}
