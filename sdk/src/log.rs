//! Logging: one line per event on stderr.
//!
//! The host turns each line a guest writes to stderr into a log event tagged
//! with the service and the request id, so a message needs neither. A line is
//! `LEVEL message`, e.g. `WARN upstream slow: 812 ms`; newlines inside the
//! message are escaped as `\n` so an event never spans two lines. There is no
//! filtering in the guest: filter on the host's side.
//!
//! ```
//! use wasmhost_sdk::{Request, Response, info, warn, testing};
//!
//! fn handler(req: Request) -> Response {
//!     info!("serving {}", req.path());
//!     if req.query().is_none() {
//!         warn!("no query");
//!     }
//!     Response::text("ok")
//! }
//!
//! let resp = testing::call(handler, Request::get("/a"));
//! assert_eq!(resp.logs(), ["INFO serving /a", "WARN no query"]);
//! ```

use std::fmt;

/// How important an event is.
///
/// ```
/// assert_eq!(wasmhost_sdk::log::Level::Warn.as_str(), "WARN");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Detail for debugging.
    Debug,
    /// Normal operation.
    Info,
    /// Something unexpected that the service handled.
    Warn,
    /// A failure.
    Error,
}

impl Level {
    /// The level as written at the start of the line: `DEBUG`, `INFO`,
    /// `WARN` or `ERROR`.
    ///
    /// ```
    /// assert_eq!(wasmhost_sdk::log::Level::Error.as_str(), "ERROR");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Debug => "DEBUG",
            Level::Info => "INFO",
            Level::Warn => "WARN",
            Level::Error => "ERROR",
        }
    }
}

/// Write one event: what the macros expand to.
///
/// ```
/// wasmhost_sdk::log::write(wasmhost_sdk::log::Level::Info, format_args!("{} + {}", 1, 2));
/// ```
pub fn write(level: Level, message: fmt::Arguments<'_>) {
    let message = match message.as_str() {
        Some(s) => s.to_owned(),
        None => message.to_string(),
    };
    let mut line = String::with_capacity(message.len() + 7);
    line.push_str(level.as_str());
    line.push(' ');
    for c in message.chars() {
        match c {
            '\n' => line.push_str("\\n"),
            '\r' => line.push_str("\\r"),
            c => line.push(c),
        }
    }
    crate::wasi::write_log(line);
}

/// Log an event at `level` (a [`log::Level`](crate::log::Level)), with
/// `format!` arguments.
///
/// ```
/// use wasmhost_sdk::log::Level;
/// wasmhost_sdk::log!(Level::Info, "cache {} of {}", "hit", 3);
/// ```
#[macro_export]
macro_rules! log {
    ($level:expr, $($arg:tt)+) => {
        $crate::log::write($level, ::core::format_args!($($arg)+))
    };
}

/// Log a `DEBUG` event, with `format!` arguments.
///
/// ```
/// wasmhost_sdk::debug!("parsed {} items", 3);
/// ```
#[macro_export]
macro_rules! debug {
    ($($arg:tt)+) => {
        $crate::log!($crate::log::Level::Debug, $($arg)+)
    };
}

/// Log an `INFO` event, with `format!` arguments.
///
/// ```
/// wasmhost_sdk::info!("created item {}", 7);
/// ```
#[macro_export]
macro_rules! info {
    ($($arg:tt)+) => {
        $crate::log!($crate::log::Level::Info, $($arg)+)
    };
}

/// Log a `WARN` event, with `format!` arguments.
///
/// ```
/// wasmhost_sdk::warn!("upstream slow: {} ms", 812);
/// ```
#[macro_export]
macro_rules! warn {
    ($($arg:tt)+) => {
        $crate::log!($crate::log::Level::Warn, $($arg)+)
    };
}

/// Log an `ERROR` event, with `format!` arguments.
///
/// ```
/// wasmhost_sdk::error!("upstream failed: {}", "refused");
/// ```
#[macro_export]
macro_rules! error {
    ($($arg:tt)+) => {
        $crate::log!($crate::log::Level::Error, $($arg)+)
    };
}

#[cfg(test)]
mod tests {
    use crate::testing::TestEnv;

    #[test]
    fn one_line_per_event_with_the_level_first() {
        let logs = TestEnv::new().run(|| {
            crate::debug!("a");
            crate::info!("b {}", 1);
            crate::warn!("two\nlines\r");
            crate::error!("e");
            crate::testing::logs()
        });
        assert_eq!(
            logs,
            ["DEBUG a", "INFO b 1", "WARN two\\nlines\\r", "ERROR e"]
        );
    }
}
