//! Object-level access: who may reach which patient. Out of reach is indistinguishable from
//! missing (404), so ids cannot be probed across care teams or organisations.

use super::{Caller, Role};
use crate::error::ApiError;
use crate::store::patients::{self, PatientRow};
use crate::store::DbConnection;

/// Loads a patient the caller may read: admins their organisation's, counsellors their care
/// teams', patients only themselves.
pub fn reachable_patient(
    conn: &mut DbConnection,
    caller: &Caller,
    patient_id: &str,
) -> Result<PatientRow, ApiError> {
    let patient = patients::find(conn, patient_id)?.ok_or(ApiError::NotFound)?;
    if patient.organisation_id != caller.organisation_id {
        return Err(ApiError::NotFound);
    }
    let ok = match caller.role {
        Role::Admin => true,
        Role::Counsellor => patients::on_care_team(conn, patient_id, &caller.user_id)?,
        Role::Patient => patient.user_id == caller.user_id,
    };
    if ok {
        Ok(patient)
    } else {
        Err(ApiError::NotFound)
    }
}
