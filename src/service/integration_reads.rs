//! What an integration reads (SPEC §9): only patients with an active consent to it, only the
//! categories both in the consent and in its token's scopes. A patient without such a consent
//! does not exist for it (404, never listed). Each disclosing read is recorded, in the same
//! transaction as its audit record, in the patient's accounting of disclosures.

use std::collections::BTreeSet;

use chrono::{NaiveDate, TimeDelta};

use crate::auth::IntegrationCaller;
use crate::domain::categories::{self, Category};
use crate::error::ApiError;
use crate::service::audit;
use crate::service::check_ins::local_today;
use crate::service::patients::days_since_last_use;
use crate::state::AppState;
use crate::store::accounts::{self, UserRow};
use crate::store::alerts::{self, AlertFilter, AlertRow, Scope};
use crate::store::check_ins::{self, CheckInRow};
use crate::store::consents::{self, ConsentRow};
use crate::store::disclosures::{self, DisclosureRow};
use crate::store::integrations::{self, IntegrationRow};
use crate::store::patients::{self, PatientRow};
use crate::store::{self as db, DbConnection};

/// A consenting patient as an integration sees them.
#[derive(Debug, Clone)]
pub struct ConsentingPatient {
    /// The patient's account.
    pub user: UserRow,
    /// The consent relied on.
    pub consent: ConsentRow,
    /// What may be disclosed now: the consent's categories within the token's scopes.
    pub allowed: BTreeSet<Category>,
}

/// One patient read by an integration.
#[derive(Debug, Clone)]
pub struct PatientRead {
    /// Who, under which consent.
    pub who: ConsentingPatient,
    /// The treatment phase (with the `phase` category).
    pub phase: Option<PatientRow>,
    /// Days since last use (with the `substance_use` category).
    pub days_since_last_use: Option<Option<i64>>,
}

/// What is disclosed of one consenting patient.
fn allowed(consent: &ConsentRow, integration: &IntegrationCaller) -> BTreeSet<Category> {
    categories::from_stored(&consent.categories)
        .intersection(&integration.categories)
        .copied()
        .collect()
}

/// The patient and the consent an integration may rely on, or 404.
fn consenting(
    conn: &mut DbConnection,
    integration: &IntegrationCaller,
    patient_id: &str,
) -> Result<(ConsentingPatient, PatientRow), ApiError> {
    let patient = patients::find(conn, patient_id)?
        .filter(|p| p.organisation_id == integration.organisation_id)
        .ok_or(ApiError::NotFound)?;
    let user = accounts::find_user(conn, patient_id)?
        .filter(|u| !u.disabled)
        .ok_or(ApiError::NotFound)?;
    let today = local_today(&user.timezone);
    let consent = consents::active_for(conn, &integration.integration_id, patient_id, today)?
        .ok_or(ApiError::NotFound)?;
    let allowed = allowed(&consent, integration);
    Ok((
        ConsentingPatient {
            user,
            consent,
            allowed,
        },
        patient,
    ))
}

/// Records one disclosure and its audit record.
fn disclose(
    conn: &mut DbConnection,
    integration: &IntegrationCaller,
    who: &ConsentingPatient,
    categories: &BTreeSet<Category>,
    what: &str,
    action: &str,
    target_type: &str,
) -> Result<(), ApiError> {
    let (disclosure, audit_row) =
        disclosure_rows(integration, who, categories, what, action, target_type);
    disclosures::insert(conn, &disclosure)?;
    crate::store::audit::insert(conn, &audit_row)?;
    Ok(())
}

