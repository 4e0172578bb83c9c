//! OTLP export of spans and log records: the protocol (`OTEL_EXPORTER_OTLP_PROTOCOL`), the two
//! batch pipelines when `OTEL_EXPORTER_OTLP_ENDPOINT` is set, and the bridge that turns `tracing`
//! events into log records (never the exporters' own).

use super::{
    CONTAINERAPP_OTEL_TRACING_GRPC_ENDPOINT, OTEL_EXPORTER_OTLP_ENDPOINT,
    OTEL_EXPORTER_OTLP_PROTOCOL,
};
use opentelemetry_appender_tracing::layer::OpenTelemetryTracingBridge;
use opentelemetry_otlp::{LogExporter, SpanExporter, WithExportConfig};
use opentelemetry_sdk::logs::SdkLoggerProvider;
use opentelemetry_sdk::trace::SdkTracerProvider;
use shared_auth::config::{ConfigError, EnvSource};
use tracing_subscriber::Layer;
use tracing_subscriber::filter::FilterFn;

/// How spans and log records travel to the collector (`OTEL_EXPORTER_OTLP_PROTOCOL`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OtlpProtocol {
    /// OTLP/HTTP with protobuf bodies, to `<endpoint>/v1/traces` and `/v1/logs` (the default).
    HttpProtobuf,
    /// OTLP/gRPC (Container Apps' managed agent speaks only this).
    Grpc,
}

impl OtlpProtocol {
    /// The protocol `env` names; unset is `http/protobuf`, as the OpenTelemetry specification says.
    pub fn from_env(env: &dyn EnvSource) -> Result<Self, ConfigError> {
        match env
            .var(OTEL_EXPORTER_OTLP_PROTOCOL)
            .as_deref()
            .map(str::trim)
        {
            None | Some("http/protobuf") => Ok(Self::HttpProtobuf),
            Some("grpc") => Ok(Self::Grpc),
            Some(_) => Err(ConfigError::new(
                OTEL_EXPORTER_OTLP_PROTOCOL,
                "must be `grpc` or `http/protobuf`",
            )),
        }
    }
}

/// The exporters' own crates: their events must not become exported log records (each export
/// would log, and that log be exported, for ever).
const EXPORT_TARGETS: &[&str] = &["opentelemetry", "hyper", "h2", "tonic", "tower", "reqwest"];

/// Whether an event of `target` may become an exported log record.
fn exportable(target: &str) -> bool {
    !EXPORT_TARGETS.iter().any(|t| {
        target
            .strip_prefix(t)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with("::") || rest.starts_with('_'))
    })
}

/// The span pipeline (always: it also gives `traceparent` its ids) and, with an endpoint, the log
/// pipeline.
pub(super) struct Export {
    pub(super) spans: SdkTracerProvider,
    logs: Option<SdkLoggerProvider>,
}

impl Export {
    /// The pipelines for `service_name` as `env` sets them.
    pub(super) fn from_env(
        service_name: &'static str,
        env: &dyn EnvSource,
    ) -> Result<Self, ConfigError> {
        let (protocol, endpoint) = match env.var(OTEL_EXPORTER_OTLP_ENDPOINT) {
            Some(endpoint) => (OtlpProtocol::from_env(env)?, Some(endpoint)),
            None => (OtlpProtocol::Grpc, agent_endpoint(env)),
        };
        let resource = opentelemetry_sdk::Resource::builder()
            .with_service_name(service_name)
            .build();
        let mut spans = SdkTracerProvider::builder().with_resource(resource.clone());
        let mut logs = None;
        if let Some(endpoint) = endpoint {
            let (span_exporter, log_exporter) = exporters(protocol, endpoint.trim())?;
            spans = spans.with_batch_exporter(span_exporter);
            logs = Some(
                SdkLoggerProvider::builder()
                    .with_resource(resource)
                    .with_batch_exporter(log_exporter)
                    .build(),
            );
        }
        Ok(Self {
            spans: spans.build(),
            logs,
        })
    }

    /// Every event the log filter lets through, as an OTLP log record carrying the trace and
    /// span it happened in; none of the exporters' own. `None` without an endpoint.
    pub(super) fn log_bridge<S>(&self) -> Option<Box<dyn Layer<S> + Send + Sync>>
    where
        S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    {
        self.logs.as_ref().map(|logs| {
            OpenTelemetryTracingBridge::new(logs)
                .with_filter(FilterFn::new(|meta| exportable(meta.target())))
                .boxed()
        })
    }
}

impl Drop for Export {
    fn drop(&mut self) {
        if let Err(e) = self.spans.shutdown() {
            eprintln!("telemetry shutdown: {e}");
        }
        if let Some(Err(e)) = self.logs.as_ref().map(SdkLoggerProvider::shutdown) {
            eprintln!("log export shutdown: {e}");
        }
    }
}

/// Container Apps' managed agent as the platform names it when it sets no `OTEL_*` pair: its
/// gRPC endpoint, scheme, host and port only (the value carries a signal path gRPC does not use).
fn agent_endpoint(env: &dyn EnvSource) -> Option<String> {
    let raw = env.var(CONTAINERAPP_OTEL_TRACING_GRPC_ENDPOINT)?;
    let url = reqwest::Url::parse(raw.trim()).ok()?;
    let host = url.host_str()?;
    let port = url.port_or_known_default()?;
    Some(format!("{}://{host}:{port}", url.scheme()))
}

