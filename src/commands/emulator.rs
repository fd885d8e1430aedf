//! `stackctl emulator`: serve the local Google Cloud emulator on loopback until killed.

use std::io::Write;

use anyhow::Result;

use super::ExitStatus;
use crate::cli::EmulatorArgs;

pub async fn run(args: &EmulatorArgs) -> Result<ExitStatus> {
    let mut settings = gcp_emulator::Settings::from_env()?;
    settings.state_dir = args.state_dir.clone();
    settings.execute |= args.execute;
    let running = gcp_emulator::start(settings, args.port).await?;
    println!("listening on {}", running.url());
    std::io::stdout().flush()?;
    tokio::select! {
        served = running.serve_forever() => served?,
        _ = tokio::signal::ctrl_c() => {}
    }
    Ok(ExitStatus::Success)
}
