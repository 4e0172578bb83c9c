//! `/healthz` (the process is alive) and `/readyz` (the key store is in place).

use crate::key_store::KeyStore;
use actix_web::{HttpResponse, web};
use serde_json::json;

/// Liveness: answering at all is the proof.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "alive" }))
}

/// Readiness: keys are loaded and their store is still on disk.
pub async fn readyz(store: web::Data<KeyStore>) -> HttpResponse {
    if store.is_persisted() {
        HttpResponse::Ok().json(json!({ "status": "ready", "checks": { "key_store": "ok" } }))
    } else {
        HttpResponse::ServiceUnavailable().json(json!({
            "status": "not_ready",
            "checks": { "key_store": format!("{} is missing", store.path().display()) }
        }))
    }
}
