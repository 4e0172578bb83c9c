//! Role assignments as Azure RBAC has them: a role, for a principal (object id), at a scope. The
//! Key Vault emulator and the storage gate ask the same table whether a data action is allowed.
//! Who holds which role where is `ops::roles`, explained in `docs/ARCHITECTURE.md` (Identity and least privilege).

use parking_lot::RwLock;

pub use ops::roles::Role;

/// Whether `role` grants `action`: the data actions of each role as Azure defines them.
pub fn grants(role: Role, action: DataAction) -> bool {
    use DataAction::*;
    match role {
        Role::KeyVaultSecretsUser => matches!(action, SecretGet | SecretReadMetadata),
        Role::KeyVaultSecretsOfficer => matches!(
            action,
            SecretGet
                | SecretReadMetadata
                | SecretSet
                | SecretUpdate
                | SecretDelete
                | SecretPurge
                | SecretRecover
        ),
        Role::StorageQueueDataMessageSender => matches!(action, QueueMessageAdd),
        Role::StorageQueueDataMessageUpdater => matches!(action, QueueMessageWrite),
        Role::StorageQueueDataMessageProcessor => {
            matches!(action, QueueMessageRead | QueueMessageProcess)
        }
        // Peek (messages/read) and queue properties such as the length KEDA reads.
        Role::StorageQueueDataReader => matches!(action, QueueMessageRead | QueueRead),
        Role::StorageQueueDataContributor => matches!(
            action,
            QueueMessageAdd
                | QueueMessageRead
                | QueueMessageProcess
                | QueueMessageWrite
                | QueueMessageDelete
                | QueueRead
                | QueueWrite
                | QueueDelete
        ),
        Role::StorageBlobDataContributor => matches!(
            action,
            BlobRead | BlobWrite | BlobDelete | ContainerRead | ContainerWrite | ContainerDelete
        ),
        Role::AcrPull => false,
    }
}

/// The data actions the emulators check, named after Azure's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataAction {
    /// `Microsoft.KeyVault/vaults/secrets/getSecret/action`
    SecretGet,
    /// `Microsoft.KeyVault/vaults/secrets/readMetadata/action`
    SecretReadMetadata,
    /// `Microsoft.KeyVault/vaults/secrets/setSecret/action`
    SecretSet,
    /// `Microsoft.KeyVault/vaults/secrets/update/action`
    SecretUpdate,
    /// `Microsoft.KeyVault/vaults/secrets/delete`
    SecretDelete,
    /// `Microsoft.KeyVault/vaults/deletedSecrets/delete`
    SecretPurge,
    /// `Microsoft.KeyVault/vaults/deletedSecrets/recover/action`
    SecretRecover,
    /// `.../queues/messages/add/action`
    QueueMessageAdd,
    /// `.../queues/messages/read`
    QueueMessageRead,
    /// `.../queues/messages/process/action`
    QueueMessageProcess,
    /// `.../queues/messages/write`
    QueueMessageWrite,
    /// `.../queues/messages/delete`
    QueueMessageDelete,
    /// `.../queueServices/queues/read`
    QueueRead,
    /// `.../queueServices/queues/write`
    QueueWrite,
    /// `.../queueServices/queues/delete`
    QueueDelete,
    /// `.../containers/blobs/read`
    BlobRead,
    /// `.../containers/blobs/write`
    BlobWrite,
    /// `.../containers/blobs/delete`
    BlobDelete,
    /// `.../blobServices/containers/read`
    ContainerRead,
    /// `.../blobServices/containers/write`
    ContainerWrite,
    /// `.../blobServices/containers/delete`
    ContainerDelete,
}

impl DataAction {
    /// Azure's name of the action, for error messages.
    pub fn azure_name(self) -> &'static str {
        use DataAction::*;
        match self {
            SecretGet => "Microsoft.KeyVault/vaults/secrets/getSecret/action",
            SecretReadMetadata => "Microsoft.KeyVault/vaults/secrets/readMetadata/action",
            SecretSet => "Microsoft.KeyVault/vaults/secrets/setSecret/action",
            SecretUpdate => "Microsoft.KeyVault/vaults/secrets/update/action",
            SecretDelete => "Microsoft.KeyVault/vaults/secrets/delete",
            SecretPurge => "Microsoft.KeyVault/vaults/deletedSecrets/delete",
            SecretRecover => "Microsoft.KeyVault/vaults/deletedSecrets/recover/action",
            QueueMessageAdd => {
                "Microsoft.Storage/storageAccounts/queueServices/queues/messages/add/action"
            }
            QueueMessageRead => {
                "Microsoft.Storage/storageAccounts/queueServices/queues/messages/read"
            }
            QueueMessageProcess => {
                "Microsoft.Storage/storageAccounts/queueServices/queues/messages/process/action"
            }
            QueueMessageWrite => {
                "Microsoft.Storage/storageAccounts/queueServices/queues/messages/write"
            }
            QueueMessageDelete => {
                "Microsoft.Storage/storageAccounts/queueServices/queues/messages/delete"
            }
            QueueRead => "Microsoft.Storage/storageAccounts/queueServices/queues/read",
            QueueWrite => "Microsoft.Storage/storageAccounts/queueServices/queues/write",
            QueueDelete => "Microsoft.Storage/storageAccounts/queueServices/queues/delete",
            BlobRead => "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read",
            BlobWrite => "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/write",
            BlobDelete => "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/delete",
            ContainerRead => "Microsoft.Storage/storageAccounts/blobServices/containers/read",
            ContainerWrite => "Microsoft.Storage/storageAccounts/blobServices/containers/write",
            ContainerDelete => "Microsoft.Storage/storageAccounts/blobServices/containers/delete",
        }
    }
}

