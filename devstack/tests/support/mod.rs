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
