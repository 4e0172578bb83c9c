//! The gate as a reverse proxy: a request's path checked once, its caller authorized, the
//! operation counted, then the request forwarded to Azurite at exactly the checked path and the
//! answer relayed, hop-by-hop headers dropped. A simulated fault or hang comes first.

use super::classify::operation;
use super::errors::storage_error;
use super::{Fault, StorageGate};
use crate::storage_path::CheckedPath;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use shared_auth::azure_error::error_chain;

/// Every request: its path checked, its caller authorized, counted, forwarded.
pub(super) async fn gate(
    gate: web::Data<StorageGate>,
    req: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    gate.stall.wait().await;
    match gate.fault() {
        Some(Fault::ServerBusy) => {
            return storage_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "ServerBusy",
                "The server is currently unable to receive requests. Please retry your request.",
            );
        }
        Some(Fault::InvalidInput) => {
            return storage_error(
                StatusCode::BAD_REQUEST,
                "InvalidInput",
                "One of the request inputs is not valid.",
            );
        }
        Some(Fault::LoseAnswer(_)) | None => {}
    }
    let path = match CheckedPath::parse(req.path()) {
        Ok(path) => path,
        Err(e) => {
            tracing::info!(reason = %e, "storage gate: request path refused");
            return storage_error(
                StatusCode::BAD_REQUEST,
                "InvalidUri",
                "The requested URI does not represent any resource on the server.",
            );
        }
    };
    let query: Vec<(String, String)> = form_urlencoded::parse(req.query_string().as_bytes())
        .into_owned()
        .collect();
    let caller = match gate.authorize(&req, &path, &query) {
        Ok(caller) => caller,
        Err(refusal) => return refusal.into_response(),
    };
    let operation = operation(gate.service, req.method().as_str(), &path, &query);
    gate.counts.add(caller.name_or_oid().to_owned(), operation);
    if gate.loses_answer_to(operation) {
        let carried_out = forward(&gate, &req, &path, body).await;
        tracing::info!(
            operation,
            status = carried_out.status().as_u16(),
            "storage gate: the answer is lost on its way back"
        );
        return storage_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            "The server encountered an internal error. Please retry the request.",
        );
    }
    forward(&gate, &req, &path, body).await
}

/// Headers that belong to one hop and are not forwarded.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
    "te",
    "trailer",
    "content-length",
];

/// Azurite's URL for the checked path: built from [`CheckedPath::encoded`] only, and refused if
/// URL parsing would change that path in any way.
pub(super) fn upstream_url(
    upstream: &str,
    path: &CheckedPath,
    query: &str,
) -> Option<reqwest::Url> {
    let encoded = path.encoded();
    let mut url = format!("{upstream}{encoded}");
    if !query.is_empty() {
        url.push('?');
        url.push_str(query);
    }
    let url = reqwest::Url::parse(&url).ok()?;
    (url.path() == encoded).then_some(url)
}

/// Sends the request on to Azurite at the checked path and its answer back.
async fn forward(
    gate: &StorageGate,
    req: &HttpRequest,
    path: &CheckedPath,
    body: web::Bytes,
) -> HttpResponse {
    let Some(url) = upstream_url(&gate.upstream, path, req.query_string()) else {
        tracing::warn!("storage gate: the checked path does not survive URL parsing; refused");
        return storage_error(
            StatusCode::BAD_REQUEST,
            "InvalidUri",
            "The requested URI does not represent any resource on the server.",
        );
    };
    let method = reqwest::Method::from_bytes(req.method().as_str().as_bytes())
        .unwrap_or(reqwest::Method::GET);
    let mut upstream = gate.http.request(method, url);
    for (name, value) in req.headers() {
        if !HOP_BY_HOP.contains(&name.as_str()) {
            upstream = upstream.header(name.as_str(), value.as_bytes());
        }
    }
    // Content-Length is per hop, so it is set again here, 0 included: without it Azurite answers
    // an empty Put Blob or Put Block with a bare 400.
    let response = match upstream
        .header("content-length", body.len())
        .body(body)
        .send()
        .await
    {
        Ok(response) => response,
        Err(e) => {
            tracing::warn!(error = %error_chain(&e), "storage gate: Azurite unreachable");
            return storage_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "ServerBusy",
                "The storage emulator behind the gate is unavailable.",
            );
        }
    };
    let mut out = HttpResponse::build(
        StatusCode::from_u16(response.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY),
    );
    for (name, value) in response.headers() {
        if !HOP_BY_HOP.contains(&name.as_str()) {
            out.append_header((name.as_str(), value.as_bytes()));
        }
    }
    match response.bytes().await {
        Ok(bytes) => out.body(bytes),
        Err(_) => storage_error(
            StatusCode::BAD_GATEWAY,
            "ServerBusy",
            "The storage emulator closed the response early.",
        ),
    }
}
