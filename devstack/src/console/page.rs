//! The page, its script and its style: one HTML file with no external asset, a script that asks
//! for the state every second and builds the DOM with text nodes only (queue messages and log
//! lines are shown, never interpreted), and headers that keep the token in this tab (no
//! referrer, no cache) and forbid any other script.

use actix_web::HttpResponse;
use actix_web::http::header;

const PAGE: &str = include_str!("page.html");
const SCRIPT: &str = include_str!("console.js");
const STYLE: &str = include_str!("console.css");

/// The headers every page asset carries.
fn with_headers(content_type: &str, body: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
             img-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
        ))
        .body(body)
}

/// `GET /` (admitted).
pub(super) fn index() -> HttpResponse {
    with_headers("text/html; charset=utf-8", PAGE)
}

/// `GET /console.js`.
pub(super) async fn script() -> HttpResponse {
    with_headers("text/javascript; charset=utf-8", SCRIPT)
}

/// `GET /console.css`.
pub(super) async fn style() -> HttpResponse {
    with_headers("text/css; charset=utf-8", STYLE)
}
