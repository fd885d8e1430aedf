//! webhook-relay's process: reads its environment, serves `0.0.0.0:$PORT` until SIGTERM, then
//! finishes in-flight deliveries.

use std::process::ExitCode;

use worker_kit::log::Logger;

#[tokio::main]
async fn main() -> ExitCode {
    let startup = Logger::new(
        std::env::var("GOOGLE_CLOUD_PROJECT").unwrap_or_default(),
        webhook_relay::SERVICE,
    );
    let relay = match webhook_relay::from_env().await {
        Ok(relay) => relay,
        Err(reason) => {
            startup.error(format!("cannot start: {reason}")).emit();
            return ExitCode::FAILURE;
        }
    };
    let port: u16 = worker_kit::cloud::env("PORT")
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
    let logger = relay.logger.clone();
    logger
        .info(format!(
            "listening on port {port}, enqueueing to {}",
            relay.queue
        ))
        .emit();
    let served = axum::serve(listener, webhook_relay::router(relay))
        .with_graceful_shutdown(worker_kit::shutdown::signal())
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
