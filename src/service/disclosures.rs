//! The accounting of disclosures (42 CFR 2.25): disclosures made without consent in a medical
//! emergency (§2.51), recorded by staff; the patient and their care team read them. Integration
//! disclosures join the same record when integrations exist (issue #14).

use crate::auth::{policy, Caller, Role};
use crate::domain::validation::FieldError;
use crate::error::ApiError;
use crate::service::audit;
use crate::state::AppState;
use crate::store::disclosures::{self as store, DisclosureRow};
use crate::store::{self as db};

/// What staff record about an emergency disclosure.
#[derive(Debug, Clone)]
pub struct Emergency {
    /// Who received the records (a person).
    pub recipient_name: String,
    /// Their organisation, e.g. the emergency department.
    pub recipient_affiliation: String,
    /// What was disclosed and why it was a medical emergency.
    pub nature: String,
}

fn text(field: &str, value: &str, max: usize, errors: &mut Vec<FieldError>) -> String {
    let v = value.trim();
    if v.is_empty() {
        errors.push(FieldError::new(field, "must not be empty"));
    } else if value.chars().count() > max {
        // The limit is on what was sent, as the document states it.
        errors.push(FieldError::new(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    v.to_owned()
}

/// Checks an emergency disclosure: every element §2.51 asks for is present and of sane size.
pub fn validate(e: Emergency) -> Result<Emergency, Vec<FieldError>> {
    let mut errors = Vec::new();
    let out = Emergency {
        recipient_name: text("recipient_name", &e.recipient_name, 200, &mut errors),
        recipient_affiliation: text(
            "recipient_affiliation",
            &e.recipient_affiliation,
            200,
            &mut errors,
        ),
        nature: text("nature", &e.nature, 2000, &mut errors),
    };
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// Staff (an admin, or a counsellor on the patient's care team) record an emergency disclosure
/// of a patient's records; it appears in the patient's accounting. Audited.
pub async fn record_emergency(
    state: &AppState,
    caller: &Caller,
    patient_id: String,
    input: Emergency,
) -> Result<(DisclosureRow, Option<String>), ApiError> {
    caller.require(&[Role::Admin, Role::Counsellor])?;
    let c = caller.clone();
    state
        .store
        .transaction(move |conn| -> Result<_, ApiError> {
            let patient = policy::reachable_patient(conn, &c, &patient_id)?;
            let input = validate(input).map_err(ApiError::Validation)?;
            let row = DisclosureRow {
                id: db::new_id(),
                organisation_id: patient.organisation_id,
                patient_id: patient.user_id,
                kind: "emergency".into(),
                recipient_name: input.recipient_name,
                recipient_affiliation: Some(input.recipient_affiliation),
                nature: Some(input.nature),
                categories: String::new(),
                what: None,
                consent_id: None,
                recorded_by: Some(c.user_id.clone()),
                disclosed_at: db::now(),
            };
            store::insert(conn, &row)?;
            audit::record(
                conn,
                &c,
                audit::Event::patient(
                    "disclosure.emergency_recorded",
                    &row.patient_id,
                    "disclosure",
                    Some(&row.id),
                ),
            )?;
            let name = crate::store::accounts::find_user(conn, &c.user_id)?.map(|u| u.display_name);
            Ok((row, name))
        })
        .await
}

/// A patient's accounting of disclosures, newest first (up to `limit + 1` rows before the
/// cursor): the caller's own for a patient (`patient_id` None), or a reachable patient's for
/// staff. Audited.
pub async fn list(
    state: &AppState,
    caller: &Caller,
    patient_id: Option<String>,
    before: Option<String>,
    limit: i64,
) -> Result<Vec<(DisclosureRow, Option<String>)>, ApiError> {
    match &patient_id {
        None => caller.require(&[Role::Patient])?,
        Some(_) => caller.require(&[Role::Admin, Role::Counsellor])?,
    }
    let c = caller.clone();
    state
        .store
        .run(move |conn| -> Result<_, ApiError> {
            let id = match patient_id {
                None => c.user_id.clone(),
                Some(id) => policy::reachable_patient(conn, &c, &id)?.user_id,
            };
            let rows = store::for_patient(conn, &id, before.as_deref(), limit + 1)?;
            audit::record(
                conn,
                &c,
                audit::Event::patient("disclosures.read", &id, "disclosure", None),
            )?;
            Ok(rows)
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn emergency(name: &str, affiliation: &str, nature: &str) -> Emergency {
        Emergency {
            recipient_name: name.into(),
            recipient_affiliation: affiliation.into(),
            nature: nature.into(),
        }
    }

    #[test]
    fn every_element_is_required_and_bounded() {
        let ok = validate(emergency(
            " Dr Lee ",
            "St Mary's ED",
            "Overdose: substances used",
        ))
        .unwrap();
        assert_eq!(ok.recipient_name, "Dr Lee");
        let errors = validate(emergency("", "  ", "x")).unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["recipient_name", "recipient_affiliation"]);
        assert!(validate(emergency(&"a".repeat(200), "b", &"c".repeat(2000))).is_ok());
        let errors = validate(emergency(&"a".repeat(201), "b", &"c".repeat(2001))).unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["recipient_name", "nature"]);
    }
}