/// The span and log exporters for `protocol` to `endpoint` (OTLP/HTTP appends each signal's path
/// to the variable's value itself; gRPC takes it as it is). gRPC needs a Tokio runtime.
fn exporters(
    protocol: OtlpProtocol,
    endpoint: &str,
) -> Result<(SpanExporter, LogExporter), ConfigError> {
    let failed = |e: &dyn std::fmt::Display| {
        ConfigError::new(
            OTEL_EXPORTER_OTLP_ENDPOINT,
            format!("the OTLP exporter cannot be built: {e}"),
        )
    };
    match protocol {
        OtlpProtocol::HttpProtobuf => Ok((
            SpanExporter::builder()
                .with_http()
                .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
                .build()
                .map_err(|e| failed(&e))?,
            LogExporter::builder()
                .with_http()
                .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
                .build()
                .map_err(|e| failed(&e))?,
        )),
        OtlpProtocol::Grpc => {
            if tokio::runtime::Handle::try_current().is_err() {
                return Err(ConfigError::new(
                    OTEL_EXPORTER_OTLP_PROTOCOL,
                    "grpc needs a Tokio runtime when telemetry starts",
                ));
            }
            Ok((
                SpanExporter::builder()
                    .with_tonic()
                    .with_endpoint(endpoint)
                    .build()
                    .map_err(|e| failed(&e))?,
                LogExporter::builder()
                    .with_tonic()
                    .with_endpoint(endpoint)
                    .build()
                    .map_err(|e| failed(&e))?,
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared_auth::config::MapEnv;

    #[test]
    fn the_protocol_is_http_unless_grpc_is_named_and_anything_else_is_refused() {
        let with =
            |v: &str| OtlpProtocol::from_env(&MapEnv::new().with(OTEL_EXPORTER_OTLP_PROTOCOL, v));
        assert_eq!(
            OtlpProtocol::from_env(&MapEnv::new()),
            Ok(OtlpProtocol::HttpProtobuf)
        );
        assert_eq!(with("http/protobuf"), Ok(OtlpProtocol::HttpProtobuf));
        assert_eq!(with(" grpc "), Ok(OtlpProtocol::Grpc));
        for wrong in ["http/json", "GRPC", "http"] {
            let e = with(wrong).unwrap_err();
            assert!(e.to_string().contains(OTEL_EXPORTER_OTLP_PROTOCOL), "{e}");
        }
    }

    #[test]
    fn grpc_outside_a_runtime_is_refused_naming_the_variable() {
        let env = MapEnv::new()
            .with(OTEL_EXPORTER_OTLP_ENDPOINT, "http://127.0.0.1:4317")
            .with(OTEL_EXPORTER_OTLP_PROTOCOL, "grpc");
        let e = Export::from_env("test", &env).err().expect("refused");
        assert!(e.to_string().contains(OTEL_EXPORTER_OTLP_PROTOCOL), "{e}");
    }

    #[tokio::test]
    async fn grpc_inside_a_runtime_builds_both_pipelines() {
        let env = MapEnv::new()
            .with(OTEL_EXPORTER_OTLP_ENDPOINT, "http://127.0.0.1:4317")
            .with(OTEL_EXPORTER_OTLP_PROTOCOL, "grpc");
        let export = Export::from_env("test", &env).expect("built");
        assert!(
            export
                .log_bridge::<tracing_subscriber::Registry>()
                .is_some()
        );
        let without = Export::from_env("test", &MapEnv::new()).unwrap();
        assert!(
            without
                .log_bridge::<tracing_subscriber::Registry>()
                .is_none()
        );
    }

    #[tokio::test]
    async fn without_the_otel_pair_the_container_apps_agent_is_used_over_grpc() {
        let env = MapEnv::new().with(
            CONTAINERAPP_OTEL_TRACING_GRPC_ENDPOINT,
            "http://k8se-otel.k8se-apps.svc.cluster.local:4317/v1/traces",
        );
        assert_eq!(
            agent_endpoint(&env).as_deref(),
            Some("http://k8se-otel.k8se-apps.svc.cluster.local:4317")
        );
        let export = Export::from_env("test", &env).expect("built");
        assert!(
            export
                .log_bridge::<tracing_subscriber::Registry>()
                .is_some()
        );
        let garbled = MapEnv::new().with(CONTAINERAPP_OTEL_TRACING_GRPC_ENDPOINT, "not a url");
        assert_eq!(agent_endpoint(&garbled), None);
    }

    #[test]
    fn the_exporters_own_events_are_not_exported() {
        for own in [
            "opentelemetry",
            "opentelemetry_sdk",
            "opentelemetry_otlp::exporter",
            "hyper_util::client",
            "h2::codec",
            "tonic::transport",
            "tower::buffer",
            "reqwest::connect",
        ] {
            assert!(!exportable(own), "{own}");
        }
        for service in [
            "main_app::routes::getcode",
            "service_kit::telemetry",
            "queue_worker",
            "hyperlane",
            "towering",
        ] {
            assert!(exportable(service), "{service}");
        }
    }
}
