//! The patient's copy of their record (SPEC §10): who may export whose record. The export
//! itself is read slice by slice in one read transaction (`http::export`), so a record of
//! years of check-ins is never held in memory whole.

use crate::auth::{policy, Caller, Role};
use crate::error::ApiError;
use crate::service::audit;
use crate::state::AppState;
use crate::store::accounts;

/// Whose record is exported.
#[derive(Debug, Clone)]
pub struct Subject {
    /// The patient.
    pub patient_id: String,
    /// Their time zone (for check-in views).
    pub timezone: String,
}

/// Checks that the caller may export the record — a patient their own (`patient_id` None);
/// an admin, or a counsellor on the care team, a patient's (otherwise 404), with a sign-in
/// within the last 10 minutes (SPEC §12) — and records the export in the audit trail.
pub async fn begin(
    state: &AppState,
    caller: &Caller,
    patient_id: Option<String>,
) -> Result<Subject, ApiError> {
    match &patient_id {
        None => caller.require(&[Role::Patient])?,
        Some(_) => caller.require(&[Role::Admin, Role::Counsellor])?,
    }
    let c = caller.clone();
    let subject = state
        .store
        .transaction(move |conn| -> Result<Subject, ApiError> {
            let id = match patient_id {
                None => c.user_id.clone(),
                Some(id) => {
                    let p = policy::reachable_patient(conn, &c, &id)?;
                    c.require_recent_sign_in()?;
                    p.user_id
                }
            };
            let timezone = accounts::find_user(conn, &id)?
                .map(|u| u.timezone)
                .ok_or(ApiError::NotFound)?;
            audit::record(
                conn,
                &c,
                audit::Event::patient("export.read", &id, "patient", Some(&id)),
            )?;
            Ok(Subject {
                patient_id: id,
                timezone,
            })
        })
        .await?;
    Ok(subject)
}
