//! "Who read my record": every read of a patient's data by someone other than the patient,
//! from the audit trail, in words a patient understands.

use chrono::NaiveDateTime;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::service::audit;
use crate::state::AppState;
use crate::store::audit as store;
use crate::store::DbConnection;

/// The audit actions that read a patient's data, and what each read shows, in plain words.
pub const READS: &[(&str, &str)] = &[
    ("patient.read", "profile and treatment phase"),
    ("check_in.read", "a check-in"),
    ("check_in.list", "check-in history"),
    ("summary.read", "summary of recent check-ins"),
    ("trends.read", "check-in trends"),
    ("alert.read", "an alert"),
    ("alert.list", "alerts"),
    ("alert.history", "an alert's history"),
    ("caseload.read", "latest check-in, in the caseload"),
    ("risk_policy.read", "alert settings"),
    (
        "risk_policy.backtest",
        "check-in history, replayed to test alert settings",
    ),
    ("disclosures.read", "accounting of disclosures"),
    ("consents.read", "consents"),
    ("export.read", "your complete record, exported"),
    ("alert.webhook", "an alert, sent to an app"),
    (
        "check_in.webhook",
        "that you checked in (the date, not your answers), sent to an app",
    ),
    (
        "patient.list",
        "name and consent, in an app's list of consenting patients",
    ),
];

/// What a read showed, in plain words.
pub fn describe(action: &str) -> &'static str {
    READS
        .iter()
        .find(|(a, _)| *a == action)
        .map_or("record", |(_, what)| what)
}

/// One read of the patient's data by someone else.
#[derive(Debug, Clone)]
pub struct AccessEntry {
    /// The audit record's id (the paging position).
    pub id: String,
    /// When.
    pub at: NaiveDateTime,
    /// The reader's current display name, if still on record.
    pub reader_name: Option<String>,
    /// The reader's role at the time.
    pub reader_role: Option<String>,
    /// What the read showed.
    pub what: &'static str,
}

/// The caller's (a patient's) access log, newest first: up to `limit + 1` entries before the
/// cursor (the extra one tells whether another page exists). Reading it is itself audited.
pub async fn for_me(
    state: &AppState,
    caller: &Caller,
    before: Option<String>,
    limit: i64,
) -> Result<Vec<AccessEntry>, ApiError> {
    let c = caller.clone();
    state
        .store
        .run(move |conn| -> Result<Vec<AccessEntry>, ApiError> {
            let rows = entries(conn, &c.user_id, before.as_deref(), limit + 1)?;
            audit::record(
                conn,
                &c,
                audit::Event::patient("access_log.read", &c.user_id, "patient", Some(&c.user_id)),
            )?;
            Ok(rows)
        })
        .await
}

/// Reads of a patient's data by anyone else, newest first: up to `limit` before the cursor.
pub fn entries(
    conn: &mut DbConnection,
    patient_id: &str,
    before: Option<&str>,
    limit: i64,
) -> Result<Vec<AccessEntry>, ApiError> {
    let actions: Vec<&str> = READS.iter().map(|(a, _)| *a).collect();
    let mut rows = store::reads_of_patient(conn, patient_id, &actions, before, limit)?;
    // Integrations are not users: their names come from their registration.
    for (r, name) in rows.iter_mut() {
        if r.actor_role.as_deref() == Some(audit::INTEGRATION_ROLE) {
            if let Some(id) = &r.actor_id {
                *name = crate::store::integrations::find(conn, id)?.map(|i| i.name);
            }
        }
    }
    Ok(rows
        .into_iter()
        .map(|(r, name)| AccessEntry {
            what: describe(&r.action),
            id: r.id,
            at: r.created_at,
            reader_name: name,
            reader_role: r.actor_role,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_are_told_in_plain_words() {
        assert_eq!(describe("check_in.list"), "check-in history");
        assert_eq!(
            describe("caseload.read"),
            "latest check-in, in the caseload"
        );
        assert_eq!(describe("something.else"), "record");
    }
}
