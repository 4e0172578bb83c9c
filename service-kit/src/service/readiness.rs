//! `/healthz` and `/readyz` in one vocabulary, and `Retry-After` on every 503.

use actix_web::body::BoxBody;
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder, Responder};
use serde_json::json;
use shared_auth::CheckState;
use std::fmt::Display;

/// Seconds a client is asked to wait before asking again after a 503.
pub const RETRY_AFTER_SECONDS: u64 = 5;

/// A response builder for `status`; a 503 carries `Retry-After` ([`RETRY_AFTER_SECONDS`]).
pub fn response_builder(status: StatusCode) -> HttpResponseBuilder {
    let mut response = HttpResponse::build(status);
    if status == StatusCode::SERVICE_UNAVAILABLE {
        response.insert_header((header::RETRY_AFTER, RETRY_AFTER_SECONDS));
    }
    response
}

/// Liveness: 200 `{"status":"alive"}`; answering at all is the proof.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "alive" }))
}

/// A service's readiness: the names of its failing checks. Answered as 200
/// `{"status":"ready"}` or 503 `{"status":"not_ready","failing":[...]}` with `Retry-After`; why a
/// check fails (hosts, roles, Azure's words) goes to the log only, never to the caller.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
#[must_use]
pub struct Readiness {
    failing: Vec<&'static str>,
}

impl Readiness {
    /// No check failing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the check `name`: `Err(why)` when it fails; `why` is logged at debug (each state's
    /// owner logs its changes at warn; probes come every few seconds).
    pub fn check(mut self, name: &'static str, outcome: Result<(), impl Display>) -> Self {
        if let Err(why) = outcome {
            tracing::debug!(check = name, reason = %why, "readiness check failing");
            self.failing.push(name);
        }
        self
    }

    /// Adds the check `name` in `state`; while pending, `pending` is the reason logged.
    pub fn state(self, name: &'static str, state: &CheckState, pending: &str) -> Self {
        self.check(name, state.outcome(pending))
    }

    /// The failing checks' names, in the order they were added.
    pub fn failing(&self) -> &[&'static str] {
        &self.failing
    }

    /// The `/readyz` answer.
    pub fn respond(&self) -> HttpResponse {
        if self.failing.is_empty() {
            HttpResponse::Ok().json(json!({ "status": "ready" }))
        } else {
            response_builder(StatusCode::SERVICE_UNAVAILABLE)
                .json(json!({ "status": "not_ready", "failing": self.failing }))
        }
    }
}

impl Responder for Readiness {
    type Body = BoxBody;

    fn respond_to(self, _: &HttpRequest) -> HttpResponse {
        self.respond()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::body::to_bytes;

    async fn answer(readiness: Readiness) -> (StatusCode, Option<String>, serde_json::Value) {
        let response = readiness.respond();
        let status = response.status();
        let retry_after = response
            .headers()
            .get(header::RETRY_AFTER)
            .map(|v| v.to_str().unwrap().to_owned());
        let body = to_bytes(response.into_body()).await.unwrap();
        (status, retry_after, serde_json::from_slice(&body).unwrap())
    }

    #[actix_web::test]
    async fn ready_when_every_check_passes() {
        let ready = Readiness::new()
            .check("secret", Ok::<(), String>(()))
            .check("queue", Ok::<(), &str>(()));
        assert_eq!(
            answer(ready).await,
            (StatusCode::OK, None, json!({ "status": "ready" }))
        );
    }

    #[actix_web::test]
    async fn not_ready_names_the_failing_checks_but_never_why() {
        let why = "https://vault.example/ refused: AADSTS700016";
        let readiness = Readiness::new()
            .check("secret", Err(why))
            .check("queue", Ok::<(), &str>(()))
            .check("key_store", Err("missing"));
        assert_eq!(readiness.failing(), ["secret", "key_store"]);
        let (status, retry_after, body) = answer(readiness).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(retry_after.as_deref(), Some("5"));
        assert_eq!(
            body,
            json!({ "status": "not_ready", "failing": ["secret", "key_store"] })
        );
        assert!(!body.to_string().contains("vault.example"));
    }

    #[test]
    fn a_check_state_passes_only_when_passing_and_carries_why_otherwise() {
        assert_eq!(CheckState::Passing.outcome("not yet"), Ok(()));
        assert_eq!(CheckState::Pending.outcome("not yet"), Err("not yet"));
        let failing = CheckState::Failing("refused".into());
        assert_eq!(failing.outcome("not yet"), Err("refused"));
        let readiness = Readiness::new()
            .state("secret", &CheckState::Passing, "not loaded yet")
            .state("queue", &CheckState::Pending, "not received yet")
            .state("key_store", &failing, "not loaded yet");
        assert_eq!(readiness.failing(), ["queue", "key_store"]);
    }

    #[test]
    fn only_a_503_carries_retry_after() {
        for (status, expected) in [
            (StatusCode::SERVICE_UNAVAILABLE, true),
            (StatusCode::BAD_GATEWAY, false),
            (StatusCode::OK, false),
        ] {
            let response = response_builder(status).finish();
            assert_eq!(
                response.headers().contains_key(header::RETRY_AFTER),
                expected,
                "{status}"
            );
        }
    }
}
