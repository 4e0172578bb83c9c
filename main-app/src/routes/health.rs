//! `/healthz` (the process answers) and `/readyz` (the secret is loaded, the ledger takes codes
//! and the queue takes messages). `/readyz` is public: it says only ready or not and which check fails; why goes to
//! the log (vault host, identity URL and Azure's error text are for operators, not the internet).

use super::AppState;
use actix_web::web;
use service_kit::service::Readiness;

pub use service_kit::service::healthz;

/// Readiness: 200 `{"status":"ready"}`, or 503 `{"status":"not_ready","failing":[...]}` naming
/// the checks that fail (`secret`, `ledger`, `queue`).
pub async fn readyz(state: web::Data<AppState>) -> Readiness {
    Readiness::new()
        .state("secret", &state.secret.readiness(), "not loaded yet")
        .state(
            "ledger",
            &state.reservations.health(),
            "no reservation or read has answered yet",
        )
        .state(
            "queue",
            &state.queue.health(),
            "no send or probe has answered yet",
        )
}
