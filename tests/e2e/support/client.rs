//! A small blocking HTTP/1.1 client over loopback, strict about how a
//! response ends: a chunked body without its final chunk, or a body shorter
//! than its Content-Length, is an *aborted* response, never a clean one.
//! A body that stops arriving until the client's own timeout is *timed
//! out*, not aborted: the server hung rather than cut the connection.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// A request to send.
#[derive(Debug, Clone)]
pub struct Req {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    chunked: bool,
    timeout: Duration,
}

/// `GET path`.
pub fn get(path: &str) -> Req {
    Req::new("GET", path)
}

/// `POST path` with `body`.
pub fn post(path: &str, body: impl Into<Vec<u8>>) -> Req {
    Req::new("POST", path).body(body)
}

impl Req {
    /// A request with no headers and no body.
    pub fn new(method: &str, path: &str) -> Self {
        Req {
            method: method.into(),
            path: path.into(),
            headers: Vec::new(),
            body: Vec::new(),
            chunked: false,
            timeout: Duration::from_secs(30),
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets the body (sent with Content-Length unless [`Req::chunked`]).
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// Sends the body with chunked transfer encoding.
    pub fn chunked(mut self) -> Self {
        self.chunked = true;
        self
    }

    /// How long to wait for the whole response.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sends the request on a new connection and reads the response.
    pub fn send(&self, addr: SocketAddr) -> Result<Resp, String> {
        let mut stream = TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
        stream.set_read_timeout(Some(self.timeout)).unwrap();
        let mut head = format!("{} {} HTTP/1.1\r\n", self.method, self.path);
        if !self
            .headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("host"))
        {
            head.push_str("host: localhost\r\n");
        }
        for (name, value) in &self.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        if self.chunked {
            head.push_str("transfer-encoding: chunked\r\n");
        } else if !self.body.is_empty() || self.method == "POST" {
            head.push_str(&format!("content-length: {}\r\n", self.body.len()));
        }
        head.push_str("connection: close\r\n\r\n");
        stream
            .write_all(head.as_bytes())
            .map_err(|e| format!("write: {e}"))?;
        if self.chunked {
            for chunk in self.body.chunks(64 * 1024) {
                let _ = stream.write_all(format!("{:x}\r\n", chunk.len()).as_bytes());
                let _ = stream.write_all(chunk);
                let _ = stream.write_all(b"\r\n");
            }
            let _ = stream.write_all(b"0\r\n\r\n");
        } else {
            // The server may answer (413) before reading everything.
            let _ = stream.write_all(&self.body);
        }
        read_response(stream)
    }
}

/// A complete response.
#[derive(Debug, Clone)]
pub struct Resp {
    /// Status code.
    pub status: u16,
    /// Headers, names lowercased (last value wins).
    pub headers: BTreeMap<String, String>,
    /// The whole body.
    pub body: Vec<u8>,
}

impl Resp {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.text()))
    }
}

fn read_response(stream: TcpStream) -> Result<Resp, String> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader
        .read_line(&mut line)
        .map_err(|e| format!("reading status line: {e}"))?;
    if line.is_empty() {
        return Err("aborted: connection closed before a response".into());
    }
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line {line:?}"))?;
    let mut headers = BTreeMap::new();
    loop {
        line.clear();
        reader
            .read_line(&mut line)
            .map_err(|e| format!("reading headers: {e}"))?;
        let trimmed = line.trim_end();
        if trimmed.is_empty() {
            break;
        }
        if let Some((name, value)) = trimmed.split_once(':') {
            headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_owned());
        }
    }
    let mut body = Vec::new();
    if headers
        .get("transfer-encoding")
        .is_some_and(|te| te.contains("chunked"))
    {
        loop {
            line.clear();
            let n = reader
                .read_line(&mut line)
                .map_err(|e| body_error("reading chunk size", e))?;
            if n == 0 {
                return Err(format!(
                    "aborted: chunked body ended without its last chunk after {} bytes",
                    body.len()
                ));
            }
            let size = usize::from_str_radix(line.trim(), 16)
                .map_err(|_| format!("bad chunk size {line:?}"))?;
            if size == 0 {
                return Ok(Resp {
                    status,
                    headers,
                    body,
                });
            }
            let start = body.len();
            body.resize(start + size, 0);
            reader
                .read_exact(&mut body[start..])
                .map_err(|e| body_error("chunk cut short", e))?;
            line.clear();
            reader
                .read_line(&mut line)
                .map_err(|e| body_error("reading a chunk's end", e))?;
        }
    } else if let Some(len) = headers.get("content-length") {
        let len: usize = len.parse().map_err(|_| "bad content-length".to_string())?;
        body.resize(len, 0);
        reader
            .read_exact(&mut body)
            .map_err(|e| body_error("body shorter than content-length", e))?;
    } else {
        reader
            .read_to_end(&mut body)
            .map_err(|e| body_error("reading to the end", e))?;
    }
    Ok(Resp {
        status,
        headers,
        body,
    })
}

/// A read error while the body streams: `timed out: …` when the client's
/// read timeout expired, `aborted: …` when the server ended the connection.
fn body_error(what: &str, e: std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
            format!("timed out: {what}: {e}")
        }
        _ => format!("aborted: {what}: {e}"),
    }
}
