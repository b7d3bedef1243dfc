//! Binding the listeners, and the one startup event that says where they
//! are: `listening` with fields `plane` (`data` or `admin`) and `addr`.
//! Tests and scripts learn ports from it when binding port 0.

use std::net::SocketAddr;

use anyhow::Context as _;
use tokio::net::TcpListener;

/// Which listener.
#[derive(Debug, Clone, Copy)]
pub enum Plane {
    /// Service traffic.
    Data,
    /// Health, readiness, metrics and the admin API.
    Admin,
}

impl Plane {
    fn name(self) -> &'static str {
        match self {
            Plane::Data => "data",
            Plane::Admin => "admin",
        }
    }
}

/// Binds `addr` and logs the `listening` event with the bound address.
pub async fn bind(plane: Plane, addr: SocketAddr) -> anyhow::Result<TcpListener> {
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding the {} listener to `{addr}`", plane.name()))?;
    let bound = listener.local_addr()?;
    tracing::info!(plane = plane.name(), addr = %bound, "listening");
    Ok(listener)
}

/// Binds `count` sockets to `addr` with `SO_REUSEPORT`, one per I/O worker,
/// so the kernel spreads connections over the workers and each accepts
/// without contention. Port 0 picks a port once; the other sockets join it.
/// Logs one `listening` event. The sockets are non-blocking, ready for
/// [`TcpListener::from_std`] inside each worker's runtime.
pub fn bind_shared(
    plane: Plane,
    addr: SocketAddr,
    count: usize,
) -> anyhow::Result<Vec<std::net::TcpListener>> {
    let context = || format!("binding the {} listener to `{addr}`", plane.name());
    // `SO_REUSEPORT` would let a second host on the same port silently take
    // half the connections: a port someone already listens on is refused,
    // as a plain bind would be.
    if addr.port() != 0 {
        exclusive_probe(addr).with_context(context)?;
    }
    let first = reuseport_socket(addr).with_context(context)?;
    let bound = first.local_addr()?;
    let mut sockets = vec![first];
    for _ in 1..count.max(1) {
        sockets.push(reuseport_socket(bound).with_context(context)?);
    }
    tracing::info!(plane = plane.name(), addr = %bound, workers = sockets.len(), "listening");
    Ok(sockets)
}

/// One listening socket on `addr` with `SO_REUSEADDR` and `SO_REUSEPORT`.
fn reuseport_socket(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    Ok(socket.into())
}

/// Binds `addr` without `SO_REUSEPORT` and lets it go: fails with "address
/// in use" when any other socket listens there.
fn exclusive_probe(addr: SocketAddr) -> std::io::Result<()> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())
}
