//! Validated newtypes for the generic manifest scalars: durations, sizes,
//! fuel and counts. Names, routes and addresses are manifest-only and live
//! in `manifest/units.rs`.
//!
//! These sit at the bottom of `config` so that both `limits` (which reads
//! and writes limits in these units) and `manifest` import them downward.
//!
//! Each type checks its value once, in `TryFrom`, and the rest of the host
//! only ever sees valid values. Each also implements `serde::Deserialize`
//! through that `TryFrom`, with an `expecting` text that tells the user what
//! to write, and `Serialize` in the manifest's spelling (sizes in bytes).
//! Error messages follow the manifest style: lowercase, no trailing period,
//! user values in backticks, a fix when we know one.
//!
//! # Grammar
//! - Duration: one or more `<integer><unit>` groups, units `h`, `m`, `s`,
//!   `ms`, largest first, each at most once: `"250ms"`, `"10s"`, `"5m"`,
//!   `"1h"`, `"1m30s"`. No fractions, no spaces.
//! - Size: a TOML integer (bytes), or a string `<integer>[ ]<unit>` with
//!   `B`, `KiB`, `MiB`, `GiB`, `TiB` (powers of 1024) or `KB`, `MB`, `GB`,
//!   `TB` (powers of 1000), case-sensitive: `"64MiB"`, `"512KiB"`, `"1GiB"`.
//! - Fuel: an integer `0..=9223372036854775807` or `"unlimited"`.
//! - Count: an integer `1..=4294967295`.

use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserialize, Deserializer, Visitor};
use serde::{Serialize, Serializer};

/// Why a manifest value was refused; the message is ready for a `Problem`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidValue(pub String);

pub(crate) fn invalid<T>(message: impl Into<String>) -> Result<T, InvalidValue> {
    Err(InvalidValue(message.into()))
}

/// Implements `Deserialize` for a type through `TryFrom<String>` (and
/// `TryFrom<i64>` when integers are accepted too).
macro_rules! deserialize_via_try_from {
    ($ty:ty, $expecting:literal) => {
        deserialize_via_try_from!(@impl $ty, $expecting, {});
    };
    ($ty:ty, $expecting:literal, integers) => {
        deserialize_via_try_from!(@impl $ty, $expecting, {
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<$ty, E> {
                <$ty>::try_from(v).map_err(E::custom)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<$ty, E> {
                match i64::try_from(v) {
                    Ok(v) => self.visit_i64(v),
                    Err(_) => Err(E::custom(format!(
                        "`{v}` is too large: the maximum is `{}`",
                        i64::MAX
                    ))),
                }
            }
        });
    };
    (@impl $ty:ty, $expecting:literal, { $($extra:tt)* }) => {
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct V;
                impl Visitor<'_> for V {
                    type Value = $ty;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str($expecting)
                    }
                    fn visit_str<E: de::Error>(self, v: &str) -> Result<$ty, E> {
                        <$ty>::try_from(v.to_owned()).map_err(E::custom)
                    }
                    $($extra)*
                }
                deserializer.deserialize_any(V)
            }
        }
    };
}
pub(crate) use deserialize_via_try_from;

/// Converts both ways between a unit and the plain value it wraps, so that
/// `Limits` holds plain values (`u64`, `Duration`) and is still read from,
/// and written in, the manifest's units.
macro_rules! plain_value {
    ($unit:ty, $plain:ty) => {
        impl From<$unit> for $plain {
            fn from(unit: $unit) -> $plain {
                unit.0
            }
        }
        impl From<$plain> for $unit {
            fn from(plain: $plain) -> $unit {
                Self(plain)
            }
        }
    };
}

// ------------------------------------------------------------- durations

/// A duration written as `"250ms"`, `"10s"`, `"5m"`, `"1h"` or a
/// combination largest unit first (`"1m30s"`). Millisecond precision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct HumanDuration(pub Duration);

const DURATION_UNITS: [(&str, u64); 4] = [("h", 3_600_000), ("m", 60_000), ("s", 1_000), ("ms", 1)];

impl TryFrom<String> for HumanDuration {
    type Error = InvalidValue;

