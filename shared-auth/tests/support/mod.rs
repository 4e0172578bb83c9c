//! Test support: a throwaway CA and HTTPS/HTTP servers on random loopback ports.
#![allow(dead_code, missing_docs)]

use actix_web::{App, HttpServer, web};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use std::net::TcpListener;
use std::path::PathBuf;

/// A CA made for one test, and its PEM file on disk.
pub struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
    pub pem_path: PathBuf,
    _dir: tempfile::TempDir,
}

impl TestCa {
    pub fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let pem_path = dir.path().join("ca.pem");
        std::fs::write(&pem_path, issuer.pem()).unwrap();
        Self {
            issuer,
            pem_path,
            _dir: dir,
        }
    }

    /// A rustls server config with a certificate for 127.0.0.1 and localhost signed by this CA.
    pub fn server_config(&self) -> rustls::ServerConfig {
        let key = KeyPair::generate().unwrap();
        let params =
            CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        let key_der = rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into());
        rustls::ServerConfig::builder_with_provider(
            rustls::crypto::aws_lc_rs::default_provider().into(),
        )
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.der().clone()], key_der)
        .unwrap()
    }
}

/// Serves `configure` on a random loopback port; HTTPS when `tls` is given. Returns the base URL.
pub fn serve<F>(tls: Option<rustls::ServerConfig>, configure: F) -> String
where
    F: Fn(&mut web::ServiceConfig) + Send + Clone + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = HttpServer::new(move || App::new().configure(configure.clone()))
        .workers(1)
        .disable_signals();
    let (server, scheme) = match tls {
        Some(config) => (
            server.listen_rustls_0_23(listener, config).unwrap(),
            "https",
        ),
        None => (server.listen(listener).unwrap(), "http"),
    };
    actix_web::rt::spawn(server.run());
    format!("{scheme}://127.0.0.1:{port}")
}
