//! Binding the listeners, and the one startup event that says where they
//! are: `listening` with fields `plane` (`data` or `admin`) and `addr`.
//! Tests and scripts learn ports from it when binding port 0.

use std::net::SocketAddr;

use anyhow::Context as _;
use tokio::net::TcpListener;

/// Which listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

/// Descriptors the host needs beside its connections: listeners, the
/// component and cache files, stores, outbound calls, the watcher.
const SPARE_DESCRIPTORS: u64 = 256;

/// Raises this process's soft limit on open files to its hard limit: each
/// connection holds a descriptor, and the usual soft limit (1,024) would
/// cap the host at about a thousand connections whatever
/// `max_connections` says. Logs `open-file limit` with what it found and
/// set; warns, naming the fix, when the limit stays below
/// `max_connections` plus [`SPARE_DESCRIPTORS`].
pub fn raise_descriptor_limit(max_connections: u32) {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes the struct it is given.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return;
    }
    let found = limit.rlim_cur;
    if limit.rlim_cur < limit.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: limit.rlim_max,
            rlim_max: limit.rlim_max,
        };
        // SAFETY: setrlimit reads the struct it is given.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            limit = raised;
        } else {
            let error = std::io::Error::last_os_error();
            tracing::warn!(soft = found, hard = limit.rlim_max, %error, "cannot raise the open-file limit");
        }
    }
    let wanted = u64::from(max_connections) + SPARE_DESCRIPTORS;
    if limit.rlim_cur < wanted {
        tracing::warn!(
            limit = limit.rlim_cur,
            hard = limit.rlim_max,
            max_connections,
            "open-file limit below max_connections: connections past about \
             `limit` - 256 will fail to be accepted; raise the hard limit \
             (`ulimit -Hn`, systemd `LimitNOFILE=`, the container's `nofile` \
             ulimit) or lower `[host] max_connections`"
        );
    } else {
        tracing::info!(limit = limit.rlim_cur, was = found, "open-file limit");
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
    let names: Vec<&str> = (0..count as usize)
        .map(|i| names.get(i).map_or("", String::as_str))
        .collect();
    let mut activated = Activated::default();
    for (i, plane) in planes(&names)?.into_iter().enumerate() {
        let fd = LISTEN_FDS_START + i as i32;
        let listener = adopt(fd).with_context(|| format!("socket-activation descriptor {fd}"))?;
        *activated.slot(plane) = Some(listener);
    }
    Ok(activated)
}

/// The plane of each passed socket, by its name: `data` and `admin` by
/// name, the others in order (data first, then admin).
fn planes(names: &[&str]) -> anyhow::Result<Vec<Plane>> {
    for plane in [Plane::Data, Plane::Admin] {
        let named = names.iter().filter(|n| **n == plane.name()).count();
        anyhow::ensure!(
            named <= 1,
            "{named} socket-activation descriptors are named `{}`",
            plane.name()
        );
    }
    let mut free = [Plane::Data, Plane::Admin]
        .into_iter()
        .filter(|plane| !names.contains(&plane.name()));
    names
        .iter()
        .enumerate()
        .map(|(i, name)| match *name {
            "data" => Ok(Plane::Data),
            "admin" => Ok(Plane::Admin),
            _ => free.next().with_context(|| {
                format!(
                    "socket-activation descriptor {} (`{name}`) is one too many: pass a \
                     data socket and at most an admin socket, named `data` and `admin` \
                     (FileDescriptorName=)",
                    LISTEN_FDS_START + i as i32
                )
            }),
        })
        .collect()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passed_sockets_go_to_their_named_plane_or_fill_the_planes_in_order() {
        use Plane::{Admin, Data};
        let planes = |names: &[&str]| planes(names).map_err(|e| e.to_string());
        assert_eq!(planes(&[""]), Ok(vec![Data]));
        assert_eq!(planes(&["wasmhost.socket"]), Ok(vec![Data]));
        assert_eq!(planes(&["", ""]), Ok(vec![Data, Admin]));
        assert_eq!(planes(&["admin", "data"]), Ok(vec![Admin, Data]));
        assert_eq!(planes(&["admin", "x"]), Ok(vec![Admin, Data]));
        assert_eq!(planes(&["x", "data"]), Ok(vec![Admin, Data]));
        assert_eq!(planes(&[]), Ok(vec![]));
        assert!(
            planes(&["data", "data"])
                .unwrap_err()
                .contains("2 socket-activation")
        );
        assert!(planes(&["", "", ""]).unwrap_err().contains("descriptor 5"));
    }
}
