//! devstack in containers (`docker-compose.yml`): `devstack compose init` prepares the volumes
//! once, `devstack compose serve` runs the identity and Key Vault emulators and the storage
//! gates in front of the Azurite container.
//!
//! The services reach their identity as workload identity does on Kubernetes: each one reads a
//! federated token from a file (`AZURE_FEDERATED_TOKEN_FILE`) and exchanges it at the identity
//! emulator (`AZURE_AUTHORITY_HOST`) for its own access tokens. The compose file then names only
//! client ids, which are not secrets; every secret is generated here, into the volumes.
//!
//! Layout under `--dir` (default `/devstack`): each subdirectory is its own named volume, so a
//! container mounts only what it needs (`docker-compose.yml` says who mounts which):
//! - `keys/` (volume `devstack-keys`; `init` and `local-azure` only): `pki/` (the dev CA with its
//!   key, local-azure's server certificate), `identity/signing.pk8` (the token signing key, so
//!   restarts keep tokens valid), `keyvault/secrets.json` (what the vault holds at start:
//!   main-app's function key `third-party-api-key` and third-party-api's master key
//!   `third-party-api-master-key`; `serve` writes every change back, so a restart keeps what
//!   `keyless rotate` wrote).
//! - `ca/ca.pem` (volume `ca-public`): the CA certificate alone, for the services.
//! - `azurite-tls/` (volume `azurite-tls`): Azurite's own certificate and key, for `azurite` only.
//! - `workload-identity/<service>/token` (volume `token-<service>`): one service's federated
//!   token, renewed by `serve`.
//!
//! third-party-api keeps its keys as in Azure: in the blob `third-party-api-keys/keys.json`,
//! which `serve` writes once storage is provisioned (holding the vault's `third-party-api-key` as
//! function key `main-app`; an existing blob with keys is kept, so a restart keeps a rotated
//! store), read through the storage gate with its own identity; its master key comes from the
//! vault.
//!
//! Run as root (compose runs `init` so, since fresh volumes belong to root), `init` and `serve`
//! give every file and directory they write to [`SERVICE_USER`], the user every image runs as.
//!
//! By concern: `volume` (the layout and what lives in it), `init` and `serve`.

mod init;
mod serve;
mod volume;

use crate::stack::{MASTER_KEY_SECRET_NAME, SECRET_NAME};
use std::time::Duration;

pub use crate::stack::key_store_url;
pub use init::init;
pub use serve::serve;
pub use volume::Volume;

/// Where the volumes are mounted in every container (`--dir`).
pub const DEFAULT_DIR: &str = "/devstack";
/// The services that get a federated token file.
pub const WORKLOADS: &[&str] = &["main-app", "queue-worker", "third-party-api"];
/// The vault's secrets `init` generates when absent: main-app's key and the master key.
pub const VAULT_SECRETS: &[&str] = &[SECRET_NAME, MASTER_KEY_SECRET_NAME];
/// Lifetime of a federated token, as a projected service account token's default.
pub const FEDERATED_TOKEN_LIFETIME: Duration = Duration::from_secs(3600);
/// How often `serve` rewrites the federated tokens (the SDK re-reads the file every 10 min).
pub const FEDERATED_TOKEN_RENEWAL: Duration = Duration::from_secs(300);
/// `serve`'s readiness port (plain HTTP on loopback, for the container's health check).
pub const READY_PORT: u16 = 8079;
/// Azurite's blob and queue ports inside the compose network.
pub const AZURITE_PORTS: (u16, u16) = (10000, 10001);
/// Azurite's host name in compose: the only name its certificate is valid for.
pub const AZURITE_HOST: &str = "azurite";
/// The user and group every image runs as (distroless `nonroot`).
pub const SERVICE_USER: (u32, u32) = (65532, 65532);

#[cfg(test)]
mod tests;
