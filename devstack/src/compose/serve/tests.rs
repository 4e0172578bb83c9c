//! Unit test of `compose serve`'s provisioning against a test stack: the key store written once,
//! a rotated one kept, an empty one filled.

use super::provision;
use crate::stack::{FUNCTION_KEY_NAME, key_store_url};
use function_keys::{
    BlobKeyStore, BlobKeyStoreOptions, KeyDocument, KeyName, KeyScope, KeyValue, WriteCondition,
};
use shared_auth::Secret;
use shared_auth::transport::azure_client_options;

#[tokio::test]
async fn provisioning_writes_the_key_store_once_keeps_a_rotated_one_and_fills_an_empty_one() {
    let dir = tempfile::tempdir().unwrap();
    let options = crate::stack::StackOptions::for_tests(dir.path());
    let sink = options.sink.clone();
    let stack = crate::stack::DevStack::start(options)
        .await
        .unwrap_or_else(|e| panic!("the stack failed to start: {e:?}\n{}", sink.captured()));
    let http = stack.http().clone();
    let credential = stack.credential(crate::stack::Principal::Devstack).unwrap();
    let urls = &stack.urls;
    assert_eq!(key_store_url(&urls.blob_service), urls.key_store);
    let store = BlobKeyStore::new(
        urls.key_store.parse().unwrap(),
        credential.clone(),
        Some(BlobKeyStoreOptions {
            client_options: azure_client_options(&http),
        }),
    )
    .unwrap();
    let read = || async { store.read().await.unwrap() };
    let key = Secret::new(KeyValue::generate().expose());
    let run = || {
        provision(
            &http,
            credential.clone(),
            &urls.queue_service,
            &urls.blob_service,
            &key,
        )
    };

    // No store yet (a fresh Azurite; the stack wrote one, so remove it): written with the
    // vault's key as `main-app`.
    let client = azure_storage_blob::BlobClient::new(
        urls.key_store.parse().unwrap(),
        Some(credential.clone()),
        Some(azure_storage_blob::BlobClientOptions {
            client_options: azure_client_options(&http),
            ..Default::default()
        }),
    )
    .unwrap();
    client.delete(None).await.unwrap();
    assert!(read().await.is_none());
    assert!(run().await.unwrap());
    let (bytes, _) = read().await.unwrap();
    let document = KeyDocument::from_json(&bytes).unwrap();
    let keys = |document: &KeyDocument| -> Vec<(String, String)> {
        document
            .keys(KeyScope::Function)
            .map(|(n, v)| (n.to_owned(), v.expose().to_owned()))
            .collect()
    };
    let seeded = [(FUNCTION_KEY_NAME.to_owned(), key.expose().to_owned())];
    assert_eq!(keys(&document), seeded);
    assert!(
        document.master_key().is_none(),
        "the master key stays in the vault"
    );

    // Run again (local-azure restarted): nothing changes.
    let (_, etag) = read().await.unwrap();
    assert!(run().await.unwrap());
    assert_eq!(read().await.unwrap().1, etag);

    // A rotated store (another key holds the vault's new value) is kept as it is; provisioning
    // tells whether it holds the key the vault gives.
    let rotated = KeyValue::generate();
    let name = KeyName::parse("main-app-20260101000000").unwrap();
    let document = KeyDocument::new(None, &[(name, rotated.clone())]);
    store
        .write(document.to_json(), WriteCondition::Matches(etag))
        .await
        .unwrap();
    let (bytes, etag) = read().await.unwrap();
    assert!(!run().await.unwrap(), "the store lacks the old key");
    assert_eq!(read().await.unwrap(), (bytes.clone(), etag));
    let rotated = Secret::new(rotated.expose());
    assert!(
        provision(
            &http,
            credential.clone(),
            &urls.queue_service,
            &urls.blob_service,
            &rotated,
        )
        .await
        .unwrap()
    );
    assert_eq!(read().await.unwrap().0, bytes);

    // third-party-api started first and created an empty store (it does when it finds none):
    // main-app's key goes into it.
    client.delete(None).await.unwrap();
    store
        .write(
            KeyDocument::new(None, &[]).to_json(),
            WriteCondition::Absent,
        )
        .await
        .unwrap();
    assert!(run().await.unwrap());
    let (bytes, etag) = read().await.unwrap();
    assert_eq!(keys(&KeyDocument::from_json(&bytes).unwrap()), seeded);
    assert!(run().await.unwrap());
    assert_eq!(read().await.unwrap().1, etag, "written once");
}
