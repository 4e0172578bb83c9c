//! The one role table: which identity holds which role at which scope, with Azure's role names
//! and ids. `doctor` names missing roles from it, devstack seeds its emulators from it, and the
//! infra tests check `infra/modules/roles.bicep` against it, so the three cannot disagree.

use shared_auth::role_names;

/// The roles this system grants (built-in, except the one custom role).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Read secret contents and metadata.
    KeyVaultSecretsUser,
    /// Every secret operation (seeding, rotation).
    KeyVaultSecretsOfficer,
    /// Add messages.
    StorageQueueDataMessageSender,
    /// Peek, receive and delete messages.
    StorageQueueDataMessageProcessor,
    /// Peek messages and read queue properties (the queue length KEDA scales on).
    StorageQueueDataReader,
    /// Every queue and message operation (devstack's seeding identity only).
    StorageQueueDataContributor,
    /// Read, write and delete blobs and containers.
    StorageBlobDataContributor,
    /// Pull images from the container registry.
    AcrPull,
    /// Custom role with the one data action `messages/write`: what Update Message (visibility
    /// renewal, early retry) needs, which neither Message Processor nor Message Sender grants.
    StorageQueueDataMessageUpdater,
}

impl Role {
    /// Every role of the table.
    pub const ALL: &'static [Role] = &[
        Role::KeyVaultSecretsUser,
        Role::KeyVaultSecretsOfficer,
        Role::StorageQueueDataMessageSender,
        Role::StorageQueueDataMessageProcessor,
        Role::StorageQueueDataReader,
        Role::StorageQueueDataContributor,
        Role::StorageBlobDataContributor,
        Role::AcrPull,
        Role::StorageQueueDataMessageUpdater,
    ];

    /// The role's name in Azure (the custom role's base name; infra suffixes the resource group).
    pub fn name(self) -> &'static str {
        match self {
            Self::KeyVaultSecretsUser => role_names::KEY_VAULT_SECRETS_USER,
            Self::KeyVaultSecretsOfficer => role_names::KEY_VAULT_SECRETS_OFFICER,
            Self::StorageQueueDataMessageSender => role_names::QUEUE_MESSAGE_SENDER,
            Self::StorageQueueDataMessageProcessor => role_names::QUEUE_MESSAGE_PROCESSOR,
            Self::StorageQueueDataReader => role_names::QUEUE_DATA_READER,
            Self::StorageQueueDataContributor => role_names::QUEUE_DATA_CONTRIBUTOR,
            Self::StorageBlobDataContributor => role_names::BLOB_DATA_CONTRIBUTOR,
            Self::AcrPull => role_names::ACR_PULL,
            Self::StorageQueueDataMessageUpdater => role_names::QUEUE_MESSAGE_UPDATER,
        }
    }

    /// The built-in role definition id; `None` for the custom role (its id differs per
    /// resource group: `guid(resourceGroup().id, name)` in `infra/modules/roles.bicep`).
    pub fn id(self) -> Option<&'static str> {
        match self {
            Self::KeyVaultSecretsUser => Some("4633458b-17de-408a-b874-0445c86b69e6"),
            Self::KeyVaultSecretsOfficer => Some("b86a8fe4-44ce-4948-aee5-eccb2c155cd7"),
            Self::StorageQueueDataMessageSender => Some("c6a89b2d-59bc-44d0-9896-0f6e12d7b80a"),
            Self::StorageQueueDataMessageProcessor => Some("8a0f0c08-91a1-4084-bc3d-661d67233fed"),
            Self::StorageQueueDataReader => Some("19e7f393-937e-4f77-808e-94535e297925"),
            Self::StorageQueueDataContributor => Some("974c5e8b-45b9-4653-ba55-5f855dd0fb88"),
            Self::StorageBlobDataContributor => Some("ba92f5b4-2d11-453d-a403-e96b0029c9fe"),
            Self::AcrPull => Some("7f951dda-4ed3-4680-a7ca-43fe172d538d"),
            Self::StorageQueueDataMessageUpdater => None,
        }
    }
}

/// The identities of the system that hold roles (also `keyless doctor --as`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum Identity {
    /// The public app: secret, queue send, ledger.
    MainApp,
    /// The consumer: queue send, update, delete and length, poison send, ledger.
    QueueWorker,
    /// The example API: its master key and key store.
    ThirdPartyApi,
    /// The rotation job (`keyless rotate`): read and write both secrets.
    Rotation,
}

impl Identity {
    /// Every identity of the table: the three services and the rotation job.
    pub const ALL: &'static [Identity] = &[
        Identity::MainApp,
        Identity::QueueWorker,
        Identity::ThirdPartyApi,
        Identity::Rotation,
    ];

    /// The service (and identity) name.
    pub fn name(self) -> &'static str {
        match self {
            Self::MainApp => "main-app",
            Self::QueueWorker => "queue-worker",
            Self::ThirdPartyApi => "third-party-api",
            Self::Rotation => "rotation",
        }
    }
}

