//! The Azure resource id of a scope in the role table, and the `az role assignment create` line
//! that grants a role there. Subscription and resource group come from `AZURE_SUBSCRIPTION_ID`
//! and `AZURE_RESOURCE_GROUP` (what `azd` sets); unset, the line keeps them as shell variables.

use crate::connect::{self, DEFAULT_KEY_STORE_CONTAINER};
use crate::roles::{Role, ScopeKind};
use azure_core::http::Url;
use codes::variables::CODE_LEDGER_URL;
use codes::variables::STORAGE_QUEUE_URL;
use shared_auth::EnvSource;
use shared_auth::variables::KEY_VAULT_URL;
use shared_auth::variables::THIRD_PARTY_API_KEYS_URL;

/// A role an identity lacks, where, and how to grant it. As JSON: role, role id, scope, scope
/// id and the grant line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingRole {
    /// The role.
    pub role: Role,
    /// The scope kind in the role table.
    pub scope: ScopeKind,
    /// The scope in words (`queue code-requests`).
    pub scope_name: String,
    /// The scope's Azure resource id.
    pub scope_id: String,
    /// The `az role assignment create` line that grants it.
    pub grant_command: String,
}

impl serde::Serialize for MissingRole {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut m = s.serialize_struct("MissingRole", 5)?;
        m.serialize_field("role", self.role.name())?;
        m.serialize_field("role_id", &self.role.id())?;
        m.serialize_field("scope", &self.scope_name)?;
        m.serialize_field("scope_id", &self.scope_id)?;
        m.serialize_field("grant", &self.grant_command)?;
        m.end()
    }
}

impl MissingRole {
    /// The missing `role` on `scope` for the identity and resources `env` describes.
    pub fn new(env: &dyn EnvSource, role: Role, scope: ScopeKind) -> Self {
        let (scope_name, scope_id) = scope_ids(env, scope);
        let assignee = env
            .var("AZURE_CLIENT_ID")
            .unwrap_or_else(|| "${PRINCIPAL_ID}".to_owned());
        let role_arg = match role.id() {
            Some(id) => id.to_owned(),
            // Its name carries a hash of the group's id (infra/modules/custom-role.bicep):
            // main.bicep's output, which azd puts in the environment.
            None => format!(
                "\"{}\"",
                env.var("QUEUE_MESSAGE_UPDATER_ROLE")
                    .unwrap_or_else(|| "${QUEUE_MESSAGE_UPDATER_ROLE}".to_owned())
            ),
        };
        let grant_command = format!(
            "az role assignment create --assignee {assignee} --role {role_arg} --scope {scope_id}"
        );
        Self {
            role,
            scope,
            scope_name,
            scope_id,
            grant_command,
        }
    }

    /// The missing role for people, three lines each starting with `indent`.
    pub fn render(&self, indent: &str) -> String {
        format!(
            "{indent}missing role: {} ({}) on {}\n{indent}scope: {}\n{indent}grant it: {}\n",
            self.role.name(),
            self.role_id(),
            self.scope_name,
            self.scope_id,
            self.grant_command
        )
    }

    /// The role id for display (`custom` for the custom role).
    pub fn role_id(&self) -> &'static str {
        self.role
            .id()
            .unwrap_or("custom role: id differs per resource group")
    }
}

fn resource_group(env: &dyn EnvSource) -> String {
    env.var("AZURE_RESOURCE_GROUP")
        .unwrap_or_else(|| "${AZURE_RESOURCE_GROUP}".to_owned())
}

fn provider_prefix(env: &dyn EnvSource) -> String {
    let subscription = env
        .var("AZURE_SUBSCRIPTION_ID")
        .unwrap_or_else(|| "${AZURE_SUBSCRIPTION_ID}".to_owned());
    format!(
        "/subscriptions/{subscription}/resourceGroups/{}/providers",
        resource_group(env)
    )
}

fn url(env: &dyn EnvSource, name: &str) -> Option<Url> {
    env.var(name).and_then(|raw| Url::parse(raw.trim()).ok())
}

/// The account of a storage URL: the host's first label in Azure, the first path segment on an
/// emulator reached by address or `localhost` (path-style, as Azurite).
fn storage_account(url: Option<&Url>) -> String {
    let Some(url) = url else {
        return "${STORAGE_ACCOUNT}".into();
    };
    let host = url.host_str().unwrap_or_default();
    if host.contains(".core.") {
        return host.split('.').next().unwrap_or_default().to_owned();
    }
    url.path_segments()
        .and_then(|mut s| s.next().map(str::to_owned))
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| host.split('.').next().unwrap_or_default().to_owned())
}

