//! `keyless doctor` against the local stack: with every role it passes; without any one role of
//! the table it fails naming exactly that role, its id and its scope; its probes never reach the
//! ledger or the poison queue.

mod support;

use devstack::rbac::Scope;
use devstack::stack::{
    CONTAINER, DevStack, KEY_STORE_CONTAINER, MASTER_KEY_SECRET_NAME, POISON_QUEUE, QUEUE,
    SECRET_NAME, Service, local_scope,
};
use ops::roles::{Identity, Role, ScopeKind, grants_of};
use shared_auth::MapEnv;
use std::collections::BTreeSet;
use std::time::Duration;
use support::{admin_vault, keyless, rotation_env};
use test_kit::clients::blob_names;
use test_kit::{drain_texts, env_as_client, start_stack};

/// The environment `identity` runs with: its service's, or the rotation job's.
fn identity_env(stack: &DevStack, identity: Identity) -> MapEnv {
    match identity {
        Identity::MainApp => env_as_client(stack, Service::MainApp),
        Identity::QueueWorker => env_as_client(stack, Service::QueueWorker),
        Identity::ThirdPartyApi => env_as_client(stack, Service::ThirdPartyApi),
        Identity::Rotation => rotation_env(stack),
    }
}

fn scope_name(kind: ScopeKind) -> String {
    match kind {
        ScopeKind::Secret => format!("secret {SECRET_NAME}"),
        ScopeKind::MasterKeySecret => format!("secret {MASTER_KEY_SECRET_NAME}"),
        ScopeKind::Queue => format!("queue {QUEUE}"),
        ScopeKind::PoisonQueue => format!("queue {POISON_QUEUE}"),
        ScopeKind::Container => format!("container {CONTAINER}"),
        ScopeKind::KeyStoreContainer => format!("container {KEY_STORE_CONTAINER}"),
        ScopeKind::Registry => unreachable!(),
    }
}

