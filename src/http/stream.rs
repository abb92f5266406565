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

/// How often a comment line is sent so proxies keep the connection open.
const HEARTBEAT: Duration = Duration::from_secs(15);

/// Live alert events: `alert.created`, `alert.updated` and `alert.escalated`, each as
/// `event: <type>` with `data: <alert JSON>`, for the patients the caller may read; a comment
/// heartbeat every 15 seconds.
#[utoipa::path(
    tag = "alerts",
    security(("bearer" = [])),
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
    let mut events = state.hub.subscribe();
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
                    if ev.organisation_id != caller.organisation_id {
                        continue;
                    }
                    let c = caller.clone();
                    let id = ev.alert_id.clone();
                    // Reach is checked per event: a counsellor removed from a care team stops
                    // receiving that patient's events at once.
                    let alert = st.store.run(move |conn| reachable_alert(conn, &c, &id)).await;
                    let Ok(alert) = alert else { continue };
                    let data = serde_json::to_string(&Alert::from(alert)).unwrap_or_default();
                    let frame = format!("id: {}\nevent: {}\ndata: {}\n\n", ev.seq, ev.event_type, data);
                    if tx.send(Bytes::from(frame)).await.is_err() {
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
