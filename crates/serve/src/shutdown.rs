//! The graceful-shutdown signal of a service process.

/// Resolves on SIGINT (Ctrl-C) or, on Unix, SIGTERM: the shutdown future a service passes
/// to [`serve`](crate::serve) so that it stops accepting and drains requests in flight.
///
/// When a signal handler cannot be installed, that signal is simply never awaited (the
/// other one still works).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
