//! The storage a fresh stack needs, created through the gates as any client would: the queues, the
//! ledger container, and third-party-api's key store blob holding main-app's function key. The
//! in-process stack and `compose serve` both provision with these.

use super::topology::{CONTAINER, FUNCTION_KEY_NAME, POISON_QUEUE, QUEUE};
use anyhow::Context;
use azure_core::credentials::TokenCredential;
use function_keys::{
    BlobKeyStore, BlobKeyStoreOptions, KeyDocument, KeyName, KeyValue, WriteCondition,
};
use shared_auth::Secret;
use shared_auth::transport::azure_client_options;
use std::sync::Arc;

/// Creates the queues and the ledger container (an existing one is fine) through the storage
/// endpoints `queue_service` and `blob_service` (`https://host:port/<account>`).
pub async fn provision_storage(
    http: &reqwest::Client,
    credential: Arc<dyn TokenCredential>,
    queue_service: &str,
    blob_service: &str,
) -> anyhow::Result<()> {
    let queue_options = azure_storage_queue::QueueClientOptions {
        client_options: azure_client_options(http),
        ..Default::default()
    };
    for queue in [QUEUE, POISON_QUEUE] {
        let url = format!("{queue_service}/{queue}");
        let client = azure_storage_queue::QueueClient::new(
            url.parse()?,
            Some(credential.clone()),
            Some(queue_options.clone()),
        )?;
        if let Err(e) = client.create(None).await
            && e.http_status() != Some(azure_core::http::StatusCode::Conflict)
        {
            return Err(e).with_context(|| format!("cannot create queue {url}"));
        }
    }
    create_container(http, credential, &format!("{blob_service}/{CONTAINER}"))
        .await
        .context("cannot create the ledger container")
}

/// Creates the blob container at `url` (an existing one is fine).
async fn create_container(
    http: &reqwest::Client,
    credential: Arc<dyn TokenCredential>,
    url: &str,
) -> anyhow::Result<()> {
    let container = azure_storage_blob::BlobContainerClient::new(
        url.parse()?,
        Some(credential),
        Some(azure_storage_blob::BlobContainerClientOptions {
            client_options: azure_client_options(http),
            ..Default::default()
        }),
    )?;
    match container.create(None).await {
        Err(e) if e.http_status() != Some(azure_core::http::StatusCode::Conflict) => Err(e.into()),
        _ => Ok(()),
    }
}

/// The key store document holding `key` as main-app's function key ([`FUNCTION_KEY_NAME`]),
/// with `master_key` when there is one.
pub(crate) fn function_key_document(
    master_key: Option<&KeyValue>,
    key: &Secret,
) -> anyhow::Result<KeyDocument> {
    Ok(KeyDocument::new(
        master_key,
        &[(
            KeyName::parse(FUNCTION_KEY_NAME).map_err(anyhow::Error::msg)?,
            KeyValue::parse(key.expose()).map_err(anyhow::Error::msg)?,
        )],
    ))
}

/// third-party-api's key store blob at `url`, its container created first.
pub(crate) async fn key_store(
    http: &reqwest::Client,
    credential: Arc<dyn TokenCredential>,
    url: &str,
) -> anyhow::Result<BlobKeyStore> {
    let container_url = url
        .rsplit_once('/')
        .map(|(container, _)| container.to_owned())
        .context("the key store URL names no blob")?;
    create_container(http, credential.clone(), &container_url)
        .await
        .context("cannot create the key store container")?;
    let options = BlobKeyStoreOptions {
        client_options: azure_client_options(http),
    };
    Ok(BlobKeyStore::new(url.parse()?, credential, Some(options))?)
}

/// Writes (or replaces) third-party-api's key store blob at `url` holding main-app's function
/// key ([`FUNCTION_KEY_NAME`] = `key`).
pub(crate) async fn write_key_store(
    http: &reqwest::Client,
    credential: Arc<dyn TokenCredential>,
    url: &str,
    key: &Secret,
) -> anyhow::Result<()> {
    let store = key_store(http, credential, url).await?;
    let condition = match store.read().await.map_err(anyhow::Error::msg)? {
        Some((_, etag)) => WriteCondition::Matches(etag),
        None => WriteCondition::Absent,
    };
    let document = function_key_document(None, key)?;
    store
        .write(document.to_json(), condition)
        .await
        .context("cannot write the key store")?;
    Ok(())
}
