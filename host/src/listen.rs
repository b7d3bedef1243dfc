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