    fn try_from(text: String) -> Result<Self, InvalidValue> {
        let hint = "write a number and a unit (`ms`, `s`, `m` or `h`), like `10s` or `1m30s`";
        if text.is_empty() {
            return invalid(format!("empty duration: {hint}"));
        }
        let mut rest = text.as_str();
        let mut total_ms: u64 = 0;
        // Index into DURATION_UNITS of the last unit seen: units must shrink.
        let mut last_unit: Option<usize> = None;
        while !rest.is_empty() {
            let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
            if digits == 0 {
                return invalid(format!("invalid duration `{text}`: {hint}"));
            }
            let (number, after) = rest.split_at(digits);
            let unit_len = after.len()
                - after
                    .trim_start_matches(|c: char| c.is_ascii_alphabetic())
                    .len();
            let (unit, after) = after.split_at(unit_len);
            if after.starts_with(['.', ',']) {
                return invalid(format!(
                    "invalid duration `{text}`: fractions are not allowed, use a smaller unit (`1500ms`, not `1.5s`)"
                ));
            }
            if unit.is_empty() && after.is_empty() {
                return invalid(format!("duration `{text}` has no unit: {hint}"));
            }
            if unit.is_empty() {
                return invalid(format!("invalid duration `{text}`: {hint}"));
            }
            let Some(index) = DURATION_UNITS.iter().position(|(u, _)| *u == unit) else {
                return invalid(format!(
                    "unknown duration unit `{unit}` in `{text}`: {hint}"
                ));
            };
            if last_unit.is_some_and(|last| index <= last) {
                return invalid(format!(
                    "invalid duration `{text}`: give each unit once, largest first, like `1m30s`"
                ));
            }
            last_unit = Some(index);
            let too_large = || InvalidValue(format!("duration `{text}` is too large"));
            let number: u64 = number.parse().map_err(|_| too_large())?;
            total_ms = number
                .checked_mul(DURATION_UNITS[index].1)
                .and_then(|ms| total_ms.checked_add(ms))
                .ok_or_else(too_large)?;
            rest = after;
        }
        Ok(HumanDuration(Duration::from_millis(total_ms)))
    }
}

impl fmt::Display for HumanDuration {
    /// Formats in the manifest grammar: `10s`, `1m30s`, `250ms`, `0s`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ms = u64::try_from(self.0.as_millis()).unwrap_or(u64::MAX);
        if ms == 0 {
            return f.write_str("0s");
        }
        for (unit, size) in DURATION_UNITS {
            if ms >= size {
                write!(f, "{}{unit}", ms / size)?;
                ms %= size;
            }
        }
        Ok(())
    }
}

deserialize_via_try_from!(
    HumanDuration,
    "a duration string like `\"10s\"` or `\"250ms\"`"
);

plain_value!(HumanDuration, Duration);

impl Serialize for HumanDuration {
    /// As the manifest writes it: `"10s"`.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

// ----------------------------------------------------------------- sizes

/// A size in bytes: a TOML integer, or a string like `"64MiB"`, `"512KiB"`,
/// `"1GiB"` (binary units) or `"10MB"` (decimal units).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByteSize(pub u64);

const SIZE_UNITS: [(&str, u64); 9] = [
    ("B", 1),
    ("KiB", 1 << 10),
    ("MiB", 1 << 20),
    ("GiB", 1 << 30),
    ("TiB", 1 << 40),
    ("KB", 1_000),
    ("MB", 1_000_000),
    ("GB", 1_000_000_000),
    ("TB", 1_000_000_000_000),
];

impl TryFrom<String> for ByteSize {
    type Error = InvalidValue;

