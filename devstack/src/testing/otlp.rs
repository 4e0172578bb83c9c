//! An OTLP/HTTP trace receiver on a free loopback port: what a service exports when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` points at it, decoded span by span, with every body kept as
//! sent so tests can also search the raw bytes (for a secret that must not be there).

use super::servers::serve;
use actix_web::{HttpResponse, web};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use prost::Message;
use std::sync::{Arc, Mutex};

/// The largest export accepted (the SDK batches up to 512 spans).
const BODY_LIMIT: usize = 16 * 1024 * 1024;

/// One exported span: the exporting service, the span's name, its trace id and the traces it
/// links to, in lowercase hex.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportedSpan {
    /// The resource's `service.name`.
    pub service: String,
    /// The span's name.
    pub name: String,
    /// The trace id, 32 lowercase hex digits.
    pub trace_id: String,
    /// The trace ids of the span's links.
    pub linked_trace_ids: Vec<String>,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Everything received so far.
#[derive(Default)]
struct Received {
    spans: Vec<ExportedSpan>,
    bodies: Vec<Vec<u8>>,
}

/// The receiver; it runs until the test process ends.
pub struct OtlpReceiver {
    endpoint: String,
    received: Arc<Mutex<Received>>,
}

impl OtlpReceiver {
    /// Starts a receiver serving `POST /v1/traces` (protobuf) on a free loopback port.
    pub fn start() -> Self {
        let received: Arc<Mutex<Received>> = Arc::default();
        let data = web::Data::from(received.clone());
        let endpoint = serve(None, move |cfg| {
            cfg.app_data(data.clone())
                .app_data(web::PayloadConfig::new(BODY_LIMIT))
                .route("/v1/traces", web::post().to(receive));
        });
        Self { endpoint, received }
    }

    /// The base URL to give as `OTEL_EXPORTER_OTLP_ENDPOINT`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Every span received so far, in arrival order.
    pub fn spans(&self) -> Vec<ExportedSpan> {
        self.received.lock().expect("not poisoned").spans.clone()
    }

    /// Whether any export body, as sent, contains `needle`.
    pub fn bodies_contain(&self, needle: &[u8]) -> bool {
        self.received
            .lock()
            .expect("not poisoned")
            .bodies
            .iter()
            .any(|body| body.windows(needle.len()).any(|w| w == needle))
    }
}

async fn receive(received: web::Data<Mutex<Received>>, body: web::Bytes) -> HttpResponse {
    let Ok(request) = ExportTraceServiceRequest::decode(body.clone()) else {
        return HttpResponse::BadRequest().finish();
    };
    let mut received = received.lock().expect("not poisoned");
    received.bodies.push(body.to_vec());
    for resource in request.resource_spans {
        let service = resource
            .resource
            .iter()
            .flat_map(|r| &r.attributes)
            .find(|a| a.key == "service.name")
            .and_then(|a| a.value.as_ref()?.value.as_ref())
            .map(|v| match v {
                Value::StringValue(name) => name.clone(),
                other => format!("{other:?}"),
            })
            .unwrap_or_default();
        for span in resource.scope_spans.into_iter().flat_map(|s| s.spans) {
            received.spans.push(ExportedSpan {
                service: service.clone(),
                name: span.name,
                trace_id: hex(&span.trace_id),
                linked_trace_ids: span.links.iter().map(|l| hex(&l.trace_id)).collect(),
            });
        }
    }
    HttpResponse::Ok()
        .content_type("application/x-protobuf")
        .body(Vec::new())
}
