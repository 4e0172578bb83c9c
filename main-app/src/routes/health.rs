//! `/healthz` (the process answers) and `/readyz` (the secret is loaded and the queue answers;
//! the body says what is missing and why).

use super::AppState;
use crate::queue::QueueHealth;
use actix_web::{HttpResponse, web};
use serde_json::json;
use shared_auth::secret_cache::SecretReadiness;

/// Liveness.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "alive" }))
}

/// Readiness, with one line per dependency.
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let (secret_ok, secret) = match state.secret.readiness() {
        SecretReadiness::Ready { last_error: None } => (true, "loaded".to_owned()),
        SecretReadiness::Ready {
            last_error: Some(e),
        } => (true, format!("loaded; serving the last good value: {e}")),
        SecretReadiness::NotReady { reason } => (false, reason),
    };
    let (queue_ok, queue) = match state.queue.health() {
        QueueHealth::Reachable => (true, "reachable".to_owned()),
        QueueHealth::Unknown => (false, "not checked yet".to_owned()),
        QueueHealth::Unreachable(reason) => (false, reason),
    };
    let mut checks = json!({ "secret": secret, "queue": queue });
    if let Some(error) = state.queue.last_send_error() {
        checks["queue_last_send"] = error.into();
    }
    let ready = secret_ok && queue_ok;
    let body = json!({ "status": if ready { "ready" } else { "not_ready" }, "checks": checks });
    if ready {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}
