//! Patients' consents to disclose categories of their records to an integration (42 CFR 2.31).

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;

use super::schema::consents;
use super::{DbConnection, StoreResult};

/// One consent, holding the elements as signed.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = consents)]
pub struct ConsentRow {
    pub id: String,
    pub organisation_id: String,
    pub patient_id: String,
    pub integration_id: String,
    /// Comma-separated category names (see `domain::categories::from_stored`).
    pub categories: String,
    pub purpose: String,
    /// Last day it holds, in the patient's time zone; `None`: until revoked.
    pub expires_on: Option<NaiveDate>,
    pub patient_name: String,
    pub disclosing_organisation: String,
    pub recipient: String,
    pub signed_by: String,
    pub signed_at: NaiveDateTime,
    pub revoked_at: Option<NaiveDateTime>,
}

impl ConsentRow {
    /// Whether the consent holds on the patient's local date `today`.
    pub fn is_active_on(&self, today: NaiveDate) -> bool {
        self.revoked_at.is_none() && self.expires_on.is_none_or(|last| today <= last)
    }
}

/// Records a consent.
pub fn insert(conn: &mut DbConnection, row: &ConsentRow) -> StoreResult<()> {
    diesel::insert_into(consents::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

/// A consent by id.
pub fn find(conn: &mut DbConnection, id: &str) -> StoreResult<Option<ConsentRow>> {
    Ok(consents::table
        .find(id)
        .select(ConsentRow::as_select())
        .first(conn)
        .optional()?)
}

/// The consent a patient's records may be disclosed to an integration under on the patient's
/// local date `today`: the most recently signed one that is neither revoked nor expired.
pub fn active_for(
    conn: &mut DbConnection,
    integration_id: &str,
    patient_id: &str,
    today: NaiveDate,
) -> StoreResult<Option<ConsentRow>> {
    Ok(consents::table
        .filter(consents::integration_id.eq(integration_id))
        .filter(consents::patient_id.eq(patient_id))
        .filter(consents::revoked_at.is_null())
        .filter(
            consents::expires_on
                .is_null()
                .or(consents::expires_on.ge(today)),
        )
        .order((consents::signed_at.desc(), consents::id.desc()))
        .select(ConsentRow::as_select())
        .first(conn)
        .optional()?)
}

/// A patient's consents, newest first, before the cursor id.
pub fn for_patient(
    conn: &mut DbConnection,
    patient_id: &str,
    before: Option<&str>,
    limit: i64,
) -> StoreResult<Vec<ConsentRow>> {
    let mut q = consents::table
        .filter(consents::patient_id.eq(patient_id))
        .into_boxed();
    if let Some(b) = before {
        q = q.filter(consents::id.lt(b.to_owned()));
    }
    Ok(q.order(consents::id.desc())
        .limit(limit)
        .select(ConsentRow::as_select())
        .load(conn)?)
}

/// Patients with a consent to the integration that is not revoked and not expired before
/// `earliest` (the earliest local date any patient may be on), after the cursor patient id,
/// in patient id order; the caller checks each against the patient's own date.
pub fn unrevoked_for_integration(
    conn: &mut DbConnection,
    integration_id: &str,
    earliest: NaiveDate,
    after: Option<&str>,
    limit: i64,
) -> StoreResult<Vec<ConsentRow>> {
    let mut q = consents::table
        .filter(consents::integration_id.eq(integration_id))
        .filter(consents::revoked_at.is_null())
        .filter(
            consents::expires_on
                .is_null()
                .or(consents::expires_on.ge(earliest)),
        )
        .into_boxed();
    if let Some(a) = after {
        q = q.filter(consents::patient_id.gt(a.to_owned()));
    }
    Ok(
        q.order((consents::patient_id.asc(), consents::signed_at.desc()))
            .limit(limit)
            .select(ConsentRow::as_select())
            .load(conn)?,
    )
}

/// Revokes every unrevoked consent of a patient to an integration (a new one replaces them).
pub fn revoke_all_for(
    conn: &mut DbConnection,
    integration_id: &str,
    patient_id: &str,
    at: NaiveDateTime,
) -> StoreResult<()> {
    diesel::update(
        consents::table
            .filter(consents::integration_id.eq(integration_id))
            .filter(consents::patient_id.eq(patient_id))
            .filter(consents::revoked_at.is_null()),
    )
    .set(consents::revoked_at.eq(Some(at)))
    .execute(conn)?;
    Ok(())
}

/// Marks a consent revoked at `at`; `false` when it already was.
pub fn revoke(conn: &mut DbConnection, id: &str, at: NaiveDateTime) -> StoreResult<bool> {
    let n = diesel::update(
        consents::table
            .find(id)
            .filter(consents::revoked_at.is_null()),
    )
    .set(consents::revoked_at.eq(Some(at)))
    .execute(conn)?;
    Ok(n == 1)
}

/// Revokes every unrevoked consent to an integration (it was deleted).
pub fn revoke_for_integration(
    conn: &mut DbConnection,
    integration_id: &str,
    at: NaiveDateTime,
) -> StoreResult<()> {
    diesel::update(
        consents::table
            .filter(consents::integration_id.eq(integration_id))
            .filter(consents::revoked_at.is_null()),
    )
    .set(consents::revoked_at.eq(Some(at)))
    .execute(conn)?;
    Ok(())
}

/// Revokes every unrevoked consent of a patient (their account was closed).
pub fn revoke_all_of_patient(
    conn: &mut DbConnection,
    patient_id: &str,
    at: NaiveDateTime,
) -> StoreResult<usize> {
    Ok(diesel::update(
        consents::table
            .filter(consents::patient_id.eq(patient_id))
            .filter(consents::revoked_at.is_null()),
    )
    .set(consents::revoked_at.eq(Some(at)))
    .execute(conn)?)
}