/// A disclosure to an integration and its audit record, to insert.
fn disclosure_rows(
    integration: &IntegrationCaller,
    who: &ConsentingPatient,
    categories: &BTreeSet<Category>,
    what: &str,
    action: &str,
    target_type: &str,
) -> (DisclosureRow, crate::store::audit::AuditRow) {
    let disclosure = DisclosureRow {
        id: db::new_id(),
        organisation_id: integration.organisation_id.clone(),
        patient_id: who.user.id.clone(),
        kind: "integration".into(),
        recipient_name: integration.name.clone(),
        recipient_affiliation: None,
        nature: None,
        categories: categories::stored(categories),
        what: Some(what.to_owned()),
        consent_id: Some(who.consent.id.clone()),
        recorded_by: None,
        disclosed_at: db::now(),
    };
    let audit_row = audit::integration_row(
        &integration.organisation_id,
        &integration.integration_id,
        integration.request_id.as_deref(),
        audit::Event::patient(action, &who.user.id, target_type, Some(&who.consent.id)),
    );
    (disclosure, audit_row)
}

/// The refusal of a category outside consent ∩ scopes.
fn outside(c: Category) -> ApiError {
    ApiError::ForbiddenBecause(format!(
        "The category `{}` is outside what this patient consented to and this token's scopes allow.",
        c.as_str()
    ))
}

/// The categories asked for: all allowed ones, or those named, each of which must be allowed
/// (403 otherwise).
fn asked(
    allowed: &BTreeSet<Category>,
    names: Option<&BTreeSet<Category>>,
) -> Result<BTreeSet<Category>, ApiError> {
    match names {
        None => Ok(allowed.clone()),
        Some(set) => match set.iter().find(|c| !allowed.contains(c)) {
            None => Ok(set.clone()),
            Some(c) => Err(outside(*c)),
        },
    }
}

/// The patients with an active consent to the integration, in id order after the cursor:
/// up to `limit` of them, and whether more may follow (the position to continue after).
pub async fn list_patients(
    state: &AppState,
    integration: &IntegrationCaller,
    after: Option<String>,
    limit: i64,
) -> Result<(Vec<ConsentingPatient>, Option<String>), ApiError> {
    let i = integration.clone();
    state
        .store
        .transaction(move |conn| -> Result<_, ApiError> {
            // No one's local date is earlier than UTC's yesterday; each is checked below.
            let earliest: NaiveDate = chrono::Utc::now().date_naive() - TimeDelta::days(1);
            let rows = consents::unrevoked_for_integration(
                conn,
                &i.integration_id,
                earliest,
                after.as_deref(),
                limit + 1,
            )?;
            let more = i64::try_from(rows.len()).unwrap_or(i64::MAX) > limit;
            let rows: Vec<ConsentRow> = rows
                .into_iter()
                .take(usize::try_from(limit).unwrap_or(0))
                .collect();
            let next = if more {
                rows.last().map(|r| r.patient_id.clone())
            } else {
                None
            };
            let ids: Vec<String> = rows.iter().map(|r| r.patient_id.clone()).collect();
            let users = accounts::find_users(conn, &ids)?;
            let mut out = Vec::new();
            let (mut disclosed, mut audited) = (Vec::new(), Vec::new());
            for consent in rows {
                let Some(user) = users.iter().find(|u| u.id == consent.patient_id) else {
                    continue;
                };
                if user.disabled
                    || user.organisation_id != i.organisation_id
                    || !consent.is_active_on(local_today(&user.timezone))
                {
                    continue;
                }
                let who = ConsentingPatient {
                    allowed: allowed(&consent, &i),
                    user: user.clone(),
                    consent,
                };
                let (d, a) = disclosure_rows(
                    &i,
                    &who,
                    &BTreeSet::new(),
                    "GET /v1/integration/patients",
                    "patient.list",
                    "patient",
                );
                disclosed.push(d);
                audited.push(a);
                out.push(who);
            }
            // One statement each for the page (in chunks on PostgreSQL).
            disclosures::insert_many(conn, &disclosed)?;
            crate::store::audit::insert_many(conn, &audited)?;
            Ok((out, next))
        })
        .await
}

