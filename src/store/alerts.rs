//! Alerts, their change history, the delivery outbox and the live-stream feed.

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;

use super::schema::{
    alert_changes, alert_feed, alerts, care_team_members, outbox, patients, webhooks,
};
use super::{DbConnection, StoreResult};

/// A stored alert.
#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = alerts, treat_none_as_null = true, treat_none_as_default_value = false)]
pub struct AlertRow {
    pub id: String,
    pub organisation_id: String,
    pub patient_id: String,
    pub rule: String,
    pub severity: String,
    pub severity_rank: i32,
    pub status: String,
    pub title: String,
    pub explanation: String,
    /// JSON.
    pub evidence: String,
    pub check_in_date: Option<NaiveDate>,
    pub occurrences: i32,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub last_seen_at: NaiveDateTime,
    pub escalation_due_at: Option<NaiveDateTime>,
    pub escalated_at: Option<NaiveDateTime>,
    pub acknowledged_at: Option<NaiveDateTime>,
    pub acknowledged_by: Option<String>,
    pub resolved_at: Option<NaiveDateTime>,
    pub resolved_by: Option<String>,
    pub outcome: Option<String>,
    pub note: Option<String>,
    /// The episode's findings, JSON (see `domain::episode`).
    pub findings: String,
    /// Every rule among the findings, as `,rule_a,rule_b,` for filtering.
    pub rules: String,
}

/// A recorded change to an alert.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = alert_changes, treat_none_as_default_value = false)]
pub struct AlertChangeRow {
    pub id: String,
    pub alert_id: String,
    pub change: String,
    pub actor_id: Option<String>,
    pub severity: Option<String>,
    pub status: Option<String>,
    pub detail: Option<String>,
    pub created_at: NaiveDateTime,
}

/// A pending delivery.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = outbox, treat_none_as_default_value = false)]
pub struct OutboxRow {
    pub id: String,
    pub organisation_id: String,
    /// The alert an alert event is about; `None` for check-in events.
    pub alert_id: Option<String>,
    /// The patient the event is about.
    pub patient_id: Option<String>,
    pub event_type: String,
    pub channel: String,
    pub target: String,
    pub payload: String,
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: NaiveDateTime,
    pub locked_until: Option<NaiveDateTime>,
    pub locked_by: Option<String>,
    pub last_status_code: Option<i32>,
    pub last_error: Option<String>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub delivered_at: Option<NaiveDateTime>,
}

/// What a new delivery is: its event, about whom, where to and what it says.
#[derive(Debug, Clone, Copy)]
pub struct NewDelivery<'a> {
    pub organisation_id: &'a str,
    pub alert_id: Option<&'a str>,
    pub patient_id: &'a str,
    pub event_type: &'a str,
    pub channel: &'a str,
    pub target: &'a str,
    pub payload: &'a str,
}

impl OutboxRow {
    /// A delivery due now, not yet attempted.
    pub fn pending(d: NewDelivery<'_>, now: NaiveDateTime) -> Self {
        Self {
            id: super::new_id(),
            organisation_id: d.organisation_id.to_owned(),
            alert_id: d.alert_id.map(str::to_owned),
            patient_id: Some(d.patient_id.to_owned()),
            event_type: d.event_type.to_owned(),
            channel: d.channel.to_owned(),
            target: d.target.to_owned(),
            payload: d.payload.to_owned(),
            status: "pending".into(),
            attempts: 0,
            next_attempt_at: now,
            locked_until: None,
            locked_by: None,
            last_status_code: None,
            last_error: None,
            created_at: now,
            updated_at: now,
            delivered_at: None,
        }
    }
}

/// Which of these patients have an unresolved alert, in one query.
pub fn with_unresolved(
    conn: &mut DbConnection,
    patient_ids: &[String],
) -> StoreResult<Vec<String>> {
    Ok(alerts::table
        .filter(alerts::patient_id.eq_any(patient_ids))
        .filter(alerts::status.ne("resolved"))
        .select(alerts::patient_id)
        .load(conn)?)
}

/// The patient's unresolved alert (their current episode), if any; on PostgreSQL locked until
/// the transaction ends, so a new finding and a counsellor's resolution cannot overwrite each
/// other (SQLite transactions hold the single write lock from their start).
pub fn find_unresolved(conn: &mut DbConnection, patient_id: &str) -> StoreResult<Option<AlertRow>> {
    let q = alerts::table
        .filter(alerts::patient_id.eq(patient_id.to_owned()))
        .filter(alerts::status.ne("resolved"));
    Ok(match conn {
        DbConnection::Postgresql(pg) => q
            .select(AlertRow::as_select())
            .for_update()
            .first(pg)
            .optional()?,
        DbConnection::Sqlite(lite) => q.select(AlertRow::as_select()).first(lite).optional()?,
    })
}

/// Finds an alert to change it; on PostgreSQL locked until the transaction ends.
pub fn find_for_update(conn: &mut DbConnection, id: &str) -> StoreResult<Option<AlertRow>> {
    let q = alerts::table.filter(alerts::id.eq(id.to_owned()));
    Ok(match conn {
        DbConnection::Postgresql(pg) => q
            .select(AlertRow::as_select())
            .for_update()
            .first(pg)
            .optional()?,
        DbConnection::Sqlite(lite) => q.select(AlertRow::as_select()).first(lite).optional()?,
    })
}

