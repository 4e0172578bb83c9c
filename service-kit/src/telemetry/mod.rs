//! Telemetry: `tracing` with JSON (default) or pretty logs, `RUST_LOG` filtering, OpenTelemetry
//! spans and log records exported over OTLP when `OTEL_EXPORTER_OTLP_ENDPOINT` is set (HTTP, or
//! gRPC with `OTEL_EXPORTER_OTLP_PROTOCOL=grpc`), W3C `traceparent` propagation, and one
//! access-log line per HTTP request that never carries a query string.

use actix_web::HttpMessage;
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use futures::future::{LocalBoxFuture, Ready, ready};
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use shared_auth::api_key::AuthorizedKey;
use shared_auth::config::{ConfigError, EnvSource};
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Instant;
use tracing::Instrument;
use tracing::field::Empty;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// `json` (default) or `pretty`.
pub const LOG_FORMAT: &str = "LOG_FORMAT";
/// The log filter, `tracing_subscriber` syntax.
pub const RUST_LOG: &str = "RUST_LOG";
/// Where spans and logs are exported over OTLP; unset means no export.
pub const OTEL_EXPORTER_OTLP_ENDPOINT: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";
/// How they travel: `http/protobuf` (the default) or `grpc` (what Container Apps' agent takes).
pub const OTEL_EXPORTER_OTLP_PROTOCOL: &str = "OTEL_EXPORTER_OTLP_PROTOCOL";
/// Container Apps' managed agent (gRPC), set by the platform: used when the `OTEL_*` pair is not.
pub const CONTAINERAPP_OTEL_TRACING_GRPC_ENDPOINT: &str = "CONTAINERAPP_OTEL_TRACING_GRPC_ENDPOINT";

/// Every variable telemetry reads; with `shared_auth::variables::COMMON_VARIABLES`, what every
/// service reads.
pub const VARIABLES: &[&str] = &[
    RUST_LOG,
    LOG_FORMAT,
    OTEL_EXPORTER_OTLP_ENDPOINT,
    OTEL_EXPORTER_OTLP_PROTOCOL,
    CONTAINERAPP_OTEL_TRACING_GRPC_ENDPOINT,
];

/// The W3C trace-context header and envelope field.
pub const TRACEPARENT: &str = "traceparent";

const DEFAULT_FILTER: &str = "info";

mod export;
use export::Export;
pub use export::OtlpProtocol;

/// Keeps the exporters alive; flushes pending spans and log records when dropped.
#[must_use = "dropping the guard stops export"]
pub struct TelemetryGuard {
    _export: Export,
}

/// Sets up logs and traces for `service_name`, writing logs to stdout.
pub fn init_telemetry(
    service_name: &'static str,
    env: &dyn EnvSource,
) -> Result<TelemetryGuard, ConfigError> {
    init_telemetry_with_writer(service_name, env, std::io::stdout)
}

/// Sets up logs and traces, writing logs to `writer` (tests capture them this way). When a
/// global subscriber is already set (a second call in one test process), the first one stays.
pub fn init_telemetry_with_writer<W>(
    service_name: &'static str,
    env: &dyn EnvSource,
    writer: W,
) -> Result<TelemetryGuard, ConfigError>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let filter = match env.var(RUST_LOG) {
        Some(directives) => EnvFilter::try_new(&directives)
            .map_err(|e| ConfigError::new(RUST_LOG, format!("is not a valid filter: {e}")))?,
        None => EnvFilter::new(DEFAULT_FILTER),
    };
    let pretty = match env.var(LOG_FORMAT).as_deref().map(str::to_ascii_lowercase) {
        None => false,
        Some(f) if f == "json" => false,
        Some(f) if f == "pretty" => true,
        Some(_) => return Err(ConfigError::new(LOG_FORMAT, "must be `json` or `pretty`")),
    };

    let export = Export::from_env(service_name, env)?;
    let provider = export.spans.clone();
    let export_logs = export.log_bridge();
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    opentelemetry::global::set_tracer_provider(provider.clone());
    let otel = tracing_opentelemetry::layer().with_tracer(provider.tracer(service_name));

    let logs = if pretty {
        tracing_subscriber::fmt::layer()
            .pretty()
            .with_writer(writer)
            .boxed()
    } else {
        tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .with_writer(writer)
            .boxed()
    };
    // A second initialisation in one process (tests) keeps the first subscriber.
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(otel)
        .with(export_logs)
        .with(logs)
        .try_init();
    Ok(TelemetryGuard { _export: export })
}

/// An in-memory log sink for [`init_telemetry_with_writer`]: tests read what was logged.
#[derive(Clone, Default)]
pub struct LogCapture(std::sync::Arc<parking_lot::Mutex<Vec<u8>>>);

impl LogCapture {
    /// Everything written so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock()).into_owned()
    }
}

