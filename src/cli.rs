//! Command line: `serve` (the default), `migrate`, `openapi`, and later admin tools.

use clap::{Parser, Subcommand};

use crate::config::Settings;

/// aftercare: recovery support — daily check-ins, relapse-risk patterns, counsellor alerts.
///
/// Configured by AFTERCARE_* environment variables (see README); with none set it serves on
/// 127.0.0.1:8080 with an embedded SQLite database `aftercare.db` in the working directory.
#[derive(Debug, Parser)]
#[command(name = "aftercare", version, about)]
pub struct Cli {
    /// What to do; serves when omitted.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Migrate the database and serve the API (the default).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Print the OpenAPI document (JSON) to standard output.
    Openapi,
}

/// Runs the parsed command.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command.unwrap_or(Command::Serve) {
        Command::Openapi => {
            print!("{}", crate::openapi::document_json());
            Ok(())
        }
        Command::Migrate => {
            let settings = load_settings()?;
            crate::telemetry::init(&settings);
            let url = settings.database_url.clone();
            tokio::task::spawn_blocking(move || crate::store::migrate(&url)).await??;
            tracing::info!(
                backend = settings.database_url.backend(),
                "migrations applied"
            );
            Ok(())
        }
        Command::Serve => {
            let settings = load_settings()?;
            crate::telemetry::init(&settings);
            let backend = settings.database_url.backend();
            let app = crate::startup::Application::build(settings).await?;
            tracing::info!(port = app.port(), backend, "aftercare serving");
            app.run_until_stopped().await?;
            tracing::info!("stopped");
            Ok(())
        }
    }
}

fn load_settings() -> anyhow::Result<Settings> {
    Settings::from_env().map_err(|e| anyhow::anyhow!("{e}"))
}