/// One consenting patient: name and consent, the phase with `phase`, days since last use
/// with `substance_use`.
pub async fn patient(
    state: &AppState,
    integration: &IntegrationCaller,
    patient_id: String,
) -> Result<PatientRead, ApiError> {
    let i = integration.clone();
    state
        .store
        .transaction(move |conn| -> Result<_, ApiError> {
            let (who, patient) = consenting(conn, &i, &patient_id)?;
            let shown: BTreeSet<Category> = who
                .allowed
                .iter()
                .copied()
                .filter(|c| matches!(c, Category::Phase | Category::SubstanceUse))
                .collect();
            disclose(
                conn,
                &i,
                &who,
                &shown,
                "GET /v1/integration/patients/{id}",
                "patient.read",
                "patient",
            )?;
            let today = local_today(&who.user.timezone);
            let days = shown.contains(&Category::SubstanceUse).then(|| {
                days_since_last_use(
                    today,
                    patient.last_use_on,
                    patient.enrolment_last_use_on,
                    patient.first_check_in_on,
                )
            });
            Ok(PatientRead {
                phase: shown.contains(&Category::Phase).then_some(patient),
                days_since_last_use: days,
                who,
            })
        })
        .await
}

/// A consenting patient's check-ins, newest first, with the categories to show of each.
/// Needs at least one category that a check-in carries (403 otherwise), so a consent to
/// alerts alone does not disclose on which days the patient checked in.
#[allow(clippy::too_many_arguments)]
pub async fn check_ins(
    state: &AppState,
    integration: &IntegrationCaller,
    patient_id: String,
    names: Option<BTreeSet<Category>>,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
    before: Option<NaiveDate>,
    limit: i64,
) -> Result<(ConsentingPatient, BTreeSet<Category>, Vec<CheckInRow>), ApiError> {
    let i = integration.clone();
    state
        .store
        .transaction(move |conn| -> Result<_, ApiError> {
            let (who, _) = consenting(conn, &i, &patient_id)?;
            let shown: BTreeSet<Category> = asked(&who.allowed, names.as_ref())?
                .into_iter()
                .filter(|c| !c.check_in_fields().is_empty())
                .collect();
            if shown.is_empty() {
                return Err(ApiError::ForbiddenBecause(
                    "No category a check-in carries is within this patient's consent and this token's scopes.".into(),
                ));
            }
            let rows = check_ins::page(conn, &patient_id, from, to, before, limit + 1)?;
            disclose(
                conn,
                &i,
                &who,
                &shown,
                "GET /v1/integration/patients/{id}/check-ins",
                "check_in.list",
                "check_in",
            )?;
            Ok((who, shown, rows))
        })
        .await
}

/// A consenting patient's alerts, newest first (the `alerts` category; 403 without it).
pub async fn alerts(
    state: &AppState,
    integration: &IntegrationCaller,
    patient_id: String,
    before: Option<String>,
    limit: i64,
) -> Result<(ConsentingPatient, Vec<AlertRow>), ApiError> {
    let i = integration.clone();
    state
        .store
        .transaction(move |conn| -> Result<_, ApiError> {
            let (who, _) = consenting(conn, &i, &patient_id)?;
            if !who.allowed.contains(&Category::Alerts) {
                return Err(outside(Category::Alerts));
            }
            let filter = AlertFilter {
                patient_id: Some(patient_id.clone()),
                ..AlertFilter::default()
            };
            let rows = alerts::list(
                conn,
                Scope::Organisation(&i.organisation_id),
                &filter,
                before.as_deref(),
                limit + 1,
            )?;
            disclose(
                conn,
                &i,
                &who,
                &BTreeSet::from([Category::Alerts]),
                "GET /v1/integration/patients/{id}/alerts",
                "alert.list",
                "alert",
            )?;
            Ok((who, rows))
        })
        .await
}

/// The categories an event of `event_type` discloses, given what consent ∩ scopes allows: an
/// alert event the `alerts` category; `check_in.submitted` (the fact and date of a check-in)
/// the check-in categories allowed, at least one. Empty: the event must not go out.
pub fn event_categories(event_type: &str, allowed: &BTreeSet<Category>) -> BTreeSet<Category> {
    if event_type == crate::service::alerts::events::CHECK_IN_SUBMITTED {
        allowed
            .iter()
            .copied()
            .filter(|c| !c.check_in_fields().is_empty())
            .collect()
    } else {
        allowed
            .iter()
            .copied()
            .filter(|c| *c == Category::Alerts)
            .collect()
    }
}

