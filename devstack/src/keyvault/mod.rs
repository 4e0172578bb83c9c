//! The Key Vault emulator: the secrets REST API as Azure serves it, over HTTPS, with challenge
//! authentication, token checks (signature, issuer, audience, lifetime) and RBAC per secret.
//! It works unchanged with the Rust `SecretClient` and Python's `azure-keyvault-secrets`.
//!
//! By concern: `state` (what the vault holds), `auth` (who may call), `model` (request bodies
//! and rendered secrets), `error` (errors as Key Vault answers them) and `routes`.

mod auth;
mod error;
mod model;
mod routes;
mod state;

use crate::caller::AccessCheck;
use crate::stall::Stall;
use parking_lot::{Mutex, RwLock};
use shared_auth::Secret;
use state::{AttributesIn, Deleted, SecretEntry};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

/// The audience of Key Vault tokens.
pub const VAULT_RESOURCE: &str = "https://vault.azure.net";
/// API versions accepted (what current SDKs send).
pub const API_VERSIONS: &[&str] = &[
    "7.0",
    "7.1",
    "7.2",
    "7.3",
    "7.4",
    "7.5",
    "7.6",
    "2025-07-01",
    "2026-04-01",
];
/// Days a deleted secret stays recoverable.
const RECOVERABLE_DAYS: i64 = 90;
/// Largest secret value Azure accepts.
const MAX_VALUE_BYTES: usize = 25 * 1024;
/// Default and largest page size of list operations.
const DEFAULT_PAGE: usize = 25;
const MAX_PAGE: usize = 25;

/// One vault: its secrets, and who may do what.
pub struct KeyVault {
    secrets: RwLock<BTreeMap<String, SecretEntry>>,
    /// Successful reads of each secret's value (tests check refresh counts with it).
    reads: RwLock<BTreeMap<String, u64>>,
    /// False simulates an outage: every request gets 503.
    available: AtomicBool,
    /// The simulated hang ([`Self::stall`]).
    stall: Stall,
    deleted: RwLock<BTreeMap<String, Deleted>>,
    access: AccessCheck,
    /// Where each change is written ([`Self::persist_to`]), if anywhere.
    persist: OnceLock<Persist>,
}

/// The file the current values are kept in, and the lock that orders its writes.
struct Persist {
    path: PathBuf,
    owner: Option<(u32, u32)>,
    writing: Mutex<()>,
}

impl KeyVault {
    /// An empty vault whose callers `access` checks.
    pub fn new(access: AccessCheck) -> Self {
        Self {
            secrets: RwLock::default(),
            reads: RwLock::default(),
            available: AtomicBool::new(true),
            stall: Stall::default(),
            deleted: RwLock::default(),
            access,
            persist: OnceLock::new(),
        }
    }

    /// From now on (and once at once), writes the current value of every secret to `path` after
    /// each change: a JSON object of names to values, mode 0600, given to `owner`, replaced
    /// atomically. A vault seeded from it after a restart serves what was last set (each value
    /// as one new version: not the history, nor the attributes). Fails if it was already set.
    pub fn persist_to(&self, path: PathBuf, owner: Option<(u32, u32)>) -> anyhow::Result<()> {
        let persist = Persist {
            path,
            owner,
            writing: Mutex::new(()),
        };
        self.persist
            .set(persist)
            .map_err(|p| anyhow::anyhow!("the vault is already kept in {}", p.path.display()))?;
        self.write_values()
    }

    /// A secret was set, deleted or recovered: writes the values if [`Self::persist_to`] says
    /// where. A failure is logged (the path and why, never a value) and the change stands.
    fn changed(&self) {
        if let Err(e) = self.write_values() {
            tracing::error!(error = %format!("{e:#}"), "cannot keep the vault's secrets");
        }
    }

    fn write_values(&self) -> anyhow::Result<()> {
        let Some(persist) = self.persist.get() else {
            return Ok(());
        };
        // Held from the read to the rename, so the last write holds the last change.
        let _writing = persist.writing.lock();
        let values: BTreeMap<String, String> = self
            .secrets
            .read()
            .iter()
            .filter_map(|(name, entry)| {
                let latest = entry.versions.last()?;
                Some((name.clone(), latest.value.expose().to_owned()))
            })
            .collect();
        let bytes = serde_json::to_vec(&values)?;
        crate::pki::write_file(&persist.path, &bytes, 0o600, persist.owner)
    }

    /// Sets a secret directly (seeding), as a new version; returns the version id.
    pub fn seed(&self, name: &str, value: &Secret) -> String {
        self.add_version(name, value.clone(), None, None, AttributesIn::default())
    }

    /// How many times the value of `name` was read successfully.
    pub fn reads(&self, name: &str) -> u64 {
        self.reads.read().get(name).copied().unwrap_or(0)
    }

    /// Simulates an outage (`false`: every request is answered 503) or ends it.
    pub fn set_available(&self, available: bool) {
        self.available.store(available, Ordering::SeqCst);
    }

    /// The vault's simulated hang: while set, every secrets request waits, unanswered, until the
    /// stall ends or its client gives up. Only the secrets API is held: `/healthz` and the control
    /// methods (`seed`, `set_available`, ...) keep answering.
    pub fn stall(&self) -> &Stall {
        &self.stall
    }
}

impl AsRef<Stall> for KeyVault {
    fn as_ref(&self) -> &Stall {
        &self.stall
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::{App, test};
    use std::sync::Arc;
    use std::time::Duration;

    /// A stalled vault holds a request (no answer, not even the 401 challenge) while its control
    /// methods keep answering, and answers it once un-stalled.
    #[actix_web::test]
    async fn a_stalled_vault_holds_requests_until_unstalled() {
        let identities = Arc::new(crate::identity::IdentityProvider::new(&["main-app"]).unwrap());
        let vault = Arc::new(KeyVault::new(AccessCheck::new(
            identities,
            Arc::default(),
            Arc::default(),
            "Key Vault",
        )));
        let app = test::init_service(App::new().configure(|cfg| vault.configure(cfg))).await;
        let get = || {
            test::TestRequest::get()
                .uri("/secrets/key?api-version=7.6")
                .to_request()
        };
        vault.stall().set(true);
        let mut held = std::pin::pin!(test::call_service(&app, get()));
        let waited = tokio::time::timeout(Duration::from_millis(300), held.as_mut()).await;
        assert!(waited.is_err(), "answered while stalled");
        assert_eq!(vault.stall().held(), 1);
        // Control calls are not held.
        vault.seed("key", &Secret::new("value"));
        vault.set_available(true);
        let health = test::TestRequest::get().uri("/healthz").to_request();
        assert_eq!(test::call_service(&app, health).await.status(), 200);
        vault.stall().set(false);
        let res = tokio::time::timeout(Duration::from_secs(5), held)
            .await
            .expect("answered once un-stalled");
        assert_eq!(res.status(), 401, "the challenge, as without a stall");
        assert_eq!(test::call_service(&app, get()).await.status(), 401);
        assert_eq!(vault.stall().held(), 1, "nothing held after the stall");
    }
}
