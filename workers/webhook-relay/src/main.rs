//! webhook-relay's process: reads its environment, serves `0.0.0.0:$PORT` until SIGTERM, then
//! finishes in-flight deliveries.

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    worker_kit::serve::run(webhook_relay::SERVICE, async {
        let relay = webhook_relay::from_env().await?;
        Ok(worker_kit::serve::Serving {
            logger: relay.logger.clone(),
            listening_note: format!(", enqueueing to {}", relay.queue),
            router: webhook_relay::router(relay),
        })
    })
    .await
}
