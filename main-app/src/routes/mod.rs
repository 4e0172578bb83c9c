//! HTTP routes, one file per resource.

pub mod getcode;
pub mod health;
pub mod home;
pub mod openapi;
pub mod verify;

use crate::queue::CodeQueue;
use crate::third_party::ThirdPartyApi;
use codes::ledger::CodeLedger;
use shared_auth::secret_cache::SecretCache;
use std::time::Duration;

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    /// The third-party API client (with the Key Vault key).
    pub third_party: ThirdPartyApi,
    /// The outgoing queue.
    pub queue: CodeQueue,
    /// The code ledger.
    pub ledger: CodeLedger,
    /// The Key Vault secret (for readiness).
    pub secret: SecretCache,
    /// How long a code is valid.
    pub code_ttl: Duration,
    /// The most a request may take, whatever hangs behind it.
    pub request_timeout: Duration,
}
