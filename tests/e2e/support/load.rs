//! Steady load from a few client threads, each request checked for a 200.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use super::client::get;

/// Client threads sending `GET path` until [`SteadyLoad::assert_none_failed`].
pub struct SteadyLoad {
    stop: Arc<AtomicBool>,
    served: Arc<AtomicUsize>,
    clients: Vec<JoinHandle<Vec<String>>>,
}

impl SteadyLoad {
    /// `clients` threads sending to `addr`, each pausing `pace` between
    /// requests (a new connection per request: through a proxy, pacing
    /// keeps the machine's ports from running out).
    pub fn start(addr: SocketAddr, path: &str, clients: usize, pace: Option<Duration>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let served = Arc::new(AtomicUsize::new(0));
        let clients = (0..clients)
            .map(|_| {
                let (stop, served, path) = (stop.clone(), served.clone(), path.to_owned());
                std::thread::spawn(move || {
                    let mut failures = Vec::new();
                    while !stop.load(Ordering::Relaxed) {
                        match get(&path).send(addr) {
                            Ok(resp) if resp.status == 200 => {}
                            Ok(resp) => failures.push(format!("{} {}", resp.status, resp.text())),
                            Err(err) => failures.push(err),
                        }
                        served.fetch_add(1, Ordering::Relaxed);
                        if let Some(pace) = pace {
                            std::thread::sleep(pace);
                        }
                    }
                    failures
                })
            })
            .collect();
        SteadyLoad {
            stop,
            served,
            clients,
        }
    }

    /// Stops the clients; asserts that none failed and that more than
    /// `at_least` requests were sent.
    #[track_caller]
    pub fn assert_none_failed(self, at_least: usize) {
        self.stop.store(true, Ordering::Relaxed);
        let failures: Vec<String> = self
            .clients
            .into_iter()
            .flat_map(|c| c.join().unwrap())
            .collect();
        let served = self.served.load(Ordering::Relaxed);
        assert!(
            failures.is_empty(),
            "{} failed requests of {served}: {:?}",
            failures.len(),
            &failures[..failures.len().min(5)]
        );
        assert!(served > at_least);
    }
}
