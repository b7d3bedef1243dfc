//! Readiness: whether this replica should get traffic. Ready once every
//! service is loaded and while not draining; a stop turns it 503 *before*
//! the data listener stops accepting, so a load balancer takes the replica
//! out first.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Shared readiness state.
#[derive(Debug, Default)]
pub struct Readiness {
    /// Loads still under way (each held by a [`Latch`]).
    loading: AtomicUsize,
    /// Set once a graceful stop began; never cleared.
    draining: AtomicBool,
}

impl Readiness {
    /// Not loading anything, not draining.
    pub fn new() -> Arc<Self> {
        Arc::new(Readiness::default())
    }

    /// Whether `/readyz` answers 200.
    pub fn is_ready(&self) -> bool {
        self.loading.load(Ordering::Acquire) == 0 && !self.draining.load(Ordering::Acquire)
    }

    /// Whether a graceful stop began.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    /// Marks the start of a graceful stop.
    pub fn drain(&self) {
        self.draining.store(true, Ordering::Release);
    }

    /// Not ready until the returned latch is dropped.
    pub fn loading(self: &Arc<Self>) -> Latch {
        self.loading.fetch_add(1, Ordering::AcqRel);
        Latch(self.clone())
    }
}

/// Holds readiness back while something loads.
#[derive(Debug)]
pub struct Latch(Arc<Readiness>);

impl Drop for Latch {
    fn drop(&mut self) {
        self.0.loading.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_only_when_nothing_loads_and_not_draining() {
        let readiness = Readiness::new();
        assert!(readiness.is_ready());
        let latch = readiness.loading();
        assert!(!readiness.is_ready());
        drop(latch);
        assert!(readiness.is_ready());
        readiness.drain();
        assert!(!readiness.is_ready());
    }
}
