//! Variables: configuration and secrets from the manifest's `variables`
//! (a value, the host's environment, or a file such as a mounted
//! Kubernetes Secret, read again when it changes). Under wasmhost this is
//! `wasi:config/store`.
//!
//! ```toml
//! [[service]]
//! name = "shop"
//! variables = { greeting = "hi", api_token = { env = "API_TOKEN", secret = true } }
//! ```
//!
//! ```
//! use wasmhost_sdk::{Request, Response, testing::TestEnv, variables};
//!
//! fn greet(_req: Request) -> Result<Response, wasmhost_sdk::Error> {
//!     Ok(Response::text(variables::get("greeting")?))
//! }
//!
//! let resp = TestEnv::new().variable("greeting", "hi").call(greet, Request::get("/"));
//! assert_eq!(resp.text(), "hi");
//! let resp = TestEnv::new().call(greet, Request::get("/"));
//! assert_eq!(resp.status(), 500);
//! assert!(resp.text().contains("`greeting`"));
//! ```
//!
//! The environment variables of [`config`](crate::config) are the
//! manifest's `env`; variables can also come from the host's environment
//! and files, and can be secret (never logged or shown by the host).

use std::fmt;

use crate::wasi as platform;

/// Why a variable could not be read. Converts into a `500`
/// [`Error`](crate::Error) with `?`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum VariableError {
    /// The service has no variable of this name.
    Undefined {
        /// The name asked for.
        name: String,
    },
    /// The host could not give it.
    Failed(String),
}

impl fmt::Display for VariableError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VariableError::Undefined { name } => write!(
                f,
                "no variable `{name}`: set it in the service's `variables` in the manifest"
            ),
            VariableError::Failed(message) => write!(f, "variables: {message}"),
        }
    }
}

impl std::error::Error for VariableError {}

impl From<VariableError> for crate::Error {
    fn from(err: VariableError) -> Self {
        crate::Error::internal(err.to_string())
    }
}

/// The value of variable `name`.
pub fn get(name: &str) -> Result<String, VariableError> {
    match platform::variable(name) {
        Ok(Some(value)) => Ok(value),
        Ok(None) => Err(VariableError::Undefined {
            name: name.to_owned(),
        }),
        Err(message) => Err(VariableError::Failed(message)),
    }
}

/// The value of variable `name`, or `None` when the service has none.
pub fn get_opt(name: &str) -> Result<Option<String>, VariableError> {
    platform::variable(name).map_err(VariableError::Failed)
}
