//! An OTLP receiver on a free loopback port, over HTTP (`/v1/traces`, `/v1/logs`) or gRPC (the
//! collector's TraceService and LogsService, what Container Apps' managed agent speaks): what a
//! service exports when `OTEL_EXPORTER_OTLP_ENDPOINT` (and `OTEL_EXPORTER_OTLP_PROTOCOL`) point
//! at it, decoded span by span and record by record, with every body kept as sent so tests can
//! also search the raw bytes (for a secret that must not be there).

use super::servers::serve;
use actix_web::{HttpResponse, web};
use devstack::console::traces::{BODY_LIMIT, hex, service_name, text};
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{
    LogsService, LogsServiceServer,
};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message;
use std::sync::{Arc, Mutex};

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

/// One exported log record: the exporting service, its body as text and the trace it was
/// logged in (empty when none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportedLog {
    /// The resource's `service.name`.
    pub service: String,
    /// The record's body, as text.
    pub body: String,
    /// The trace id, 32 lowercase hex digits, or empty.
    pub trace_id: String,
}

/// Everything received so far.
#[derive(Default)]
struct Received {
    spans: Vec<ExportedSpan>,
    logs: Vec<ExportedLog>,
    bodies: Vec<Vec<u8>>,
}

/// The receiver; it runs until the test process ends.
pub struct OtlpReceiver {
    endpoint: String,
    received: Arc<Mutex<Received>>,
}

impl OtlpReceiver {
    /// Starts a receiver serving `POST /v1/traces` and `/v1/logs` (protobuf) on a free loopback
    /// port, on the current Tokio runtime.
    pub fn start() -> Self {
        let received: Arc<Mutex<Received>> = Arc::default();
        let data = web::Data::from(received.clone());
        let endpoint = serve(None, move |cfg| {
            cfg.app_data(data.clone())
                .app_data(web::PayloadConfig::new(BODY_LIMIT))
                .route("/v1/traces", web::post().to(receive_traces))
                .route("/v1/logs", web::post().to(receive_logs));
        });
        Self { endpoint, received }
    }

    /// Starts an OTLP/gRPC receiver (TraceService and LogsService) on a free loopback port, on
    /// the current Tokio runtime.
    pub fn start_grpc() -> Self {
        let received: Arc<Mutex<Received>> = Arc::default();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        listener
            .set_nonblocking(true)
            .expect("a non-blocking listener");
        let address = listener.local_addr().expect("a bound address");
        let listener = tokio::net::TcpListener::from_std(listener).expect("a Tokio listener");
        let sink = Grpc(received.clone());
        let server = tonic::transport::Server::builder()
            .add_service(
                TraceServiceServer::new(sink.clone()).max_decoding_message_size(BODY_LIMIT),
            )
            .add_service(LogsServiceServer::new(sink).max_decoding_message_size(BODY_LIMIT))
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener));
        tokio::spawn(async move { server.await.expect("the gRPC receiver serves") });
        Self {
            endpoint: format!("http://{address}"),
            received,
        }
    }

    /// The base URL to give as `OTEL_EXPORTER_OTLP_ENDPOINT`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Every log record received so far, in arrival order.
    pub fn logs(&self) -> Vec<ExportedLog> {
        self.received.lock().expect("not poisoned").logs.clone()
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

impl Received {
    fn spans(&mut self, request: ExportTraceServiceRequest) {
        for resource in request.resource_spans {
            let service = service_name(resource.resource.as_ref());
            for span in resource.scope_spans.into_iter().flat_map(|s| s.spans) {
                self.spans.push(ExportedSpan {
                    service: service.clone(),
                    name: span.name,
                    trace_id: hex(&span.trace_id),
                    linked_trace_ids: span.links.iter().map(|l| hex(&l.trace_id)).collect(),
                });
            }
        }
    }

    fn logs(&mut self, request: ExportLogsServiceRequest) {
        for resource in request.resource_logs {
            let service = service_name(resource.resource.as_ref());
            for record in resource.scope_logs.into_iter().flat_map(|s| s.log_records) {
                self.logs.push(ExportedLog {
                    service: service.clone(),
                    body: record
                        .body
                        .as_ref()
                        .and_then(|b| b.value.as_ref())
                        .map(text)
                        .unwrap_or_default(),
                    trace_id: hex(&record.trace_id),
                });
            }
        }
    }
}

async fn receive_traces(received: web::Data<Mutex<Received>>, body: web::Bytes) -> HttpResponse {
    let Ok(request) = ExportTraceServiceRequest::decode(body.clone()) else {
        return HttpResponse::BadRequest().finish();
    };
    let mut received = received.lock().expect("not poisoned");
    received.bodies.push(body.to_vec());
    received.spans(request);
    HttpResponse::Ok()
        .content_type("application/x-protobuf")
        .body(Vec::new())
}

async fn receive_logs(received: web::Data<Mutex<Received>>, body: web::Bytes) -> HttpResponse {
    let Ok(request) = ExportLogsServiceRequest::decode(body.clone()) else {
        return HttpResponse::BadRequest().finish();
    };
    let mut received = received.lock().expect("not poisoned");
    received.bodies.push(body.to_vec());
    received.logs(request);
    HttpResponse::Ok()
        .content_type("application/x-protobuf")
        .body(Vec::new())
}

/// The gRPC services, writing to the same record as the HTTP routes.
#[derive(Clone)]
struct Grpc(Arc<Mutex<Received>>);

#[tonic::async_trait]
impl TraceService for Grpc {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let request = request.into_inner();
        let mut received = self.0.lock().expect("not poisoned");
        received.bodies.push(request.encode_to_vec());
        received.spans(request);
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl LogsService for Grpc {
    async fn export(
        &self,
        request: tonic::Request<ExportLogsServiceRequest>,
    ) -> Result<tonic::Response<ExportLogsServiceResponse>, tonic::Status> {
        let request = request.into_inner();
        let mut received = self.0.lock().expect("not poisoned");
        received.bodies.push(request.encode_to_vec());
        received.logs(request);
        Ok(tonic::Response::new(ExportLogsServiceResponse::default()))
    }
}
