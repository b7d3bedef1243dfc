//! Spreading connections evenly over the I/O workers.
//!
//! Each worker accepts on its own `SO_REUSEPORT` socket, and the kernel
//! picks the socket by a hash of the client's address and port: 32
//! connections land 19 on one worker and 13 on the other as often as 16
//! and 16. A connection stays on its worker for its life, and a worker
//! runs one guest at a time ([`crate::dataplane::lanes::CPU_SLOTS`]), so an
//! uneven split is an uneven queue: the clients of the busier worker wait
//! longer, which is what a p99 shows first with guests that compute for
//! milliseconds (a language runtime).
//!
//! So a worker that accepts a connection while another worker serves
//! fewer hands it over (a descriptor through a channel: one cross-thread
//! wake-up per connection, none per request). Worker loads then differ by
//! at most one connection, wherever the kernel put them.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::mpsc;

/// A connection handed from the worker that accepted it to the one that
/// serves it, with its place in that worker's load.
pub struct HandedOver {
    /// The accepted socket, deregistered from the accepting worker.
    pub stream: std::net::TcpStream,
    /// Counts the connection in its new worker's load.
    pub load: Load,
}

/// The workers' loads and inboxes.
pub struct Balance {
    /// Connections each worker serves now.
    loads: Box<[AtomicUsize]>,
    /// Where each worker receives the connections handed to it.
    inboxes: Box<[mpsc::UnboundedSender<HandedOver>]>,
}

/// One connection counted in a worker's load until it is dropped.
pub struct Load {
    balance: Arc<Balance>,
    worker: usize,
}

impl Drop for Load {
    fn drop(&mut self) {
        self.balance.loads[self.worker].fetch_sub(1, Ordering::Relaxed);
    }
}

impl Balance {
    /// A balance over `workers` workers, and each worker's inbox.
    pub fn new(workers: usize) -> (Arc<Balance>, Vec<mpsc::UnboundedReceiver<HandedOver>>) {
        let (senders, receivers): (Vec<_>, Vec<_>) = (0..workers.max(1))
            .map(|_| mpsc::unbounded_channel())
            .unzip();
        let balance = Balance {
            loads: (0..senders.len()).map(|_| AtomicUsize::new(0)).collect(),
            inboxes: senders.into_boxed_slice(),
        };
        (Arc::new(balance), receivers)
    }

    /// Where a connection that worker `me` accepted is served: `me`, unless
    /// another worker serves fewer connections. The connection is counted
    /// in that worker's load at once, so a burst of connections spreads
    /// before any of them is picked up.
    pub fn place(self: &Arc<Self>, me: usize) -> Load {
        let mine = self.loads[me].load(Ordering::Relaxed);
        let (least, fewest) = self
            .loads
            .iter()
            .enumerate()
            .map(|(worker, load)| (worker, load.load(Ordering::Relaxed)))
            .min_by_key(|&(worker, load)| (load, worker != me))
            .unwrap_or((me, mine));
        let worker = if fewest < mine { least } else { me };
        self.loads[worker].fetch_add(1, Ordering::Relaxed);
        Load {
            balance: self.clone(),
            worker,
        }
    }

    /// Hands `stream` to the worker its `load` names. Gives the stream back
    /// if that worker has stopped.
    pub fn hand_over(
        &self,
        stream: std::net::TcpStream,
        load: Load,
    ) -> Result<(), std::net::TcpStream> {
        let worker = load.worker;
        self.inboxes[worker]
            .send(HandedOver { stream, load })
            .map_err(|failed| failed.0.stream)
    }
}

impl Load {
    /// The worker that serves the connection.
    pub fn worker(&self) -> usize {
        self.worker
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_of_connections_accepted_by_one_worker_spreads_evenly() {
        let (balance, _inboxes) = Balance::new(3);
        let loads: Vec<Load> = (0..31).map(|_| balance.place(0)).collect();
        let mut per_worker = [0; 3];
        for load in &loads {
            per_worker[load.worker()] += 1;
        }
        assert_eq!(per_worker, [11, 10, 10]);
    }

    #[test]
    fn a_worker_keeps_its_connection_when_no_worker_serves_fewer() {
        let (balance, _inboxes) = Balance::new(2);
        let first = balance.place(1);
        assert_eq!(first.worker(), 1);
        let second = balance.place(1);
        assert_eq!(second.worker(), 0, "worker 0 serves fewer");
        drop(first);
        // Both serve one again after a connection ends and another comes.
        assert_eq!(balance.place(1).worker(), 1);
    }

    #[test]
    fn a_closed_connection_leaves_its_workers_load() {
        let (balance, _inboxes) = Balance::new(2);
        let loads: Vec<Load> = (0..4).map(|_| balance.place(0)).collect();
        drop(loads);
        assert!(balance.loads.iter().all(|l| l.load(Ordering::Relaxed) == 0));
    }
}
