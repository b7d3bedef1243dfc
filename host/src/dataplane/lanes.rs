//! Where guests run: the fast lane, its CPU slots, and the slow lane.
//!
//! Every request starts on the I/O worker thread that accepted its
//! connection (one current-thread runtime per core, see
//! [`crate::commands::serve`]), so a connection, its requests and their
//! instances stay on one thread with no cross-thread hand-off. That is
//! what makes a short request cheap.
//!
//! What the scheduler does, in three sentences (also in
//! `docs/operations.md`): a request's guest starts — is instantiated — only
//! when its thread's CPU slot ([`CPU_SLOTS`]) is free, first come first served,
//! so the instances computing at once track cores, not connections; a
//! guest gives its slot back when it ends or first waits for I/O. Guests
//! yield at every epoch tick (1 ms) so others on the thread interleave, and
//! a guest that has computed for [`RUNAWAY_TICKS`] while other requests wait
//! for a slot is a runaway: it moves to the *slow lane*, a multi-thread
//! runtime at a lower scheduling priority
//! ([`crate::wasm::priority::SLOW_LANE_NICE`]). A guest that is merely long
//! (a language runtime's few milliseconds) keeps its slot and its priority;
//! requests keep their limits wherever they run.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::task::{Context, Poll, Waker};

use tokio::runtime::Handle;

/// Guests that may run (be instantiated and compute) at once on one I/O
/// thread; the others wait before instantiation. An I/O thread runs one
/// thing at a time, so a second slot would only interleave two guests at
/// epoch ticks: both answer later and both hold an instance (measured with
/// the Python and JavaScript guests: one slot had the lower latency and
/// peak memory, as under `wasmtime serve`, which runs a request to its end).
pub const CPU_SLOTS: usize = 1;

/// Epoch ticks (about 1 ms each) a guest may compute across on its I/O
/// thread while others wait for a slot, before it moves to the slow lane.
/// A hello request takes ~30 µs, a Python or JavaScript one 0.4–6 ms:
/// 20 ms is a runaway. Ticks, not a clock: a guest that the kernel
/// preempted has not computed for long, and it sees one tick however long
/// it waited.
pub const RUNAWAY_TICKS: u32 = 20;

/// One I/O thread's CPU slots.
#[derive(Default)]
struct Slots {
    /// Slots taken.
    taken: usize,
    /// Guests waiting for a slot, in arrival order.
    waiting: VecDeque<(u64, Waker)>,
    /// Ids for waiting guests.
    next_id: u64,
}

thread_local! {
    static SLOTS: RefCell<Slots> = RefCell::new(Slots::default());
}

impl Slots {
    /// Takes a slot for the guest `id` if one is free and no one waits
    /// before it; else queues (or refreshes) its waker.
    fn take(&mut self, id: u64, waker: &Waker) -> bool {
        let first = self.waiting.front().is_none_or(|(front, _)| *front == id);
        if self.taken < CPU_SLOTS && first {
            self.taken += 1;
            if !self.waiting.is_empty() {
                self.waiting.pop_front();
            }
            return true;
        }
        match self.waiting.iter_mut().find(|(waiting, _)| *waiting == id) {
            Some((_, queued)) => queued.clone_from(waker),
            None => self.waiting.push_back((id, waker.clone())),
        }
        false
    }

    /// Gives a slot back and wakes the first guest waiting.
    fn give_back(&mut self) {
        self.taken -= 1;
        if let Some((_, waker)) = self.waiting.front() {
            waker.wake_by_ref();
        }
    }

    /// A guest that waited is gone: it leaves the queue (and, if it was
    /// first, the next one is woken).
    fn leave(&mut self, id: u64) {
        if let Some(at) = self.waiting.iter().position(|(waiting, _)| *waiting == id) {
            self.waiting.remove(at);
            if at == 0
                && self.taken < CPU_SLOTS
                && let Some((_, waker)) = self.waiting.front()
            {
                waker.wake_by_ref();
            }
        }
    }
}

