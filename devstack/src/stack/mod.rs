//! The whole local Azure, started together: PKI, identity and Key Vault emulators, Azurite behind
//! the storage gates, the seed (secret, queues, container, key store, roles), then the services
//! as child processes with the production environment variables.
//!
//! By concern: `topology` (resource names, identities, services, ports, addresses, the role
//! table), `options` (how a stack starts), `lifecycle` ([`DevStack`] from start to stop),
//! `faults` (process ids, an Azurite outage), `console` (the console bound and served), `environment` (the variables each service and
//! identity gets), and what `compose serve` starts too: `emulators` (the identity and vault
//! emulators and the gates, served in this process) and `provision` (the storage a stack needs).

mod console;
mod emulators;
mod environment;
mod faults;
mod lifecycle;
mod options;
mod provision;
mod topology;

pub(crate) use emulators::Emulators;
pub(crate) use environment::service_principal_env;
pub use lifecycle::DevStack;
pub use options::{StackOptions, is_telemetry_variable, profile_dir, target_dir};
pub(crate) use provision::function_key_document;
pub(crate) use provision::key_store;
pub use provision::provision_storage;
pub use topology::{
    CONTAINER, FUNCTION_KEY_NAME, Identity, KEY_STORE_BLOB, KEY_STORE_CONTAINER,
    MASTER_KEY_SECRET_NAME, POISON_QUEUE, Ports, Principal, QUEUE, SECRET_NAME, Service, Urls,
    key_store_url, local_scope,
};