/// Finds an alert.
pub fn find(conn: &mut DbConnection, id: &str) -> StoreResult<Option<AlertRow>> {
    Ok(alerts::table
        .find(id)
        .select(AlertRow::as_select())
        .first(conn)
        .optional()?)
}

/// Inserts an alert.
pub fn insert(conn: &mut DbConnection, row: &AlertRow) -> StoreResult<()> {
    on_backend!(conn, |c| diesel::insert_into(alerts::table)
        .values(row)
        .execute(c))?;
    Ok(())
}

/// Inserts several alerts (see `insert_rows!`).
pub fn insert_many(conn: &mut DbConnection, rows: &[AlertRow]) -> StoreResult<()> {
    insert_rows!(conn, alerts::table, rows);
    Ok(())
}

/// Records several changes (see `insert_rows!`).
pub fn insert_changes(conn: &mut DbConnection, rows: &[AlertChangeRow]) -> StoreResult<()> {
    insert_rows!(conn, alert_changes::table, rows);
    Ok(())
}

/// Queues several deliveries (see `insert_rows!`).
pub fn enqueue_many(conn: &mut DbConnection, rows: &[OutboxRow]) -> StoreResult<()> {
    insert_rows!(conn, outbox::table, rows);
    Ok(())
}

/// Appends one event for each (organisation, alert) to the live-stream feed (see `insert_rows!`).
pub fn feed_many(
    conn: &mut DbConnection,
    entries: &[(&str, &str)],
    event_type: &str,
    now: NaiveDateTime,
) -> StoreResult<()> {
    let rows: Vec<_> = entries
        .iter()
        .map(|(organisation_id, alert_id)| {
            (
                alert_feed::organisation_id.eq(*organisation_id),
                alert_feed::alert_id.eq(*alert_id),
                alert_feed::event_type.eq(event_type),
                alert_feed::created_at.eq(now),
            )
        })
        .collect();
    insert_rows!(conn, alert_feed::table, rows);
    Ok(())
}

/// Saves an alert's fields.
pub fn save(conn: &mut DbConnection, row: &AlertRow) -> StoreResult<()> {
    on_backend!(conn, |c| super::cached_update(
        alerts::table,
        row,
        alerts::id.eq(&row.id)
    )
    .execute(c))?;
    Ok(())
}

