//! HTTP routes, one file per resource.

pub mod getcode;
pub mod health;
pub mod home;
pub mod verify;

use crate::queue::CodeQueue;
use crate::reservations::Reservations;
use crate::third_party::ThirdPartyApi;
use actix_web::web;
use codes::ledger::CodeLedger;
use service_kit::http_methods::{json_document, resource};
use service_kit::service::not_found;
use shared_auth::secret_cache::SecretCache;
use std::sync::Arc;
use std::time::Duration;

/// Every route of main-app; the handlers read a `web::Data<AppState>` from the app.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/").get(home::home))
        .service(resource("/api/v1/getcode").get(getcode::get_code))
        .service(resource("/api/v1/codes/verify").post(verify::verify))
        .service(resource("/healthz").get(health::healthz))
        .service(resource("/readyz").get(health::readyz))
        .service(resource("/openapi.json").get(json_document(include_str!("../../openapi.json"))))
        .default_service(web::to(not_found));
}

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    /// The third-party API client (with the Key Vault key).
    pub third_party: ThirdPartyApi,
    /// The outgoing queue.
    pub queue: CodeQueue,
    /// The code ledger (verify consumes codes in it).
    pub ledger: CodeLedger,
    /// The same ledger as getcode reserves codes in it, with its readiness.
    pub reservations: Reservations,
    /// The Key Vault secret (for readiness).
    pub secret: SecretCache,
    /// Where codes come from.
    pub codes: getcode::CodeSource,
    /// How long a code is valid.
    pub code_ttl: Duration,
    /// The most a request may take, whatever hangs behind it.
    pub request_timeout: Duration,
    /// Turns for getcode and verify to work on their dependencies ([`MAX_CONCURRENT_REQUESTS`]).
    ///
    /// [`MAX_CONCURRENT_REQUESTS`]: crate::config::MAX_CONCURRENT_REQUESTS
    pub turns: Arc<tokio::sync::Semaphore>,
}
