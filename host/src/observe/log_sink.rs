//! Where log lines go: every thread appends whole lines to a buffer of its
//! own, and one writer thread moves them to stdout in batches.
//!
//! A serving thread never waits for a `write`, never allocates per line once
//! its buffer has grown, and wakes the writer at most once per batch of
//! request lines: the first line into an empty buffer wakes it, it waits
//! [`GATHER`] for more, then takes every thread's lines in one `write`. An
//! idle host does not wake at all. Every other event (a `tracing` event:
//! start, reload, cold start, guest output, ...) is urgent: it wakes the
//! writer at once, so those lines reach stdout as soon as they are made. Lines are never dropped: a thread whose buffer outgrows
//! [`BACKPRESSURE_BYTES`] (stdout cannot keep up) writes them itself and
//! waits for stdout like a plain writer would.
//!
//! Lines of one thread keep their order; lines of different threads are
//! ordered by batch (their timestamps tell the rest).

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// How long the writer gathers lines after the first one of a batch.
const GATHER: Duration = Duration::from_millis(10);

/// A thread's unwritten bytes past which it writes them itself.
const BACKPRESSURE_BYTES: usize = 1 << 20;

/// Every thread's buffer, and the writer thread.
struct Sink {
    /// Every logging thread's buffer.
    shards: Mutex<Vec<Arc<Shard>>>,
    /// Held while draining the buffers and writing them out, so batches
    /// reach stdout in the order they were taken.
    out: Mutex<Vec<u8>>,
    /// The writer has been woken for lines not yet taken.
    woken: AtomicBool,
    /// A line waiting is urgent: write without gathering.
    urgent: AtomicBool,
    /// Set by [`SinkGuard`]'s drop: write what is left and end.
    stopping: AtomicBool,
    /// The writer thread.
    writer: OnceLock<std::thread::Thread>,
}

/// One thread's unwritten lines.
type Shard = Mutex<Vec<u8>>;

static SINK: OnceLock<Sink> = OnceLock::new();

thread_local! {
    /// This thread's buffer in [`SINK`], made on its first line.
    static SHARD: std::cell::OnceCell<Arc<Shard>> = const { std::cell::OnceCell::new() };
}

/// Writes what is still buffered, and stops the writer, when dropped: keep
/// it alive until the process ends.
pub struct SinkGuard(Option<std::thread::JoinHandle<()>>);

impl Drop for SinkGuard {
    fn drop(&mut self) {
        if let Some(sink) = SINK.get() {
            sink.stopping.store(true, Ordering::Release);
            if let Some(writer) = self.0.take() {
                writer.thread().unpark();
                let _ = writer.join();
            }
        }
    }
}

/// Starts the writer thread; lines appended from now on reach stdout.
pub fn start() -> SinkGuard {
    let mut started = None;
    SINK.get_or_init(|| {
        let writer = std::thread::Builder::new()
            .name("wasmhost-log".into())
            .spawn(writer_loop)
            .expect("starting the log writer thread");
        started = Some(writer);
        Sink {
            shards: Mutex::new(Vec::new()),
            out: Mutex::new(Vec::with_capacity(64 * 1024)),
            woken: AtomicBool::new(false),
            urgent: AtomicBool::new(false),
            stopping: AtomicBool::new(false),
            writer: OnceLock::new(),
        }
    });
    if let (Some(sink), Some(writer)) = (SINK.get(), &started) {
        let _ = sink.writer.set(writer.thread().clone());
        writer.thread().unpark();
    }
    SinkGuard(started)
}

/// Whether [`start`] ran (lines appended before it, or without it, are
/// written straight to stdout).
pub fn started() -> bool {
    SINK.get().is_some()
}

/// Appends one or more whole lines, written by `write` into this thread's
/// buffer (which already holds earlier lines: append only); they reach
/// stdout within [`GATHER`].
pub fn append(write: impl FnOnce(&mut Vec<u8>)) {
    append_lines(write, false);
}

/// [`append`], but `urgent` lines wake the writer at once.
fn append_lines(write: impl FnOnce(&mut Vec<u8>), urgent: bool) {
    let Some(sink) = SINK.get() else {
        let mut line = Vec::new();
        write(&mut line);
        let _ = std::io::stdout().lock().write_all(&line);
        return;
    };
    SHARD.with(|shard| {
        let shard = shard.get_or_init(|| {
            let shard = Arc::new(Mutex::new(Vec::with_capacity(4096)));
            lock(&sink.shards).push(shard.clone());
            shard
        });
        let mut buffer = lock(shard);
        let was_empty = buffer.is_empty();
        write(&mut buffer);
        let backed_up = buffer.len() > BACKPRESSURE_BYTES;
        drop(buffer);
        if backed_up {
            sink.write_out();
            return;
        }
        if urgent {
            sink.urgent.store(true, Ordering::Release);
        }
        let wake = if urgent {
            sink.woken.store(true, Ordering::Release);
            true
        } else {
            was_empty && !sink.woken.swap(true, Ordering::AcqRel)
        };
        if wake && let Some(writer) = sink.writer.get() {
            writer.unpark();
        }
    });
}

fn writer_loop() {
    // `start` publishes the sink, then unparks this thread.
    let sink = loop {
        match SINK.get() {
            Some(sink) => break sink,
            None => std::thread::park(),
        }
    };
    loop {
        if sink.stopping.load(Ordering::Acquire) {
            sink.write_out();
            return;
        }
        if !sink.woken.load(Ordering::Acquire) {
            std::thread::park();
            continue;
        }
        if !sink.urgent.swap(false, Ordering::AcqRel) {
            // An urgent line unparks this thread, ending the wait early.
            std::thread::park_timeout(GATHER);
            sink.urgent.store(false, Ordering::Release);
        }
        sink.woken.store(false, Ordering::Release);
        sink.write_out();
    }
}

impl Sink {
    /// Takes every thread's lines and writes them to stdout.
    fn write_out(&self) {
        let mut out = lock(&self.out);
        lock(&self.shards).retain(|shard| {
            let mut lines = lock(shard);
            out.extend_from_slice(&lines);
            lines.clear();
            // A buffer only the sink holds belongs to a thread that ended.
            Arc::strong_count(shard) > 1
        });
        if !out.is_empty() {
            // A closed stdout loses the lines; nothing else is to be done.
            let _ = std::io::stdout().lock().write_all(&out);
            out.clear();
        }
        if out.capacity() > 4 * BACKPRESSURE_BYTES {
            out.shrink_to(64 * 1024);
        }
    }
}

/// A lock whose holder cannot leave its data half-changed (an append or a
/// drain), so a panic elsewhere while it was held does not matter.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The `tracing-subscriber` writer: each formatted event is appended as is,
/// as an urgent line.
#[derive(Clone, Copy)]
pub struct SinkWriter;

impl Write for SinkWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        append_lines(|buffer| buffer.extend_from_slice(bytes), true);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for SinkWriter {
    type Writer = SinkWriter;

    fn make_writer(&'a self) -> SinkWriter {
        SinkWriter
    }
}
