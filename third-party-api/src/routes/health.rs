//! `/healthz` (the process is alive) and `/readyz` (the keys are loaded). `/readyz` says only
//! ready or not and which check fails; why goes to the log.

use crate::key_store::KeyStore;
use actix_web::{HttpResponse, web};
use serde_json::json;

/// Seconds a client is asked to wait before asking again when not ready.
const RETRY_AFTER_SECONDS: u64 = 5;

/// Liveness: answering at all is the proof.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "alive" }))
}

/// Readiness: the keys are loaded (and a file store is still on disk). The master key is not
/// part of it: `RandomNumber` serves without it; only the admin API waits for it.
pub async fn readyz(store: web::Data<KeyStore>) -> HttpResponse {
    if store.is_ready() {
        HttpResponse::Ok().json(json!({ "status": "ready" }))
    } else {
        HttpResponse::ServiceUnavailable()
            .insert_header(("Retry-After", RETRY_AFTER_SECONDS.to_string()))
            .json(json!({ "status": "not_ready", "failing": ["key_store"] }))
    }
}