/// The kind of resource a role is assigned on (always one resource, never a group).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScopeKind {
    /// The secret main-app reads (`THIRD_PARTY_API_SECRET_NAME`): its key for third-party-api.
    Secret,
    /// The secret third-party-api reads (`THIRD_PARTY_API_MASTER_KEY_SECRET_NAME`): its master key.
    MasterKeySecret,
    /// The code queue (`STORAGE_QUEUE_URL`).
    Queue,
    /// Its poison queue (`POISON_QUEUE_URL`, `<queue>-poison`).
    PoisonQueue,
    /// The ledger container (`CODE_LEDGER_URL`).
    Container,
    /// third-party-api's key store container (`THIRD_PARTY_API_KEYS_URL`).
    KeyStoreContainer,
    /// The container registry.
    Registry,
}

impl ScopeKind {
    /// The name `infra/modules/roles.bicep` uses for this scope.
    pub fn bicep_name(self) -> &'static str {
        match self {
            Self::Secret => "secret",
            Self::MasterKeySecret => "master-key-secret",
            Self::Queue => "queue",
            Self::PoisonQueue => "poison-queue",
            Self::Container => "container",
            Self::KeyStoreContainer => "key-store-container",
            Self::Registry => "registry",
        }
    }
}

/// One row of the table: `identity` holds `role` on `scope`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Grant {
    /// Who.
    pub identity: Identity,
    /// What.
    pub role: Role,
    /// Where.
    pub scope: ScopeKind,
}

const fn grant(identity: Identity, role: Role, scope: ScopeKind) -> Grant {
    Grant {
        identity,
        role,
        scope,
    }
}

/// Every role the services hold, at the narrowest scope. The worker only sends to the poison
/// queue: requeueing poison is an operator's job ([`OPERATOR_EXTRA`]).
#[rustfmt::skip]
pub const GRANTS: &[Grant] = &[
    grant(Identity::MainApp, Role::KeyVaultSecretsUser, ScopeKind::Secret),
    grant(Identity::MainApp, Role::StorageQueueDataMessageSender, ScopeKind::Queue),
    grant(Identity::MainApp, Role::StorageBlobDataContributor, ScopeKind::Container),
    grant(Identity::MainApp, Role::AcrPull, ScopeKind::Registry),
    grant(Identity::QueueWorker, Role::StorageQueueDataMessageProcessor, ScopeKind::Queue),
    grant(Identity::QueueWorker, Role::StorageQueueDataMessageUpdater, ScopeKind::Queue),
    grant(Identity::QueueWorker, Role::StorageQueueDataReader, ScopeKind::Queue),
    grant(Identity::QueueWorker, Role::StorageQueueDataMessageSender, ScopeKind::PoisonQueue),
    grant(Identity::QueueWorker, Role::StorageBlobDataContributor, ScopeKind::Container),
    grant(Identity::QueueWorker, Role::AcrPull, ScopeKind::Registry),
    grant(Identity::ThirdPartyApi, Role::KeyVaultSecretsUser, ScopeKind::MasterKeySecret),
    grant(Identity::ThirdPartyApi, Role::StorageBlobDataContributor, ScopeKind::KeyStoreContainer),
    grant(Identity::ThirdPartyApi, Role::AcrPull, ScopeKind::Registry),
    grant(Identity::Rotation, Role::KeyVaultSecretsOfficer, ScopeKind::Secret),
    grant(Identity::Rotation, Role::KeyVaultSecretsOfficer, ScopeKind::MasterKeySecret),
    grant(Identity::Rotation, Role::AcrPull, ScopeKind::Registry),
];

/// What an operator (developer) holds beyond the apps' data roles: Processor on the poison
/// queue, for `keyless queue peek --poison` and `requeue-poison`.
pub const OPERATOR_EXTRA: &[(Role, ScopeKind)] = &[(
    Role::StorageQueueDataMessageProcessor,
    ScopeKind::PoisonQueue,
)];

/// The rows of `identity`.
pub fn grants_of(identity: Identity) -> impl Iterator<Item = Grant> {
    GRANTS
        .iter()
        .copied()
        .filter(move |g| g.identity == identity)
}

/// An operator's data roles (what `infra/scripts/grant-developer-access.sh` grants): every
/// service's, except image pulls and KEDA's queue reader, plus [`OPERATOR_EXTRA`].
pub fn operator_grants() -> Vec<(Role, ScopeKind)> {
    let mut all: Vec<(Role, ScopeKind)> = Vec::new();
    let from_apps = GRANTS
        .iter()
        .filter(|g| g.scope != ScopeKind::Registry && g.role != Role::StorageQueueDataReader)
        .map(|g| (g.role, g.scope));
    for row in from_apps.chain(OPERATOR_EXTRA.iter().copied()) {
        if !all.contains(&row) {
            all.push(row);
        }
    }
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_built_in_role_has_a_guid_and_only_the_custom_one_has_none() {
        for role in Role::ALL {
            match role.id() {
                Some(id) => {
                    assert_eq!(id.len(), 36, "{role:?}");
                    assert!(id.chars().all(|c| c.is_ascii_hexdigit() || c == '-'));
                }
                None => assert_eq!(*role, Role::StorageQueueDataMessageUpdater),
            }
        }
    }

    #[test]
    fn the_operator_can_requeue_poison() {
        let op = operator_grants();
        assert!(op.contains(&(
            Role::StorageQueueDataMessageProcessor,
            ScopeKind::PoisonQueue
        )));
        assert!(!op.iter().any(|(r, _)| *r == Role::AcrPull));
    }
}
