//! Writing the audit trail: every read and write of patient data, sign-ins, and denials.

use crate::auth::Caller;
use crate::store::audit::{self, AuditRow};
use crate::store::{self, DbConnection, StoreResult};

/// What happened to whom.
pub struct Event<'a> {
    /// e.g. `patient.read`, `check_in.write`, `auth.login`.
    pub action: &'a str,
    /// The patient whose data was touched, if any.
    pub patient_id: Option<&'a str>,
    /// The kind of object, e.g. `alert`.
    pub target_type: Option<&'a str>,
    /// The object's id.
    pub target_id: Option<&'a str>,
    /// `success`, `denied` or `failure`.
    pub outcome: &'a str,
}

impl<'a> Event<'a> {
    /// A successful read or write of one patient's data.
    pub fn patient(
        action: &'a str,
        patient_id: &'a str,
        target_type: &'a str,
        target_id: Option<&'a str>,
    ) -> Self {
        Self {
            action,
            patient_id: Some(patient_id),
            target_type: Some(target_type),
            target_id,
            outcome: "success",
        }
    }

    /// A successful action that touches no single patient's data.
    pub fn other(action: &'a str, target_type: &'a str, target_id: Option<&'a str>) -> Self {
        Self {
            action,
            patient_id: None,
            target_type: Some(target_type),
            target_id,
            outcome: "success",
        }
    }
}

/// Records an event by an authenticated caller.
pub fn record(conn: &mut DbConnection, caller: &Caller, e: Event<'_>) -> StoreResult<()> {
    audit::insert(
        conn,
        &AuditRow {
            id: store::new_id(),
            organisation_id: Some(caller.organisation_id.clone()),
            actor_id: Some(caller.user_id.clone()),
            actor_role: Some(caller.role.as_str().to_owned()),
            action: e.action.to_owned(),
            patient_id: e.patient_id.map(str::to_owned),
            target_type: e.target_type.map(str::to_owned),
            target_id: e.target_id.map(str::to_owned),
            outcome: e.outcome.to_owned(),
            request_id: caller.request_id.clone(),
            created_at: store::now(),
        },
    )
}

/// Records an event with no authenticated caller (sign-in attempts, system actions).
pub fn record_anonymous(
    conn: &mut DbConnection,
    organisation_id: Option<&str>,
    actor_id: Option<&str>,
    action: &str,
    outcome: &str,
    request_id: Option<&str>,
) -> StoreResult<()> {
    audit::insert(
        conn,
        &AuditRow {
            id: store::new_id(),
            organisation_id: organisation_id.map(str::to_owned),
            actor_id: actor_id.map(str::to_owned),
            actor_role: None,
            action: action.to_owned(),
            patient_id: None,
            target_type: None,
            target_id: None,
            outcome: outcome.to_owned(),
            request_id: request_id.map(str::to_owned),
            created_at: store::now(),
        },
    )
}

/// Records that the caller read data of each of `patient_ids` (a caseload or an inbox page):
/// one record per patient, so each patient's access log shows the read, in one statement.
pub fn record_reads(
    conn: &mut DbConnection,
    caller: &Caller,
    action: &str,
    target_type: &str,
    patient_ids: &[&str],
) -> StoreResult<()> {
    let now = store::now();
    let mut seen: Vec<&str> = Vec::with_capacity(patient_ids.len());
    for p in patient_ids {
        if !seen.contains(p) {
            seen.push(p);
        }
    }
    let rows: Vec<AuditRow> = seen
        .into_iter()
        .map(|p| AuditRow {
            id: store::new_id(),
            organisation_id: Some(caller.organisation_id.clone()),
            actor_id: Some(caller.user_id.clone()),
            actor_role: Some(caller.role.as_str().to_owned()),
            action: action.to_owned(),
            patient_id: Some(p.to_owned()),
            target_type: Some(target_type.to_owned()),
            target_id: None,
            outcome: "success".to_owned(),
            request_id: caller.request_id.clone(),
            created_at: now,
        })
        .collect();
    audit::insert_many(conn, &rows)
}

/// Records an event by an integration (SPEC §9): the actor is the integration, its role
/// `integration`.
pub fn record_integration(
    conn: &mut DbConnection,
    organisation_id: &str,
    integration_id: &str,
    request_id: Option<&str>,
    e: Event<'_>,
) -> StoreResult<()> {
    audit::insert(
        conn,
        &integration_row(organisation_id, integration_id, request_id, e),
    )
}

/// The record of an event by an integration, to insert with others.
pub fn integration_row(
    organisation_id: &str,
    integration_id: &str,
    request_id: Option<&str>,
    e: Event<'_>,
) -> AuditRow {
    AuditRow {
        id: store::new_id(),
        organisation_id: Some(organisation_id.to_owned()),
        actor_id: Some(integration_id.to_owned()),
        actor_role: Some(INTEGRATION_ROLE.to_owned()),
        action: e.action.to_owned(),
        patient_id: e.patient_id.map(str::to_owned),
        target_type: e.target_type.map(str::to_owned),
        target_id: e.target_id.map(str::to_owned),
        outcome: e.outcome.to_owned(),
        request_id: request_id.map(str::to_owned),
        created_at: store::now(),
    }
}

/// The audit trail's role for an integration actor.
pub const INTEGRATION_ROLE: &str = "integration";
