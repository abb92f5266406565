//! Thin binary: parse the command line and run.

use clap::Parser;

#[actix_web::main]
async fn main() -> std::process::ExitCode {
    let cli = aftercare::cli::Cli::parse();
    match aftercare::cli::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("aftercare: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
