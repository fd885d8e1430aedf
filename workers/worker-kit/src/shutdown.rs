//! Graceful shutdown: a future that resolves when Cloud Run asks the instance to stop.

/// Resolves on SIGTERM (Cloud Run sends it, then SIGKILL 10 s later) or Ctrl-C; pass it to
/// axum's `with_graceful_shutdown` so in-flight requests finish first.
pub async fn signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut stream) => {
                stream.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}