fn scope_ids(env: &dyn EnvSource, scope: ScopeKind) -> (String, String) {
    let prefix = provider_prefix(env);
    let queue_url = url(env, STORAGE_QUEUE_URL);
    let name_of = |u: Option<Url>, fallback: &str| {
        u.map(|u| connect::resource_name(&u))
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| fallback.to_owned())
    };
    // The words and the resource id of a queue or container in `account`.
    let storage = |account: &str, kind: &str, name: &str| {
        let service = if kind == "queue" {
            "queueServices/default/queues"
        } else {
            "blobServices/default/containers"
        };
        (
            format!("{kind} {name}"),
            format!("{prefix}/Microsoft.Storage/storageAccounts/{account}/{service}/{name}"),
        )
    };
    match scope {
        ScopeKind::Secret | ScopeKind::MasterKeySecret => {
            let vault = url(env, KEY_VAULT_URL)
                .and_then(|u| {
                    u.host_str()
                        .map(|h| h.split('.').next().unwrap_or(h).to_owned())
                })
                .unwrap_or_else(|| "${KEY_VAULT_NAME}".into());
            let secret = if scope == ScopeKind::Secret {
                connect::secret_name(env)
            } else {
                connect::master_key_secret_name(env)
            };
            (
                format!("secret {secret}"),
                format!("{prefix}/Microsoft.KeyVault/vaults/{vault}/secrets/{secret}"),
            )
        }
        ScopeKind::Queue | ScopeKind::PoisonQueue => {
            let account = storage_account(queue_url.as_ref());
            let queue = if scope == ScopeKind::Queue {
                name_of(queue_url, "code-requests")
            } else {
                name_of(
                    codes::queues::poison_queue_url(env).ok(),
                    "code-requests-poison",
                )
            };
            storage(&account, "queue", &queue)
        }
        ScopeKind::Container => {
            let ledger = url(env, CODE_LEDGER_URL);
            let account = storage_account(ledger.as_ref());
            let container = name_of(ledger, "codes");
            storage(&account, "container", &container)
        }
        ScopeKind::KeyStoreContainer => {
            let store = url(env, THIRD_PARTY_API_KEYS_URL);
            let account = storage_account(store.as_ref());
            let container = store
                .as_ref()
                .and_then(connect::blob_container_name)
                .unwrap_or_else(|| DEFAULT_KEY_STORE_CONTAINER.to_owned());
            storage(&account, "container", &container)
        }
        ScopeKind::Registry => (
            "the container registry".into(),
            format!(
                "{prefix}/Microsoft.ContainerRegistry/registries/${{AZURE_CONTAINER_REGISTRY_NAME}}"
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared_auth::MapEnv;

    #[test]
    fn names_the_queue_in_azure_and_on_the_emulator() {
        let env = MapEnv::new()
            .with(
                STORAGE_QUEUE_URL,
                "https://acct.queue.core.windows.net/code-requests",
            )
            .with("AZURE_CLIENT_ID", "1111")
            .with("AZURE_SUBSCRIPTION_ID", "sub")
            .with("AZURE_RESOURCE_GROUP", "rg");
        let m = MissingRole::new(&env, Role::StorageQueueDataMessageSender, ScopeKind::Queue);
        assert_eq!(m.scope_name, "queue code-requests");
        assert_eq!(
            m.scope_id,
            "/subscriptions/sub/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/acct/queueServices/default/queues/code-requests"
        );
        assert_eq!(
            m.grant_command,
            format!(
                "az role assignment create --assignee 1111 --role c6a89b2d-59bc-44d0-9896-0f6e12d7b80a --scope {}",
                m.scope_id
            )
        );
        let local = MapEnv::new().with(
            STORAGE_QUEUE_URL,
            "https://127.0.0.1:10001/devstoreaccount1/code-requests",
        );
        let m = MissingRole::new(
            &local,
            Role::StorageQueueDataMessageSender,
            ScopeKind::PoisonQueue,
        );
        assert_eq!(m.scope_name, "queue code-requests-poison");
        assert!(m.scope_id.contains(
            "/storageAccounts/devstoreaccount1/queueServices/default/queues/code-requests-poison"
        ));
        let custom = MissingRole::new(
            &local,
            Role::StorageQueueDataMessageUpdater,
            ScopeKind::Queue,
        );
        assert!(
            custom
                .grant_command
                .contains("--role \"${QUEUE_MESSAGE_UPDATER_ROLE}\"")
        );
        let named = local.with(
            "QUEUE_MESSAGE_UPDATER_ROLE",
            "Storage Queue Data Message Updater (q4tg5wnxjbsnk)",
        );
        let custom = MissingRole::new(
            &named,
            Role::StorageQueueDataMessageUpdater,
            ScopeKind::Queue,
        );
        assert!(
            custom
                .grant_command
                .contains("--role \"Storage Queue Data Message Updater (q4tg5wnxjbsnk)\" --scope ")
        );
    }
}
