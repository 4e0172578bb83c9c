//! Test support: an isolated stack per test and SDK clients for its identities.
#![allow(dead_code, missing_docs, unused_imports)]

pub mod binary;

use devstack::stack::{DevStack, Principal};

pub use test_kit::TestStack;
pub use test_kit::clients::{blob_client, queue_client, secret_client};
pub use test_kit::start_stack_with as start_stack;
pub use test_kit::wire::RawResponse;

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
pub fn storage_token(stack: &DevStack, identity: impl Into<Principal>) -> String {
    let identity = stack.identity(identity);
    stack
        .identities
        .issue(&identity, "https://storage.azure.com", 3600)
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
    test_kit::wire::tls_request(&stack.pki.ca_cert, base, method, path_and_query, headers).await
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
        .bearer_auth(storage_token(stack, Principal::Devstack))
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
    let limit = std::time::Duration::from_secs(10);
    test_kit::eventually_ok(limit, "Azurite says where it listens", || async {
        let logs = stack.sink.captured();
        match logs.lines().find(|l| l.contains(marker)) {
            Some(line) => Ok(line
                .split(marker)
                .nth(1)
                .unwrap()
                .trim()
                .trim_end_matches('/')
                .to_owned()),
            None => Err("not in the logs yet"),
        }
    })
    .await
}