/// Spawns a guest task on the current (I/O) runtime. It starts once a CPU
/// slot of this thread is free, and moves to `slow` when it is a runaway:
/// `ticks` (counted by the guest's epoch callback, see
/// [`crate::wasm::sandbox::Sandbox::arm`]) reached [`RUNAWAY_TICKS`] while
/// others wait.
pub fn spawn_guest<F>(slow: &Handle, ticks: Arc<AtomicU32>, task: F)
where
    F: Future<Output = ()> + Send + 'static,
{
    let id = SLOTS.with_borrow_mut(|slots| {
        slots.next_id = slots.next_id.wrapping_add(1);
        slots.next_id
    });
    tokio::spawn(FirstSlice {
        task: Some(Box::pin(task)),
        ticks,
        slow: slow.clone(),
        id,
        slot: Slot::Waiting,
    });
}

/// Where a guest on the fast lane stands with its thread's slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    /// Not started: waiting for a slot.
    Waiting,
    /// Running with a slot.
    Holding,
    /// Gave its slot back (it waited for I/O once): runs without one.
    Released,
}

/// A guest task on the fast lane: started when it gets a slot, polled in
/// place, and handed to the slow lane as it is if it runs away (a boxed
/// future moves between threads without being re-created).
struct FirstSlice {
    task: Option<Pin<Box<dyn Future<Output = ()> + Send>>>,
    ticks: Arc<AtomicU32>,
    slow: Handle,
    /// This guest's place in its thread's queue.
    id: u64,
    slot: Slot,
}

impl FirstSlice {
    fn release(&mut self) {
        if self.slot == Slot::Holding {
            SLOTS.with_borrow_mut(Slots::give_back);
        }
        self.slot = Slot::Released;
    }
}

impl Future for FirstSlice {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        let Some(task) = this.task.as_mut() else {
            return Poll::Ready(());
        };
        if this.slot == Slot::Waiting {
            if !SLOTS.with_borrow_mut(|slots| slots.take(this.id, cx.waker())) {
                return Poll::Pending;
            }
            this.slot = Slot::Holding;
        }
        let before = this.ticks.load(Ordering::Relaxed);
        if task.as_mut().poll(cx).is_ready() {
            this.release();
            this.task = None;
            return Poll::Ready(());
        }
        let ticks = this.ticks.load(Ordering::Relaxed);
        let computing = ticks != before;
        if !computing {
            // Not an epoch yield: the guest waits for I/O (a body, an
            // outbound call, a timer). Let the next guest start.
            this.release();
            return Poll::Pending;
        }
        // A runaway: computed long while others wait for a slot (or, once
        // it gave its slot back, while it competes with those who hold one).
        let others_wait = SLOTS.with_borrow(|slots| !slots.waiting.is_empty());
        if ticks >= RUNAWAY_TICKS && (others_wait || this.slot == Slot::Released) {
            this.release();
            let task = this.task.take().expect("checked above");
            this.slow.spawn(task);
            return Poll::Ready(());
        }
        Poll::Pending
    }
}

