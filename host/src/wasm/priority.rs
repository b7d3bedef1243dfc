//! Background priority for threads whose work may wait: the compiler
//! threads and the data plane's slow lane (see [`crate::dataplane::lanes`]).
//! The kernel then runs serving threads first whenever they have work.

use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The `nice` value of slow-lane and compiler threads: CFS gives a nice-0
/// thread about nine times the CPU of a nice-10 one when both want it.
pub const SLOW_LANE_NICE: i32 = 10;

/// Lowers the calling thread's scheduling priority to [`SLOW_LANE_NICE`].
/// Best effort: where it is not allowed, the thread keeps its priority.
pub fn lower_this_thread() {
    lower_thread(this_thread());
}

/// Lowers thread `tid` of this process to [`SLOW_LANE_NICE`] (best
/// effort, like [`lower_this_thread`]).
fn lower_thread(tid: libc::pid_t) {
    // SAFETY: setpriority takes plain integers and touches no memory of
    // ours; PRIO_PROCESS with a thread id changes only that thread on
    // Linux.
    let result =
        unsafe { libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, SLOW_LANE_NICE) };
    if result != 0 {
        tracing::debug!(
            error = %std::io::Error::last_os_error(),
            "cannot lower a background thread's priority"
        );
    }
}

/// How long a compilation may use every core at normal priority before all
/// of its threads but one drop to background priority. Most of an edit's
/// reload (most functions found in the function cache) is done within it,
/// even on a busy host; a long compile then takes at most one thread's fair
/// share from serving. 20 ms rather than 50: the same reload latency under
/// load, and 0.92 of steady throughput during a burst of edits instead of
/// 0.90 (docs/benchmarks.md, reload under load).
pub const COMPILE_BOOST: Duration = Duration::from_millis(20);

/// Runs `compile` (a wasmtime compilation, which works in parallel on the
/// current rayon pool) on a pool of its own, one thread per core, all at
/// the caller's priority for [`COMPILE_BOOST`]; then every thread but the
/// one running `compile` itself (the sequential parts: parsing, linking)
/// drops to background priority. The pool is built per compilation, so a
/// start from a warm cache spawns no compiler threads, and each compilation
/// starts at normal priority again (an unprivileged thread cannot raise
/// its priority back once lowered).
pub fn compiling<T: Send>(compile: impl FnOnce() -> T + Send) -> T {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let boost = Arc::new(Mutex::new(Boost::default()));
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("wasmhost-compile-{i}"))
        .start_handler({
            let boost = boost.clone();
            move |_| {
                let mut boost = boost.lock().unwrap_or_else(|e| e.into_inner());
                if boost.over {
                    lower_this_thread();
                } else {
                    boost.threads.push(this_thread());
                }
            }
        })
        .build();
    let Ok(pool) = pool else {
        tracing::debug!("cannot build a compiler thread pool; compiling on rayon's global one");
        return compile();
    };
    let (finished, done) = mpsc::channel::<()>();
    let watchdog = std::thread::Builder::new()
        .name("wasmhost-compile-boost".into())
        .spawn({
            let boost = boost.clone();
            move || {
                if done.recv_timeout(COMPILE_BOOST) == Err(RecvTimeoutError::Timeout) {
                    boost.lock().unwrap_or_else(|e| e.into_inner()).end();
                }
            }
        });
    let result = pool.install(|| {
        boost.lock().unwrap_or_else(|e| e.into_inner()).root = Some(this_thread());
        compile()
    });
    drop(finished);
    if let Ok(watchdog) = watchdog {
        let _ = watchdog.join();
    }
    result
}

/// A compilation's threads and whether its boost is over.
#[derive(Default)]
struct Boost {
    /// Every pool thread started so far.
    threads: Vec<libc::pid_t>,
    /// The thread running the compilation's root job: stays at priority.
    root: Option<libc::pid_t>,
    /// Set when [`COMPILE_BOOST`] has passed: threads starting later lower
    /// themselves.
    over: bool,
}

impl Boost {
    /// Lowers every thread but the root one.
    fn end(&mut self) {
        self.over = true;
        for &tid in self.threads.iter().filter(|&&tid| Some(tid) != self.root) {
            lower_thread(tid);
        }
    }
}

fn this_thread() -> libc::pid_t {
    // SAFETY: gettid takes no arguments and touches no memory.
    unsafe { libc::gettid() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nice_of(tid: libc::pid_t) -> i32 {
        // SAFETY: getpriority takes plain integers and touches no memory.
        unsafe { libc::getpriority(libc::PRIO_PROCESS, tid as libc::id_t) }
    }

    #[test]
    fn a_compilation_starts_at_the_callers_priority_then_all_its_threads_but_one_step_back() {
        let caller = nice_of(this_thread());
        let background = caller.max(SLOW_LANE_NICE);
        let (before, after) = compiling(|| {
            let before: Vec<i32> = rayon::broadcast(|_| nice_of(this_thread()));
            // The boost is a time budget: outlive it.
            std::thread::sleep(COMPILE_BOOST * 3);
            let root = this_thread();
            let after: Vec<(bool, i32)> = rayon::broadcast(|_| {
                let tid = this_thread();
                (tid == root, nice_of(tid))
            });
            (before, after)
        });
        assert!(before.iter().all(|&n| n == caller), "{before:?}");
        assert_eq!(after.iter().filter(|(root, _)| *root).count(), 1);
        for (root, nice) in after {
            assert_eq!(nice, if root { caller } else { background });
        }
    }
}
