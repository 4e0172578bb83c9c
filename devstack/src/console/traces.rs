//! The console's own OTLP receiver (HTTP/protobuf, `POST /v1/traces` and `/v1/logs`): what the
//! services export when the person runs no collector, kept as spans grouped into traces for the
//! timeline. Only names, times, kinds and status are kept: no attribute, no log body.

use actix_web::{HttpResponse, web};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use parking_lot::Mutex;
use prost::Message;
use std::collections::{BTreeMap, VecDeque};

/// The largest export accepted (the SDK batches up to 512 spans).
pub const BODY_LIMIT: usize = 16 * 1024 * 1024;
/// How many spans are kept.
const SPANS: usize = 4000;

/// Lowercase hex of `bytes` (trace and span ids).
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The resource's `service.name`.
pub fn service_name(resource: Option<&Resource>) -> String {
    resource
        .iter()
        .flat_map(|r| &r.attributes)
        .find(|a| a.key == "service.name")
        .and_then(|a| a.value.as_ref()?.value.as_ref())
        .map(text)
        .unwrap_or_default()
}

/// An attribute or body value as text.
pub fn text(value: &Value) -> String {
    match value {
        Value::StringValue(text) => text.clone(),
        other => format!("{other:?}"),
    }
}

/// One received span.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Span {
    /// The exporting service.
    pub service: String,
    /// The span's name.
    pub name: String,
    /// Trace id (hex).
    pub trace_id: String,
    /// Span id (hex).
    pub span_id: String,
    /// Parent span id (hex), empty for a root.
    pub parent_id: String,
    /// `server`, `client`, `internal`, ...
    pub kind: &'static str,
    /// Start, nanoseconds since the Unix epoch.
    pub start_ns: u64,
    /// End, nanoseconds since the Unix epoch.
    pub end_ns: u64,
    /// Whether its status is an error.
    pub error: bool,
}

/// One trace: its spans, earliest first.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Trace {
    /// Trace id (hex).
    pub trace_id: String,
    /// The earliest span's name (the root, when it arrived).
    pub root: String,
    /// The services it crossed, in order of first appearance.
    pub services: Vec<String>,
    /// Start of the earliest span (ns since the epoch).
    pub start_ns: u64,
    /// From the earliest start to the latest end, in milliseconds.
    pub duration_ms: f64,
    /// The spans, earliest first.
    pub spans: Vec<Span>,
}

/// Received spans, the newest `SPANS`.
#[derive(Debug, Default)]
pub struct TraceStore {
    spans: Mutex<VecDeque<Span>>,
    log_records: Mutex<u64>,
}

fn kind_name(kind: i32) -> &'static str {
    match SpanKind::try_from(kind) {
        Ok(SpanKind::Server) => "server",
        Ok(SpanKind::Client) => "client",
        Ok(SpanKind::Producer) => "producer",
        Ok(SpanKind::Consumer) => "consumer",
        _ => "internal",
    }
}

impl TraceStore {
    /// Keeps the spans of one export.
    pub fn add(&self, request: ExportTraceServiceRequest) {
        let mut spans = self.spans.lock();
        for resource in request.resource_spans {
            let service = service_name(resource.resource.as_ref());
            for span in resource.scope_spans.into_iter().flat_map(|s| s.spans) {
                if spans.len() == SPANS {
                    spans.pop_front();
                }
                spans.push_back(Span {
                    service: service.clone(),
                    name: span.name,
                    trace_id: hex(&span.trace_id),
                    span_id: hex(&span.span_id),
                    parent_id: hex(&span.parent_span_id),
                    kind: kind_name(span.kind),
                    start_ns: span.start_time_unix_nano,
                    end_ns: span.end_time_unix_nano.max(span.start_time_unix_nano),
                    error: span
                        .status
                        .is_some_and(|s| s.code == StatusCode::Error as i32),
                });
            }
        }
    }

    /// How many log records arrived (counted, not kept).
    pub fn log_records(&self) -> u64 {
        *self.log_records.lock()
    }

