//! `/healthz` (the process answers) and `/readyz` (the secret is loaded and the queue takes
//! messages). `/readyz` is public: it says only ready or not and which check fails; why goes to
//! the log (vault host, identity URL and Azure's error text are for operators, not the internet).

use super::AppState;
use crate::queue::QueueHealth;
use actix_web::{HttpResponse, web};
use serde_json::json;
use shared_auth::secret_cache::SecretReadiness;

/// Liveness.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "alive" }))
}

/// Readiness: 200 `{"status":"ready"}`, or 503 `{"status":"not_ready","failing":[...]}` naming
/// the checks that fail (`secret`, `queue`).
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let mut failing = Vec::new();
    if matches!(state.secret.readiness(), SecretReadiness::NotReady { .. }) {
        failing.push("secret");
    }
    if state.queue.health() != QueueHealth::CanSend {
        failing.push("queue");
    }
    if failing.is_empty() {
        HttpResponse::Ok().json(json!({ "status": "ready" }))
    } else {
        HttpResponse::ServiceUnavailable()
            .insert_header(("Retry-After", super::RETRY_AFTER_SECONDS.to_string()))
            .json(json!({ "status": "not_ready", "failing": failing }))
    }
}
