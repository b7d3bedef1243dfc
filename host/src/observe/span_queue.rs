//! The bounded queue between the request path and the exporter thread:
//! one buffer per recording thread, drained together.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use super::traces::{Record, RequestRecord, Span, dropped};

/// The spans waiting for the exporter: a buffer per thread that records
/// (serving threads never contend for one), drained together by the
/// exporter thread, and one count bounding them all.
pub(super) struct Queue {
    /// The most spans waiting (`OTEL_BSP_MAX_QUEUE_SIZE`).
    capacity: usize,
    /// Spans waiting.
    waiting: AtomicUsize,
    /// Every recording thread's buffer.
    shards: Mutex<Vec<Arc<Shard>>>,
    /// The exporter thread, woken when the queue is half full (OpenTelemetry's
    /// batch processor exports early too; at 90,000 spans a second, 200 ms
    /// would fill the default queue).
    exporter: OnceLock<std::thread::Thread>,
}

/// One thread's waiting records, with their span count.
type Shard = Mutex<Vec<(Record, usize)>>;

static QUEUE: OnceLock<Queue> = OnceLock::new();

thread_local! {
    /// This thread's buffer in [`QUEUE`], made on its first record.
    static SHARD: std::cell::OnceCell<Arc<Shard>> = const { std::cell::OnceCell::new() };
}

/// Whether spans are exported (so worth building).
pub fn exporting() -> bool {
    QUEUE.get().is_some()
}

/// Offers `span` to the exporter; a full queue drops it (counted).
pub fn record(span: Span) {
    offer(Record::Span(span), 1);
}

/// Offers a finished request's spans to the exporter; a full queue drops
/// them (counted).
pub fn record_request(request: RequestRecord) {
    let spans = 1 + usize::from(request.guest_start.is_some());
    offer(Record::Request(request), spans);
}

/// Installs the queue the request path offers spans to, holding at most
/// `capacity` spans, and returns it (the exporter drains it). Export is on
/// from now on.
pub(super) fn install_queue(capacity: usize) -> &'static Queue {
    QUEUE.get_or_init(|| Queue {
        capacity,
        waiting: AtomicUsize::new(0),
        shards: Mutex::new(Vec::new()),
        exporter: OnceLock::new(),
    })
}

fn offer(record: Record, spans: usize) {
    let Some(queue) = QUEUE.get() else {
        return;
    };
    let before = queue.waiting.fetch_add(spans, Ordering::Relaxed);
    if before + spans > queue.capacity {
        queue.waiting.fetch_sub(spans, Ordering::Relaxed);
        dropped().inc_by(spans as u64);
        return;
    }
    SHARD.with(|shard| {
        let shard = shard.get_or_init(|| {
            let shard = Arc::new(Mutex::new(Vec::new()));
            lock(&queue.shards).push(shard.clone());
            shard
        });
        lock(shard).push((record, spans));
    });
    // One wakeup each time the queue fills past half, not one a record.
    let half = queue.capacity / 2;
    if before < half
        && before + spans >= half
        && let Some(exporter) = queue.exporter.get()
    {
        exporter.unpark();
    }
}

/// A lock whose holder cannot leave its data half-changed (a push or a
/// swap), so a panic elsewhere while it was held does not matter.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Queue {
    /// Makes `exporter` the thread woken when the queue is half full.
    pub(super) fn wake_when_half_full(&self, exporter: std::thread::Thread) {
        let _ = self.exporter.set(exporter);
    }

    /// Moves every waiting record into `into` (whose buffer is kept; the
    /// threads' buffers keep theirs), and says how many spans they hold.
    pub(super) fn drain(&self, into: &mut Vec<Record>) -> usize {
        let mut spans = 0;
        let mut shards = lock(&self.shards);
        // A buffer only the queue holds belongs to a thread that ended.
        shards.retain(|shard| {
            let mut waiting = lock(shard);
            spans += waiting.iter().map(|(_, n)| n).sum::<usize>();
            into.extend(waiting.drain(..).map(|(record, _)| record));
            Arc::strong_count(shard) > 1
        });
        self.waiting.fetch_sub(spans, Ordering::Relaxed);
        spans
    }
}
