//! `<binary> healthcheck [PATH]`: the container probe for images without a shell. It asks the
//! service's own HTTP port on loopback (`PORT`, or the service's default) and exits 0 on a 2xx.

use shared_auth::config::EnvSource;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::process::ExitCode;
use std::time::Duration;

/// How long a probe may take, connect and answer together.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// Sends `GET path` to `127.0.0.1:port` and returns the status code.
pub fn probe(port: u16, path: &str) -> std::io::Result<u16> {
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut stream = TcpStream::connect_timeout(&address, PROBE_TIMEOUT)?;
    stream.set_read_timeout(Some(PROBE_TIMEOUT))?;
    stream.set_write_timeout(Some(PROBE_TIMEOUT))?;
    // One write, so the request leaves as one segment (`write!` on a bare stream writes piece by
    // piece, and a server answering at the first piece then closes on unread data: a reset).
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes())?;
    let mut head = [0u8; 32];
    let mut read = 0;
    while read < 12 {
        match stream.read(&mut head[read..])? {
            0 => break,
            n => read += n,
        }
    }
    let line = std::str::from_utf8(&head[..read]).unwrap_or_default();
    line.strip_prefix("HTTP/1.1 ")
        .or_else(|| line.strip_prefix("HTTP/1.0 "))
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| std::io::Error::other("the answer is not HTTP"))
}

/// Probes `path` on `PORT` (default `default_port`) and returns the exit code: what
/// `<binary> healthcheck [PATH]` does.
pub fn run(env: &dyn EnvSource, default_port: u16, path: &str) -> ExitCode {
    match env.parsed_or("PORT", default_port) {
        Ok(port) => check(port, path),
        Err(e) => {
            eprintln!("healthcheck: {e}");
            ExitCode::from(2)
        }
    }
}

/// Probes `path` on `port`: success on a 2xx, otherwise a failure with the reason on stderr.
pub fn check(port: u16, path: &str) -> ExitCode {
    match probe(port, path) {
        Ok(status) if (200..300).contains(&status) => ExitCode::SUCCESS,
        Ok(status) => {
            eprintln!("healthcheck: GET {path} on port {port} answered {status}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("healthcheck: GET {path} on port {port} failed: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    fn serve_once(answer: &'static str) -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            // The whole request head first: closing on unread data would reset the connection.
            let mut request = Vec::new();
            let mut chunk = [0u8; 512];
            while !request.ends_with(b"\r\n\r\n") {
                match stream.read(&mut chunk) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&chunk[..n]),
                }
            }
            let _ = stream.write_all(answer.as_bytes());
        });
        port
    }

    #[test]
    fn the_status_code_is_read_from_the_answer() {
        let ok = serve_once("HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n");
        assert_eq!(probe(ok, "/readyz").unwrap(), 200);
        let not_ready = serve_once("HTTP/1.1 503 Service Unavailable\r\n\r\n");
        assert_eq!(probe(not_ready, "/readyz").unwrap(), 503);
    }

    #[test]
    fn a_closed_port_or_a_non_http_answer_is_an_error() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let closed = listener.local_addr().unwrap().port();
        drop(listener);
        assert!(probe(closed, "/healthz").is_err());
        let garbage = serve_once("SSH-2.0-OpenSSH\r\n");
        assert!(probe(garbage, "/healthz").is_err());
    }
}
