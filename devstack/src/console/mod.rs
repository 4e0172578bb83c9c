//! The devstack console: a page on loopback that shows keyless authentication happening. It
//! lists the resources and their readiness, the role table (revoke a role and grant it back),
//! the tokens issued, every access the emulators judged (a denial names the missing role, its id
//! and the `az` line), the code queue, its poison queue and the ledger, and the services' traces
//! as timelines: it is their OTLP receiver when the person runs no collector.
//!
//! Access: a random token, printed in the console's URL with the "devstack ready" lines (as
//! Jupyter does). The page sends it back in a header, so another site can neither read the
//! console nor post to it; requests naming another host are refused (DNS rebinding). The OTLP
//! routes (`/v1/traces`, `/v1/logs`) take no token: the services post there as to a collector.
//!
//! By concern: `view` (what the page shows, read from the stack), `traces` (the OTLP receiver
//! and the traces it keeps), `page` (the page, its script and style).

mod page;
pub mod traces;
pub(crate) mod view;

use actix_web::dev::ServerHandle;
use actix_web::http::header;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use base64::Engine;
use rand::RngCore;
use shared_auth::{ApiKeyRing, Secret};
use std::net::TcpListener;
pub(crate) use view::{Probe, Resource, Sources};

/// The console's default port (`cargo run -p devstack`), the one .NET Aspire's dashboard uses.
pub const DEFAULT_PORT: u16 = 18888;

/// A served console.
pub struct Console {
    /// `http://127.0.0.1:<port>`, the OTLP endpoint too.
    pub base_url: String,
    token: Secret,
    server: ServerHandle,
}

impl std::fmt::Debug for Console {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Console")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

/// What every handler shares.
struct Shared {
    sources: Sources,
    tokens: ApiKeyRing,
    /// The `Host` values a browser on this machine sends.
    hosts: [String; 2],
}

impl Console {
    /// Serves the console on `listener` (loopback), with a fresh token.
    pub(crate) fn serve(listener: TcpListener, sources: Sources) -> anyhow::Result<Self> {
        let port = listener.local_addr()?.port();
        let mut bytes = [0u8; 24];
        rand::rng().fill_bytes(&mut bytes);
        let token = Secret::new(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes));
        let traces = web::Data::from(sources.traces.clone());
        let shared = web::Data::new(Shared {
            tokens: ApiKeyRing::new([("console", &token)]),
            sources,
            hosts: [format!("127.0.0.1:{port}"), format!("localhost:{port}")],
        });
        let server = HttpServer::new(move || {
            App::new()
                .app_data(shared.clone())
                .app_data(traces.clone())
                .app_data(web::PayloadConfig::new(traces::BODY_LIMIT))
                .app_data(web::JsonConfig::default().limit(4096))
                .route("/", web::get().to(index))
                .route("/console.js", web::get().to(page::script))
                .route("/console.css", web::get().to(page::style))
                .route("/api/state", web::get().to(state))
                .route("/api/roles", web::post().to(set_role))
                .route("/v1/traces", web::post().to(traces::receive_traces))
                .route("/v1/logs", web::post().to(traces::receive_logs))
        })
        .workers(1)
        .disable_signals()
        .shutdown_timeout(1)
        .listen(listener)?
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        Ok(Self {
            base_url: format!("http://127.0.0.1:{port}"),
            token,
            server: handle,
        })
    }

    /// The URL to open: the base URL with the access token.
    pub fn url(&self) -> String {
        format!("{}/?token={}", self.base_url, self.token.expose())
    }

    /// Stops serving.
    pub async fn stop(&self) {
        self.server.stop(true).await;
    }
}

/// Why a request is refused before anything is read.
fn refused(status: actix_web::http::StatusCode, text: &str) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .content_type("text/plain; charset=utf-8")
        .body(text.to_owned())
}

impl Shared {
    /// `None` when `req` names this console's host and carries its token (in the query for the
    /// page, in `Authorization: Bearer` for the API); otherwise the refusal.
    fn admit(&self, req: &HttpRequest, in_query: bool) -> Option<HttpResponse> {
        use actix_web::http::StatusCode;
        let host = req
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or_default();
        if !self.hosts.iter().any(|h| h == host) {
            return Some(refused(
                StatusCode::FORBIDDEN,
                "devstack console: open it at the 127.0.0.1 address devstack printed\n",
            ));
        }
        let presented = if in_query {
            form_urlencoded::parse(req.query_string().as_bytes())
                .find(|(k, _)| k == "token")
                .map(|(_, v)| v.into_owned())
        } else {
            req.headers()
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .map(str::to_owned)
        };
        let admitted = presented.is_some_and(|t| self.tokens.verify(t.as_bytes()).is_some());
        (!admitted).then(|| {
            refused(
                StatusCode::UNAUTHORIZED,
                "devstack console: this address needs its access token. Open the console URL \
                 devstack printed with its \"devstack ready\" lines (http://127.0.0.1:<port>/?token=...).\n",
            )
        })
    }
}

async fn index(shared: web::Data<Shared>, req: HttpRequest) -> HttpResponse {
    if let Some(refusal) = shared.admit(&req, true) {
        return refusal;
    }
    page::index()
}

async fn state(shared: web::Data<Shared>, req: HttpRequest) -> HttpResponse {
    if let Some(refusal) = shared.admit(&req, false) {
        return refusal;
    }
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(shared.sources.state().await)
}

/// `POST /api/roles` `{"key": ..., "held": false}`: revokes a row of the role table, or grants it
/// back with `true`.
#[derive(serde::Deserialize)]
struct SetRole {
    key: String,
    held: bool,
}

async fn set_role(
    shared: web::Data<Shared>,
    req: HttpRequest,
    body: web::Json<SetRole>,
) -> HttpResponse {
    if let Some(refusal) = shared.admit(&req, false) {
        return refusal;
    }
    if shared.sources.set_row(&body.key, body.held) {
        tracing::info!(
            row = %body.key,
            held = body.held,
            "console: role table changed"
        );
        HttpResponse::Ok().json(shared.sources.role_rows())
    } else {
        refused(
            actix_web::http::StatusCode::NOT_FOUND,
            "no such row in the role table\n",
        )
    }
}
