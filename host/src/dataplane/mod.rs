//! One request, from accept to its last byte.
//!
//! - [`listen`]: binding listeners (one `SO_REUSEPORT` socket per I/O worker, `LISTEN_FDS`) and the `listening` event.
//! - [`balance`]: connections spread evenly over the I/O workers, whichever socket the kernel picked.
//! - [`server`]: `Server::serve(listener, shutdown)`: HTTP hygiene, routing, admission, chained calls.
//! - [`head`]: what the host reads from a request head and writes into it (request id, host headers, URI).
//! - [`request`]: the one request path: a fresh or a reused instance, both ending through [`outcome`].
//! - [`outcome`]: how a request ended: classify, log event, metrics.
//! - [`lanes`]: guests start on their connection's I/O thread; long computations move to a low-priority slow lane.
//! - [`body`]: the request-body limit and the response body that aborts on a late guest failure.
//! - [`error_kind`]: what the client gets when the host answers (SPEC's table, in one place).

pub mod balance;
pub mod body;
pub mod error_kind;
pub mod head;
pub mod lanes;
pub mod listen;
pub mod outcome;
pub mod request;
pub mod server;