/// Records a change.
pub fn insert_change(conn: &mut DbConnection, row: &AlertChangeRow) -> StoreResult<()> {
    diesel::insert_into(alert_changes::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

/// An alert's changes, oldest first.
pub fn changes(conn: &mut DbConnection, alert_id: &str) -> StoreResult<Vec<AlertChangeRow>> {
    Ok(alert_changes::table
        .filter(alert_changes::alert_id.eq(alert_id))
        .order(alert_changes::id.asc())
        .select(AlertChangeRow::as_select())
        .load(conn)?)
}

/// Who is asking for the inbox.
pub enum Scope<'a> {
    /// All of an organisation's alerts.
    Organisation(&'a str),
    /// The alerts of patients on this counsellor's care teams.
    Counsellor(&'a str, &'a str),
}

/// Inbox filters; an empty list matches everything.
#[derive(Debug, Default, Clone)]
pub struct AlertFilter {
    /// Any of these statuses.
    pub statuses: Vec<String>,
    /// Any of these severities.
    pub severities: Vec<String>,
    /// Only this patient.
    pub patient_id: Option<String>,
    /// Alerts with a finding of this rule.
    pub rule: Option<String>,
    /// Alerts changed at or after this instant.
    pub updated_since: Option<NaiveDateTime>,
}

/// A page of alerts, newest first, before the cursor id.
pub fn list(
    conn: &mut DbConnection,
    scope: Scope<'_>,
    filter: &AlertFilter,
    before: Option<&str>,
    limit: i64,
) -> StoreResult<Vec<AlertRow>> {
    let mut q = alerts::table.into_boxed();
    match scope {
        Scope::Organisation(org) => q = q.filter(alerts::organisation_id.eq(org.to_owned())),
        Scope::Counsellor(org, counsellor) => {
            q = q.filter(alerts::organisation_id.eq(org.to_owned())).filter(
                alerts::patient_id.eq_any(
                    care_team_members::table
                        .filter(care_team_members::counsellor_id.eq(counsellor.to_owned()))
                        .select(care_team_members::patient_id),
                ),
            );
        }
    }
    // An erased patient's alerts are kept (who, what, when) but listed to nobody.
    q = q.filter(diesel::dsl::not(
        alerts::patient_id.eq_any(
            patients::table
                .filter(patients::erased_at.is_not_null())
                .select(patients::user_id),
        ),
    ));
    if !filter.statuses.is_empty() {
        q = q.filter(alerts::status.eq_any(filter.statuses.clone()));
    }
    if !filter.severities.is_empty() {
        q = q.filter(alerts::severity.eq_any(filter.severities.clone()));
    }
    if let Some(p) = &filter.patient_id {
        q = q.filter(alerts::patient_id.eq(p.clone()));
    }
    if let Some(r) = &filter.rule {
        // Rule ids are lowercase letters and underscores (checked by the caller), and `_` is
        // a LIKE wildcard that can only match itself here because of the commas around it.
        q = q.filter(alerts::rules.like(format!("%,{r},%")));
    }
    if let Some(t) = filter.updated_since {
        q = q.filter(alerts::updated_at.ge(t));
    }
    if let Some(b) = before {
        q = q.filter(alerts::id.lt(b.to_owned()));
    }
    Ok(q.order(alerts::id.desc())
        .limit(limit)
        .select(AlertRow::as_select())
        .load(conn)?)
}

/// (patient id, severity rank) of every unresolved alert in an organisation, for the caseload.
pub fn unresolved_ranks(
    conn: &mut DbConnection,
    organisation_id: &str,
) -> StoreResult<Vec<(String, i32)>> {
    Ok(alerts::table
        .filter(alerts::organisation_id.eq(organisation_id))
        .filter(alerts::status.ne("resolved"))
        .select((alerts::patient_id, alerts::severity_rank))
        .load(conn)?)
}

/// Open alerts whose escalation is due.
pub fn due_escalations(
    conn: &mut DbConnection,
    now: NaiveDateTime,
    limit: i64,
) -> StoreResult<Vec<String>> {
    Ok(alerts::table
        .filter(alerts::escalation_due_at.le(now))
        .filter(alerts::status.eq("open"))
        .order(alerts::escalation_due_at.asc())
        .limit(limit)
        .select(alerts::id)
        .load(conn)?)
}

/// Queues a delivery.
pub fn enqueue(conn: &mut DbConnection, row: &OutboxRow) -> StoreResult<()> {
    diesel::insert_into(outbox::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

/// Appends to the live-stream feed.
pub fn feed(
    conn: &mut DbConnection,
    organisation_id: &str,
    alert_id: &str,
    event_type: &str,
    now: NaiveDateTime,
) -> StoreResult<()> {
    diesel::insert_into(alert_feed::table)
        .values((
            alert_feed::organisation_id.eq(organisation_id),
            alert_feed::alert_id.eq(alert_id),
            alert_feed::event_type.eq(event_type),
            alert_feed::created_at.eq(now),
        ))
        .execute(conn)?;
    Ok(())
}

/// The organisation's own active webhooks (integrations' are chosen per patient, by consent):
/// (id, events JSON).
pub fn active_webhooks(
    conn: &mut DbConnection,
    organisation_id: &str,
) -> StoreResult<Vec<(String, String)>> {
    Ok(webhooks::table
        .filter(webhooks::organisation_id.eq(organisation_id))
        .filter(webhooks::integration_id.is_null())
        .filter(webhooks::disabled_at.is_null())
        .filter(webhooks::deleted_at.is_null())
        .select((webhooks::id, webhooks::events))
        .load(conn)?)
}

/// Locks an alert for a background change; on PostgreSQL skips one another process holds.
pub fn lock(conn: &mut DbConnection, id: &str) -> StoreResult<Option<AlertRow>> {
    let q = alerts::table.filter(alerts::id.eq(id.to_owned()));
    Ok(match conn {
        DbConnection::Postgresql(pg) => q
            .select(AlertRow::as_select())
            .for_update()
            .skip_locked()
            .first(pg)
            .optional()?,
        DbConnection::Sqlite(lite) => q.select(AlertRow::as_select()).first(lite).optional()?,
    })
}

/// The display names of these patients, by id, in one query.
pub fn patient_names(
    conn: &mut DbConnection,
    patient_ids: &[String],
) -> StoreResult<std::collections::HashMap<String, String>> {
    use super::schema::users;
    if patient_ids.is_empty() {
        return Ok(Default::default());
    }
    Ok(users::table
        .filter(users::id.eq_any(patient_ids.to_vec()))
        .select((users::id, users::display_name))
        .load::<(String, String)>(conn)?
        .into_iter()
        .collect())
}

/// What the caseload needs of one unresolved alert.
#[derive(Debug, Clone, Queryable)]
pub struct CaseloadAlert {
    pub patient_id: String,
    pub severity_rank: i32,
    pub status: String,
    pub escalated_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
}

/// The unresolved alerts of an organisation's patients (optionally only these), for the
/// caseload: one query for the whole page.
pub fn caseload_alerts(
    conn: &mut DbConnection,
    organisation_id: &str,
    only: Option<&[String]>,
) -> StoreResult<Vec<CaseloadAlert>> {
    let mut q = alerts::table
        .filter(alerts::organisation_id.eq(organisation_id.to_owned()))
        .filter(alerts::status.ne("resolved"))
        .into_boxed();
    if let Some(ids) = only {
        q = q.filter(alerts::patient_id.eq_any(ids.to_vec()));
    }
    Ok(q.select((
        alerts::patient_id,
        alerts::severity_rank,
        alerts::status,
        alerts::escalated_at,
        alerts::created_at,
    ))
    .load(conn)?)
}
