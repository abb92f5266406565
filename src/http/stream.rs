//! The live alert stream for the dashboard (server-sent events).

use std::convert::Infallible;
use std::time::Duration;

use actix_web::web::Bytes;
use actix_web::{get, web, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;

use super::alerts::{reachable_alert, Alert};
use super::vocabulary::AlertEventType;
use crate::auth::{Caller, Role};
use crate::error::{ApiError, Problem};
use crate::service::audit;
use crate::state::AppState;
use crate::store::deliveries;

/// How far before a resuming client's last event the backlog looks again for events that
/// committed out of order (see [`deliveries::feed_after`]).
const RESUME_SETTLE: chrono::TimeDelta = chrono::TimeDelta::seconds(30);

/// How often a comment line is sent so proxies keep the connection open.
const HEARTBEAT: Duration = Duration::from_secs(15);

/// One event of the live alert stream. On the wire it is a `text/event-stream` frame of
/// three lines and a blank one:
///
/// ```text
/// id: 4711
/// event: alert.updated
/// data: {"id":"0193a6f2-…","status":"acknowledged",…}
/// ```
///
/// Besides events the stream carries a `retry: 3000` line and a `: connected` comment when it
/// opens, and a `: keep-alive` comment every 15 seconds; comments carry no data.
#[derive(Debug, Serialize, ToSchema)]
pub struct AlertStreamEvent {
    /// The `id:` line: the event's number in the organisation's feed (digits; SSE fields are
    /// text). `EventSource` sends the last one back as `Last-Event-ID` when it reconnects.
    #[schema(value_type = String, pattern = "^[0-9]+$", example = "4711")]
    pub id: i64,
    /// The `event:` line: what happened.
    pub event: AlertEventType,
    /// The `data:` line: the whole alert as it is now, an
    /// [`Alert`](#/components/schemas/Alert) as `GET /v1/alerts/{id}` answers it, as JSON on
    /// one line (SSE data is text; parse it as JSON).
    #[schema(value_type = String, content_media_type = "application/json")]
    pub data: Alert,
}

/// Live alert events: `alert.created`, `alert.updated` and `alert.escalated`, each as
/// `event: <type>` with `data: <alert JSON>` and an `id:`, for the patients the caller may read;
/// a comment heartbeat every 15 seconds. A reconnecting client that sends `Last-Event-ID` first
/// receives the events it missed (and again those of the 30 s before its last one,
/// which may have committed after it: an event carries the whole alert, so a repeat is
/// harmless). The caller is re-checked at every event and heartbeat: the
/// stream ends when the access token expires or the account is disabled, changes its password
/// or loses its role, and the client reconnects with a fresh token.
#[utoipa::path(
    tag = "alerts",
    security(("bearer" = [])),
    params(("Last-Event-ID" = Option<i64>, Header, description = "Resume after this event id (sent by EventSource on reconnect)")),
    responses(
        (status = 200, description = "An event stream: `AlertStreamEvent` frames, with comment heartbeats", content_type = "text/event-stream", body = AlertStreamEvent),
        (status = 401, description = "Not signed in", body = Problem),
        (status = 403, description = "Counsellors and admins only", body = Problem),
    )
)]
#[get("/alerts/stream")]
pub async fn alert_stream(
    state: web::Data<AppState>,
    caller: Caller,
    req: actix_web::HttpRequest,
) -> Result<HttpResponse, ApiError> {
    caller.require(&[Role::Admin, Role::Counsellor])?;
    let c = caller.clone();
    state
        .store
        .run(move |conn| -> Result<(), ApiError> {
            audit::record(conn, &c, audit::Event::other("alert.stream", "alert", None))?;
            Ok(())
        })
        .await?;
    // Subscribe before reading the backlog so nothing falls between the two.
    let mut events = state.hub.subscribe();
    let resume_after = req
        .headers()
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<i64>().ok());
    let org = caller.organisation_id.clone();
    let backlog = match resume_after {
        Some(after) => {
            state
                .store
                .run(move |conn| {
                    deliveries::feed_after(conn, &org, after, RESUME_SETTLE, 500)
                        .map_err(ApiError::from)
                })
                .await?
        }
        None => Vec::new(),
    };
    let token = crate::auth::caller::bearer_token(&req)?;
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(64);
    let st = state.clone();
    actix_web::rt::spawn(async move {
        if tx
            .send(Bytes::from_static(b"retry: 3000\n: connected\n\n"))
            .await
            .is_err()
        {
            return;
        }
        let mut caller = caller;
        // The backlog and the live feed overlap; an event is sent once. (Not a high-water
        // mark: feed numbers can commit out of order, and a lower one arriving later is news.)
        let mut sent_from_backlog = std::collections::HashSet::new();
        for (seq, _, alert_id, event_type) in backlog {
            sent_from_backlog.insert(seq);
            match frame(&st, &caller, seq, &alert_id, &event_type).await {
                Ok(Some(f)) => {
                    if tx.send(f).await.is_err() {
                        return;
                    }
                }
                Ok(None) => {}
                Err(()) => return,
            }
        }
        let closing = st.hub.closed();
        tokio::pin!(closing);
        let mut beat = tokio::time::interval(HEARTBEAT);
        beat.tick().await;
        // Whenever the stream ends early (token expired, account disabled, events missed, the
        // database unreachable), the client's EventSource reconnects with its Last-Event-ID and
        // either resumes where it stopped or is told why it may not.
        loop {
            tokio::select! {
                ev = events.recv() => {
                    let Ok(ev) = ev else { break };
                    if ev.organisation_id != caller.organisation_id
                        || sent_from_backlog.remove(&ev.seq)
                    {
                        continue;
                    }
                    let Some(current) = still_allowed(&st, &token, &caller).await else { break };
                    caller = current;
                    match frame(&st, &caller, ev.seq, &ev.alert_id, &ev.event_type).await {
                        Ok(Some(f)) => {
                            if tx.send(f).await.is_err() {
                                break;
                            }
                        }
                        Ok(None) => {}
                        Err(()) => break,
                    }
                }
                _ = beat.tick() => {
                    let Some(current) = still_allowed(&st, &token, &caller).await else { break };
                    caller = current;
                    if tx.send(Bytes::from_static(b": keep-alive\n\n")).await.is_err() {
                        break;
                    }
                }
                () = tx.closed() => break,
                () = &mut closing => break,
            }
        }
    });
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, Infallible>(b), rx))
    });
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("Cache-Control", "no-store"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(body))
}

