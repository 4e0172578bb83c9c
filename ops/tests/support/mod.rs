//! What the ops tests share: running `keyless` in-process against a local stack, the
//! environments of the identities it checks as, and the vault as the stack's admin sees it.

#![allow(dead_code)]

use devstack::stack::DevStack;
use devstack::stack::Principal;
use ops::vault::{Vault, VaultOptions};
use shared_auth::MapEnv;

/// Runs `keyless args...` with `env`; returns the exit code and stdout (stderr is printed, to
/// show with a failing test's output).
pub async fn keyless(env: &MapEnv, args: &[&str]) -> (i32, String) {
    let (code, out, err) = keyless_with_stderr(env, args).await;
    eprint!("{err}");
    (code, out)
}

/// Runs `keyless args...` with `env`; returns the exit code, stdout and stderr.
pub async fn keyless_with_stderr(env: &MapEnv, args: &[&str]) -> (i32, String, String) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let argv = std::iter::once("keyless").chain(args.iter().copied());
    let code = ops::cli::run(argv, env, &mut out, &mut err).await;
    let text = |bytes: Vec<u8>| String::from_utf8(bytes).expect("UTF-8 output");
    (code, text(out), text(err))
}

/// The rotation job's environment (`target/devstack/rotation.env`): its identity, the vault,
/// both secret names and third-party-api's endpoint.
pub fn rotation_env(stack: &DevStack) -> MapEnv {
    stack.rotation_env().expect("a rotation identity")
}

/// The developer's environment (`developer.env`): an operator with the queue and ledger URLs.
pub fn developer_env(stack: &DevStack) -> MapEnv {
    stack
        .client_env(Principal::Developer)
        .expect("a developer identity")
        .with("STORAGE_QUEUE_URL", &stack.urls.queue)
        .with("POISON_QUEUE_URL", &stack.urls.poison_queue)
        .with("CODE_LEDGER_URL", &stack.urls.container)
}

/// The vault as the stack's admin (`devstack`) sees it, through ops' own client.
pub fn admin_vault(stack: &DevStack) -> Vault {
    let env = stack
        .client_env(Principal::Devstack)
        .expect("the admin identity")
        .with("KEY_VAULT_URL", &stack.urls.key_vault);
    let conn = ops::connect::Connection::from_env(&env).expect("a connection as the admin");
    let url = stack.urls.key_vault.parse().expect("a vault URL");
    Vault::new(
        url,
        conn.credential.credential.clone(),
        Some(VaultOptions::from(&conn)),
    )
    .expect("a vault client")
}

/// One entry of a secret's version list, as the vault lists it (no value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionInfo {
    /// The version id.
    pub version: String,
    /// When it was created.
    pub created: Option<time::OffsetDateTime>,
    /// Its expiry, when set.
    pub expires: Option<time::OffsetDateTime>,
    /// Whether it is enabled.
    pub enabled: Option<bool>,
}

/// Every version of `name` (no values) as the stack's admin lists them, oldest first.
pub async fn versions(stack: &DevStack, name: &str) -> Vec<VersionInfo> {
    use azure_security_keyvault_secrets::ResourceExt;
    use futures::TryStreamExt;
    let client = test_kit::clients::secret_client(stack, Principal::Devstack);
    let mut pager = client.list_secret_properties_versions(name, None).unwrap();
    let mut all = Vec::new();
    while let Some(item) = pager.try_next().await.unwrap() {
        let attributes = item.attributes.clone().unwrap_or_default();
        all.push(VersionInfo {
            version: item.resource_id().unwrap().version.unwrap_or_default(),
            created: attributes.created,
            expires: attributes.expires,
            enabled: attributes.enabled,
        });
    }
    all.sort_by_key(|v| v.created);
    all
}
