//! The worker's small HTTP port: `/healthz`, `/readyz` (receiving works, the ledger answers; why
//! not is logged), and
//! `/metrics` (processed, retried, poisoned, swept, in Prometheus text format).

use crate::worker::Worker;
use actix_web::{HttpResponse, web};
use service_kit::service::{Readiness, healthz};
use std::sync::atomic::Ordering;

/// Registers the routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(healthz))
        .route("/readyz", web::get().to(readyz))
        .route("/metrics", web::get().to(metrics));
}

/// Readiness: check `queue`, receiving works, and `ledger`, the ledger answers (it is passing
/// until a record fails); why not goes to the log.
async fn readyz(worker: web::Data<Worker>) -> Readiness {
    Readiness::new()
        .state("queue", &worker.status(), "not received yet")
        .state("ledger", &worker.ledger_state(), "not used yet")
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
        (
            "queue_worker_ledger_records_swept_total",
            "Expired ledger records removed by the sweep.",
            &stats.swept,
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
