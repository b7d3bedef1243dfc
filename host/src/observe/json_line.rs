//! One JSON log line written by hand, for the line written most often: the
//! request's. It has the shape `tracing-subscriber`'s JSON format gives
//! every other event (`timestamp`, `level`, `message`, the fields, then
//! `target`), without its cost: no float formatting (durations are written
//! from integer microseconds), no escaping scan beyond one pass over the
//! strings that could need it, and no allocation (it is written into the
//! thread's log buffer, see [`super::log_sink`]).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A line being written into `buffer`; [`JsonLine::end`] closes it.
pub struct JsonLine<'a> {
    buffer: &'a mut Vec<u8>,
}

impl<'a> JsonLine<'a> {
    /// Opens a line: `{"timestamp":…,"level":…,"message":…`.
    pub fn start(
        buffer: &'a mut Vec<u8>,
        now: SystemTime,
        level: &str,
        message: &str,
    ) -> JsonLine<'a> {
        buffer.extend_from_slice(b"{\"timestamp\":\"");
        timestamp(buffer, now);
        buffer.extend_from_slice(b"\",\"level\":\"");
        buffer.extend_from_slice(level.as_bytes());
        let mut line = JsonLine { buffer };
        line.buffer.push(b'"');
        line.str("message", message);
        line
    }

    fn key(&mut self, key: &str) {
        self.buffer.extend_from_slice(b",\"");
        self.buffer.extend_from_slice(key.as_bytes());
        self.buffer.extend_from_slice(b"\":");
    }

    /// A string field, escaped as JSON needs.
    pub fn str(&mut self, key: &str, value: &str) {
        self.key(key);
        self.buffer.push(b'"');
        escape_into(self.buffer, value);
        self.buffer.push(b'"');
    }

    /// A string field when there is one.
    pub fn opt_str(&mut self, key: &str, value: Option<&str>) {
        if let Some(value) = value {
            self.str(key, value);
        }
    }

    /// An integer field.
    pub fn u64(&mut self, key: &str, value: u64) {
        self.key(key);
        self.buffer
            .extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
    }

    /// An integer field when there is one.
    pub fn opt_u64(&mut self, key: &str, value: Option<u64>) {
        if let Some(value) = value {
            self.u64(key, value);
        }
    }

    /// A boolean field.
    pub fn bool(&mut self, key: &str, value: bool) {
        self.key(key);
        self.buffer
            .extend_from_slice(if value { b"true" } else { b"false" });
    }

    /// A duration in milliseconds, to the microsecond (`0.455`).
    pub fn millis(&mut self, key: &str, value: Duration) {
        self.key(key);
        let micros = u64::try_from(value.as_micros()).unwrap_or(u64::MAX);
        let mut digits = itoa::Buffer::new();
        self.buffer
            .extend_from_slice(digits.format(micros / 1000).as_bytes());
        let fraction = micros % 1000;
        self.buffer.extend_from_slice(&[
            b'.',
            b'0' + (fraction / 100) as u8,
            b'0' + (fraction / 10 % 10) as u8,
            b'0' + (fraction % 10) as u8,
        ]);
    }

    /// A field written with `Display` (for values known to need no
    /// escaping, such as hex ids).
    pub fn display(&mut self, key: &str, value: impl std::fmt::Display) {
        use std::io::Write;
        self.key(key);
        self.buffer.push(b'"');
        let _ = write!(self.buffer, "{value}");
        self.buffer.push(b'"');
    }

    /// Closes the line with its `target` and a newline.
    pub fn end(mut self, target: &str) {
        self.str("target", target);
        self.buffer.extend_from_slice(b"}\n");
    }
}

/// Appends `value` with JSON's escapes (quote, backslash, control
/// characters); everything else is copied as is (it is UTF-8 already).
fn escape_into(buffer: &mut Vec<u8>, value: &str) {
    let bytes = value.as_bytes();
    let mut copied = 0;
    for (i, &byte) in bytes.iter().enumerate() {
        let escape: &[u8] = match byte {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..=0x1f => b"",
            _ => continue,
        };
        buffer.extend_from_slice(&bytes[copied..i]);
        if escape.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            buffer.extend_from_slice(b"\\u00");
            buffer.push(HEX[usize::from(byte >> 4)]);
            buffer.push(HEX[usize::from(byte & 0xf)]);
        } else {
            buffer.extend_from_slice(escape);
        }
        copied = i + 1;
    }
    buffer.extend_from_slice(&bytes[copied..]);
}

