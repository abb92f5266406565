//! Patients' consents to disclose their records to an integration (42 CFR 2.31, SPEC §9):
//! what a patient is offered, giving, reading and revoking a consent; staff reading them.
//!
//! A consent names one integration, the categories it may receive, the purpose and how long
//! it holds. Giving a new consent to an integration replaces any earlier one to it (the
//! earlier shows as revoked), so revoking the current one never revives an older, wider one.

use std::collections::BTreeSet;

use chrono::{NaiveDate, TimeDelta};

use crate::auth::{policy, Caller, Role};
use crate::domain::categories::{self, Category};
use crate::domain::validation::FieldError;
use crate::error::ApiError;
use crate::service::audit;
use crate::service::check_ins::local_today;
use crate::state::AppState;
use crate::store::consents::{self as store, ConsentRow};
use crate::store::integrations::{self, IntegrationRow};
use crate::store::{self as db, accounts};

/// How far ahead a consent may be given to expire.
pub const MAX_YEARS: i64 = 10;

/// A consent as the patient gives it.
#[derive(Debug, Clone)]
pub struct NewConsent {
    /// The integration that may receive the records.
    pub integration_id: String,
    /// The categories it may receive.
    pub categories: Vec<String>,
    /// Why, in the patient's words or the clinic's.
    pub purpose: String,
    /// The last day it holds (the patient's local date); none: until revoked.
    pub expires_on: Option<NaiveDate>,
}

/// `active`, `revoked` or `expired`, on the patient's local date `today`.
pub fn status(row: &ConsentRow, today: NaiveDate) -> &'static str {
    if row.revoked_at.is_some() {
        "revoked"
    } else if row.is_active_on(today) {
        "active"
    } else {
        "expired"
    }
}

/// The organisation's integrations a patient may consent to: active ones.
pub async fn offered(state: &AppState, caller: &Caller) -> Result<Vec<IntegrationRow>, ApiError> {
    caller.require(&[Role::Patient])?;
    let org = caller.organisation_id.clone();
    state
        .store
        .run(move |conn| -> Result<_, ApiError> {
            Ok(integrations::for_organisation(conn, &org)?
                .into_iter()
                .filter(IntegrationRow::is_active)
                .collect())
        })
        .await
}

