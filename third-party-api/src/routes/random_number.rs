//! `GET|POST /api/RandomNumber`: the function itself.

use actix_web::HttpResponse;
use rand::Rng;
use serde::{Deserialize, Serialize};

/// Smallest value returned.
pub const MIN_VALUE: u32 = 1;
/// Largest value returned.
pub const MAX_VALUE: u32 = 999;

/// The function's answer.
#[derive(Debug, Serialize, Deserialize)]
pub struct RandomNumber {
    /// A number in `MIN_VALUE..=MAX_VALUE`.
    pub value: u32,
}

/// Answers a random number; the key was checked by the scope's guard.
#[tracing::instrument(name = "RandomNumber")]
pub async fn random_number() -> HttpResponse {
    let value = rand::rng().random_range(MIN_VALUE..=MAX_VALUE);
    HttpResponse::Ok().json(RandomNumber { value })
}