/// Where a role is assigned. Broader scopes cover narrower ones.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Scope {
    /// The whole vault.
    Vault,
    /// One secret of the vault.
    Secret(String),
    /// The whole storage account.
    StorageAccount,
    /// One queue.
    Queue(String),
    /// One blob container.
    Container(String),
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Scope::Vault => f.write_str("vault"),
            Scope::Secret(name) => write!(f, "secret {name}"),
            Scope::StorageAccount => f.write_str("storage account"),
            Scope::Queue(name) => write!(f, "queue {name}"),
            Scope::Container(name) => write!(f, "container {name}"),
        }
    }
}

impl Scope {
    /// Whether an assignment at `self` applies to a request on `resource`.
    pub fn covers(&self, resource: &Scope) -> bool {
        match (self, resource) {
            (a, b) if a == b => true,
            (Scope::Vault, Scope::Secret(_)) => true,
            (Scope::StorageAccount, Scope::Queue(_) | Scope::Container(_)) => true,
            _ => false,
        }
    }
}

/// One assignment.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Assignment {
    /// Object id of the principal.
    pub principal: String,
    /// The role.
    pub role: Role,
    /// Where.
    pub scope: Scope,
}

/// The role table of one stack, changeable while it runs (tests grant and revoke).
#[derive(Debug, Default)]
pub struct RoleAssignments {
    assignments: RwLock<Vec<Assignment>>,
}

impl RoleAssignments {
    /// Grants `role` to `principal` at `scope` (idempotent).
    pub fn grant(&self, principal: &str, role: Role, scope: Scope) {
        let assignment = Assignment {
            principal: principal.to_owned(),
            role,
            scope,
        };
        let mut all = self.assignments.write();
        if !all.contains(&assignment) {
            all.push(assignment);
        }
    }

    /// Removes `role` from `principal` at `scope`; true when it was there.
    pub fn revoke(&self, principal: &str, role: Role, scope: &Scope) -> bool {
        let mut all = self.assignments.write();
        let before = all.len();
        all.retain(|a| !(a.principal == principal && a.role == role && &a.scope == scope));
        all.len() != before
    }

    /// Every assignment, in the order granted.
    pub fn all(&self) -> Vec<Assignment> {
        self.assignments.read().clone()
    }

    /// Whether `principal` may perform `action` on `resource`.
    pub fn allows(&self, principal: &str, action: DataAction, resource: &Scope) -> bool {
        self.assignments
            .read()
            .iter()
            .any(|a| a.principal == principal && a.scope.covers(resource) && grants(a.role, action))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_and_roles_combine_as_in_azure() {
        let roles = RoleAssignments::default();
        roles.grant(
            "app",
            Role::KeyVaultSecretsUser,
            Scope::Secret("third-party-api-key".into()),
        );
        roles.grant(
            "app",
            Role::StorageQueueDataMessageSender,
            Scope::Queue("q".into()),
        );
        let secret = Scope::Secret("third-party-api-key".into());
        assert!(roles.allows("app", DataAction::SecretGet, &secret));
        assert!(!roles.allows("app", DataAction::SecretSet, &secret));
        assert!(!roles.allows("app", DataAction::SecretGet, &Scope::Secret("other".into())));
        assert!(!roles.allows("app", DataAction::SecretReadMetadata, &Scope::Vault));
        assert!(roles.allows(
            "app",
            DataAction::QueueMessageAdd,
            &Scope::Queue("q".into())
        ));
        assert!(!roles.allows(
            "app",
            DataAction::QueueMessageRead,
            &Scope::Queue("q".into())
        ));
        assert!(!roles.allows(
            "app",
            DataAction::QueueMessageAdd,
            &Scope::Queue("q2".into())
        ));
        assert!(!roles.allows(
            "other",
            DataAction::QueueMessageAdd,
            &Scope::Queue("q".into())
        ));
        roles.grant("admin", Role::KeyVaultSecretsOfficer, Scope::Vault);
        assert!(roles.allows("admin", DataAction::SecretSet, &secret));
        assert!(roles.revoke("admin", Role::KeyVaultSecretsOfficer, &Scope::Vault));
        assert!(!roles.allows("admin", DataAction::SecretSet, &secret));
    }
}