    fn try_from(text: String) -> Result<Self, InvalidValue> {
        let hint = "write a number and a unit (`B`, `KiB`, `MiB`, `GiB`, `KB`, `MB` or `GB`), like `64MiB`";
        let digits = text.len() - text.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        if digits == 0 {
            return invalid(format!("invalid size `{text}`: {hint}"));
        }
        let (number, unit) = text.split_at(digits);
        if unit.starts_with(['.', ',']) {
            return invalid(format!(
                "invalid size `{text}`: fractions are not allowed, use a smaller unit (`1536KiB`, not `1.5MiB`)"
            ));
        }
        let unit = unit.strip_prefix(' ').unwrap_or(unit);
        let multiplier = if unit.is_empty() {
            1
        } else if let Some((_, m)) = SIZE_UNITS.iter().find(|(u, _)| *u == unit) {
            *m
        } else if let Some((u, _)) = SIZE_UNITS
            .iter()
            .find(|(u, _)| u.eq_ignore_ascii_case(unit))
        {
            return invalid(format!(
                "unknown size unit `{unit}` in `{text}`: did you mean `{u}`?"
            ));
        } else {
            return invalid(format!("unknown size unit `{unit}` in `{text}`: {hint}"));
        };
        let too_large = || InvalidValue(format!("size `{text}` is too large"));
        let number: u64 = number.parse().map_err(|_| too_large())?;
        number
            .checked_mul(multiplier)
            .map(ByteSize)
            .ok_or_else(too_large)
    }
}

impl TryFrom<i64> for ByteSize {
    type Error = InvalidValue;

    fn try_from(bytes: i64) -> Result<Self, InvalidValue> {
        u64::try_from(bytes)
            .map(ByteSize)
            .or_else(|_| invalid(format!("size must not be negative, found `{bytes}`")))
    }
}

impl fmt::Display for ByteSize {
    /// Formats with the largest binary unit that divides the size exactly:
    /// `128MiB`, `1GiB`, `1000B`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (unit, size) = SIZE_UNITS[..5]
            .iter()
            .rev()
            .find(|(_, size)| self.0 != 0 && self.0.is_multiple_of(*size))
            .copied()
            .unwrap_or(("B", 1));
        write!(f, "{}{unit}", self.0 / size)
    }
}

deserialize_via_try_from!(
    ByteSize,
    "a size like `\"64MiB\"` or an integer number of bytes",
    integers
);

plain_value!(ByteSize, u64);

impl Serialize for ByteSize {
    /// In bytes, an integer.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.0)
    }
}

// ------------------------------------------------------------------ fuel

/// Wasm fuel per request: `Some(n)` for `0..=i64::MAX`, `None` for
/// `"unlimited"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fuel(pub Option<u64>);

impl TryFrom<String> for Fuel {
    type Error = InvalidValue;

    fn try_from(text: String) -> Result<Self, InvalidValue> {
        if text == "unlimited" {
            return Ok(Fuel(None));
        }
        match text.parse::<i64>() {
            Ok(n) => Fuel::try_from(n),
            Err(_) => invalid(format!(
                "expected an integer or `unlimited`, found `{text}`"
            )),
        }
    }
}

impl TryFrom<i64> for Fuel {
    type Error = InvalidValue;

    fn try_from(fuel: i64) -> Result<Self, InvalidValue> {
        match u64::try_from(fuel) {
            Ok(fuel) => Ok(Fuel(Some(fuel))),
            Err(_) => invalid(format!(
                "fuel must not be negative, found `{fuel}`: use an integer up to `{}` or `unlimited`",
                i64::MAX
            )),
        }
    }
}

deserialize_via_try_from!(Fuel, "an integer or `\"unlimited\"`", integers);

plain_value!(Fuel, Option<u64>);

impl Serialize for Fuel {
    /// An integer, or `"unlimited"`.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Some(fuel) => s.serialize_u64(fuel),
            None => s.serialize_str("unlimited"),
        }
    }
}

// ---------------------------------------------------------------- counts

/// A count of at least 1 (`max_concurrency`, `max_resource_handles`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Count(pub u32);

impl TryFrom<i64> for Count {
    type Error = InvalidValue;

    fn try_from(n: i64) -> Result<Self, InvalidValue> {
        if n < 1 {
            return invalid(format!("must be at least `1`, found `{n}`"));
        }
        u32::try_from(n)
            .map(Count)
            .or_else(|_| invalid(format!("`{n}` is too large: the maximum is `{}`", u32::MAX)))
    }
}

impl TryFrom<String> for Count {
    type Error = InvalidValue;

    fn try_from(text: String) -> Result<Self, InvalidValue> {
        invalid(format!(
            "expected an integer, found the string `{text}`: remove the quotes"
        ))
    }
}

