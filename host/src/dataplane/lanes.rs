//! Where guests run: the fast lane and the slow lane.
//!
//! Every request starts on the I/O worker thread that accepted its
//! connection (one current-thread runtime per core, see
//! [`crate::commands::serve`]), so a connection, its requests and their
//! instances stay on one thread with no cross-thread hand-off. That is
//! what makes a short request cheap.
//!
//! A guest that computes for long would delay every other connection on its
//! thread. Guests yield at every epoch tick (1 ms) they run across, and
//! count those yields; after [`FIRST_SLICE_TICKS`] of them its whole task
//! moves to the *slow lane*: a
//! multi-thread runtime whose threads run at a lower scheduling priority
//! ([`crate::wasm::priority::SLOW_LANE_NICE`]). The kernel then runs I/O threads first whenever
//! they have work, and CPU-bound guests take what is left. Requests keep
//! their limits wherever they run; only their place in the queue changes.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::task::{Context, Poll};

use tokio::runtime::Handle;

/// Epoch ticks a guest may run across on its I/O thread before it moves to
/// the slow lane: about 1–2 ms of computing. A hello request takes ~30 µs.
/// Ticks, not a clock: a guest that the kernel preempted has not computed
/// for long, and it sees one tick however long it waited.
pub const FIRST_SLICE_TICKS: u32 = 2;

/// Spawns a guest task on the current (I/O) runtime; it moves to `slow`
/// once `ticks` (counted by the guest's epoch callback, see
/// [`crate::config::limits::Limits::apply`]) reaches [`FIRST_SLICE_TICKS`].
pub fn spawn_guest<F>(slow: &Handle, ticks: Arc<AtomicU32>, task: F)
where
    F: Future<Output = ()> + Send + 'static,
{
    tokio::spawn(FirstSlice {
        task: Some(Box::pin(task)),
        ticks,
        slow: slow.clone(),
    });
}

/// A task on its first slice: polled in place until it has used up the
/// slice, then handed to the slow lane as it is (a boxed future moves
/// between threads without being re-created).
struct FirstSlice {
    task: Option<Pin<Box<dyn Future<Output = ()> + Send>>>,
    ticks: Arc<AtomicU32>,
    slow: Handle,
}

impl Future for FirstSlice {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let Some(task) = self.task.as_mut() else {
            return Poll::Ready(());
        };
        if task.as_mut().poll(cx).is_ready() {
            return Poll::Ready(());
        }
        if self.ticks.load(Ordering::Relaxed) >= FIRST_SLICE_TICKS {
            let task = self.task.take().expect("checked above");
            self.slow.spawn(task);
            return Poll::Ready(());
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_task_stays_and_a_long_one_moves_to_the_slow_lane() {
        let slow = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("test-slow")
            .build()
            .unwrap();
        let io = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let ran_on = |name: &'static str| {
            let (tx, rx) = std::sync::mpsc::channel();
            let handle = slow.handle().clone();
            io.block_on(async move {
                let ticks = Arc::new(AtomicU32::new(0));
                spawn_guest(&handle, ticks.clone(), async move {
                    if name == "long" {
                        // Yield at ticks like a computing guest.
                        for _ in 0..FIRST_SLICE_TICKS {
                            ticks.fetch_add(1, Ordering::Relaxed);
                            tokio::task::yield_now().await;
                        }
                    }
                    let thread = std::thread::current().name().map(str::to_owned);
                    tx.send(thread).unwrap();
                });
                tokio::task::yield_now().await;
                tokio::task::yield_now().await;
            });
            rx.recv_timeout(std::time::Duration::from_secs(5)).unwrap()
        };
        assert_ne!(ran_on("short").as_deref(), Some("test-slow"));
        assert_eq!(ran_on("long").as_deref(), Some("test-slow"));
    }
}
