//! History import: a patient's check-ins from the clinic's earlier system (SPEC §11).
//!
//! All or nothing, in one transaction: validated like live check-ins, a date already checked
//! in is a conflict unless the caller asks to replace it, rows go in with multi-row inserts.
//! An import raises no alerts and queues no deliveries (nothing happened today), but from then
//! on it is history the engine reads like any other: the patient's first and last check-in
//! and last use are brought up to date and the missed-check-in review is re-planned.

use chrono::{NaiveDate, TimeDelta};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::auth::{policy, Caller};
use crate::domain::check_in::{validate_import, CheckInSource, ImportDraft};
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::{self, accounts, check_ins, patients};

use super::idempotency::{self, Key};
use super::{audit, check_ins as live};

/// How many conflicting dates a 409 names before it says "and N more".
const CONFLICTS_NAMED: usize = 20;

/// What the care team sent.
#[derive(Debug, Clone)]
pub struct ImportRequest {
    /// The label of the clinic's earlier system.
    pub source: String,
    /// The check-ins, as read from the request.
    pub check_ins: Vec<ImportDraft>,
    /// Replace check-ins already stored on these dates instead of refusing them.
    pub replace: bool,
}

/// What an import did.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Imported {
    /// Check-ins stored by this import (the replaced ones included).
    pub imported: usize,
    /// Of those, how many replaced a check-in already stored for their date.
    pub replaced: usize,
    /// The earliest date imported.
    pub from: NaiveDate,
    /// The latest date imported.
    pub to: NaiveDate,
}

/// Imports a patient's history. The caller must be an admin of the patient's organisation or
/// a counsellor on their care team (else 404); the role check is the handler's.
pub async fn import(
    state: &AppState,
    caller: &Caller,
    patient_id: String,
    input: ImportRequest,
    key: Option<Key>,
) -> Result<Imported, ApiError> {
    // The key is the caller's, the body names no patient: tie the key to this patient and
    // route, so the same key and body sent for another patient is not taken for a retry.
    let key = key.map(|k| Key {
        request_hash: Sha256::digest(format!("check_ins.import:{patient_id}:{}", k.request_hash))
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect(),
        ..k
    });
    let caller = caller.clone();
    state
        .store
        .transaction(move |conn| -> Result<Imported, ApiError> {
            let reached = policy::writable_patient(conn, &caller, &patient_id)?;
            if let Some(k) = &key {
                if let Some(body) = idempotency::replay(conn, &caller.user_id, k)? {
                    return serde_json::from_str(&body).map_err(ApiError::internal);
                }
            }
            // Locked like a live check-in locks it, so the two cannot interleave.
            let patient =
                patients::find_for_update(conn, &reached.user_id)?.ok_or(ApiError::NotFound)?;
            let user = accounts::find_user(conn, &patient.user_id)?.ok_or(ApiError::NotFound)?;
            let today = live::local_today(&user.timezone);
            let valid = validate_import(&input.source, input.check_ins, today)
                .map_err(ApiError::Validation)?;
            let (Some(from), Some(to)) = (
                valid.days.first().map(|(d, _)| *d),
                valid.days.last().map(|(d, _)| *d),
            ) else {
                return Err(ApiError::field(
                    "check_ins",
                    "must hold at least one check-in",
                ));
            };

            // Both lists are sorted by date: one merge finds the dates already stored.
            let stored = check_ins::keys_in_range(conn, &patient.user_id, from, to)?;
            let mut existing = std::collections::HashMap::new();
            {
                let mut wanted = valid.days.iter().map(|(d, _)| *d).peekable();
                for (date, id, created_at, version) in stored {
                    while wanted.next_if(|d| *d < date).is_some() {}
                    if wanted.peek() == Some(&date) {
                        existing.insert(date, (id, created_at, version));
                    }
                }
            }
            if !existing.is_empty() && !input.replace {
                let mut dates: Vec<NaiveDate> = existing.keys().copied().collect();
                dates.sort();
                let named: Vec<String> = dates
                    .iter()
                    .take(CONFLICTS_NAMED)
                    .map(NaiveDate::to_string)
                    .collect();
                let more = match dates.len().saturating_sub(CONFLICTS_NAMED) {
                    0 => String::new(),
                    n => format!(" and {n} more"),
                };
                return Err(ApiError::Conflict(format!(
                    "The patient already has a check-in on {} of these dates: {}{more}. Nothing \
                     was imported; send \"replace\": true to replace them with the imported ones.",
                    dates.len(),
                    named.join(", ")
                )));
            }

            let now = store::now();
            let mut replaced_ids = Vec::with_capacity(existing.len());
            let rows: Vec<_> = valid
                .days
                .into_iter()
                .map(|(date, v)| {
                    let mut row = live::new_row(v, patient.user_id.clone(), date, now);
                    row.source = CheckInSource::Import.as_str().into();
                    row.imported_from = Some(valid.source.clone());
                    if let Some((id, created_at, version)) = existing.remove(&date) {
                        row.id = id.clone();
                        row.created_at = created_at;
                        row.version = version + 1;
                        replaced_ids.push(id);
                    }
                    row
                })
                .collect();
            check_ins::delete_ids(conn, &replaced_ids)?;
            check_ins::insert_many(conn, &rows)?;

            // History from now on: the dates a live check-in keeps up to date. Live
            // check-ins may be dated up to a day ahead, so look past tomorrow for the last use.
            let first = patient.first_check_in_on.map_or(from, |f| f.min(from));
            let last = patient.last_check_in_on.map_or(to, |l| l.max(to));
            let last_use =
                check_ins::last_use_before(conn, &patient.user_id, today + TimeDelta::days(2))?;
            check_ins::update_patient_dates(
                conn,
                &patient.user_id,
                Some(first),
                Some(last),
                last_use,
                patient.missed_check_due_at,
            )?;
            live::reschedule_missed_review(conn, &patient.user_id)?;

            let outcome = Imported {
                imported: rows.len(),
                replaced: replaced_ids.len(),
                from,
                to,
            };
            // How many, never what: the values stay in the check-ins themselves.
            let counts = format!(
                "imported:{},replaced:{}",
                outcome.imported, outcome.replaced
            );
            audit::record(
                conn,
                &caller,
                audit::Event::patient(
                    "check_in.import",
                    &patient.user_id,
                    "check_in_import",
                    Some(&counts),
                ),
            )?;
            if let Some(k) = &key {
                let body = serde_json::to_string(&outcome).map_err(ApiError::internal)?;
                idempotency::remember(conn, &caller.user_id, k, 201, &body)?;
            }
            Ok(outcome)
        })
        .await
}
