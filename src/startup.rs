//! Builds the running service: migrate, pool, bind (port 0 works, for tests), start the
//! background workers, and report the bound address.

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::http::header;
use actix_web::middleware::{from_fn, DefaultHeaders};
use actix_web::{web, App, HttpResponse, HttpServer};
use utoipa::OpenApi;
use utoipa_actix_web::AppExt;
use utoipa_swagger_ui::{Config as SwaggerConfig, SwaggerUi};

use crate::config::Settings;
use crate::http::{self, RouteTable};
use crate::state::AppState;
use crate::store::{self, Store};

/// Migrates the database and builds the shared state (pool, signing key, hasher).
pub async fn build_state(settings: Settings) -> anyhow::Result<AppState> {
    let url = settings.database_url.clone();
    tokio::task::spawn_blocking(move || store::migrate(&url)).await??;
    let pool = store::build_pool(
        &settings.database_url,
        settings.db_pool_size,
        settings.db_timeout,
        store::Limits {
            statement_timeout: settings.db_statement_timeout,
            lock_timeout: settings.db_lock_timeout,
        },
    );
    let store = Store::new(pool, &settings.database_url)?;
    let keys = crate::auth::keyfile::load(&settings, &store).await?;
    Ok(AppState {
        store,
        hasher: crate::auth::password::Hasher::new(
            settings.max_concurrent_hashes,
            settings.hash_queue,
        )?,
        sign_in_turns: Default::default(),
        keys: Arc::new(keys),
        settings: Arc::new(settings),
        hub: crate::delivery::hub::Hub::new(),
        public_url: Default::default(),
    })
}

/// The default organisation risk policy, as stored for a new organisation.
pub fn default_policy_json() -> String {
    serde_json::to_string(&crate::domain::policy::RiskPolicy::default()).unwrap_or_default()
}

/// A bound, not yet awaited, server with its workers.
pub struct Application {
    port: u16,
    server: Server,
    state: AppState,
}

impl Application {
    /// Migrates the database, binds the listener and prepares the server.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let state = build_state(settings).await?;
        crate::metrics::handle();

        let doc = crate::openapi::document();
        let table = web::Data::new(RouteTable::from_openapi(&doc));
        let listener = TcpListener::bind(state.settings.bind).map_err(|e| {
            anyhow::anyhow!(
                "cannot listen on {} (AFTERCARE_BIND): {e}",
                state.settings.bind
            )
        })?;
        let port = listener.local_addr()?.port();
        let public = match &state.settings.public_url {
            Some(u) => u.clone(),
            None => format!("http://{}", listener.local_addr()?),
        };
        // Set once per state; a second build of the same state keeps the first address.
        let _ = state.public_url.set(public);

        let workers = state.settings.http_workers;
        let data = web::Data::new(state.clone());
        let server = HttpServer::new(move || {
            let (app, _) = App::new()
                // Innermost: the route's access rule, before any extractor reads the request
                // (a denial it answers is still audited and carries the headers below).
                .wrap(from_fn(http::guard::gate))
                // The caller check and the handling share one connection, which is back in
                // the pool before the denial audit runs.
                .wrap(from_fn(http::one_connection))
                .wrap(from_fn(http::audit_denials))
                // Patient data must never sit in a browser or proxy cache; responses that
                // may be cached (the public keys) say so themselves.
                .wrap(DefaultHeaders::new().add((header::CACHE_CONTROL, "no-store")))
                .wrap(from_fn(http::deadline::body_deadline))
                .wrap(from_fn(crate::telemetry::request_telemetry))
                .wrap(from_fn(http::security_headers))
                .app_data(data.clone())
                .app_data(table.clone())
                .app_data(http::path_config())
                .into_utoipa_app()
                .openapi(crate::openapi::ApiDoc::openapi())
                .configure(http::routes)
                .split_for_parts();
            app.route(
                "/docs",
                web::get().to(|| async {
                    HttpResponse::PermanentRedirect()
                        .insert_header(("Location", "/docs/"))
                        .finish()
                }),
            )
            .service(
                SwaggerUi::new("/docs/{_:.*}")
                    .url("/openapi.json", doc.clone())
                    .config(SwaggerConfig::new(["/openapi.json"]).validator_url("none")),
            )
            .default_service(web::to(http::fallback))
        })
        .listen(listener)?
        .workers(workers)
        .shutdown_timeout(30)
        // The request head must arrive within 5 s (the body has its own deadline, see
        // `http::deadline`), and a closing client gets 1 s to go before its socket is shut.
        .client_request_timeout(std::time::Duration::from_secs(5))
        .client_disconnect_timeout(std::time::Duration::from_secs(1))
        // Signals are handled in `run_until_stopped`, which ends the live streams first.
        .disable_signals()
        .run();

        // Background work runs in every process: the hub feeds this process's live streams;
        // the sweeps and the delivery worker claim work under row locks and leases, so
        // several processes on one PostgreSQL database never do the same item twice.
        tokio::spawn(state.hub.clone().run(state.store.clone()));
        if state.settings.run_workers {
            let interval = state.settings.sweep_interval;
            tokio::spawn(crate::service::sweep::run_forever(state.clone(), interval));
            let worker = crate::delivery::worker::Worker::new(state.clone())?;
            tokio::spawn(worker.run_forever());
        }

        Ok(Self {
            port,
            server,
            state,
        })
    }

    /// The port actually bound.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Shared state, for tools that drive the service in-process.
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until SIGTERM or SIGINT: then new connections are refused, live streams end
    /// (their clients reconnect and resume) and in-flight requests finish, for up to 30 s.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let Self { server, state, .. } = self;
        let handle = server.handle();
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        let mut int = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
        tokio::spawn(async move {
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
                _ = int.recv() => tracing::info!("SIGINT: shutting down"),
            }
            state.hub.close();
            handle.stop(true).await;
        });
        server.await
    }
}
