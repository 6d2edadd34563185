//! `filmgate`: run the gateway, or check a configuration.

use clap::{Parser, Subcommand};
use filmgate::config::Settings;
use filmgate::startup::{Application, shutdown_signal};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(version, about = "Serial-to-REST gateway for film inspection machines")]
struct Cli {
    /// Configuration file (default: ./config.toml, else the embedded default).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Validate the configuration and print it with secrets redacted.
    CheckConfig,
}

fn main() -> ExitCode {
    filmgate::logging::init();
    let cli = Cli::parse();
    let settings = match Settings::load(cli.config.as_deref(), std::env::vars()) {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("filmgate: invalid configuration: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(Command::CheckConfig) = cli.command {
        print!("{}", settings.redacted_toml());
        return ExitCode::SUCCESS;
    }
    // Exit 2 when filmgate cannot start (its queue is in use or damaged, its port taken...),
    // 1 when it failed while running.
    let result = actix_rt::System::new().block_on(async {
        let app = Application::build(settings).await.map_err(|e| (2, e))?;
        app.run_until(shutdown_signal()).await.map_err(|e| (1, e))
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err((code, e)) => {
            // Not through the logger: redacted here (`Application::build` registered the
            // configuration's secrets first thing).
            let text = error_chain(&e);
            eprintln!("filmgate: {}", filmgate_actors::redact::redact(&text));
            ExitCode::from(code)
        }
    }
}

/// The error and its causes, each said once: a cause whose text the message before it
/// already holds (an error that names its source in its own message) is not repeated.
fn error_chain(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        let cause = cause.to_string();
        if text.contains(&cause) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&cause);
    }
    text
}
