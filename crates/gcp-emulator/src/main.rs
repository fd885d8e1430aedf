//! `gcp-emulator --port PORT [--state-dir DIR]`: serves the emulator until killed.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "usage: gcp-emulator --port PORT [--state-dir DIR]";

struct Args {
    port: u16,
    state_dir: Option<PathBuf>,
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut port = None;
    let mut state_dir = None;
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) => (flag.to_string(), Some(value.to_string())),
            None => (arg.clone(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))
        };
        match flag.as_str() {
            "--port" => {
                let raw = value()?;
                port = Some(
                    raw.parse::<u16>()
                        .map_err(|e| format!("invalid --port {raw:?}: {e}"))?,
                );
            }
            "--state-dir" => state_dir = Some(PathBuf::from(value()?)),
            "-h" | "--help" => return Err(USAGE.to_string()),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    let port = port.ok_or_else(|| format!("--port is required\n{USAGE}"))?;
    Ok(Args { port, state_dir })
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("gcp-emulator: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        let mut settings = gcp_emulator::Settings::from_env()?;
        settings.state_dir = args.state_dir;
        let running = gcp_emulator::start(settings, args.port).await?;
        let mut stdout = std::io::stdout();
        let _ = writeln!(stdout, "listening on {}", running.url());
        let _ = stdout.flush();
        running.serve_forever().await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("gcp-emulator: {error}");
            ExitCode::FAILURE
        }
    }
}
