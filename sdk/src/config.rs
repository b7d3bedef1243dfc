//! Configuration from the service's environment.
//!
//! The host gives a guest exactly the manifest's `env` table and nothing of
//! its own environment, so that table is the service's configuration:
//!
//! ```toml
//! [[service]]
//! name = "shop"
//! env = { UPSTREAM_URL = "http://127.0.0.1:9000/stock", PAGE_SIZE = "20" }
//! ```
//!
//! ```
//! use wasmhost_sdk::{Request, Response, config, testing::TestEnv};
//!
//! fn shop(_req: Request) -> Result<Response, wasmhost_sdk::Error> {
//!     let page_size: u32 = config::parse_or("PAGE_SIZE", 10)?;
//!     Ok(Response::text(format!("{page_size} per page")))
//! }
//!
//! let resp = TestEnv::new().config("PAGE_SIZE", "20").call(shop, Request::get("/"));
//! assert_eq!(resp.text(), "20 per page");
//! let resp = TestEnv::new().config("PAGE_SIZE", "lots").call(shop, Request::get("/"));
//! assert_eq!(resp.status(), 500);
//! assert!(resp.text().contains("`PAGE_SIZE`"));
//! ```
//!
//! Natively, outside a [`testing`](crate::testing) call, these read the
//! process environment.

use std::fmt::{self, Display};
use std::str::FromStr;

/// Why a config value could not be read. Its message names the key.
///
/// Converts into a `500` [`Error`](crate::Error) with `?`.
///
/// ```
/// let err = wasmhost_sdk::config::get("SURELY_NOT_SET_ANYWHERE").unwrap_err();
/// assert_eq!(err.key(), "SURELY_NOT_SET_ANYWHERE");
/// assert_eq!(
///     err.to_string(),
///     "missing config `SURELY_NOT_SET_ANYWHERE`: set it in the service's `env` in the manifest"
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// The key is not set.
    Missing {
        /// The key.
        key: String,
    },
    /// The value is not valid Unicode (only possible natively).
    NotUnicode {
        /// The key.
        key: String,
    },
    /// The value did not parse as the requested type.
    Invalid {
        /// The key.
        key: String,
        /// The value as set.
        value: String,
        /// What the parser said.
        reason: String,
    },
}

impl ConfigError {
    /// The key that was asked for.
    ///
    /// ```
    /// let err = wasmhost_sdk::config::parse::<u8>("SURELY_NOT_SET_ANYWHERE").unwrap_err();
    /// assert_eq!(err.key(), "SURELY_NOT_SET_ANYWHERE");
    /// ```
    pub fn key(&self) -> &str {
        match self {
            ConfigError::Missing { key }
            | ConfigError::NotUnicode { key }
            | ConfigError::Invalid { key, .. } => key,
        }
    }
}

impl Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Missing { key } => write!(
                f,
                "missing config `{key}`: set it in the service's `env` in the manifest"
            ),
            ConfigError::NotUnicode { key } => {
                write!(f, "config `{key}` is not valid Unicode")
            }
            ConfigError::Invalid { key, value, reason } => {
                write!(f, "invalid config `{key}`=`{value}`: {reason}")
            }
        }
    }
}

impl std::error::Error for ConfigError {}

/// The value of `key`, or [`ConfigError::Missing`].
///
/// ```
/// use wasmhost_sdk::{Request, Response, config, testing::TestEnv};
///
/// let greet = |_req: Request| Response::text(config::get("GREETING").unwrap_or_else(|_| "hi".into()));
/// assert_eq!(TestEnv::new().config("GREETING", "hello").call(greet, Request::get("/")).text(), "hello");
/// assert_eq!(TestEnv::new().call(greet, Request::get("/")).text(), "hi");
/// ```
pub fn get(key: &str) -> Result<String, ConfigError> {
    get_opt(key)?.ok_or_else(|| ConfigError::Missing {
        key: key.to_owned(),
    })
}

/// The value of `key`, or `None` if it is not set.
///
/// ```
/// assert_eq!(wasmhost_sdk::config::get_opt("SURELY_NOT_SET_ANYWHERE"), Ok(None));
/// ```
pub fn get_opt(key: &str) -> Result<Option<String>, ConfigError> {
    match crate::wasi::env_var(key) {
        None => Ok(None),
        Some(value) => value
            .into_string()
            .map(Some)
            .map_err(|_| ConfigError::NotUnicode {
                key: key.to_owned(),
            }),
    }
}

/// The value of `key` parsed as `T`; [`ConfigError::Missing`] or
/// [`ConfigError::Invalid`] name the key.
///
/// ```
/// use wasmhost_sdk::{config, testing::TestEnv};
///
/// let port = || config::parse::<u16>("PORT");
/// assert_eq!(TestEnv::new().config("PORT", "8080").run(port), Ok(8080));
/// let err = TestEnv::new().config("PORT", "http").run(port).unwrap_err();
/// assert_eq!(err.to_string(), "invalid config `PORT`=`http`: invalid digit found in string");
/// ```
pub fn parse<T>(key: &str) -> Result<T, ConfigError>
where
    T: FromStr,
    T::Err: Display,
{
    let value = get(key)?;
    parse_value(key, value)
}

/// The value of `key` parsed as `T`, or `default` if it is not set; a value
/// that is set but does not parse is still an error.
///
/// ```
/// use wasmhost_sdk::{config, testing::TestEnv};
///
/// assert_eq!(TestEnv::new().run(|| config::parse_or("LIMIT", 10u32)), Ok(10));
/// assert_eq!(TestEnv::new().config("LIMIT", "3").run(|| config::parse_or("LIMIT", 10u32)), Ok(3));
/// ```
pub fn parse_or<T>(key: &str, default: T) -> Result<T, ConfigError>
where
    T: FromStr,
    T::Err: Display,
{
    match get_opt(key)? {
        None => Ok(default),
        Some(value) => parse_value(key, value),
    }
}

fn parse_value<T>(key: &str, value: String) -> Result<T, ConfigError>
where
    T: FromStr,
    T::Err: Display,
{
    value.parse().map_err(|e: T::Err| ConfigError::Invalid {
        key: key.to_owned(),
        reason: e.to_string(),
        value,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TestEnv;

    #[test]
    fn missing_and_invalid_keys_are_named() {
        let env = TestEnv::new().config("N", "x").config("OK", "5");
        let missing = env.run(|| get("ABSENT")).unwrap_err();
        assert_eq!(
            missing,
            ConfigError::Missing {
                key: "ABSENT".into()
            }
        );
        let invalid = env.run(|| parse::<u8>("N")).unwrap_err();
        assert_eq!(invalid.key(), "N");
        assert_eq!(
            invalid.to_string(),
            "invalid config `N`=`x`: invalid digit found in string"
        );
        assert_eq!(env.run(|| parse::<u8>("OK")), Ok(5));
        assert_eq!(env.run(|| parse_or::<u8>("ABSENT", 1)), Ok(1));
        assert!(env.run(|| parse_or::<u8>("N", 1)).is_err());
    }

    #[test]
    fn test_env_hides_the_process_environment() {
        // PATH is set for any test process; a guest under the host would not see it.
        assert!(get("PATH").is_ok());
        assert_eq!(TestEnv::new().run(|| get_opt("PATH")), Ok(None));
    }
}
