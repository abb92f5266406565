//! Webhook subscriptions, and the outbox as the delivery worker sees it: claiming due work
//! under a lease, recording attempts, and the live-stream feed.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::alerts::OutboxRow;
use super::schema::{alert_feed, delivery_attempts, outbox, webhooks};
use super::{DbConnection, StoreResult};

/// A webhook subscription.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = webhooks)]
pub struct WebhookRow {
    pub id: String,
    pub organisation_id: String,
    pub url: String,
    /// JSON array of event types.
    pub events: String,
    pub secret: String,
    pub disabled_at: Option<NaiveDateTime>,
    pub disabled_reason: Option<String>,
    pub created_by: String,
    pub created_at: NaiveDateTime,
    pub deleted_at: Option<NaiveDateTime>,
    /// The integration that registered it; `None`: the organisation's own (an admin's).
    pub integration_id: Option<String>,
}

/// One delivery attempt.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = delivery_attempts)]
pub struct AttemptRow {
    pub id: String,
    pub outbox_id: String,
    pub attempt: i32,
    pub status_code: Option<i32>,
    pub error: Option<String>,
    pub duration_ms: i32,
    pub created_at: NaiveDateTime,
}

/// Stores a webhook.
pub fn insert_webhook(conn: &mut DbConnection, row: &WebhookRow) -> StoreResult<()> {
    diesel::insert_into(webhooks::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

/// The organisation's own webhooks (not deleted; not an integration's).
pub fn list_webhooks(
    conn: &mut DbConnection,
    organisation_id: &str,
) -> StoreResult<Vec<WebhookRow>> {
    Ok(webhooks::table
        .filter(webhooks::organisation_id.eq(organisation_id))
        .filter(webhooks::integration_id.is_null())
        .filter(webhooks::deleted_at.is_null())
        .order(webhooks::id.asc())
        .select(WebhookRow::as_select())
        .load(conn)?)
}

/// One of the organisation's own webhooks (not deleted; not an integration's).
pub fn find_webhook(
    conn: &mut DbConnection,
    organisation_id: &str,
    id: &str,
) -> StoreResult<Option<WebhookRow>> {
    Ok(webhooks::table
        .filter(webhooks::id.eq(id))
        .filter(webhooks::organisation_id.eq(organisation_id))
        .filter(webhooks::integration_id.is_null())
        .filter(webhooks::deleted_at.is_null())
        .select(WebhookRow::as_select())
        .first(conn)
        .optional()?)
}

/// An integration's webhooks (not deleted).
pub fn integration_webhooks(
    conn: &mut DbConnection,
    integration_id: &str,
) -> StoreResult<Vec<WebhookRow>> {
    Ok(webhooks::table
        .filter(webhooks::integration_id.eq(integration_id))
        .filter(webhooks::deleted_at.is_null())
        .order(webhooks::id.asc())
        .select(WebhookRow::as_select())
        .load(conn)?)
}

/// Active integration webhooks of an organisation: (id, events JSON, integration id).
pub fn active_integration_webhooks(
    conn: &mut DbConnection,
    organisation_id: &str,
) -> StoreResult<Vec<(String, String, Option<String>)>> {
    Ok(webhooks::table
        .filter(webhooks::organisation_id.eq(organisation_id))
        .filter(webhooks::integration_id.is_not_null())
        .filter(webhooks::disabled_at.is_null())
        .filter(webhooks::deleted_at.is_null())
        .select((webhooks::id, webhooks::events, webhooks::integration_id))
        .load(conn)?)
}

/// A page of a webhook's deliveries (newest first, before the cursor) and their attempts.
pub fn page_with_attempts(
    conn: &mut DbConnection,
    webhook_id: &str,
    before: Option<&str>,
    limit: i64,
) -> StoreResult<(Vec<OutboxRow>, Vec<AttemptRow>)> {
    let rows = for_webhook(conn, webhook_id, before, limit)?;
    let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
    let attempts = attempts_of(conn, &ids)?;
    Ok((rows, attempts))
}

/// A webhook by id, whatever its state (for the worker).
pub fn webhook_by_id(conn: &mut DbConnection, id: &str) -> StoreResult<Option<WebhookRow>> {
    Ok(webhooks::table
        .find(id)
        .select(WebhookRow::as_select())
        .first(conn)
        .optional()?)
}

/// Soft-deletes a webhook; its pending deliveries are dropped by the worker.
pub fn delete_webhook(conn: &mut DbConnection, id: &str, now: NaiveDateTime) -> StoreResult<()> {
    diesel::update(webhooks::table.find(id))
        .set(webhooks::deleted_at.eq(now))
        .execute(conn)?;
    Ok(())
}

/// Disables a webhook (the receiver answered 410 Gone).
pub fn disable_webhook(
    conn: &mut DbConnection,
    id: &str,
    reason: &str,
    now: NaiveDateTime,
) -> StoreResult<()> {
    diesel::update(webhooks::table.find(id))
        .set((
            webhooks::disabled_at.eq(now),
            webhooks::disabled_reason.eq(reason),
        ))
        .execute(conn)?;
    Ok(())
}

/// Candidate ids of due work. On PostgreSQL the rows are locked and rows another process
/// holds are skipped, so concurrent workers pick different work.
pub fn due(conn: &mut DbConnection, now: NaiveDateTime, limit: i64) -> StoreResult<Vec<String>> {
    let q = outbox::table
        .filter(outbox::status.eq("pending"))
        .filter(outbox::next_attempt_at.le(now))
        .filter(
            outbox::locked_until
                .is_null()
                .or(outbox::locked_until.lt(now)),
        )
        .order(outbox::next_attempt_at.asc())
        .limit(limit)
        .select(outbox::id);
    Ok(match conn {
        DbConnection::Postgresql(pg) => q.for_update().skip_locked().load(pg)?,
        DbConnection::Sqlite(lite) => q.load(lite)?,
    })
}

/// Takes a lease on one item if nobody holds one; returns whether this worker got it. The
/// condition is re-checked by the database, so two workers can never both win.
pub fn claim(
    conn: &mut DbConnection,
    id: &str,
    worker: &str,
    now: NaiveDateTime,
    until: NaiveDateTime,
) -> StoreResult<bool> {
    let n = diesel::update(
        outbox::table
            .filter(outbox::id.eq(id))
            .filter(outbox::status.eq("pending"))
            .filter(
                outbox::locked_until
                    .is_null()
                    .or(outbox::locked_until.lt(now)),
            ),
    )
    .set((outbox::locked_until.eq(until), outbox::locked_by.eq(worker)))
    .execute(conn)?;
    Ok(n == 1)
}

/// Reads an item.
pub fn find(conn: &mut DbConnection, id: &str) -> StoreResult<Option<OutboxRow>> {
    Ok(outbox::table
        .find(id)
        .select(OutboxRow::as_select())
        .first(conn)
        .optional()?)
}

/// How an attempt ended, for [`finish`].
pub struct Finish<'a> {
    /// `delivered`, `pending` (retry later) or `dead`.
    pub status: &'a str,
    /// When to retry (pending only).
    pub next_attempt_at: NaiveDateTime,
    /// The receiver's status code.
    pub status_code: Option<i32>,
    /// What went wrong.
    pub error: Option<String>,
}

/// Records the outcome of an attempt and releases the lease, if this worker still holds it.
pub fn finish(
    conn: &mut DbConnection,
    item: &OutboxRow,
    worker: &str,
    f: &Finish<'_>,
    attempt: &AttemptRow,
    now: NaiveDateTime,
) -> StoreResult<bool> {
    let n = diesel::update(
        outbox::table
            .filter(outbox::id.eq(&item.id))
            .filter(outbox::locked_by.eq(worker)),
    )
    .set((
        outbox::status.eq(f.status),
        outbox::attempts.eq(attempt.attempt),
        outbox::next_attempt_at.eq(f.next_attempt_at),
        outbox::locked_until.eq(None::<NaiveDateTime>),
        outbox::locked_by.eq(None::<String>),
        outbox::last_status_code.eq(f.status_code),
        outbox::last_error.eq(&f.error),
        outbox::updated_at.eq(now),
        outbox::delivered_at.eq((f.status == "delivered").then_some(now)),
    ))
    .execute(conn)?;
    // The attempt happened whether or not this worker still held the lease: record it.
    diesel::insert_into(delivery_attempts::table)
        .values(attempt)
        .execute(conn)?;
    Ok(n == 1)
}

/// A webhook's deliveries, newest first, before the cursor id.
pub fn for_webhook(
    conn: &mut DbConnection,
    webhook_id: &str,
    before: Option<&str>,
    limit: i64,
) -> StoreResult<Vec<OutboxRow>> {
    let mut q = outbox::table
        .filter(outbox::channel.eq("webhook"))
        .filter(outbox::target.eq(webhook_id.to_owned()))
        .into_boxed();
    if let Some(b) = before {
        q = q.filter(outbox::id.lt(b.to_owned()));
    }
    Ok(q.order(outbox::id.desc())
        .limit(limit)
        .select(OutboxRow::as_select())
        .load(conn)?)
}

/// The attempts of some deliveries.
pub fn attempts_of(conn: &mut DbConnection, ids: &[String]) -> StoreResult<Vec<AttemptRow>> {
    Ok(delivery_attempts::table
        .filter(delivery_attempts::outbox_id.eq_any(ids))
        .order(delivery_attempts::attempt.asc())
        .select(AttemptRow::as_select())
        .load(conn)?)
}

/// Pending and dead item counts, for metrics.
pub fn backlog(conn: &mut DbConnection) -> StoreResult<(i64, i64)> {
    let pending = outbox::table
        .filter(outbox::status.eq("pending"))
        .count()
        .get_result(conn)?;
    let dead = outbox::table
        .filter(outbox::status.eq("dead"))
        .count()
        .get_result(conn)?;
    Ok((pending, dead))
}

/// Forgets live-feed entries older than `before` (a stream resuming after that long reloads
/// the inbox instead).
pub fn prune_feed(conn: &mut DbConnection, before: NaiveDateTime) -> StoreResult<usize> {
    Ok(
        diesel::delete(alert_feed::table.filter(alert_feed::created_at.lt(before)))
            .execute(conn)?,
    )
}

/// Feed entries written since `since`: (seq, organisation, alert, event type).
pub fn feed_since(
    conn: &mut DbConnection,
    since: NaiveDateTime,
) -> StoreResult<Vec<(i64, String, String, String)>> {
    Ok(alert_feed::table
        .filter(alert_feed::created_at.ge(since))
        .order(alert_feed::seq.asc())
        .select((
            alert_feed::seq,
            alert_feed::organisation_id,
            alert_feed::alert_id,
            alert_feed::event_type,
        ))
        .load(conn)?)
}

/// Feed entries of an organisation for a stream reconnecting after `after_seq` (its
/// Last-Event-ID): every later entry, and the entries numbered before it but written within
/// `settle` of it. Sequence numbers are taken when a transaction writes, not when it commits,
/// so an entry numbered just before the client's last one may have committed after the client
/// saw that one; sending it again is harmless (an event carries the whole alert), missing it
/// is not.
pub fn feed_after(
    conn: &mut DbConnection,
    organisation_id: &str,
    after_seq: i64,
    settle: chrono::TimeDelta,
    limit: i64,
) -> StoreResult<Vec<(i64, String, String, String)>> {
    let anchor: Option<NaiveDateTime> = alert_feed::table
        .filter(alert_feed::seq.eq(after_seq))
        .select(alert_feed::created_at)
        .first(conn)
        .optional()?;
    let mut q = alert_feed::table
        .filter(alert_feed::organisation_id.eq(organisation_id.to_owned()))
        .into_boxed();
    q = match anchor {
        Some(t) => q.filter(
            alert_feed::seq.gt(after_seq).or(alert_feed::seq
                .lt(after_seq)
                .and(alert_feed::created_at.ge(t - settle))),
        ),
        None => q.filter(alert_feed::seq.gt(after_seq)),
    };
    Ok(q.order(alert_feed::seq.asc())
        .limit(limit)
        .select((
            alert_feed::seq,
            alert_feed::organisation_id,
            alert_feed::alert_id,
            alert_feed::event_type,
        ))
        .load(conn)?)
}
