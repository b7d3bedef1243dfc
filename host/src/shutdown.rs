//! Signals: SIGTERM and SIGINT start a graceful stop; SIGHUP reloads.

/// Completes when SIGTERM or SIGINT arrives.
pub async fn signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("installing the SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("installing the SIGINT handler");
    let name = tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    };
    tracing::info!(signal = name, "stopping: draining in-flight requests");
}

/// Reloads the manifest on every SIGHUP, off the request path.
pub async fn reload_on_hangup(reloader: std::sync::Arc<crate::reload::Reloader>) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut hangup) = signal(SignalKind::hangup()) else {
        tracing::warn!("cannot install the SIGHUP handler; reload by file change only");
        return;
    };
    while hangup.recv().await.is_some() {
        tracing::info!(signal = "SIGHUP", "reloading");
        let reloader = reloader.clone();
        let _ = tokio::task::spawn_blocking(move || reloader.reload()).await;
    }
}