deserialize_via_try_from!(Count, "an integer of at least 1", integers);

plain_value!(Count, u32);

impl Serialize for Count {
    /// An integer.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u32(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn duration(text: &str) -> Result<Duration, String> {
        HumanDuration::try_from(text.to_owned())
            .map(|d| d.0)
            .map_err(|e| e.0)
    }

    fn size(text: &str) -> Result<u64, String> {
        ByteSize::try_from(text.to_owned())
            .map(|s| s.0)
            .map_err(|e| e.0)
    }

    #[test]
    fn durations_accept_every_unit_and_combinations() {
        assert_eq!(duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(duration("1h2m3s4ms"), Ok(Duration::from_millis(3_723_004)));
        assert_eq!(duration("0s"), Ok(Duration::ZERO));
    }

    #[test]
    fn durations_refuse_missing_units_fractions_and_disorder() {
        assert!(duration("10").unwrap_err().contains("has no unit"));
        assert!(duration("1.5s").unwrap_err().contains("fractions"));
        assert!(duration("10 s").is_err());
        assert!(
            duration("10sec")
                .unwrap_err()
                .contains("unknown duration unit `sec`")
        );
        assert!(duration("30s1m").unwrap_err().contains("largest first"));
        assert!(duration("1s1s").is_err());
        assert!(duration("").is_err());
        assert!(
            duration("99999999999999999999h")
                .unwrap_err()
                .contains("too large")
        );
    }

    #[test]
    fn durations_display_in_the_manifest_grammar() {
        for text in ["250ms", "10s", "1m30s", "10m", "1h", "0s", "1s500ms"] {
            assert_eq!(
                HumanDuration::try_from(text.to_owned())
                    .unwrap()
                    .to_string(),
                text
            );
        }
    }

    #[test]
    fn sizes_accept_binary_and_decimal_units_and_plain_bytes() {
        assert_eq!(size("64MiB"), Ok(64 << 20));
        assert_eq!(size("512KiB"), Ok(512 << 10));
        assert_eq!(size("1GiB"), Ok(1 << 30));
        assert_eq!(size("10MB"), Ok(10_000_000));
        assert_eq!(size("64 MiB"), Ok(64 << 20));
        assert_eq!(size("1024"), Ok(1024));
        assert_eq!(size("0B"), Ok(0));
        assert_eq!(ByteSize::try_from(4096_i64), Ok(ByteSize(4096)));
    }

    #[test]
    fn sizes_suggest_the_right_case_for_a_unit() {
        assert_eq!(
            size("64mib").unwrap_err(),
            "unknown size unit `mib` in `64mib`: did you mean `MiB`?"
        );
        assert!(size("64 megs").unwrap_err().contains("like `64MiB`"));
        assert!(size("MiB").is_err());
        assert!(size("99999999TiB").unwrap_err().contains("too large"));
        assert!(ByteSize::try_from(-1_i64).is_err());
    }

    #[test]
    fn sizes_display_with_the_largest_exact_binary_unit() {
        assert_eq!(ByteSize(128 << 20).to_string(), "128MiB");
        assert_eq!(ByteSize(1000).to_string(), "1000B");
        assert_eq!(ByteSize(0).to_string(), "0B");
    }

    #[test]
    fn fuel_is_a_non_negative_integer_or_unlimited() {
        assert_eq!(Fuel::try_from("unlimited".to_owned()), Ok(Fuel(None)));
        assert_eq!(Fuel::try_from(5_i64), Ok(Fuel(Some(5))));
        assert_eq!(Fuel::try_from(i64::MAX), Ok(Fuel(Some(i64::MAX as u64))));
        assert!(Fuel::try_from(-1_i64).is_err());
        assert!(Fuel::try_from("lots".to_owned()).is_err());
    }

    #[test]
    fn max_concurrency_is_at_least_one() {
        assert_eq!(Count::try_from(1_i64), Ok(Count(1)));
        assert!(Count::try_from(0_i64).is_err());
        assert!(Count::try_from(-3_i64).is_err());
        assert!(Count::try_from(1_i64 << 40).is_err());
    }
}
