//! Reading a request body the way a public service must: at most so many bytes (413 before
//! reading when the declared length is already too long) and within a time limit (a client
//! that stalls mid-body is cut off instead of holding a worker).

use actix_web::http::header::CONTENT_LENGTH;
use actix_web::{HttpRequest, web};
use std::time::Duration;

/// Why a body was not read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    /// Longer than the limit (declared or received): answer 413.
    #[error("the body is larger than {0} bytes")]
    TooLarge(usize),
    /// Not received in time: answer 408 and close.
    #[error("the body did not arrive within {0:?}")]
    Timeout(Duration),
    /// The connection broke while reading: answer 400.
    #[error("the body could not be read")]
    Unreadable,
}

/// What a body may be: at most so many bytes, arrived within so long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyLimits {
    /// Largest body read; larger gets 413.
    pub max_bytes: usize,
    /// Time for the body once its head has arrived; then 408 and the connection closes.
    pub timeout: Duration,
}

/// Reads `payload` of `request` within `limits`.
pub async fn read_body(
    request: &HttpRequest,
    payload: web::Payload,
    BodyLimits { max_bytes, timeout }: BodyLimits,
) -> Result<web::Bytes, BodyError> {
    let declared = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > max_bytes as u64) {
        return Err(BodyError::TooLarge(max_bytes));
    }
    match tokio::time::timeout(timeout, payload.to_bytes_limited(max_bytes)).await {
        Err(_) => Err(BodyError::Timeout(timeout)),
        Ok(Err(_)) => Err(BodyError::TooLarge(max_bytes)),
        Ok(Ok(Err(_))) => Err(BodyError::Unreadable),
        Ok(Ok(Ok(body))) => Ok(body),
    }
}
