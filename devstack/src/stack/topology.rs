//! What the local Azure holds, wherever it runs (one process or compose): the resource names, the
//! identities, the services, their ports and addresses, and the role table granted at start.

use crate::azurite::ACCOUNT;
use crate::identity::{IdentityProvider, MSI_PATH};
use crate::rbac::{Role, RoleAssignments, Scope};

/// The queue main-app writes and queue-worker reads.
pub const QUEUE: &str = "code-requests";
/// Where failing messages go.
pub const POISON_QUEUE: &str = "code-requests-poison";
/// The ledger container.
pub const CONTAINER: &str = "codes";
// The Key Vault secrets holding main-app's key for third-party-api and third-party-api's
// master key: the names the services read when nothing else is set.
pub use shared_auth::variables::{
    DEFAULT_MASTER_KEY_SECRET_NAME as MASTER_KEY_SECRET_NAME, DEFAULT_SECRET_NAME as SECRET_NAME,
};
/// third-party-api's key store container (one blob, shared by every replica).
pub const KEY_STORE_CONTAINER: &str = "third-party-api-keys";
/// The key store blob in [`KEY_STORE_CONTAINER`].
pub const KEY_STORE_BLOB: &str = "keys.json";
/// The function key name that secret matches in third-party-api's store.
pub const FUNCTION_KEY_NAME: &str = "main-app";
pub use ops::roles::Identity;

/// Who signs in to a local stack: one of the system's identities (the role table's), the
/// developer (an operator: the apps' data roles and Processor on the poison queue), or the
/// stack's own identity, which seeds the vault and storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Principal {
    /// A service or the rotation job.
    System(Identity),
    /// The person running the stack.
    Developer,
    /// devstack itself.
    Devstack,
}

impl Principal {
    /// Its name in the identity emulator (and in tokens, env files and the console).
    pub fn name(self) -> &'static str {
        match self {
            Self::System(identity) => identity.name(),
            Self::Developer => "developer",
            Self::Devstack => "devstack",
        }
    }

    /// The names of every principal of a stack, each with its own client id, secret and object
    /// id: the role table's identities, the developer and devstack.
    pub fn names() -> Vec<&'static str> {
        let system = Identity::ALL
            .iter()
            .map(|&identity| Principal::System(identity));
        let all = system.chain([Principal::Developer, Principal::Devstack]);
        all.map(Principal::name).collect()
    }
}

impl From<Identity> for Principal {
    fn from(identity: Identity) -> Self {
        Self::System(identity)
    }
}

impl From<Service> for Principal {
    fn from(service: Service) -> Self {
        Self::System(service.identity())
    }
}

/// A service of the system, run from its binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// The example third-party API.
    ThirdPartyApi,
    /// The public app.
    MainApp,
    /// The queue consumer.
    QueueWorker,
}

impl Service {
    /// Every service devstack can run today, in start order.
    pub const ALL: &'static [Service] = &[
        Service::ThirdPartyApi,
        Service::MainApp,
        Service::QueueWorker,
    ];

    /// Binary, identity and log prefix name.
    pub fn name(self) -> &'static str {
        self.identity().name()
    }

    /// The identity it runs as.
    pub fn identity(self) -> Identity {
        match self {
            Self::ThirdPartyApi => Identity::ThirdPartyApi,
            Self::MainApp => Identity::MainApp,
            Self::QueueWorker => Identity::QueueWorker,
        }
    }
}

/// Ports to listen on; 0 picks a free one.
#[derive(Debug, Clone, Copy)]
pub struct Ports {
    /// Identity emulator (HTTPS).
    pub identity: u16,
    /// Key Vault emulator (HTTPS).
    pub key_vault: u16,
    /// Blob storage gate (HTTPS).
    pub blob: u16,
    /// Queue storage gate (HTTPS).
    pub queue: u16,
    /// third-party-api (HTTP).
    pub third_party_api: u16,
    /// main-app (HTTP).
    pub main_app: u16,
    /// queue-worker's health port (HTTP).
    pub queue_worker: u16,
}

impl Ports {
    /// The documented ports of `cargo run -p devstack`.
    pub const DEFAULT: Ports = Ports {
        identity: 42356,
        key_vault: 8443,
        blob: 10000,
        queue: 10001,
        third_party_api: 7071,
        main_app: 8080,
        queue_worker: 8081,
    };
    /// Free ports everywhere (tests, several stacks at once).
    pub const EPHEMERAL: Ports = Ports {
        identity: 0,
        key_vault: 0,
        blob: 0,
        queue: 0,
        third_party_api: 0,
        main_app: 0,
        queue_worker: 0,
    };

    /// The port `service` listens on.
    pub fn of(&self, service: Service) -> u16 {
        match service {
            Service::ThirdPartyApi => self.third_party_api,
            Service::MainApp => self.main_app,
            Service::QueueWorker => self.queue_worker,
        }
    }
}