impl std::io::Write for LogCapture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for LogCapture {
    type Writer = LogCapture;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// The `traceparent` of `span`, to send downstream; `None` when tracing is not set up.
pub fn traceparent(span: &tracing::Span) -> Option<String> {
    let context = span.context();
    if !context.span().span_context().is_valid() {
        return None;
    }
    let mut carrier = HashMap::new();
    TraceContextPropagator::new().inject_context(&context, &mut carrier);
    carrier.remove(TRACEPARENT)
}

/// Makes `span` a child of the trace `traceparent` names; an invalid value is ignored.
/// Returns whether the parent was taken.
pub fn continue_trace(span: &tracing::Span, traceparent: &str) -> bool {
    let Some(context) = parse_traceparent(traceparent) else {
        return false;
    };
    span.set_parent(context).is_ok()
}

/// True when `value` is a well-formed W3C `traceparent` with non-zero ids.
pub fn is_valid_traceparent(value: &str) -> bool {
    parse_traceparent(value).is_some()
}

fn parse_traceparent(value: &str) -> Option<opentelemetry::Context> {
    let carrier = HashMap::from([(TRACEPARENT.to_owned(), value.trim().to_owned())]);
    let context = TraceContextPropagator::new().extract(&carrier);
    context
        .span()
        .span_context()
        .is_valid()
        .then_some(context.clone())
}

/// The trace id of `span` as 32 hex digits, when tracing is set up.
pub fn trace_id(span: &tracing::Span) -> Option<String> {
    let context = span.context();
    let span_context = context.span().span_context().clone();
    span_context
        .is_valid()
        .then(|| span_context.trace_id().to_string())
}

/// Adds `traceparent` for `span` to outbound request headers.
pub fn inject_traceparent(span: &tracing::Span, headers: &mut reqwest::header::HeaderMap) {
    if let Some(value) = traceparent(span)
        && let Ok(value) = reqwest::header::HeaderValue::from_str(&value)
    {
        headers.insert(TRACEPARENT, value);
    }
}

/// Paths probed every few seconds by orchestrators: logged at debug, not info.
const PROBE_PATHS: [&str; 2] = ["/healthz", "/readyz"];

/// What a server does with a caller's `traceparent`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IncomingTrace {
    /// The request joins the caller's trace: for services only this system calls.
    #[default]
    Continue,
    /// The request starts a trace of its own, with a link to the caller's: for a public
    /// endpoint, whose callers must not choose this system's trace ids or sampling.
    Link,
}

impl std::str::FromStr for IncomingTrace {
    type Err = String;
    fn from_str(value: &str) -> Result<Self, String> {
        match value.trim() {
            "continue" => Ok(Self::Continue),
            "link" => Ok(Self::Link),
            _ => Err("must be `continue` or `link`".to_owned()),
        }
    }
}

/// Middleware: a server span per request (a child of an incoming `traceparent`, or linked to it:
/// [`IncomingTrace`]) and one access-log line with method, path (never the query string, which
/// may hold a key), route, status, latency, trace id, a linked trace id, and the name of the
/// API key that authorised it.
#[derive(Clone, Copy, Default)]
pub struct RequestTelemetry {
    incoming: IncomingTrace,
}

impl RequestTelemetry {
    /// Telemetry that treats a caller's `traceparent` as `incoming` says.
    pub fn new(incoming: IncomingTrace) -> Self {
        Self { incoming }
    }
}

impl<S, B> Transform<S, ServiceRequest> for RequestTelemetry
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: 'static,
{
    type Response = ServiceResponse<B>;
    type Error = actix_web::Error;
    type Transform = RequestTelemetryService<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(RequestTelemetryService {
            service: Rc::new(service),
            incoming: self.incoming,
        }))
    }
}

/// The service [`RequestTelemetry`] wraps around an app.
pub struct RequestTelemetryService<S> {
    service: Rc<S>,
    incoming: IncomingTrace,
}

impl<S, B> Service<ServiceRequest> for RequestTelemetryService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: 'static,
{
    type Response = ServiceResponse<B>;
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self::Response, Self::Error>>;

    forward_ready!(service);

    fn call(&self, request: ServiceRequest) -> Self::Future {
        let started = Instant::now();
        let method = request.method().to_string();
        let path = request.path().to_owned();
        let span = tracing::info_span!(
            "HTTP request",
            otel.name = %format_args!("{method} {path}"),
            otel.kind = "server",
            http.request.method = %method,
            url.path = %path,
            http.route = Empty,
            http.response.status_code = Empty,
            api_key.name = Empty,
            trace_id = Empty,
        );
        let caller = request
            .headers()
            .get(TRACEPARENT)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_traceparent);
        let mut linked = None;
        if let Some(caller) = caller {
            let caller = caller.span().span_context().clone();
            match self.incoming {
                IncomingTrace::Continue => {
                    let _ = span
                        .set_parent(opentelemetry::Context::new().with_remote_span_context(caller));
                }
                IncomingTrace::Link => {
                    linked = Some(caller.trace_id().to_string());
                    span.add_link(caller);
                }
            }
        }
        let trace = trace_id(&span);
        if let Some(id) = &trace {
            span.record("trace_id", id.as_str());
        }
        let response = span.in_scope(|| self.service.call(request));
        Box::pin(
            async move {
                let result = response.await;
                let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
                let span = tracing::Span::current();
                let (status, route, key) = match &result {
                    Ok(res) => (
                        res.status().as_u16(),
                        res.request().match_pattern(),
                        res.request()
                            .extensions()
                            .get::<AuthorizedKey>()
                            .map(|k| k.name.to_string()),
                    ),
                    Err(e) => (e.as_response_error().status_code().as_u16(), None, None),
                };
                span.record("http.response.status_code", status);
                if let Some(route) = &route {
                    span.record("http.route", route.as_str());
                }
                let trace = trace.as_deref().unwrap_or("");
                let linked = linked.as_deref().unwrap_or("");
                let key = key.as_deref().unwrap_or("");
                if PROBE_PATHS.contains(&path.as_str()) {
                    tracing::debug!(
                        method,
                        path,
                        status,
                        latency_ms,
                        trace_id = trace,
                        "request"
                    );
                } else {
                    tracing::info!(
                        method,
                        path,
                        status,
                        latency_ms,
                        trace_id = trace,
                        linked_trace_id = linked,
                        api_key = key,
                        "request"
                    );
                }
                result
            }
            .instrument(span),
        )
    }
}
