//! Signals: SIGTERM and SIGINT start a graceful stop; SIGHUP reloads.
//!
//! Both functions install their handlers when called, not when first
//! polled: they are called before the `listening` event, so a signal sent
//! right after it is never met by the default action (which kills).

use std::future::Future;
use std::sync::Arc;

use tokio::signal::unix::{SignalKind, signal};

/// Installs the SIGTERM and SIGINT handlers; the future completes when
/// either signal arrives.
pub fn stop_signal() -> anyhow::Result<impl Future<Output = ()>> {
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        let name = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        };
        tracing::info!(signal = name, "stopping: draining in-flight requests");
    })
}

/// Installs the SIGHUP handler; the future reloads the manifest on every
/// SIGHUP, off the request path.
pub fn reload_on_hangup(
    reloader: Arc<crate::services::reload::Reloader>,
) -> anyhow::Result<impl Future<Output = ()>> {
    let mut hangup = signal(SignalKind::hangup())?;
    Ok(async move {
        while hangup.recv().await.is_some() {
            tracing::info!(signal = "SIGHUP", "reloading");
            let reloader = reloader.clone();
            let _ = tokio::task::spawn_blocking(move || reloader.reload()).await;
        }
    })
}