/// What a webhook delivery to an integration relies on: the integration, the patient's consent
/// and the categories the event discloses under it.
#[derive(Debug, Clone)]
pub struct EventConsent {
    /// The integration, active.
    pub integration: IntegrationRow,
    /// The patient's active consent to it.
    pub consent: ConsentRow,
    /// What the event discloses (never empty).
    pub categories: BTreeSet<Category>,
}

/// What a delivery of `event_type` to an integration about a patient relies on when it is
/// queued and again when it is sent: the integration active, and the patient's active consent
/// to it, with the event's categories (see [`event_categories`]) both consented and in the
/// integration's scopes. `None`: the delivery must not go out.
pub fn event_delivery_consent(
    conn: &mut DbConnection,
    integration_id: &str,
    patient_id: &str,
    event_type: &str,
) -> Result<Option<EventConsent>, ApiError> {
    let Some(integration) = integrations::find(conn, integration_id)?.filter(|i| i.is_active())
    else {
        return Ok(None);
    };
    let scopes = categories::parse_scopes(&integration.scopes).unwrap_or_default();
    if event_categories(event_type, &scopes).is_empty() {
        return Ok(None);
    }
    let Some(user) = accounts::find_user(conn, patient_id)?
        .filter(|u| !u.disabled && u.organisation_id == integration.organisation_id)
    else {
        return Ok(None);
    };
    let today = local_today(&user.timezone);
    let Some(consent) = consents::active_for(conn, &integration.id, patient_id, today)? else {
        return Ok(None);
    };
    let allowed: BTreeSet<Category> = categories::from_stored(&consent.categories)
        .intersection(&scopes)
        .copied()
        .collect();
    let shown = event_categories(event_type, &allowed);
    Ok((!shown.is_empty()).then_some(EventConsent {
        integration,
        consent,
        categories: shown,
    }))
}

/// Records an event delivered to an integration's webhook in the patient's accounting of
/// disclosures, with its audit record.
pub fn record_webhook_disclosure(
    conn: &mut DbConnection,
    sent: &EventConsent,
    event_type: &str,
) -> Result<(), ApiError> {
    let (integration, consent) = (&sent.integration, &sent.consent);
    disclosures::insert(
        conn,
        &DisclosureRow {
            id: db::new_id(),
            organisation_id: integration.organisation_id.clone(),
            patient_id: consent.patient_id.clone(),
            kind: "integration".into(),
            recipient_name: integration.name.clone(),
            recipient_affiliation: None,
            nature: None,
            categories: categories::stored(&sent.categories),
            what: Some(format!("webhook {event_type}")),
            consent_id: Some(consent.id.clone()),
            recorded_by: None,
            disclosed_at: db::now(),
        },
    )?;
    let (action, resource) = if event_type == crate::service::alerts::events::CHECK_IN_SUBMITTED {
        ("check_in.webhook", "check_in")
    } else {
        ("alert.webhook", "alert")
    };
    audit::record_integration(
        conn,
        &integration.organisation_id,
        &integration.id,
        None,
        audit::Event::patient(action, &consent.patient_id, resource, Some(&consent.id)),
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn naming_a_category_outside_consent_and_scopes_is_forbidden() {
        let allowed = BTreeSet::from([Category::Wellbeing, Category::Safety]);
        assert_eq!(asked(&allowed, None).unwrap(), allowed);
        let one = BTreeSet::from([Category::Safety]);
        assert_eq!(asked(&allowed, Some(&one)).unwrap(), one);
        let outside = BTreeSet::from([Category::Safety, Category::SubstanceUse]);
        assert!(matches!(
            asked(&allowed, Some(&outside)),
            Err(ApiError::ForbiddenBecause(m)) if m.contains("`substance_use`")
        ));
    }
}
