//! The Key Vault emulator through the real `SecretClient`: challenge auth, get, set, versions,
//! disabled and expired secrets, and RBAC refusals.

mod support;

use azure_core::http::StatusCode;
use azure_security_keyvault_secrets::models::SecretClientGetSecretOptions;
use azure_security_keyvault_secrets::models::{
    SecretAttributes, SetSecretParameters, UpdateSecretPropertiesParameters,
};
use devstack::rbac::{Role, Scope};
use devstack::stack::SECRET_NAME;
use devstack::stack::{Identity, Principal};
use futures::TryStreamExt;
use support::{error_body, secret_client, start_stack};

#[tokio::test]
async fn main_app_reads_the_seeded_secret_and_nothing_else() {
    let stack = start_stack(|_| {}).await;
    let client = secret_client(&stack, Identity::MainApp);
    let secret = client
        .get_secret(SECRET_NAME, None)
        .await
        .unwrap()
        .into_model()
        .unwrap();
    assert_eq!(
        secret.value.as_deref(),
        Some(stack.third_party_api_key().expose())
    );
    assert!(
        secret
            .id
            .as_deref()
            .unwrap()
            .contains("/secrets/third-party-api-key/")
    );

    // Secrets User on one secret: no write, no list, no other secret.
    let err = client
        .set_secret(
            SECRET_NAME,
            SetSecretParameters {
                value: Some("x".repeat(20)),
                ..Default::default()
            }
            .try_into()
            .unwrap(),
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(err.http_status(), Some(StatusCode::Forbidden));
    assert!(
        error_body(&err).contains("ForbiddenByRbac"),
        "{}",
        error_body(&err)
    );
    let listed = client
        .list_secret_properties(None)
        .unwrap()
        .try_collect::<Vec<_>>()
        .await;
    assert!(listed.is_err());
    let err = client.get_secret("other-secret", None).await.unwrap_err();
    assert_eq!(err.http_status(), Some(StatusCode::Forbidden));

    // queue-worker has no Key Vault role at all.
    let err = secret_client(&stack, Identity::QueueWorker)
        .get_secret(SECRET_NAME, None)
        .await
        .unwrap_err();
    assert_eq!(err.http_status(), Some(StatusCode::Forbidden));
}

#[tokio::test]
async fn versions_disabled_and_expired_secrets_behave_as_in_azure() {
    let stack = start_stack(|_| {}).await;
    let admin = secret_client(&stack, Principal::Devstack);
    let set = |value: &str| SetSecretParameters {
        value: Some(value.into()),
        ..Default::default()
    };
    let v1 = admin
        .set_secret("rotating", set("first-value").try_into().unwrap(), None)
        .await
        .unwrap()
        .into_model()
        .unwrap();
    let v2 = admin
        .set_secret("rotating", set("second-value").try_into().unwrap(), None)
        .await
        .unwrap()
        .into_model()
        .unwrap();
    let version = |s: &azure_security_keyvault_secrets::models::Secret| {
        s.id.as_deref()
            .unwrap()
            .rsplit('/')
            .next()
            .unwrap()
            .to_owned()
    };
    let (v1, v2) = (version(&v1), version(&v2));
    assert_ne!(v1, v2);

    let latest = admin
        .get_secret("rotating", None)
        .await
        .unwrap()
        .into_model()
        .unwrap();
    assert_eq!(latest.value.as_deref(), Some("second-value"));
    let first = admin
        .get_secret(
            "rotating",
            Some(SecretClientGetSecretOptions {
                secret_version: Some(v1.clone()),
                ..Default::default()
            }),
        )
        .await
        .unwrap()
        .into_model()
        .unwrap();
    assert_eq!(first.value.as_deref(), Some("first-value"));
    let versions: Vec<_> = admin
        .list_secret_properties_versions("rotating", None)
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(versions.len(), 2);

    // Disabled: refused with Azure's code. Re-enabled: readable again.
    let disable = UpdateSecretPropertiesParameters {
        secret_attributes: Some(SecretAttributes {
            enabled: Some(false),
            ..Default::default()
        }),
        ..Default::default()
    };
    admin
        .update_secret_properties("rotating", disable.try_into().unwrap(), None)
        .await
        .unwrap();
    let err = admin.get_secret("rotating", None).await.unwrap_err();
    assert_eq!(err.http_status(), Some(StatusCode::Forbidden));
    assert!(
        error_body(&err).contains("SecretDisabled"),
        "{}",
        error_body(&err)
    );

    // Expired: Azure still returns the value (exp is the application's to honour).
    let expired = SetSecretParameters {
        value: Some("old-news".into()),
        secret_attributes: Some(SecretAttributes {
            expires: Some(time::OffsetDateTime::now_utc() - time::Duration::hours(1)),
            ..Default::default()
        }),
        ..Default::default()
    };
    admin
        .set_secret("expired", expired.try_into().unwrap(), None)
        .await
        .unwrap();
    let got = admin
        .get_secret("expired", None)
        .await
        .unwrap()
        .into_model()
        .unwrap();
    assert_eq!(got.value.as_deref(), Some("old-news"));
    assert!(got.attributes.unwrap().expires.unwrap() < time::OffsetDateTime::now_utc());

    let err = admin.get_secret("never-set", None).await.unwrap_err();
    assert_eq!(err.http_status(), Some(StatusCode::NotFound));
}

#[tokio::test]
async fn roles_can_change_while_running() {
    let stack = start_stack(|_| {}).await;
    let worker = secret_client(&stack, Identity::QueueWorker);
    assert!(worker.get_secret(SECRET_NAME, None).await.is_err());
    stack.grant(
        Identity::QueueWorker,
        Role::KeyVaultSecretsUser,
        Scope::Secret(SECRET_NAME.into()),
    );
    assert!(worker.get_secret(SECRET_NAME, None).await.is_ok());
}

#[tokio::test]
async fn a_kept_vault_writes_every_change_so_a_restart_serves_the_last_values() {
    use std::collections::BTreeMap;
    use std::os::unix::fs::PermissionsExt;
    let stack = start_stack(|_| {}).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keyvault/secrets.json");
    stack.vault.persist_to(path.clone(), None).unwrap();
    let kept = || -> BTreeMap<String, String> {
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
    };
    let seeded = stack.third_party_api_key().expose().to_owned();
    assert_eq!(kept().get(SECRET_NAME), Some(&seeded), "written at once");
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);

    // A new version, as `keyless rotate` writes it: the file holds it.
    let rotated = "rotated-key-0123456789abcdef".to_owned();
    let parameters = SetSecretParameters {
        value: Some(rotated.clone()),
        ..Default::default()
    };
    secret_client(&stack, Identity::Rotation)
        .set_secret(SECRET_NAME, parameters.try_into().unwrap(), None)
        .await
        .unwrap();
    assert_eq!(kept().get(SECRET_NAME), Some(&rotated));

    // Deleted, it is gone from the file; recovered, it is back.
    let admin = secret_client(&stack, Principal::Devstack);
    admin.delete_secret(SECRET_NAME, None).await.unwrap();
    assert_eq!(kept().get(SECRET_NAME), None);
    admin
        .recover_deleted_secret(SECRET_NAME, None)
        .await
        .unwrap();
    assert_eq!(kept().get(SECRET_NAME), Some(&rotated));

    // A vault seeded from the file (what `compose serve` does on a restart) serves the rotated
    // value to main-app.
    let stack_after = start_stack(|_| {}).await;
    for (name, value) in kept() {
        stack_after
            .vault
            .seed(&name, &shared_auth::Secret::new(value));
    }
    let served = secret_client(&stack_after, Identity::MainApp)
        .get_secret(SECRET_NAME, None)
        .await
        .unwrap()
        .into_model()
        .unwrap();
    assert_eq!(served.value.as_deref(), Some(rotated.as_str()));

    // Kept once only.
    assert!(
        stack
            .vault
            .persist_to(dir.path().join("other.json"), None)
            .is_err()
    );
}
