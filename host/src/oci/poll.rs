//! Polling tags (`poll = "1m"`): each service whose `oci://` component is
//! named by a tag asks the registry, every `poll`, which digest the tag
//! names now (one `HEAD` request). When a tag moved, the host reloads, as
//! SIGHUP would: the new digest is pulled and compiled off the request
//! path and swapped in, and a version that cannot be pulled or loaded never
//! replaces the running one. A registry that does not answer is retried at
//! the next poll; the running version keeps serving.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::Puller;
use crate::config::manifest::HostConfig;
use crate::services::registry::Registry;
use crate::services::reload::Reloader;

/// How often the poller looks for services whose poll is due.
const TICK: Duration = Duration::from_millis(500);

/// Polls the tags of `registry`'s services for as long as the host runs,
/// with the `[host]` settings it started with.
pub async fn run(registry: Arc<Registry>, reloader: Arc<Reloader>, host: HostConfig) {
    let mut puller = None;
    let mut last_asked: HashMap<Arc<str>, Instant> = HashMap::new();
    let mut failures_logged: HashMap<Arc<str>, String> = HashMap::new();
    // Digests a reload could not bring in: not tried again until the tag
    // moves once more (the reload's error stays on /admin/services).
    let mut refused: HashMap<Arc<str>, String> = HashMap::new();
    loop {
        tokio::time::sleep(TICK).await;
        let snapshot = registry.load();
        let due: Vec<_> = snapshot
            .services
            .iter()
            .filter(|s| !s.limits().poll.is_zero())
            .filter_map(|s| {
                let source = s.config.oci.as_ref()?;
                // A digest never moves.
                if source.reference.contains('@') {
                    return None;
                }
                let asked = last_asked.get(&s.name);
                asked
                    .is_none_or(|at| at.elapsed() >= s.limits().poll)
                    .then(|| (s.name.clone(), source.clone()))
            })
            .collect();
        if due.is_empty() {
            continue;
        }
        let puller = match &puller {
            Some(puller) => puller,
            None => match Puller::new(&host) {
                Ok(made) => puller.insert(made),
                Err(err) => {
                    tracing::error!(error = %err, "cannot poll registries");
                    return;
                }
            },
        };
        let mut moved = Vec::new();
        for (name, source) in due {
            last_asked.insert(name.clone(), Instant::now());
            match puller.current_digest(&source.reference).await {
                Ok(digest)
                    if Some(&digest) != source.digest.as_ref()
                        && refused.get(&name) != Some(&digest) =>
                {
                    tracing::info!(
                        service = %name,
                        reference = %source.reference,
                        from = source.digest.as_deref().unwrap_or("-"),
                        to = %digest,
                        "the tag moved"
                    );
                    failures_logged.remove(&name);
                    moved.push((name, digest));
                }
                Ok(_) => {
                    failures_logged.remove(&name);
                    super::note_pull(&name, None);
                }
                Err(err) => {
                    // Once per distinct failure, not once per poll.
                    let message = err.to_string();
                    super::note_pull(&name, Some(format!("polling: {message}")));
                    if failures_logged.get(&name) != Some(&message) {
                        tracing::warn!(
                            service = %name,
                            reference = %source.reference,
                            error = %message,
                            "cannot ask the registry whether the tag moved; the running version keeps serving"
                        );
                        failures_logged.insert(name, message);
                    }
                }
            }
        }
        if !moved.is_empty() {
            let reloader = reloader.clone();
            let _ = tokio::task::spawn_blocking(move || reloader.reload()).await;
            let now = registry.load();
            for (name, digest) in moved {
                let serving = now
                    .services
                    .iter()
                    .find(|s| s.name == name)
                    .and_then(|s| s.config.oci.as_ref()?.digest.clone());
                if serving.as_ref() != Some(&digest) {
                    refused.insert(name, digest);
                } else {
                    refused.remove(&name);
                }
            }
        }
        last_asked.retain(|name, _| snapshot.services.iter().any(|s| &s.name == name));
    }
}