/// The roles the failing checks name: (role name, role id, scope, grant line).
fn missing_roles(report: &serde_json::Value) -> BTreeSet<(String, String, String, String)> {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["ok"] == false)
        .map(|c| {
            let m = &c["missing_role"];
            assert!(m.is_object(), "a failed check names no role: {c}");
            (
                m["role"].as_str().unwrap().to_owned(),
                m["role_id"].as_str().unwrap_or("custom").to_owned(),
                m["scope"].as_str().unwrap().to_owned(),
                m["grant"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn doctor_names_exactly_the_missing_role_its_id_and_scope() {
    let stack = start_stack(&[]).await;
    for &identity in Identity::ALL {
        let env = identity_env(&stack, identity);
        let args = ["doctor", "--json", "--as", identity.name()];
        let (code, out) = keyless(&env, &args).await;
        assert_eq!(code, 0, "{}: all roles granted: {out}", identity.name());
        let report: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(report["ok"], true);
        let mut checked = 0;

        for grant in grants_of(identity) {
            let Some(scope) = local_scope(grant.scope) else {
                continue;
            };
            assert!(stack.revoke(identity, grant.role, &scope), "{grant:?}");
            let (code, out) = keyless(&env, &args).await;
            stack.grant(identity, grant.role, scope);
            let report: serde_json::Value = serde_json::from_str(&out).unwrap();
            assert_eq!(code, 1, "{grant:?} revoked, yet: {out}");
            let named = missing_roles(&report);
            assert_eq!(named.len(), 1, "{grant:?}: {named:?}");
            let (role, id, scope_text, grant_line) = named.into_iter().next().unwrap();
            assert_eq!(role, grant.role.name(), "{grant:?}");
            assert_eq!(id, grant.role.id().unwrap_or("custom"), "{grant:?}");
            assert_eq!(scope_text, scope_name(grant.scope), "{grant:?}");
            let client_id = &stack.identities.get(identity.name()).unwrap().client_id;
            assert!(
                grant_line.starts_with(&format!(
                    "az role assignment create --assignee {client_id} --role "
                )),
                "{grant_line}"
            );
            // The custom role has no fixed id: its name comes from azd's environment
            // (QUEUE_MESSAGE_UPDATER_ROLE, main.bicep's output), a shell variable here.
            let role_arg = match grant.role.id() {
                Some(id) => format!("--role {id} "),
                None => "--role \"${QUEUE_MESSAGE_UPDATER_ROLE}\" ".to_owned(),
            };
            assert!(grant_line.contains(&role_arg), "{grant_line}");
            checked += 1;
        }
        assert!(checked > 0, "{}: no role checked", identity.name());
        // Back to all roles: green again.
        let (code, out) = keyless(&env, &args).await;
        assert_eq!(code, 0, "{out}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn human_output_names_role_id_scope_and_the_az_line() {
    let stack = start_stack(&[]).await;
    let env = env_as_client(&stack, Service::MainApp);
    let (code, text) = keyless(&env, &["doctor"]).await;
    assert_eq!(code, 0);
    println!("{text}");
    assert!(text.ends_with("checks passed for main-app\n"), "{text}");
    let queue = Scope::Queue(QUEUE.into());
    stack.revoke(
        Identity::MainApp,
        Role::StorageQueueDataMessageSender,
        &queue,
    );
    let (code, text) = keyless(&env, &["doctor"]).await;
    assert_eq!(code, 1);
    println!("{text}");
    assert!(
        text.contains("keyless doctor: checking as main-app"),
        "{text}"
    );
    assert!(text.contains(
        "missing role: Storage Queue Data Message Sender (c6a89b2d-59bc-44d0-9896-0f6e12d7b80a) on queue code-requests"
    ), "{text}");
    assert!(text.contains("--role c6a89b2d-59bc-44d0-9896-0f6e12d7b80a --scope /subscriptions/"));
    assert!(text.contains("1 of "), "{text}");
    // No secret, no token in the output.
    let secret = stack
        .client_env(Identity::MainApp)
        .unwrap()
        .var("AZURE_CLIENT_SECRET")
        .unwrap();
    assert!(!text.contains(&secret));
    assert!(!text.contains(stack.third_party_api_key().expose()));
    assert!(!text.contains("eyJ"), "no JWT in the output");
}

use shared_auth::EnvSource;

#[tokio::test(flavor = "multi_thread")]
async fn the_probes_never_reach_the_ledger_or_the_poison_queue() {
    let stack = start_stack(&[Service::QueueWorker]).await;
    for identity in ["main-app", "queue-worker"] {
        let env = env_as_client(
            &stack,
            if identity == "main-app" {
                Service::MainApp
            } else {
                Service::QueueWorker
            },
        );
        let (code, out) = keyless(&env, &["doctor", "--as", identity]).await;
        assert_eq!(code, 0, "{out}");
    }
    // Past the probes' 30 s life: the worker deleted or let expire every one.
    tokio::time::sleep(Duration::from_secs(32)).await;
    assert_eq!(
        drain_texts(&stack, &stack.urls.poison_queue).await,
        Vec::<String>::new()
    );
    assert_eq!(
        drain_texts(&stack, &stack.urls.queue).await,
        Vec::<String>::new()
    );
    assert_eq!(
        blobs_in(&stack, devstack::stack::CONTAINER).await,
        Vec::<String>::new(),
        "nothing in the ledger"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn doctor_runs_in_a_services_own_environment_with_its_managed_identity() {
    // The SDK's managed identity reads the process environment: run the binary with the
    // service's exact environment, as `target/devstack/<service>.env` holds it.
    let stack = start_stack(&[]).await;
    for service in [Service::MainApp, Service::ThirdPartyApi] {
        let env = stack.service_env(service);
        let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_keyless"))
            .arg("doctor")
            .env_clear()
            .envs(env.iter().map(|(k, v)| (k, v)))
            .output()
            .await
            .unwrap();
        let text = String::from_utf8(output.stdout).unwrap();
        assert_eq!(output.status.code(), Some(0), "{text}");
        assert!(
            text.contains(&format!("checking as {}", service.name())),
            "{text}"
        );
        assert!(
            text.contains("ok    credential: ManagedIdentityCredential"),
            "{text}"
        );
        let header = &env.iter().find(|(k, _)| k == "IDENTITY_HEADER").unwrap().1;
        assert!(
            !text.contains(header.as_str()),
            "the identity header is a secret"
        );
    }
}

/// The blob names in `container` as the stack's admin sees them.
async fn blobs_in(stack: &DevStack, container: &str) -> Vec<String> {
    blob_names(stack, &format!("{}/{container}", stack.urls.blob_service)).await
}

/// (version, created, expires, value) of the latest version of `name`, read as the stack's admin.
async fn latest(stack: &DevStack, name: &str) -> (String, String, String, String) {
    let vault = admin_vault(stack);
    let v = vault.latest(name).await.unwrap().unwrap();
    let versions = support::versions(stack, name).await;
    assert_eq!(versions.last().map(|l| &l.version), Some(&v.version));
    (
        v.version,
        format!("{:?}", v.created),
        format!("{:?}", v.expires),
        v.value.expose().to_owned(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn the_rotation_and_key_store_probes_change_nothing() {
    let stack = start_stack(&[]).await;
    let before = (
        latest(&stack, SECRET_NAME).await,
        latest(&stack, MASTER_KEY_SECRET_NAME).await,
        blobs_in(&stack, KEY_STORE_CONTAINER).await,
    );
    let (code, text) = keyless(&rotation_env(&stack), &["doctor"]).await;
    assert_eq!(code, 0, "{text}");
    println!("{text}");
    assert!(text.contains("checking as rotation"), "guessed: {text}");
    assert!(
        text.contains("ok    write secret third-party-api-master-key: writable"),
        "{text}"
    );
    let env = env_as_client(&stack, Service::ThirdPartyApi);
    let (code, text) = keyless(&env, &["doctor"]).await;
    assert_eq!(code, 0, "{text}");
    println!("{text}");
    assert!(
        text.contains("checking as third-party-api"),
        "guessed: {text}"
    );
    assert!(
        text.contains("delete from the key store container third-party-api-keys"),
        "{text}"
    );
    let after = (
        latest(&stack, SECRET_NAME).await,
        latest(&stack, MASTER_KEY_SECRET_NAME).await,
        blobs_in(&stack, KEY_STORE_CONTAINER).await,
    );
    assert_eq!(before, after, "same versions, values, expiry and blobs");

    // Without Officer on the master key, rotation's doctor names it and the az line.
    let scope = local_scope(ScopeKind::MasterKeySecret).unwrap();
    stack.revoke(Identity::Rotation, Role::KeyVaultSecretsOfficer, &scope);
    let (code, text) = keyless(&rotation_env(&stack), &["doctor", "--as", "rotation"]).await;
    assert_eq!(code, 1, "{text}");
    assert!(text.contains(
        "missing role: Key Vault Secrets Officer (b86a8fe4-44ce-4948-aee5-eccb2c155cd7) on secret third-party-api-master-key"
    ), "{text}");
    assert!(
        text.contains("/secrets/third-party-api-master-key"),
        "{text}"
    );
    assert!(!text.contains(stack.third_party_api_key().expose()));
}
