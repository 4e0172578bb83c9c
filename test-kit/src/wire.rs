//! HTTP as hostile clients and gate tests need it: requests sent byte for byte (an HTTP client
//! would refuse to send them, or resolve `..` and `%2e%2e` first), answers read off the wire, and
//! whether a service still answers everyone else.

use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The longest a raw exchange waits for the server to close the connection.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(30);

/// An HTTP response read off the wire.
#[derive(Debug)]
pub struct RawResponse {
    /// The status code.
    pub status: u16,
    /// Every header, in order, as received.
    pub headers: Vec<(String, String)>,
    /// The body (de-chunked), as text.
    pub body: String,
}

impl RawResponse {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Parses one complete HTTP/1.1 response; panics on anything else.
    pub fn parse(raw: &[u8]) -> Self {
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("a complete response head");
        let head = String::from_utf8_lossy(&raw[..split]);
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|s| s.parse().ok())
            .expect("a status line");
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
            .collect();
        let body = &raw[split + 4..];
        let chunked = headers.iter().any(|(k, v)| {
            k.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked")
        });
        let body = if chunked {
            dechunk(body)
        } else {
            body.to_vec()
        };
        Self {
            status,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        }
    }
}

/// The payload of a chunked body.
fn dechunk(body: &[u8]) -> Vec<u8> {
    let (mut out, mut rest) = (Vec::new(), body);
    while let Some(end) = rest.windows(2).position(|w| w == b"\r\n") {
        let size = std::str::from_utf8(&rest[..end])
            .expect("a chunk size")
            .split(';')
            .next()
            .unwrap_or_default();
        let size = usize::from_str_radix(size.trim(), 16).expect("a hexadecimal chunk size");
        if size == 0 {
            break;
        }
        out.extend_from_slice(&rest[end + 2..end + 2 + size]);
        rest = &rest[end + 2 + size + 2..];
    }
    out
}

/// The status code of the first HTTP/1.1 response in `text`.
pub fn status_of(text: &str) -> Option<u16> {
    text.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()
}

/// A service under test listening on a loopback port over plain HTTP.
#[derive(Clone)]
pub struct LocalService {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// A client for ordinary requests.
    pub http: reqwest::Client,
}

impl LocalService {
    /// The service listening on `127.0.0.1:port`, with a client of its own.
    pub fn on_port(port: u16) -> Self {
        Self {
            base: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::new(),
        }
    }

    /// `host:port` of the service, for raw TCP.
    pub fn addr(&self) -> &str {
        self.base.trim_start_matches("http://")
    }

    /// Sends `request` as is over a new connection and reads until the service closes it (at
    /// most 30 s): the status of the first response (None when it closed without one) and
    /// everything received.
    pub async fn raw(&self, request: &[u8]) -> (Option<u16>, String) {
        let mut stream = tokio::net::TcpStream::connect(self.addr())
            .await
            .expect("the service accepts a connection");
        // The service may answer and close before reading everything (431, 413): ignore that.
        let _ = stream.write_all(request).await;
        let mut received = Vec::new();
        // A reset after a partial answer still leaves what arrived: that is the answer.
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, stream.read_to_end(&mut received))
            .await
            .expect("the service closes the connection");
        let text = String::from_utf8_lossy(&received).into_owned();
        (status_of(&text), text)
    }

    /// A connection that asked `path` once, kept alive, then sent half of a second head and
    /// stalls: what a slow client holding connections open looks like.
    pub async fn stalled_in_second_head(
        &self,
        path: &str,
    ) -> std::io::Result<tokio::net::TcpStream> {
        let mut stream = tokio::net::TcpStream::connect(self.addr()).await?;
        stream
            .write_all(format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").as_bytes())
            .await?;
        let mut head = [0u8; 1024];
        let n = stream.read(&mut head).await?;
        if status_of(&String::from_utf8_lossy(&head[..n])).is_none() {
            return Err(std::io::Error::other("no answer to the first request"));
        }
        stream
            .write_all(format!("GET {path} HTTP/1.1\r\nHo").as_bytes())
            .await?;
        Ok(stream)
    }

    /// True when `/healthz` answers 200 on a new request.
    pub async fn is_alive(&self) -> bool {
        self.http
            .get(format!("{}/healthz", self.base))
            .send()
            .await
            .is_ok_and(|r| r.status() == reqwest::StatusCode::OK)
    }
}

/// One HTTP/1.1 request over TLS, trusting the CA in the PEM file `ca`, to `base`
/// (`https://127.0.0.1:port`, anything after the port ignored) with `path_and_query` sent byte for
/// byte and no body.
pub async fn tls_request(
    ca: &Path,
    base: &str,
    method: &str,
    path_and_query: &str,
    headers: &[(&str, &str)],
) -> RawResponse {
    let authority = base
        .strip_prefix("https://")
        .expect("an https URL")
        .split('/')
        .next()
        .unwrap_or_default()
        .to_owned();
    let mut request = format!(
        "{method} {path_and_query} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\
         Content-Length: 0\r\n"
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    let config = client_config(ca);
    tokio::task::spawn_blocking(move || {
        let host = authority.rsplit_once(':').expect("a port").0.to_owned();
        let server_name = rustls::pki_types::ServerName::try_from(host).expect("a server name");
        let connection =
            rustls::ClientConnection::new(config, server_name).expect("a TLS connection");
        let socket = std::net::TcpStream::connect(&authority).expect("the server accepts");
        socket
            .set_read_timeout(Some(CLOSE_TIMEOUT))
            .expect("a read timeout");
        let mut tls = rustls::StreamOwned::new(connection, socket);
        tls.write_all(request.as_bytes())
            .expect("the request is sent");
        tls.flush().expect("the request is flushed");
        let mut raw = Vec::new();
        // A server may close without TLS close_notify; what arrived is the response.
        if let Err(e) = tls.read_to_end(&mut raw) {
            assert_eq!(e.kind(), std::io::ErrorKind::UnexpectedEof, "{e}");
        }
        RawResponse::parse(&raw)
    })
    .await
    .expect("the request task completes")
}

/// A TLS client configuration trusting only the CA certificates in the PEM file `ca`.
fn client_config(ca: &Path) -> Arc<rustls::ClientConfig> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_file_iter(ca).expect("a readable CA file") {
        roots
            .add(cert.expect("a PEM certificate"))
            .expect("a CA certificate");
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("the default protocol versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    Arc::new(config)
}
