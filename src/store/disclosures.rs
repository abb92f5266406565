//! The accounting of disclosures: who received a patient's records, when, what and why.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::{disclosures, users};
use super::{DbConnection, StoreResult};

/// One disclosure.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = disclosures, treat_none_as_default_value = false)]
pub struct DisclosureRow {
    pub id: String,
    pub organisation_id: String,
    pub patient_id: String,
    /// `emergency` (42 CFR 2.51) or `integration`.
    pub kind: String,
    pub recipient_name: String,
    pub recipient_affiliation: Option<String>,
    /// For an emergency, what was disclosed, in the staff member's words.
    pub nature: Option<String>,
    /// Comma-separated data categories ("" when not by category).
    pub categories: String,
    /// The route or event that disclosed (integrations).
    pub what: Option<String>,
    pub consent_id: Option<String>,
    pub recorded_by: Option<String>,
    pub disclosed_at: NaiveDateTime,
}

/// Records a disclosure.
pub fn insert(conn: &mut DbConnection, row: &DisclosureRow) -> StoreResult<()> {
    diesel::insert_into(disclosures::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

/// Records several disclosures (see `insert_rows!`).
pub fn insert_many(conn: &mut DbConnection, rows: &[DisclosureRow]) -> StoreResult<()> {
    insert_rows!(conn, disclosures::table, rows);
    Ok(())
}

/// A patient's disclosures, newest first before the cursor id, each with the display name of
/// the staff member who recorded it.
pub fn for_patient(
    conn: &mut DbConnection,
    patient_id: &str,
    before: Option<&str>,
    limit: i64,
) -> StoreResult<Vec<(DisclosureRow, Option<String>)>> {
    let mut q = disclosures::table
        .left_join(users::table.on(disclosures::recorded_by.eq(users::id.nullable())))
        .filter(disclosures::patient_id.eq(patient_id))
        .into_boxed();
    if let Some(b) = before {
        q = q.filter(disclosures::id.lt(b.to_owned()));
    }
    Ok(q.order(disclosures::id.desc())
        .limit(limit)
        .select((DisclosureRow::as_select(), users::display_name.nullable()))
        .load(conn)?)
}