thread_local! {
    /// The last second formatted on this thread, and its text
    /// (`2026-12-06T17:03:19`): a line per request shares its second with
    /// thousands of others.
    static SECOND: std::cell::Cell<(u64, [u8; 19])> = const { std::cell::Cell::new((u64::MAX, [0; 19])) };
}

/// Appends `now` as RFC 3339 in UTC to the microsecond
/// (`2026-12-06T17:03:19.347170Z`), as `tracing-subscriber` writes it.
fn timestamp(buffer: &mut Vec<u8>, now: SystemTime) {
    let since_epoch = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let seconds = since_epoch.as_secs();
    let text = SECOND.with(|cached| {
        let (second, text) = cached.get();
        if second == seconds {
            return text;
        }
        let text = civil_second(seconds);
        cached.set((seconds, text));
        text
    });
    buffer.extend_from_slice(&text);
    let micros = since_epoch.subsec_micros();
    buffer.push(b'.');
    let mut divisor = 100_000;
    while divisor > 0 {
        buffer.push(b'0' + (micros / divisor % 10) as u8);
        divisor /= 10;
    }
    buffer.push(b'Z');
}

/// `YYYY-MM-DDTHH:MM:SS` of a second since the Unix epoch (the proleptic
/// Gregorian calendar, days to civil date after Howard Hinnant's
/// `civil_from_days`).
fn civil_second(seconds: u64) -> [u8; 19] {
    let days = seconds / 86_400;
    let of_day = seconds % 86_400;
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    let mut text = *b"0000-00-00T00:00:00";
    let mut put = |at: usize, value: u64, width: usize| {
        let mut value = value;
        for i in (at..at + width).rev() {
            text[i] = b'0' + (value % 10) as u8;
            value /= 10;
        }
    };
    put(0, year, 4);
    put(5, month, 2);
    put(8, day, 2);
    put(11, of_day / 3600, 2);
    put(14, of_day / 60 % 60, 2);
    put(17, of_day % 60, 2);
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn civil(seconds: u64) -> String {
        String::from_utf8(civil_second(seconds).to_vec()).unwrap()
    }

    #[test]
    fn seconds_become_civil_dates_across_leap_days_and_centuries() {
        // Expected values from Python's datetime.
        assert_eq!(civil(0), "1970-01-01T00:00:00");
        assert_eq!(civil(951_782_400), "2000-02-29T00:00:00");
        assert_eq!(civil(1_709_208_000), "2024-02-29T12:00:00");
        assert_eq!(civil(1_798_563_723), "2026-12-29T17:02:03");
        assert_eq!(civil(4_102_444_799), "2099-12-31T23:59:59");
    }

    #[test]
    fn a_line_parses_as_json_with_every_field_and_escape() {
        let mut buffer = b"earlier line\n".to_vec();
        let now = UNIX_EPOCH + Duration::new(951_782_400, 1_234_567);
        let mut line = JsonLine::start(&mut buffer, now, "WARN", "request failed");
        line.str("path", "/a\"b\\c\nd\te\u{1}é");
        line.opt_str("absent", None);
        line.u64("status", 500);
        line.opt_u64("fuel", Some(u64::MAX));
        line.bool("client_gone", false);
        line.millis("duration_ms", Duration::from_nanos(12_345_678));
        line.millis("short_ms", Duration::from_micros(7));
        line.display("span_id", format_args!("{:016x}", 0xabcu64));
        line.end("wasmhost::request");

        let text = std::str::from_utf8(&buffer).unwrap();
        let (earlier, json) = text.split_once('\n').unwrap();
        assert_eq!(earlier, "earlier line");
        assert!(json.ends_with("}\n") && !json.trim_end().contains('\n'));
        let value: serde_json::Value = serde_json::from_str(json).unwrap();
        assert_eq!(value["timestamp"], "2000-02-29T00:00:00.001234Z");
        assert_eq!(value["level"], "WARN");
        assert_eq!(value["message"], "request failed");
        assert_eq!(value["path"], "/a\"b\\c\nd\te\u{1}é");
        assert!(value.get("absent").is_none());
        assert_eq!(value["status"], 500);
        assert_eq!(value["fuel"], u64::MAX);
        assert_eq!(value["client_gone"], false);
        assert_eq!(value["duration_ms"].as_f64(), Some(12.345));
        assert_eq!(value["short_ms"].as_f64(), Some(0.007));
        assert_eq!(value["span_id"], "0000000000000abc");
        assert_eq!(value["target"], "wasmhost::request");
    }
}
