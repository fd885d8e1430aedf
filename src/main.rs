//! The stackctl binary: parse, run, map the outcome to an exit code.

use std::process::ExitCode;

use clap::Parser;
use stackctl::cli::Cli;

fn main() -> ExitCode {
    // A command line clap refuses exits 1 like any other error: 2 means "changes" to
    // `plan --detailed-exitcode`, and a typo in CI must not read as drift.
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            let _ = error.print();
            return ExitCode::from(u8::from(error.use_stderr()));
        }
    };
    let level = match cli.verbose {
        0 => "warn",
        1 => "info,stackctl=debug",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("STACKCTL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: could not start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(stackctl::commands::run(cli)) {
        Ok(status) => status.into(),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}
