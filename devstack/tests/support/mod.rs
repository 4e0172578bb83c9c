//! Test support: an isolated stack per test and SDK clients for its identities.
#![allow(dead_code, missing_docs)]

use azure_security_keyvault_secrets::{SecretClient, SecretClientOptions};
use devstack::stack::{DevStack, StackOptions};
use shared_auth::transport::azure_client_options;

pub use devstack::testing::TestStack;

pub async fn start_stack(configure: impl FnOnce(&mut StackOptions)) -> TestStack {
    let dir = tempfile::tempdir().unwrap();
    let mut options = StackOptions::for_tests(dir.path());
    configure(&mut options);
    let sink = options.sink.clone();
    match DevStack::start(options).await {
        Ok(stack) => TestStack { stack, dir },
        Err(e) => panic!("stack failed to start: {e:?}\n{}", sink.captured()),
    }
}

/// A Key Vault client acting as `identity`, exactly as a service builds one.
pub fn secret_client(stack: &DevStack, identity: &str) -> SecretClient {
    SecretClient::new(
        &stack.urls.key_vault,
        stack.credential(identity).unwrap(),
        Some(SecretClientOptions {
            client_options: azure_client_options(stack.http()),
            verify_challenge_resource: Some(false),
            ..Default::default()
        }),
    )
    .unwrap()
}

pub fn queue_client(
    stack: &DevStack,
    url: &str,
    identity: &str,
) -> azure_storage_queue::QueueClient {
    azure_storage_queue::QueueClient::new(
        url.parse().unwrap(),
        Some(stack.credential(identity).unwrap()),
        Some(azure_storage_queue::QueueClientOptions {
            client_options: azure_client_options(stack.http()),
            ..Default::default()
        }),
    )
    .unwrap()
}

pub fn blob_client(stack: &DevStack, name: &str, identity: &str) -> azure_storage_blob::BlobClient {
    azure_storage_blob::BlobClient::new(
        format!("{}/{name}", stack.urls.container).parse().unwrap(),
        Some(stack.credential(identity).unwrap()),
        Some(azure_storage_blob::BlobClientOptions {
            client_options: azure_client_options(stack.http()),
            ..Default::default()
        }),
    )
    .unwrap()
}

/// The body of an HTTP error response an SDK call returned.
pub fn error_body(err: &azure_core::Error) -> String {
    match err.kind() {
        azure_core::error::ErrorKind::HttpResponse {
            raw_response: Some(raw),
            ..
        } => String::from_utf8_lossy(raw.body()).into_owned(),
        other => format!("{other:?}"),
    }
}

/// The public key every Azurite accepts unless told otherwise (Microsoft's documentation prints
/// it); devstack's Azurite must not.
pub const WELL_KNOWN_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// A storage token (audience `https://storage.azure.com`) for `identity`.
pub fn storage_token(stack: &DevStack, identity: &str) -> String {
    let identity = stack.identities.get(identity).unwrap();
    stack
        .identities
        .issue(&identity, "https://storage.azure.com", 3600)
}

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
}

