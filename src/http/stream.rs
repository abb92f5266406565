//! The live alert stream for the dashboard (server-sent events).

use std::convert::Infallible;
use std::time::Duration;

use actix_web::web::Bytes;
use actix_web::{get, web, HttpResponse};

use super::alerts::{reachable_alert, Alert};
use crate::auth::{Caller, Role};
use crate::error::{ApiError, Problem};
use crate::service::audit;
use crate::state::AppState;
use crate::store::deliveries;

/// How often a comment line is sent so proxies keep the connection open.
const HEARTBEAT: Duration = Duration::from_secs(15);

/// Live alert events: `alert.created`, `alert.updated` and `alert.escalated`, each as
/// `event: <type>` with `data: <alert JSON>` and an `id:`, for the patients the caller may read;
/// a comment heartbeat every 15 seconds. A reconnecting client that sends `Last-Event-ID` first
/// receives the events it missed.
#[utoipa::path(
    tag = "alerts",
    security(("bearer" = [])),
    params(("Last-Event-ID" = Option<i64>, Header, description = "Resume after this event id (sent by EventSource on reconnect)")),
    responses(
        (status = 200, description = "An event stream", content_type = "text/event-stream", body = String),
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
                    deliveries::feed_after(conn, &org, after, 500).map_err(ApiError::from)
                })
                .await?
        }
        None => Vec::new(),
    };
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
        let mut sent_up_to = resume_after.unwrap_or(i64::MIN);
        for (seq, _, alert_id, event_type) in backlog {
            if let Some(f) = frame(&st, &caller, seq, &alert_id, &event_type).await {
                if tx.send(f).await.is_err() {
                    return;
                }
            }
            sent_up_to = seq;
        }
        let mut beat = tokio::time::interval(HEARTBEAT);
        beat.tick().await;
        loop {
            tokio::select! {
                ev = events.recv() => {
                    let ev = match ev {
                        Ok(ev) => ev,
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                        Err(_) => break,
                    };
                    if ev.organisation_id != caller.organisation_id || ev.seq <= sent_up_to {
                        continue;
                    }
                    let Some(f) = frame(&st, &caller, ev.seq, &ev.alert_id, &ev.event_type).await else { continue };
                    if tx.send(f).await.is_err() {
                        break;
                    }
                }
                _ = beat.tick() => {
                    if tx.send(Bytes::from_static(b": keep-alive\n\n")).await.is_err() {
                        break;
                    }
                }
                () = tx.closed() => break,
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

/// One event frame, if the caller may read the alert. Reach is checked per event: a counsellor
/// removed from a care team stops receiving that patient's events at once.
async fn frame(
    st: &AppState,
    caller: &Caller,
    seq: i64,
    alert_id: &str,
    event_type: &str,
) -> Option<Bytes> {
    let (c, id) = (caller.clone(), alert_id.to_owned());
    let alert = st
        .store
        .run(move |conn| reachable_alert(conn, &c, &id))
        .await
        .ok()?;
    let data = serde_json::to_string(&Alert::from(alert)).ok()?;
    Some(Bytes::from(format!(
        "id: {seq}\nevent: {event_type}\ndata: {data}\n\n"
    )))
}
