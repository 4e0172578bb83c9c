//! Throwaway servers for tests: a CA made for one test (the dev PKI in a temporary directory) and
//! actix routes served on a free loopback port, over HTTP or HTTPS, for as long as the test runs.

use actix_web::{App, HttpServer, web};
use devstack::pki::DevPki;
use std::path::Path;

/// A CA of its own for one test, its certificate on disk, and a server certificate it signed
/// for every local host name (`127.0.0.1` among them).
pub struct TestCa {
    pki: DevPki,
    _dir: tempfile::TempDir,
}

impl TestCa {
    /// Makes a fresh CA: two test CAs never trust each other's servers.
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let pki = DevPki::ensure(dir.path()).expect("a test CA");
        Self { pki, _dir: dir }
    }

    /// The CA certificate (PEM), what a client is told to trust.
    pub fn pem_path(&self) -> &Path {
        &self.pki.ca_cert
    }

    /// A rustls server configuration with the certificate this CA signed.
    pub fn server_config(&self) -> rustls::ServerConfig {
        (*self
            .pki
            .server_config()
            .expect("the test CA's server config"))
        .clone()
    }
}

impl Default for TestCa {
    fn default() -> Self {
        Self::new()
    }
}

/// Serves `configure` on a free loopback port, over HTTPS with `tls`'s certificate when given,
/// until the test process ends; returns the base URL (`http://127.0.0.1:PORT` or `https://…`).
pub fn serve<F>(tls: Option<&TestCa>, configure: F) -> String
where
    F: Fn(&mut web::ServiceConfig) + Send + Clone + 'static,
{
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback port");
    let address = listener.local_addr().expect("a bound address");
    let server = HttpServer::new(move || App::new().configure(configure.clone()))
        .workers(1)
        .disable_signals();
    let (server, scheme) = match tls {
        Some(ca) => (
            server
                .listen_rustls_0_23(listener, ca.server_config())
                .expect("a listening HTTPS server"),
            "https",
        ),
        None => (server.listen(listener).expect("a listening server"), "http"),
    };
    tokio::spawn(server.run());
    format!("{scheme}://{address}")
}
