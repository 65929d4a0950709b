//! The `switchboard` binary: settings, logging, then the application.

use std::io::IsTerminal;
use std::process::ExitCode;

use actix_web::web;
use clap::{CommandFactory, Parser};
use switchboard::config::{Cli, Command, Settings};
use switchboard::startup::Application;
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    // The containment helper each instance runs under (see `contain`): before any
    // thread or runtime exists.
    let raw: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if let Some(code) = switchboard::contain::main_if_requested(&raw) {
        return code;
    }
    let (args, login_link) = match Cli::parse().into_command() {
        Command::Serve(args) => (args, false),
        Command::LoginLink(args) => (args, true),
        // The terminal client: no runtime, no logging set-up, only the HTTP API.
        Command::Client(command) => return switchboard::client::run(command, Cli::command()),
    };
    actix_web::rt::System::new().block_on(serve(args, login_link))
}

async fn serve(args: switchboard::config::ServeArgs, login_link: bool) -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .init();
    let settings = match Settings::load(args) {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("switchboard: {e}");
            return ExitCode::from(2);
        }
    };
    if login_link {
        return match web::block(move || switchboard::login_link::fetch(&settings)).await {
            Ok(Ok(link)) => {
                println!("{link}");
                ExitCode::SUCCESS
            }
            Ok(Err(e)) => {
                eprintln!("switchboard: {e}");
                ExitCode::FAILURE
            }
            Err(e) => {
                eprintln!("switchboard: {e}");
                ExitCode::FAILURE
            }
        };
    }
    // Read once; no later reader of this process's environment finds it (the
    // start-up environment block itself is closed to other processes below).
    std::env::remove_var("SWITCHBOARD_TOKEN");
    // Same-user processes, the instances included, may not read this process's
    // memory or environment (/proc/PID/environ, mem) nor attach to it.
    if let Err(e) = nix::sys::prctl::set_dumpable(false) {
        tracing::warn!(error = %e, "cannot close this process to other processes of its user");
    }
    let app = match Application::build(settings).await {
        Ok(app) => app,
        Err(e) => {
            eprintln!("switchboard: {e}");
            return ExitCode::FAILURE;
        }
    };
    for line in app.banner() {
        println!("{line}");
    }
    match app.run_until_stopped().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("switchboard: {e}");
            ExitCode::FAILURE
        }
    }
}