/// Checks a consent against the integration it names; the categories on success.
pub fn validate(
    input: &NewConsent,
    integration: Option<&IntegrationRow>,
    today: NaiveDate,
) -> Result<BTreeSet<Category>, Vec<FieldError>> {
    let mut errors = Vec::new();
    let granted = integration
        .map(|i| categories::parse_scopes(&i.scopes).unwrap_or_default())
        .unwrap_or_default();
    if integration.is_none() {
        errors.push(FieldError::new(
            "integration_id",
            "names no app your clinic connects",
        ));
    }
    if input.categories.is_empty() {
        errors.push(FieldError::new(
            "categories",
            "must name at least one category",
        ));
    }
    let mut set = BTreeSet::new();
    for (i, name) in input.categories.iter().enumerate() {
        match Category::parse(name) {
            None => errors.push(FieldError::new(
                format!("categories[{i}]"),
                format!(
                    "`{name}` is not a category; categories are {}",
                    categories::ALL.map(Category::as_str).join(", ")
                ),
            )),
            Some(c) if integration.is_some() && !granted.contains(&c) => {
                errors.push(FieldError::new(
                    format!("categories[{i}]"),
                    format!(
                        "`{name}` was not granted to this app; it may receive {}",
                        granted
                            .iter()
                            .map(|c| c.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ))
            }
            Some(c) => {
                set.insert(c);
            }
        }
    }
    let purpose = input.purpose.trim();
    if purpose.is_empty() {
        errors.push(FieldError::new("purpose", "must not be empty"));
    } else if input.purpose.chars().count() > 500 {
        // The limit is on what was sent, as the document states it.
        errors.push(FieldError::new("purpose", "must be at most 500 characters"));
    } else if purpose.chars().any(char::is_control) {
        errors.push(FieldError::new(
            "purpose",
            "must not contain control characters",
        ));
    }
    if let Some(last) = input.expires_on {
        if last < today {
            errors.push(FieldError::new(
                "expires_on",
                format!("must be today ({today}) or later"),
            ));
        } else if last > today + TimeDelta::days(366 * MAX_YEARS) {
            errors.push(FieldError::new(
                "expires_on",
                format!("must be within {MAX_YEARS} years"),
            ));
        }
    }
    if errors.is_empty() {
        Ok(set)
    } else {
        Err(errors)
    }
}

/// A patient consents to an integration. Audited.
pub async fn give(
    state: &AppState,
    caller: &Caller,
    input: NewConsent,
) -> Result<ConsentRow, ApiError> {
    caller.require(&[Role::Patient])?;
    let c = caller.clone();
    state
        .store
        .transaction(move |conn| -> Result<_, ApiError> {
            let today = local_today(&c.timezone);
            let integration = integrations::find(conn, &input.integration_id)?
                .filter(|i| i.organisation_id == c.organisation_id && i.is_active());
            let set =
                validate(&input, integration.as_ref(), today).map_err(ApiError::Validation)?;
            let integration = integration.ok_or(ApiError::NotFound)?;
            let user = accounts::find_user(conn, &c.user_id)?.ok_or(ApiError::NotFound)?;
            let org = accounts::find_organisation(conn, &c.organisation_id)?;
            let now = db::now();
            store::revoke_all_for(conn, &integration.id, &c.user_id, now)?;
            let row = ConsentRow {
                id: db::new_id(),
                organisation_id: c.organisation_id.clone(),
                patient_id: c.user_id.clone(),
                integration_id: integration.id,
                categories: categories::stored(&set),
                purpose: input.purpose.trim().to_owned(),
                expires_on: input.expires_on,
                patient_name: user.display_name.clone(),
                disclosing_organisation: org.name,
                recipient: integration.name,
                signed_by: user.display_name,
                signed_at: now,
                revoked_at: None,
            };
            store::insert(conn, &row)?;
            audit::record(
                conn,
                &c,
                audit::Event::patient("consent.given", &c.user_id, "consent", Some(&row.id)),
            )?;
            Ok(row)
        })
        .await
}

/// The caller's own consents (a patient), newest first: up to `limit + 1` before the cursor.
pub async fn mine(
    state: &AppState,
    caller: &Caller,
    before: Option<String>,
    limit: i64,
) -> Result<Vec<ConsentRow>, ApiError> {
    caller.require(&[Role::Patient])?;
    let c = caller.clone();
    state
        .store
        .run(move |conn| -> Result<_, ApiError> {
            let rows = store::for_patient(conn, &c.user_id, before.as_deref(), limit + 1)?;
            audit::record(
                conn,
                &c,
                audit::Event::patient("consents.read", &c.user_id, "consent", None),
            )?;
            Ok(rows)
        })
        .await
}

/// One of the caller's consents (a patient); another patient's is a 404.
pub async fn one_of_mine(
    state: &AppState,
    caller: &Caller,
    id: String,
) -> Result<ConsentRow, ApiError> {
    caller.require(&[Role::Patient])?;
    let c = caller.clone();
    state
        .store
        .run(move |conn| -> Result<_, ApiError> {
            let row = store::find(conn, &id)?
                .filter(|r| r.patient_id == c.user_id)
                .ok_or(ApiError::NotFound)?;
            audit::record(
                conn,
                &c,
                audit::Event::patient("consent.read", &c.user_id, "consent", Some(&row.id)),
            )?;
            Ok(row)
        })
        .await
}

/// The patient revokes one of their consents, effective at once. Revoking a revoked consent
/// answers it as it is. Audited.
pub async fn revoke(state: &AppState, caller: &Caller, id: String) -> Result<ConsentRow, ApiError> {
    caller.require(&[Role::Patient])?;
    let c = caller.clone();
    state
        .store
        .transaction(move |conn| -> Result<_, ApiError> {
            let mut row = store::find(conn, &id)?
                .filter(|r| r.patient_id == c.user_id)
                .ok_or(ApiError::NotFound)?;
            if row.revoked_at.is_none() {
                let now = db::now();
                store::revoke(conn, &row.id, now)?;
                row.revoked_at = Some(now);
                audit::record(
                    conn,
                    &c,
                    audit::Event::patient("consent.revoked", &c.user_id, "consent", Some(&row.id)),
                )?;
            }
            Ok(row)
        })
        .await
}

/// A patient's consents for staff (admins, or a counsellor on the care team; otherwise 404),
/// newest first, with the patient's time zone for their status. Audited as a read.
pub async fn of_patient(
    state: &AppState,
    caller: &Caller,
    patient_id: String,
    before: Option<String>,
    limit: i64,
) -> Result<(Vec<ConsentRow>, String), ApiError> {
    caller.require(&[Role::Admin, Role::Counsellor])?;
    let c = caller.clone();
    state
        .store
        .run(move |conn| -> Result<_, ApiError> {
            let patient = policy::reachable_patient(conn, &c, &patient_id)?;
            let timezone = accounts::find_user(conn, &patient.user_id)?
                .map(|u| u.timezone)
                .unwrap_or_else(|| "UTC".into());
            let rows = store::for_patient(conn, &patient.user_id, before.as_deref(), limit + 1)?;
            audit::record(
                conn,
                &c,
                audit::Event::patient("consents.read", &patient.user_id, "consent", None),
            )?;
            Ok((rows, timezone))
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::now;

    fn integration(scopes: &str) -> IntegrationRow {
        let t = now();
        IntegrationRow {
            id: "i1".into(),
            organisation_id: "o1".into(),
            client_id: "c1".into(),
            name: "Pharmacy reminders".into(),
            description: String::new(),
            scopes: scopes.into(),
            token_endpoint_auth_method: "client_secret_basic".into(),
            secret_hash: None,
            jwks: None,
            credentials_changed_at: t,
            created_by: "u1".into(),
            created_at: t,
            updated_at: t,
            disabled_at: None,
            deleted_at: None,
        }
    }

    fn consent(categories: &[&str], expires_on: Option<NaiveDate>) -> NewConsent {
        NewConsent {
            integration_id: "i1".into(),
            categories: categories.iter().map(|c| (*c).to_owned()).collect(),
            purpose: "Medication reminders".into(),
            expires_on,
        }
    }

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn a_category_not_granted_is_named() {
        let i = integration("medication.read alerts.read");
        let today = day("2026-12-02");
        let ok = validate(&consent(&["medication"], None), Some(&i), today).unwrap();
        assert_eq!(ok, BTreeSet::from([Category::Medication]));
        let errors = validate(
            &consent(&["medication", "withdrawal"], None),
            Some(&i),
            today,
        )
        .unwrap_err();
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].field, "categories[1]");
        assert!(errors[0].message.contains("`withdrawal`"));
        let errors = validate(&consent(&["notes"], None), Some(&i), today).unwrap_err();
        assert!(errors[0].message.contains("not a category"));
        let errors = validate(&consent(&[], None), None, today).unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["integration_id", "categories"]);
    }

    #[test]
    fn expiry_is_today_or_later_and_status_follows_the_local_date() {
        let i = integration("medication.read");
        let today = day("2026-12-02");
        assert!(validate(&consent(&["medication"], Some(today)), Some(&i), today).is_ok());
        let errors = validate(
            &consent(&["medication"], Some(day("2026-12-01"))),
            Some(&i),
            today,
        )
        .unwrap_err();
        assert_eq!(errors[0].field, "expires_on");
        let t = now();
        let mut row = ConsentRow {
            id: "c".into(),
            organisation_id: "o1".into(),
            patient_id: "p".into(),
            integration_id: "i1".into(),
            categories: "medication".into(),
            purpose: "x".into(),
            expires_on: Some(today),
            patient_name: "P".into(),
            disclosing_organisation: "O".into(),
            recipient: "R".into(),
            signed_by: "P".into(),
            signed_at: t,
            revoked_at: None,
        };
        assert_eq!(status(&row, day("2026-12-01")), "active");
        assert_eq!(status(&row, today), "active");
        assert_eq!(status(&row, day("2026-12-03")), "expired");
        row.revoked_at = Some(t);
        assert_eq!(status(&row, today), "revoked");
    }
}
