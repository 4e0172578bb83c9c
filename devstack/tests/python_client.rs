//! The Key Vault emulator with Microsoft's Python `azure-keyvault-secrets` client, unchanged:
//! managed identity (App Service protocol) and client secret (Entra token endpoint). The Python
//! packages are installed on demand, pinned, into `target/devstack/python`.

mod support;

use devstack::stack::Principal;
use devstack::stack::Service;
use sha2::{Digest, Sha256};
use std::path::PathBuf;
use support::start_stack;

const PACKAGES: &[&str] = &["azure-keyvault-secrets==4.12.0", "azure-identity==1.27.0"];

async fn run_script(env: Vec<(String, String)>, mode: &str) -> serde_json::Value {
    let python =
        tokio::task::spawn_blocking(|| test_kit::python::venv("keyvault-client", PACKAGES))
            .await
            .unwrap()
            .unwrap();
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/keyvault_client.py");
    let output = tokio::process::Command::new(python)
        .arg(script)
        .arg(mode)
        .env_clear()
        .envs(env)
        .output()
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[tokio::test]
async fn python_client_works_unchanged_with_both_credentials() {
    let stack = start_stack(|_| {}).await;
    let ca = stack.pki.ca_cert.display().to_string();
    let common = |mut env: Vec<(String, String)>| {
        env.push(("KEY_VAULT_URL".into(), stack.urls.key_vault.clone()));
        env.push(("REQUESTS_CA_BUNDLE".into(), ca.clone()));
        env.push(("SSL_CERT_FILE".into(), ca.clone()));
        env
    };

    // Managed identity, as main-app's identity (Secrets User on the secret; third-party-api
    // holds a role on its master-key secret only).
    let out = run_script(
        common(stack.service_env(Service::MainApp)),
        "managed-identity",
    )
    .await;
    assert_eq!(
        out["seeded_sha256"],
        sha256_hex(stack.third_party_api_key().expose())
    );

    // Client secret, as the stack's admin (Secrets Officer): set, versions, list, disable, delete.
    let admin = stack.client_env(Principal::Devstack).unwrap();
    let vars = [
        "AZURE_TENANT_ID",
        "AZURE_CLIENT_ID",
        "AZURE_CLIENT_SECRET",
        "AZURE_AUTHORITY_HOST",
    ];
    let env: Vec<(String, String)> = vars
        .iter()
        .map(|k| {
            (
                k.to_string(),
                shared_auth::EnvSource::var(&admin, k).unwrap(),
            )
        })
        .collect();
    let out = run_script(common(env), "client-secret").await;
    assert_eq!(out["latest"], "second-python-value");
    assert_eq!(out["first_by_version"], "first-python-value");
    assert_eq!(out["versions"], 2);
    assert_eq!(
        out["names"],
        serde_json::json!([
            "python-made",
            "third-party-api-key",
            "third-party-api-master-key"
        ])
    );
    assert_eq!(out["disabled"], "403 Forbidden");
    assert_eq!(out["deleted_recovery_id"], true);
    assert_eq!(out["after_delete"], "not found");
}
