//! Operations endpoints: liveness, readiness and Prometheus metrics.

use actix_web::{get, web, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;

use crate::state::AppState;

/// Health probe answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok`, or `unavailable` when a dependency cannot be reached.
    #[schema(value_type = super::vocabulary::HealthStatus)]
    pub status: String,
    /// Per-dependency status, e.g. `{"database": "ok"}`.
    #[schema(value_type = std::collections::BTreeMap<String, super::vocabulary::HealthStatus>)]
    pub checks: serde_json::Value,
}

/// Liveness: the process is up and serving. Does not touch the database.
#[utoipa::path(tag = "operations", responses((status = 200, description = "The process is alive", body = Health)))]
#[get("/health/live")]
pub async fn live() -> HttpResponse {
    HttpResponse::Ok().json(Health {
        status: "ok".into(),
        checks: serde_json::json!({}),
    })
}

/// Readiness: the process can serve requests, i.e. the database answers.
#[utoipa::path(
    tag = "operations",
    responses(
        (status = 200, description = "Ready to serve", body = Health),
        (status = 503, description = "The database cannot be reached", body = Health,
            headers(("Retry-After" = u32, description = "Seconds to wait before probing again")))
    )
)]
#[get("/health/ready")]
pub async fn ready(state: web::Data<AppState>) -> HttpResponse {
    if state.store.ping().await {
        HttpResponse::Ok().json(Health {
            status: "ok".into(),
            checks: serde_json::json!({"database": "ok"}),
        })
    } else {
        HttpResponse::ServiceUnavailable()
            .insert_header(("Retry-After", "5"))
            .json(Health {
                status: "unavailable".into(),
                checks: serde_json::json!({"database": "unavailable"}),
            })
    }
}

/// Prometheus metrics: request counts and latency histograms by route and status, pool state,
/// and the work queues.
#[utoipa::path(
    tag = "operations",
    responses((status = 200, description = "Prometheus text exposition format", content_type = "text/plain; version=0.0.4", body = String))
)]
#[get("/metrics")]
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    let (max, connections, idle) = state.store.pool_state();
    crate::metrics::record_pool(max, connections, idle);
    // The delivery backlog: a growing `pending` means receivers are down or workers stuck;
    // any `dead` item is an alert someone outside the inbox never heard about.
    let backlog = state
        .store
        .run(|conn| crate::store::deliveries::backlog(conn).map_err(crate::error::ApiError::from))
        .await;
    if let Ok((pending, dead)) = backlog {
        ::metrics::gauge!("deliveries_pending").set(pending as f64);
        ::metrics::gauge!("deliveries_dead").set(dead as f64);
    }
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(crate::metrics::render())
}