    /// The `max` traces that started last, newest first; a lone health probe's span (the
    /// console's own `/readyz` checks among them) is not a trace worth a row.
    pub fn recent(&self, max: usize) -> Vec<Trace> {
        let mut by_trace: BTreeMap<String, Vec<Span>> = BTreeMap::new();
        for span in self.spans.lock().iter() {
            by_trace
                .entry(span.trace_id.clone())
                .or_default()
                .push(span.clone());
        }
        let mut traces: Vec<Trace> = by_trace
            .into_iter()
            .filter(|(_, spans)| !(spans.len() == 1 && is_probe(&spans[0].name)))
            .map(|(trace_id, mut spans)| {
                spans.sort_by_key(|s| s.start_ns);
                let start_ns = spans[0].start_ns;
                let end_ns = spans.iter().map(|s| s.end_ns).max().unwrap_or(start_ns);
                let mut services: Vec<String> = Vec::new();
                for span in &spans {
                    if !services.contains(&span.service) {
                        services.push(span.service.clone());
                    }
                }
                let root = spans
                    .iter()
                    .find(|s| s.parent_id.is_empty())
                    .unwrap_or(&spans[0])
                    .name
                    .clone();
                Trace {
                    trace_id,
                    root,
                    services,
                    start_ns,
                    duration_ms: (end_ns - start_ns) as f64 / 1e6,
                    spans,
                }
            })
            .collect();
        traces.sort_by_key(|t| std::cmp::Reverse(t.start_ns));
        traces.truncate(max);
        traces
    }
}

/// Whether a span is a health probe's request (`GET /readyz`, `GET /healthz`).
fn is_probe(name: &str) -> bool {
    name.ends_with("/readyz") || name.ends_with("/healthz")
}

/// `POST /v1/traces`.
pub async fn receive_traces(store: web::Data<TraceStore>, body: web::Bytes) -> HttpResponse {
    match ExportTraceServiceRequest::decode(body) {
        Ok(request) => {
            store.add(request);
            protobuf_ok()
        }
        Err(_) => HttpResponse::BadRequest().finish(),
    }
}

/// `POST /v1/logs`: counted; the services' log lines are already in each resource's tail.
pub async fn receive_logs(store: web::Data<TraceStore>, body: web::Bytes) -> HttpResponse {
    match ExportLogsServiceRequest::decode(body) {
        Ok(request) => {
            let records: usize = request
                .resource_logs
                .iter()
                .flat_map(|r| &r.scope_logs)
                .map(|s| s.log_records.len())
                .sum();
            *store.log_records.lock() += records as u64;
            protobuf_ok()
        }
        Err(_) => HttpResponse::BadRequest().finish(),
    }
}

fn protobuf_ok() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/x-protobuf")
        .body(Vec::new())
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span as Proto};

    fn span(trace: u8, id: u8, parent: u8, name: &str, start: u64, end: u64) -> Proto {
        Proto {
            trace_id: vec![trace; 16],
            span_id: vec![id; 8],
            parent_span_id: if parent == 0 {
                Vec::new()
            } else {
                vec![parent; 8]
            },
            name: name.into(),
            start_time_unix_nano: start,
            end_time_unix_nano: end,
            ..Default::default()
        }
    }

    fn export(spans: Vec<Proto>) -> ExportTraceServiceRequest {
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans {
                    spans,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
    }

    #[test]
    fn spans_group_into_traces_newest_first_and_lone_probes_are_left_out() {
        let store = TraceStore::default();
        store.add(export(vec![
            span(1, 2, 1, "child", 2_000_000, 3_000_000),
            span(1, 1, 0, "GET /api/v1/getcode", 1_000_000, 5_000_000),
            span(2, 3, 0, "GET /readyz", 9_000_000, 9_500_000),
            span(3, 4, 0, "POST /api/v1/codes/verify", 7_000_000, 8_000_000),
        ]));
        let traces = store.recent(10);
        let roots: Vec<&str> = traces.iter().map(|t| t.root.as_str()).collect();
        assert_eq!(roots, ["POST /api/v1/codes/verify", "GET /api/v1/getcode"]);
        let getcode = &traces[1];
        assert_eq!(
            getcode.spans[0].name, "GET /api/v1/getcode",
            "earliest first"
        );
        assert_eq!(getcode.duration_ms, 4.0);
        assert_eq!(getcode.spans[1].parent_id, "0101010101010101");
        assert_eq!(store.recent(1).len(), 1);
    }
}
