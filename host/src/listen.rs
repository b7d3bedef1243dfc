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

/// Sockets passed by systemd socket activation (`LISTEN_PID`, `LISTEN_FDS`,
/// `LISTEN_FDNAMES`), already listening.
#[derive(Debug, Default)]
pub struct Activated {
    /// The data-plane socket.
    pub data: Option<std::net::TcpListener>,
    /// The admin-plane socket.
    pub admin: Option<std::net::TcpListener>,
}

/// The first file descriptor systemd passes.
const LISTEN_FDS_START: i32 = 3;

/// The sockets systemd passed to this process, if any. A socket named
/// `data` or `admin` (`FileDescriptorName=`) goes to that plane; the others
/// (unnamed, or named after their unit) fill the planes in order, data
/// first. A third socket, two for one plane, or a descriptor that is not a
/// listening TCP socket is an error.
pub fn activated() -> anyhow::Result<Activated> {
    let var = |name: &str| std::env::var(name).ok();
    let (Some(pid), Some(fds)) = (var("LISTEN_PID"), var("LISTEN_FDS")) else {
        return Ok(Activated::default());
    };
    // Variables meant for another process (inherited through a wrapper).
    if pid.trim().parse::<u32>().ok() != Some(std::process::id()) {
        return Ok(Activated::default());
    }
    let count: i32 = fds
        .trim()
        .parse()
        .ok()
        .filter(|n| (0..=16).contains(n))
        .with_context(|| format!("LISTEN_FDS must be a number from 0 to 16, not `{fds}`"))?;
    let names: Vec<String> = var("LISTEN_FDNAMES")
        .map(|names| names.split(':').map(str::to_owned).collect())
        .unwrap_or_default();
    let mut sockets = Vec::new();
    for i in 0..count {
        let fd = LISTEN_FDS_START + i;
        let listener = adopt(fd).with_context(|| format!("socket-activation descriptor {fd}"))?;
        let name = names.get(i as usize).map_or("", String::as_str);
        sockets.push((fd, name.to_owned(), listener));
    }
    let mut activated = Activated::default();
    for plane in [Plane::Data, Plane::Admin] {
        let matching = sockets.iter().filter(|s| s.1 == plane.name()).count();
        anyhow::ensure!(
            matching <= 1,
            "{matching} socket-activation descriptors are named `{}`",
            plane.name()
        );
        if let Some(i) = sockets.iter().position(|s| s.1 == plane.name()) {
            *activated.slot(plane) = Some(sockets.remove(i).2);
        }
    }
    for (fd, name, listener) in sockets {
        let plane = if activated.data.is_none() {
            Plane::Data
        } else if activated.admin.is_none() {
            Plane::Admin
        } else {
            anyhow::bail!(
                "socket-activation descriptor {fd} (`{name}`) is one too many: pass a data \
                 socket and at most an admin socket, named `data` and `admin` \
                 (FileDescriptorName=)"
            );
        };
        *activated.slot(plane) = Some(listener);
    }
    Ok(activated)
}

impl Activated {
    fn slot(&mut self, plane: Plane) -> &mut Option<std::net::TcpListener> {
        match plane {
            Plane::Data => &mut self.data,
            Plane::Admin => &mut self.admin,
        }
    }
}

/// Takes ownership of descriptor `fd`, which must be a listening TCP
/// socket; makes it non-blocking and close-on-exec.
fn adopt(fd: i32) -> anyhow::Result<std::net::TcpListener> {
    use std::os::fd::FromRawFd;
    // SAFETY: systemd hands descriptors LISTEN_FDS_START.. to this process
    // (LISTEN_PID checked by the caller), and nothing else in the process
    // owns them; each is adopted once.
    let socket = unsafe { socket2::Socket::from_raw_fd(fd) };
    anyhow::ensure!(
        socket.r#type()? == socket2::Type::STREAM && socket.is_listener()?,
        "not a listening stream socket"
    );
    socket
        .local_addr()?
        .as_socket()
        .context("not a TCP socket")?;
    socket.set_nonblocking(true)?;
    socket.set_cloexec(true)?;
    Ok(socket.into())
}

/// Logs the `listening` event of a socket passed by socket activation.
pub fn log_activated(plane: Plane, listener: &std::net::TcpListener) -> anyhow::Result<()> {
    let addr = listener.local_addr()?;
    tracing::info!(plane = plane.name(), addr = %addr, activated = true, "listening");
    Ok(())
}