/// The caller as they are now, if their token is still valid and their account may still
/// read the stream (not disabled, password unchanged, still a counsellor or admin).
async fn still_allowed(st: &AppState, token: &str, before: &Caller) -> Option<Caller> {
    let now = crate::auth::caller::authenticate(st, token, before.request_id.clone())
        .await
        .ok()?;
    now.require(&[Role::Admin, Role::Counsellor]).ok()?;
    if now.must_enrol_mfa {
        return None;
    }
    Some(now)
}

/// One event frame, if the caller may read the alert. Reach is checked per event: a counsellor
/// removed from a care team stops receiving that patient's events at once. `Err` when the
/// database could not say (the stream then closes so the client resumes without a gap).
async fn frame(
    st: &AppState,
    caller: &Caller,
    seq: i64,
    alert_id: &str,
    event_type: &str,
) -> Result<Option<Bytes>, ()> {
    let (c, id) = (caller.clone(), alert_id.to_owned());
    let alert = match st
        .store
        .run(move |conn| {
            let a = reachable_alert(conn, &c, &id)?;
            super::alerts::view(conn, a)
        })
        .await
    {
        Ok(alert) => alert,
        Err(ApiError::NotFound) => return Ok(None),
        Err(_) => return Err(()),
    };
    let data = serde_json::to_string(&alert).map_err(|_| ())?;
    Ok(Some(Bytes::from(format!(
        "id: {seq}\nevent: {event_type}\ndata: {data}\n\n"
    ))))
}
