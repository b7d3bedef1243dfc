//! Waiting on events, not on time: poll a condition until it holds.
//!
//! A test that needs something to have happened (a request in flight, a
//! reload counted, a port listening) waits for that condition with
//! [`poll_until`], or with the `Host` helpers built on it
//! ([`Host::wait_until`](super::Host::wait_until),
//! [`Host::wait_for_metric`](super::Host::wait_for_metric),
//! [`Host::wait_for_log`](super::Host::wait_for_log)). A bare sleep that
//! hopes the thing has happened by then is flaky on a loaded machine and
//! slow on an idle one.

use std::time::{Duration, Instant};

/// How long a test waits for an event that normally takes milliseconds.
/// Generous for a loaded 2-core machine: a wait only lasts this long when
/// the test is about to fail.
pub const EVENT_TIMEOUT: Duration = Duration::from_secs(10);

/// How often [`poll_until`] checks its condition.
pub const POLL_INTERVAL: Duration = Duration::from_millis(10);

/// Checks `condition` every [`POLL_INTERVAL`] until it holds; returns how
/// long that took, or `None` if it still does not hold after `timeout`.
pub fn poll_until(timeout: Duration, condition: impl FnMut() -> bool) -> Option<Duration> {
    poll_every(POLL_INTERVAL, timeout, condition)
}

/// [`poll_until`] with another interval, for conditions that are costly to
/// check or cannot change faster (a Prometheus scrape every second).
pub fn poll_every(
    interval: Duration,
    timeout: Duration,
    mut condition: impl FnMut() -> bool,
) -> Option<Duration> {
    let started = Instant::now();
    loop {
        if condition() {
            return Some(started.elapsed());
        }
        if started.elapsed() >= timeout {
            return None;
        }
        std::thread::sleep(interval);
    }
}
