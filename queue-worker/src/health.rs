//! The worker's small HTTP port: `/healthz`, `/readyz` (receiving works; says why not), and
//! `/metrics` (processed, retried, poisoned, in Prometheus text format).

use crate::worker::{ReceiveStatus, Worker, describe_status};
use actix_web::{HttpResponse, web};
use serde_json::json;
use std::sync::atomic::Ordering;

/// Registers the routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(healthz))
        .route("/readyz", web::get().to(readyz))
        .route("/metrics", web::get().to(metrics));
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "alive" }))
}

async fn readyz(worker: web::Data<Worker>) -> HttpResponse {
    let status = worker.status();
    let body = json!({
        "status": if status == ReceiveStatus::Ok { "ready" } else { "not_ready" },
        "checks": { "queue": describe_status(&status) },
    });
    if status == ReceiveStatus::Ok {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

async fn metrics(worker: web::Data<Worker>) -> HttpResponse {
    let stats = &worker.stats;
    let mut text = String::new();
    for (name, help, value) in [
        (
            "queue_worker_messages_processed_total",
            "Messages handled and deleted.",
            &stats.processed,
        ),
        (
            "queue_worker_messages_retried_total",
            "Failed attempts left for another try.",
            &stats.retried,
        ),
        (
            "queue_worker_messages_poisoned_total",
            "Messages moved to the poison queue.",
            &stats.poisoned,
        ),
    ] {
        text.push_str(&format!(
            "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}\n",
            value.load(Ordering::Relaxed)
        ));
    }
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(text)
}
