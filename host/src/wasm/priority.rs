//! Background priority for threads whose work may wait: the compiler
//! threads and the data plane's slow lane (see [`crate::dataplane::lanes`]).
//! The kernel then runs serving threads first whenever they have work.

/// The `nice` value of slow-lane and compiler threads: CFS gives a nice-0
/// thread about nine times the CPU of a nice-10 one when both want it.
pub const SLOW_LANE_NICE: i32 = 10;

/// Lowers the calling thread's scheduling priority to [`SLOW_LANE_NICE`].
/// Best effort: where it is not allowed, the thread keeps its priority.
pub fn lower_this_thread() {
    // SAFETY: gettid and setpriority take plain integers and touch no memory
    // of ours; PRIO_PROCESS with a thread id changes only that thread on
    // Linux.
    let result = unsafe {
        let tid = libc::gettid();
        libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, SLOW_LANE_NICE)
    };
    if result != 0 {
        tracing::debug!(
            error = %std::io::Error::last_os_error(),
            "cannot lower a background thread's priority"
        );
    }
}

/// Sets the priorities of compilation (wasmtime compiles functions in
/// parallel on rayon's global pool): the first compiler thread runs at
/// normal priority, the others at background priority. On an idle host
/// all of them compile (a reload of hello goes live in ~75 ms); on a busy
/// one the first still gets its fair share of a core, so a reload goes
/// live in a few hundred milliseconds instead of starving (~0.9 s with
/// every compiler thread in the background), while the others take CPU
/// from serving only when serving leaves some (docs/benchmarks.md, reload
/// under load). Called before the first compilation, not at start: a
/// start from a warm cache never spawns (and spins up) the compiler
/// threads.
pub fn lower_compiler_threads() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let built = rayon::ThreadPoolBuilder::new()
            .thread_name(|i| format!("wasmhost-compile-{i}"))
            .start_handler(|index| {
                if index > 0 {
                    lower_this_thread();
                }
            })
            .build_global();
        if built.is_err() {
            tracing::debug!("rayon's global pool was already started");
        }
    });
}
