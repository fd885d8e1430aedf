//! A worker process's life: build the worker from its environment, serve `0.0.0.0:$PORT`
//! (Cloud Run's contract) until SIGTERM, finish in-flight requests, and exit non-zero when it
//! could not start or the server failed, each reason logged as one JSON line.

use std::process::ExitCode;

use crate::log::Logger;

/// A request header's trimmed value, `None` when absent, empty or not text.
pub fn header<'h>(headers: &'h axum::http::HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// What a started worker hands over: its logger, its routes, and what to say once listening.
pub struct Serving {
    pub logger: Logger,
    pub router: axum::Router,
    /// Appended to `listening on port N` (e.g. `, enqueueing to QUEUE`), or empty.
    pub listening_note: String,
}

/// Runs the worker `service` that `start` builds from the environment.
pub async fn run(
    service: &'static str,
    start: impl std::future::Future<Output = Result<Serving, String>>,
) -> ExitCode {
    let startup = Logger::new(
        std::env::var("GOOGLE_CLOUD_PROJECT").unwrap_or_default(),
        service,
    );
    let serving = match start.await {
        Ok(serving) => serving,
        Err(reason) => {
            startup.error(format!("cannot start: {reason}")).emit();
            return ExitCode::FAILURE;
        }
    };
    let port: u16 = crate::cloud::env("PORT")
        .and_then(|p| p.parse().ok())
        .unwrap_or(8080);
    let listener = match tokio::net::TcpListener::bind(("0.0.0.0", port)).await {
        Ok(listener) => listener,
        Err(error) => {
            startup
                .error(format!("cannot listen on port {port}: {error}"))
                .emit();
            return ExitCode::FAILURE;
        }
    };
    let logger = serving.logger;
    logger
        .info(format!(
            "listening on port {port}{}",
            serving.listening_note
        ))
        .emit();
    let served = axum::serve(listener, serving.router)
        .with_graceful_shutdown(crate::shutdown::signal())
        .await;
    match served {
        Ok(()) => {
            logger
                .info("stopped after finishing in-flight requests")
                .emit();
            ExitCode::SUCCESS
        }
        Err(error) => {
            logger.error(format!("server failed: {error}")).emit();
            ExitCode::FAILURE
        }
    }
}
