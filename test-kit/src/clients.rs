//! The official SDK clients acting as one of a test stack's identities, exactly as a service
//! builds them, and what tests read through them as the stack's admin (`devstack`).

use azure_core::http::StatusCode;
use azure_security_keyvault_secrets::{SecretClient, SecretClientOptions};
use azure_storage_blob::models::BlobClientGetPropertiesResultHeaders;
use azure_storage_blob::{
    BlobClient, BlobClientOptions, BlobContainerClient, BlobContainerClientOptions,
};
use azure_storage_queue::models::{
    QueueClientGetPropertiesResultHeaders, QueueClientReceiveMessagesOptions,
};
use azure_storage_queue::{QueueClient, QueueClientOptions};
use codes::ledger::CodeLedger;
use devstack::stack::{DevStack, Principal};
use futures::TryStreamExt;
use shared_auth::transport::azure_client_options;
use std::collections::HashMap;

/// The identity every admin read of the kit acts as (Contributor on the whole account).
const ADMIN: Principal = Principal::Devstack;

/// A queue client for `url` acting as `identity`.
pub fn queue_client(stack: &DevStack, url: &str, identity: impl Into<Principal>) -> QueueClient {
    QueueClient::new(
        url.parse().expect("a queue URL"),
        Some(stack.credential(identity).expect("a known identity")),
        Some(QueueClientOptions {
            client_options: azure_client_options(stack.http()),
            ..Default::default()
        }),
    )
    .expect("a queue client")
}

/// A client for the blob `name` in the code ledger's container, acting as `identity`.
pub fn blob_client(stack: &DevStack, name: &str, identity: impl Into<Principal>) -> BlobClient {
    blob_client_at(stack, &format!("{}/{name}", stack.urls.container), identity)
}

/// A client for the blob at `url` (any container of the stack), acting as `identity`.
pub fn blob_client_at(stack: &DevStack, url: &str, identity: impl Into<Principal>) -> BlobClient {
    BlobClient::new(
        url.parse().expect("a blob URL"),
        Some(stack.credential(identity).expect("a known identity")),
        Some(BlobClientOptions {
            client_options: azure_client_options(stack.http()),
            ..Default::default()
        }),
    )
    .expect("a blob client")
}

/// The code ledger as `identity` uses it: the ledger type on the stack's container, through the
/// stack's transport, exactly as main-app and queue-worker build it.
pub fn ledger(stack: &DevStack, identity: impl Into<Principal>) -> CodeLedger {
    CodeLedger::new(
        stack.urls.container.parse().expect("a container URL"),
        stack.credential(identity).expect("a known identity"),
        Some(azure_client_options(stack.http()).into()),
    )
    .expect("a ledger client")
}

/// A Key Vault client acting as `identity`.
pub fn secret_client(stack: &DevStack, identity: impl Into<Principal>) -> SecretClient {
    SecretClient::new(
        &stack.urls.key_vault,
        stack.credential(identity).expect("a known identity"),
        Some(SecretClientOptions {
            client_options: azure_client_options(stack.http()),
            verify_challenge_resource: Some(false),
            ..Default::default()
        }),
    )
    .expect("a secret client")
}

/// Every visible message of the queue at `url`, received as the stack's admin (hidden for a
/// minute), as raw text.
pub async fn drain_texts(stack: &DevStack, url: &str) -> Vec<String> {
    let queue = queue_client(stack, url, ADMIN);
    let mut texts = Vec::new();
    loop {
        let batch = queue
            .receive_messages(Some(QueueClientReceiveMessagesOptions {
                number_of_messages: Some(32),
                visibility_timeout: Some(60),
                ..Default::default()
            }))
            .await
            .expect("receive as admin")
            .into_model()
            .expect("a message list")
            .items
            .unwrap_or_default();
        if batch.is_empty() {
            return texts;
        }
        texts.extend(batch.into_iter().filter_map(|m| m.message_text));
    }
}

/// How many messages the queue at `url` holds, hidden ones included: its approximate count, as
/// Azure and KEDA's queue scaler read it, asked as the stack's admin.
pub async fn messages_in(stack: &DevStack, url: &str) -> i64 {
    queue_client(stack, url, ADMIN)
        .get_properties(None)
        .await
        .expect("the queue's properties as admin")
        .approximate_messages_count()
        .expect("an approximate count header")
        .unwrap_or_default()
}

/// The name of every blob in the container at `url`, listed as the stack's admin.
pub async fn blob_names(stack: &DevStack, url: &str) -> Vec<String> {
    let container = BlobContainerClient::new(
        url.parse().expect("a container URL"),
        Some(stack.credential(ADMIN).expect("the admin identity")),
        Some(BlobContainerClientOptions {
            client_options: azure_client_options(stack.http()),
            ..Default::default()
        }),
    )
    .expect("a container client");
    let mut blobs = container.list_blobs(None).expect("a blob listing");
    let mut names = Vec::new();
    while let Some(blob) = blobs.try_next().await.expect("a page of blobs") {
        names.extend(blob.name);
    }
    names
}

/// The name of every record in the code ledger, listed as the stack's admin.
pub async fn ledger_codes(stack: &DevStack) -> Vec<String> {
    blob_names(stack, &stack.urls.container).await
}

/// The metadata of the ledger record of `code`, read as the stack's admin; None when there is
/// no record.
pub async fn ledger_record(stack: &DevStack, code: &str) -> Option<HashMap<String, String>> {
    match blob_client(stack, code, ADMIN).get_properties(None).await {
        Ok(properties) => Some(properties.metadata().expect("the record's metadata")),
        Err(e) if e.http_status() == Some(StatusCode::NotFound) => None,
        Err(e) => panic!("the ledger record of {code}: {e}"),
    }
}

/// One getcode from the stack's main-app, which must answer 200; the code issued.
pub async fn get_code(stack: &DevStack) -> String {
    let res = stack
        .http()
        .get(format!("{}/api/v1/getcode", stack.urls.main_app))
        .send()
        .await
        .expect("main-app answers");
    assert_eq!(res.status(), 200, "getcode");
    let body: serde_json::Value = res.json().await.expect("a JSON body");
    body["code"].as_str().expect("a code").to_owned()
}
