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
    /// Create an organisation and its first admin. The password is read from
    /// AFTERCARE_ADMIN_PASSWORD or, when unset, from standard input.
    CreateAdmin {
        /// The organisation's name, e.g. "Harbour Recovery".
        #[arg(long)]
        organisation: String,
        /// The admin's email address.
        #[arg(long)]
        email: String,
    },
    /// Fill an empty database with a demo clinic (an admin, two counsellors, twelve patients
    /// with weeks of check-ins and the alerts they raise) and print the logins.
    Demo,
}

/// Runs the parsed command.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command.unwrap_or(Command::Serve) {
        Command::Openapi => {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            match out
                .write_all(crate::openapi::document_json().as_bytes())
                .and_then(|()| out.flush())
            {
                // `aftercare openapi | head`: the reader had enough; not an error.
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
                _ => Ok(()),
            }
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
        Command::CreateAdmin {
            organisation,
            email,
        } => {
            let settings = load_settings()?;
            crate::telemetry::init(&settings);
            let password = match std::env::var("AFTERCARE_ADMIN_PASSWORD") {
                Ok(p) if !p.is_empty() => p,
                _ => read_password()?,
            };
            let state = crate::startup::build_state(settings).await?;
            let policy = crate::startup::default_policy_json();
            match crate::service::admin::create_admin(
                &state,
                &organisation,
                &email,
                password,
                policy,
            )
            .await
            {
                Ok((org, user)) => {
                    println!("Created organisation \"{organisation}\" ({org}) and admin {email} ({user}).");
                    println!("Sign in with POST /v1/auth/login.");
                    Ok(())
                }
                Err(crate::error::ApiError::Validation(errors)) => {
                    let lines: Vec<String> = errors
                        .iter()
                        .map(|e| format!("  - {}: {}", e.field, e.message))
                        .collect();
                    Err(anyhow::anyhow!(
                        "cannot create the admin:\n{}",
                        lines.join("\n")
                    ))
                }
                Err(e) => Err(anyhow::anyhow!("cannot create the admin: {e}")),
            }
        }
        Command::Demo => {
            let settings = load_settings()?;
            crate::telemetry::init(&settings);
            let state = crate::startup::build_state(settings).await?;
            let report = crate::demo::run(&state).await?;
            print!("{}", crate::demo::render(&report));
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

fn read_password() -> anyhow::Result<String> {
    use std::io::{BufRead, IsTerminal};
    let p = if std::io::stdin().is_terminal() {
        // Typed at a terminal: not echoed, so it is not left on the screen or in a recording.
        eprint!("Password for the new admin (12+ characters, not shown), then Enter: ");
        rpassword::read_password()?
    } else {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        line
    };
    let p = p.trim_end_matches(['\r', '\n']).to_owned();
    if p.is_empty() {
        anyhow::bail!(
            "no password given (set AFTERCARE_ADMIN_PASSWORD or type it on standard input)"
        );
    }
    Ok(p)
}