/// Where everything listens.
#[derive(Debug, Clone)]
pub struct Urls {
    /// Identity emulator base, also `AZURE_AUTHORITY_HOST`.
    pub identity: String,
    /// `IDENTITY_ENDPOINT`.
    pub msi_endpoint: String,
    /// `KEY_VAULT_URL`.
    pub key_vault: String,
    /// Blob service of the account, through the gate.
    pub blob_service: String,
    /// Queue service of the account, through the gate.
    pub queue_service: String,
    /// `STORAGE_QUEUE_URL`.
    pub queue: String,
    /// The poison queue.
    pub poison_queue: String,
    /// `CODE_LEDGER_URL`.
    pub container: String,
    /// `THIRD_PARTY_API_KEYS_URL`: third-party-api's key store blob.
    pub key_store: String,
    /// third-party-api base.
    pub third_party_api: String,
    /// `THIRD_PARTY_API_ENDPOINT`.
    pub third_party_api_endpoint: String,
    /// main-app base.
    pub main_app: String,
    /// queue-worker's health port base.
    pub queue_worker: String,
}

impl Urls {
    /// The addresses of a stack on loopback whose listeners and services have `ports` (none 0).
    pub(crate) fn on_loopback(ports: &Ports) -> Self {
        let identity = format!("https://127.0.0.1:{}", ports.identity);
        let blob_service = format!("https://127.0.0.1:{}/{ACCOUNT}", ports.blob);
        let queue_service = format!("https://127.0.0.1:{}/{ACCOUNT}", ports.queue);
        let third_party_api = format!("http://127.0.0.1:{}", ports.third_party_api);
        Self {
            msi_endpoint: format!("{identity}{MSI_PATH}"),
            identity,
            key_vault: format!("https://127.0.0.1:{}", ports.key_vault),
            queue: format!("{queue_service}/{QUEUE}"),
            poison_queue: format!("{queue_service}/{POISON_QUEUE}"),
            container: format!("{blob_service}/{CONTAINER}"),
            key_store: key_store_url(&blob_service),
            blob_service,
            queue_service,
            third_party_api_endpoint: format!("{third_party_api}/api/RandomNumber"),
            third_party_api,
            main_app: format!("http://127.0.0.1:{}", ports.main_app),
            queue_worker: format!("http://127.0.0.1:{}", ports.queue_worker),
        }
    }

    /// The base URL of `service`.
    pub fn of(&self, service: Service) -> &str {
        match service {
            Service::ThirdPartyApi => &self.third_party_api,
            Service::MainApp => &self.main_app,
            Service::QueueWorker => &self.queue_worker,
        }
    }
}

/// third-party-api's key store blob under `blob_service` (`https://host:port/<account>`).
pub fn key_store_url(blob_service: &str) -> String {
    format!("{blob_service}/{KEY_STORE_CONTAINER}/{KEY_STORE_BLOB}")
}

/// The local resource a scope of the role table stands for; `None` for the container registry
/// (image pulls have no local counterpart).
pub fn local_scope(kind: ops::roles::ScopeKind) -> Option<Scope> {
    use ops::roles::ScopeKind;
    match kind {
        ScopeKind::Secret => Some(Scope::Secret(SECRET_NAME.to_owned())),
        ScopeKind::MasterKeySecret => Some(Scope::Secret(MASTER_KEY_SECRET_NAME.to_owned())),
        ScopeKind::KeyStoreContainer => Some(Scope::Container(KEY_STORE_CONTAINER.to_owned())),
        ScopeKind::Queue => Some(Scope::Queue(QUEUE.to_owned())),
        ScopeKind::PoisonQueue => Some(Scope::Queue(POISON_QUEUE.to_owned())),
        ScopeKind::Container => Some(Scope::Container(CONTAINER.to_owned())),
        ScopeKind::Registry => None,
    }
}

/// The role table (`ops::roles`, the one `infra/` and `keyless doctor` use), and nothing more;
/// plus the developer (an operator: the apps' data roles and Processor on the poison queue) and
/// the stack's own seeding identity.
pub(crate) fn grant_role_table(identities: &IdentityProvider, roles: &RoleAssignments) {
    let oid = |who: Principal| {
        identities
            .get(who.name())
            .expect("known identity")
            .object_id
            .clone()
    };
    for row in ops::roles::GRANTS {
        if let Some(at) = local_scope(row.scope) {
            roles.grant(&oid(row.identity.into()), row.role, at);
        }
    }
    for (role, kind) in ops::roles::operator_grants() {
        if let Some(at) = local_scope(kind) {
            roles.grant(&oid(Principal::Developer), role, at);
        }
    }
    let admin = oid(Principal::Devstack);
    roles.grant(&admin, Role::KeyVaultSecretsOfficer, Scope::Vault);
    roles.grant(
        &admin,
        Role::StorageQueueDataContributor,
        Scope::StorageAccount,
    );
    roles.grant(
        &admin,
        Role::StorageBlobDataContributor,
        Scope::StorageAccount,
    );
}
