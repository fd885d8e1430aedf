//! The execution plane: what makes the emulator run the stack while `stackctl up --local` serves
//! it (the clock, identities and their tokens, service fronts, task dispatch, cron firing, job
//! executions). Off unless `Settings::execute`; the clock and the token issuer always exist.

pub mod clock;
pub mod cron;
pub mod dispatcher;
pub mod env;
pub mod executions;
pub mod gateways;
pub mod identity;
pub mod images;
pub mod metadata;
pub mod process;
pub mod routes;
pub mod services;

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
    /// Output of every local process, to files and live followers.
    pub logs: process::LogSink,
    /// More env for every local process (`up` adds `FIRESTORE_EMULATOR_HOST`).
    extra_env: std::sync::RwLock<Vec<(String, String)>>,
    /// Woken when a task is created or forced, so the dispatcher looks again at once.
    pub dispatch_wake: tokio::sync::Notify,
    /// Woken when `jobs.run` forces a scheduler job, so the cron runner fires it at once.
    pub scheduler_wake: tokio::sync::Notify,
    /// The services supervisor, once the runners started.
    pub services: std::sync::OnceLock<std::sync::Arc<services::Supervisor>>,
    /// The API Gateway fronts, once the runners started.
    pub gateways: std::sync::OnceLock<std::sync::Arc<gateways::GatewayFronts>>,
}

impl Runtime {
    pub fn new(state_dir: Option<&std::path::Path>) -> Self {
        Self {
            clock: Clock::default(),
            identity: Identity::new(state_dir),
            routes: Routes::default(),
            url: std::sync::OnceLock::new(),
            logs: process::LogSink {
                dir: state_dir.map(|d| d.join("runtime").join("logs")),
                live: tokio::sync::broadcast::channel(4096).0,
                processes: std::sync::Arc::default(),
            },
            extra_env: std::sync::RwLock::default(),
            services: std::sync::OnceLock::new(),
            gateways: std::sync::OnceLock::new(),
            dispatch_wake: tokio::sync::Notify::new(),
            scheduler_wake: tokio::sync::Notify::new(),
        }
    }

    /// Adds `name=value` to the env of every process started from now on.
    pub fn add_env(&self, name: &str, value: &str) {
        let mut env = self.extra_env.write().unwrap_or_else(|p| p.into_inner());
        env.retain(|(n, _)| n != name);
        env.push((name.to_string(), value.to_string()));
    }

    pub fn extra_env(&self) -> Vec<(String, String)> {
        self.extra_env
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Every stored service with its front and whether it runs (empty until the runners start).
    pub fn service_statuses(&self) -> Vec<services::ServiceStatus> {
        self.services
            .get()
            .map(|s| s.statuses())
            .unwrap_or_default()
    }

    /// Waits (up to `within`) until every service with a ready revision either listens behind
    /// its front or is known not to run; returns the statuses.
    pub async fn wait_services_settled(
        &self,
        within: std::time::Duration,
    ) -> Vec<services::ServiceStatus> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let settled = self.services.get().is_some_and(|s| s.settled());
            if settled || tokio::time::Instant::now() >= deadline {
                return self.service_statuses();
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// `(gateway name, http://127.0.0.1:PORT)` of every API Gateway gateway served locally
    /// (`projects/P/locations/REGION/gateways/G`), by name; empty until the runners start.
    pub fn gateway_fronts(&self) -> Vec<(String, String)> {
        self.gateways.get().map(|g| g.fronts()).unwrap_or_default()
    }

    /// Waits (up to `within`) until every ACTIVE gateway listens and serves its current config;
    /// returns [`Runtime::gateway_fronts`].
    pub async fn wait_gateways_settled(
        &self,
        within: std::time::Duration,
    ) -> Vec<(String, String)> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let settled = self.gateways.get().is_some_and(|g| g.settled());
            if settled || tokio::time::Instant::now() >= deadline {
                return self.gateway_fronts();
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// Waits (up to `within`) until every local process has exited.
    pub async fn wait_processes_gone(&self, within: std::time::Duration) {
        let deadline = tokio::time::Instant::now() + within;
        while self
            .logs
            .processes
            .load(std::sync::atomic::Ordering::SeqCst)
            > 0
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
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
    let supervisor = services::Supervisor::new(
        std::sync::Arc::clone(emulator),
        emulator.runtime.logs.clone(),
        shutdown.clone(),
    );
    let _ = emulator
        .runtime
        .services
        .set(std::sync::Arc::clone(&supervisor));
    tokio::spawn(supervisor.run(std::time::Duration::from_millis(300)));
    let gateways = gateways::GatewayFronts::new(std::sync::Arc::clone(emulator), shutdown.clone());
    let _ = emulator
        .runtime
        .gateways
        .set(std::sync::Arc::clone(&gateways));
    tokio::spawn(gateways.run(std::time::Duration::from_millis(300)));
    tokio::spawn(executions::run(
        std::sync::Arc::clone(emulator),
        shutdown.clone(),
    ));
    tokio::spawn(dispatcher::run(
        std::sync::Arc::clone(emulator),
        shutdown.clone(),
    ));
    tokio::spawn(cron::run(std::sync::Arc::clone(emulator), shutdown.clone()));
}
