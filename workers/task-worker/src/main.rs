//! task-worker's process: reads its environment, serves `0.0.0.0:$PORT` until SIGTERM, then
//! finishes in-flight deliveries.

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    worker_kit::serve::run(task_worker::SERVICE, async {
        let worker = task_worker::from_env().await?;
        Ok(worker_kit::serve::Serving {
            logger: worker.logger.clone(),
            router: task_worker::router(worker),
            listening_note: String::new(),
        })
    })
    .await
}
