//! crm-proxy's process: reads its environment (refusing to start without the CRM's URL and
//! key), serves `0.0.0.0:$PORT` until SIGTERM, then finishes in-flight updates.

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    worker_kit::serve::run(crm_proxy::SERVICE, async {
        let proxy = crm_proxy::from_env().await?;
        let note = format!(", sending customers to {}", proxy.config.crm_origin());
        Ok(worker_kit::serve::Serving {
            logger: proxy.logger.clone(),
            router: crm_proxy::router(proxy),
            listening_note: note,
        })
    })
    .await
}
