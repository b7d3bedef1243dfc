//! The OTLP exporter's HTTP client: HTTP/1.1 on hyper, TLS (rustls, ring,
//! webpki roots) for `https://`, one kept-alive connection.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// What sending to the collector fails with.
pub(super) type HttpError = Box<dyn std::error::Error + Send + Sync>;

/// The exporter's HTTP client: HTTP/1.1, over TLS for an `https://`
/// endpoint (webpki roots), on one kept-alive connection (made again when
/// it breaks), each export bounded by `timeout`.
#[derive(Debug)]
pub(super) struct Http1Client {
    timeout: Duration,
    connection: tokio::sync::Mutex<Option<Connection>>,
}

/// A connection to the collector, and where it goes.
struct Connection {
    authority: String,
    sender: hyper::client::conn::http1::SendRequest<http_body_util::Full<bytes::Bytes>>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("authority", &self.authority)
            .finish()
    }
}

impl Http1Client {
    pub(super) fn new(timeout: Duration) -> Http1Client {
        Http1Client {
            timeout,
            connection: tokio::sync::Mutex::new(None),
        }
    }

    async fn send(
        &self,
        request: http::Request<bytes::Bytes>,
    ) -> Result<http::Response<bytes::Bytes>, HttpError> {
        use http_body_util::BodyExt;
        let authority = request
            .uri()
            .authority()
            .map(|a| a.to_string())
            .ok_or("the OTLP endpoint has no host")?;
        let mut connection = self.connection.lock().await;
        let reusable = connection
            .as_mut()
            .is_some_and(|c| c.authority == authority && !c.sender.is_closed());
        if !reusable {
            let stream = tokio::net::TcpStream::connect(&authority).await?;
            let _ = stream.set_nodelay(true);
            let sender = if request.uri().scheme_str() == Some("https") {
                let stream = tls_connector()
                    .connect(server_name(&authority)?, stream)
                    .await?;
                handshake(stream).await?
            } else {
                handshake(stream).await?
            };
            *connection = Some(Connection { authority, sender });
        }
        let Some(open) = connection.as_mut() else {
            return Err("no connection to the collector".into());
        };
        open.sender.ready().await?;
        let (mut parts, body) = request.into_parts();
        // HTTP/1.1 wants the path only, and the host in its header.
        if let Some(path) = parts.uri.path_and_query().cloned() {
            let host = parts.uri.authority().map(|a| a.to_string());
            parts.uri = path.as_str().parse()?;
            if let Some(host) = host
                && let Ok(value) = http::HeaderValue::from_str(&host)
            {
                parts.headers.insert(http::header::HOST, value);
            }
        }
        let request = http::Request::from_parts(parts, http_body_util::Full::new(body));
        let response = match open.sender.send_request(request).await {
            Ok(response) => response,
            Err(err) => {
                *connection = None;
                return Err(err.into());
            }
        };
        drop(connection);
        let (parts, body) = response.into_parts();
        let body = http_body_util::Limited::new(body, 4 << 20)
            .collect()
            .await?;
        Ok(http::Response::from_parts(parts, body.to_bytes()))
    }
}

/// An HTTP/1.1 connection over `stream`, driven by its own task.
async fn handshake<S>(
    stream: S,
) -> Result<hyper::client::conn::http1::SendRequest<http_body_util::Full<bytes::Bytes>>, hyper::Error>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    let (sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

/// TLS with the webpki roots (the same rustls and roots the guests'
/// outbound HTTPS uses), made once.
fn tls_connector() -> tokio_rustls::TlsConnector {
    static CONFIG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    let config = CONFIG.get_or_init(|| {
        let roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.into(),
        };
        Arc::new(
            rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .expect("ring supports the default TLS versions")
            .with_root_certificates(roots)
            .with_no_client_auth(),
        )
    });
    tokio_rustls::TlsConnector::from(config.clone())
}

/// The TLS server name of `authority` (`host:port`).
fn server_name(authority: &str) -> Result<rustls::pki_types::ServerName<'static>, HttpError> {
    if let Ok(addr) = authority.parse::<std::net::SocketAddr>() {
        return Ok(rustls::pki_types::ServerName::from(addr.ip()));
    }
    let host = authority
        .rsplit_once(':')
        .map_or(authority, |(host, _)| host);
    Ok(rustls::pki_types::ServerName::try_from(host.to_owned())?)
}

impl Http1Client {
    /// Sends one export request, bounded by the timeout; an answer other
    /// than 2xx is an error.
    pub(super) async fn post(
        &self,
        url: &http::Uri,
        headers: &http::HeaderMap,
        body: bytes::Bytes,
    ) -> Result<(), HttpError> {
        let mut request = http::Request::post(url.clone())
            .header(http::header::CONTENT_TYPE, "application/x-protobuf")
            .body(body)?;
        request
            .headers_mut()
            .extend(headers.iter().map(|(k, v)| (k.clone(), v.clone())));
        let response = match tokio::time::timeout(self.timeout, self.send(request)).await {
            Ok(response) => response?,
            Err(_) => {
                // A half-sent request leaves the connection unusable.
                *self.connection.lock().await = None;
                return Err(
                    format!("no answer from the collector within {:?}", self.timeout).into(),
                );
            }
        };
        if !response.status().is_success() {
            let body = String::from_utf8_lossy(&response.body()[..response.body().len().min(200)])
                .into_owned();
            return Err(format!("the collector answered {}: {body}", response.status()).into());
        }
        Ok(())
    }
}