/// One HTTP/1.1 request over TLS (trusting the stack's CA) to `base` (`https://127.0.0.1:port`,
/// anything after the port ignored) with `path_and_query` sent byte for byte: reqwest, like every
/// URL parser, would resolve `..` and `%2e%2e` before sending, which is what the gate must see.
pub async fn raw_request(
    stack: &DevStack,
    base: &str,
    method: &str,
    path_and_query: &str,
    headers: &[(&str, &str)],
) -> RawResponse {
    use std::io::{Read, Write};
    let authority = base
        .strip_prefix("https://")
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    let ca = stack.pki.ca_cert.clone();
    let mut request = format!(
        "{method} {path_and_query} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\
         Content-Length: 0\r\n"
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    tokio::task::spawn_blocking(move || {
        use rustls::pki_types::pem::PemObject;
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls::pki_types::CertificateDer::pem_file_iter(&ca).unwrap() {
            roots.add(cert.unwrap()).unwrap();
        }
        let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        let host = authority.rsplit_once(':').unwrap().0.to_owned();
        let server_name = rustls::pki_types::ServerName::try_from(host).unwrap();
        let connection =
            rustls::ClientConnection::new(std::sync::Arc::new(config), server_name).unwrap();
        let socket = std::net::TcpStream::connect(&authority).unwrap();
        socket
            .set_read_timeout(Some(std::time::Duration::from_secs(30)))
            .unwrap();
        let mut tls = rustls::StreamOwned::new(connection, socket);
        tls.write_all(request.as_bytes()).unwrap();
        tls.flush().unwrap();
        let mut raw = Vec::new();
        // A server may close without TLS close_notify; what arrived is the response.
        if let Err(e) = tls.read_to_end(&mut raw) {
            assert_eq!(e.kind(), std::io::ErrorKind::UnexpectedEof, "{e}");
        }
        parse_response(&raw)
    })
    .await
    .unwrap()
}

fn parse_response(raw: &[u8]) -> RawResponse {
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
    let mut body = raw[split + 4..].to_vec();
    let chunked = headers.iter().any(|(k, v)| {
        k.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked")
    });
    if chunked {
        let (mut out, mut rest) = (Vec::new(), &body[..]);
        while let Some(end) = rest.windows(2).position(|w| w == b"\r\n") {
            let size = std::str::from_utf8(&rest[..end])
                .unwrap()
                .split(';')
                .next()
                .unwrap();
            let size = usize::from_str_radix(size.trim(), 16).unwrap();
            if size == 0 {
                break;
            }
            out.extend_from_slice(&rest[end + 2..end + 2 + size]);
            rest = &rest[end + 2 + size + 2..];
        }
        body = out;
    }
    RawResponse {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

/// Base64 HMAC-SHA256 of `text` under the base64 `key`, as storage signs SharedKey and SAS.
pub fn storage_signature(key: &str, text: &str) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &b64.decode(key).unwrap());
    b64.encode(aws_lc_rs::hmac::sign(&key, text.as_bytes()).as_ref())
}

/// An account SAS query string (version 2021-08-06, https only, valid for an hour) for the
/// blob service with `resource_types` and `permissions`, signed with `key`.
pub fn account_sas(key: &str, resource_types: &str, permissions: &str) -> String {
    let expiry = (time::OffsetDateTime::now_utc() + time::Duration::hours(1))
        .replace_nanosecond(0)
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let version = "2021-08-06";
    let string_to_sign = format!(
        "{}\n{permissions}\nb\n{resource_types}\n\n{expiry}\n\nhttps\n{version}\n\n",
        devstack::azurite::ACCOUNT
    );
    let sig = storage_signature(key, &string_to_sign);
    form_urlencoded::Serializer::new(String::new())
        .append_pair("sv", version)
        .append_pair("ss", "b")
        .append_pair("srt", resource_types)
        .append_pair("sp", permissions)
        .append_pair("se", &expiry)
        .append_pair("spr", "https")
        .append_pair("sig", &sig)
        .finish()
}

/// `x-ms-date`, `x-ms-version` and a blob-service `SharedKey` `Authorization` for a request with
/// no body and no content headers to `path` (account included, as in the URL) with `query`.
pub fn shared_key_headers(
    key: &str,
    method: &str,
    path: &str,
    query: &[(&str, &str)],
) -> Vec<(&'static str, String)> {
    let date = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc2822)
        .unwrap()
        .replace("+0000", "GMT");
    let version = "2021-08-06";
    let account = devstack::azurite::ACCOUNT;
    let mut query: Vec<(String, &str)> =
        query.iter().map(|(k, v)| (k.to_lowercase(), *v)).collect();
    query.sort();
    let mut resource = format!("/{account}{path}");
    for (k, v) in query {
        resource.push_str(&format!("\n{k}:{v}"));
    }
    let string_to_sign = format!(
        "{method}\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:{date}\nx-ms-version:{version}\n{resource}"
    );
    let signature = storage_signature(key, &string_to_sign);
    vec![
        ("x-ms-date", date),
        ("x-ms-version", version.to_owned()),
        ("authorization", format!("SharedKey {account}:{signature}")),
    ]
}

/// Whether container `name` exists, asked through the gate by the stack's admin (`devstack`,
/// Blob Data Contributor on the whole account).
pub async fn container_exists(stack: &DevStack, name: &str) -> bool {
    let res = stack
        .http()
        .get(format!(
            "{}/{name}?restype=container",
            stack.urls.blob_service
        ))
        .bearer_auth(storage_token(stack, "devstack"))
        .header("x-ms-version", "2021-08-06")
        .send()
        .await
        .unwrap();
    match res.status().as_u16() {
        200 => true,
        404 => false,
        other => panic!("container {name}: unexpected {other}"),
    }
}

/// Azurite's own blob endpoint (`https://127.0.0.1:<port>`), behind the gate: read from the line
/// it prints once it listens.
pub async fn azurite_blob_endpoint(stack: &DevStack) -> String {
    let marker = "Azurite Blob service is successfully listening at ";
    for _ in 0..100 {
        if let Some(line) = stack.sink.captured().lines().find(|l| l.contains(marker)) {
            let url = line.split(marker).nth(1).unwrap().trim();
            return url.trim_end_matches('/').to_owned();
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("Azurite never said where it listens")
}