impl Drop for FirstSlice {
    fn drop(&mut self) {
        match self.slot {
            Slot::Holding => self.release(),
            Slot::Waiting => {
                let id = self.id;
                // The runtime is shutting down: the thread-local may be gone.
                let _ = SLOTS.try_with(|slots| slots.borrow_mut().leave(id));
            }
            Slot::Released => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `body` on a current-thread "I/O" runtime beside a one-thread
    /// slow lane named `test-slow`, which is returned: keep it while the
    /// guests moved there finish.
    fn io_thread(body: impl AsyncFnOnce(&Handle)) -> tokio::runtime::Runtime {
        let slow = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("test-slow")
            .build()
            .unwrap();
        let io = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let handle = slow.handle().clone();
        io.block_on(async move { body(&handle).await });
        slow
    }

    /// A guest that computes across `ticks` epoch ticks, yielding at each
    /// like a real one, then reports the thread it ended on.
    fn computing(
        ticks: u32,
        done: std::sync::mpsc::Sender<Option<String>>,
    ) -> (Arc<AtomicU32>, impl Future<Output = ()> + Send + 'static) {
        let counter = Arc::new(AtomicU32::new(0));
        let count = counter.clone();
        let task = async move {
            for _ in 0..ticks {
                count.fetch_add(1, Ordering::Relaxed);
                tokio::task::yield_now().await;
            }
            let _ = done.send(std::thread::current().name().map(str::to_owned));
        };
        (counter, task)
    }

    fn thread_of(rx: &std::sync::mpsc::Receiver<Option<String>>) -> Option<String> {
        rx.recv_timeout(std::time::Duration::from_secs(5)).unwrap()
    }

    #[test]
    fn a_long_guest_alone_keeps_its_thread_and_priority() {
        let (tx, rx) = std::sync::mpsc::channel();
        let _slow = io_thread(async |slow| {
            let (ticks, task) = computing(RUNAWAY_TICKS * 2, tx);
            spawn_guest(slow, ticks, task);
            for _ in 0..RUNAWAY_TICKS * 3 {
                tokio::task::yield_now().await;
            }
        });
        assert_ne!(thread_of(&rx).as_deref(), Some("test-slow"));
    }

    #[test]
    fn a_runaway_moves_to_the_slow_lane_when_others_wait_for_a_slot() {
        let (tx, rx) = std::sync::mpsc::channel();
        let _slow = io_thread(async |slow| {
            // Every slot computes; one more guest waits for a slot.
            for _ in 0..CPU_SLOTS {
                let (ticks, task) = computing(RUNAWAY_TICKS * 4, tx.clone());
                spawn_guest(slow, ticks, task);
            }
            let (ticks, task) = computing(0, tx.clone());
            spawn_guest(slow, ticks, task);
            for _ in 0..RUNAWAY_TICKS * 8 {
                tokio::task::yield_now().await;
            }
        });
        let threads: Vec<_> = (0..=CPU_SLOTS).map(|_| thread_of(&rx)).collect();
        // The waiting guest ran on the I/O thread, the runaways did not.
        assert_ne!(threads[0].as_deref(), Some("test-slow"), "{threads:?}");
        assert!(
            threads[1..]
                .iter()
                .all(|t| t.as_deref() == Some("test-slow")),
            "{threads:?}"
        );
    }

    #[test]
    fn a_guest_starts_only_when_a_slot_is_free_first_come_first_served() {
        let started = Arc::new(std::sync::Mutex::new(Vec::new()));
        let _slow = io_thread(async |slow| {
            let (gate_tx, gate_rx) = tokio::sync::watch::channel(false);
            for i in 0..CPU_SLOTS + 2 {
                let started = started.clone();
                let mut gate = gate_rx.clone();
                let ticks = Arc::new(AtomicU32::new(0));
                let count = ticks.clone();
                spawn_guest(slow, ticks, async move {
                    started.lock().unwrap().push(i);
                    // Compute (tick) until the gate opens: holds its slot.
                    while !*gate.borrow_and_update() {
                        count.fetch_add(1, Ordering::Relaxed);
                        tokio::task::yield_now().await;
                    }
                });
            }
            for _ in 0..5 {
                tokio::task::yield_now().await;
            }
            assert_eq!(*started.lock().unwrap(), (0..CPU_SLOTS).collect::<Vec<_>>());
            gate_tx.send(true).unwrap();
            for _ in 0..20 {
                tokio::task::yield_now().await;
            }
        });
        assert_eq!(
            *started.lock().unwrap(),
            (0..CPU_SLOTS + 2).collect::<Vec<_>>()
        );
    }

    #[test]
    fn a_guest_waiting_for_io_lets_the_next_one_start() {
        let started = Arc::new(AtomicU32::new(0));
        let _slow = io_thread(async |slow| {
            let (tx, rx) = tokio::sync::oneshot::channel::<()>();
            let mut rx = Some(rx);
            for _ in 0..CPU_SLOTS + 1 {
                let started = started.clone();
                let rx = rx.take();
                spawn_guest(slow, Arc::new(AtomicU32::new(0)), async move {
                    started.fetch_add(1, Ordering::Relaxed);
                    if let Some(rx) = rx {
                        let _ = rx.await;
                    } else {
                        std::future::pending::<()>().await;
                    }
                });
            }
            for _ in 0..5 {
                tokio::task::yield_now().await;
            }
            drop(tx);
        });
        assert_eq!(started.load(Ordering::Relaxed), CPU_SLOTS as u32 + 1);
    }
}
