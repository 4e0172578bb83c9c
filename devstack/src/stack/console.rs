//! The console's side of a stack: its port bound before anything starts (the services export
//! their telemetry to it unless the person runs a collector, and the children's lines are kept
//! for it), then served with what it reads: identities, roles, the access log, the children's
//! lines, Azurite straight, and the resources it probes.

use super::lifecycle::DevStack;
use super::topology::{Principal, Service};
use crate::access_log::AccessLog;
use crate::azurite::ACCOUNT;
use crate::console::{Console, Probe, Resource, Sources};
use crate::process::{LogSink, LogTail};
use service_kit::telemetry::{OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_PROTOCOL};
use std::net::TcpListener;
use std::sync::Arc;

/// A console bound, not yet served.
pub(super) struct ConsolePlan {
    listener: TcpListener,
    logs: Arc<LogTail>,
    collector: Option<String>,
}

impl ConsolePlan {
    /// Binds the console on `port` (0: a free one) when there is one; the children's lines then
    /// go to `sink` and the console too, and `telemetry_env` points the services at the console
    /// unless it names a collector already.
    pub(super) fn bind(
        port: Option<u16>,
        sink: &mut LogSink,
        telemetry_env: &mut Vec<(String, String)>,
    ) -> anyhow::Result<Option<Self>> {
        let Some(port) = port else {
            return Ok(None);
        };
        let listener = super::lifecycle::bind(port, "devstack console")?;
        let logs = Arc::new(LogTail::default());
        if matches!(sink, LogSink::Stdout) {
            *sink = LogSink::Console(logs.clone());
        }
        let collector = telemetry_env
            .iter()
            .find(|(k, _)| k == OTEL_EXPORTER_OTLP_ENDPOINT)
            .map(|(_, v)| v.clone());
        if collector.is_none() {
            let endpoint = format!("http://127.0.0.1:{}", listener.local_addr()?.port());
            telemetry_env.retain(|(k, _)| k != OTEL_EXPORTER_OTLP_PROTOCOL);
            telemetry_env.push((OTEL_EXPORTER_OTLP_ENDPOINT.to_owned(), endpoint));
            telemetry_env.push((
                OTEL_EXPORTER_OTLP_PROTOCOL.to_owned(),
                "http/protobuf".into(),
            ));
            // The batch exporters' delay (5 s by default): a trace shows within a second.
            telemetry_env.push(("OTEL_BSP_SCHEDULE_DELAY".to_owned(), "1000".into()));
        }
        Ok(Some(Self {
            listener,
            logs,
            collector,
        }))
    }
}

impl DevStack {
    /// Serves the console `plan` bound, reading `access_log`, Azurite at `azurite`'s queue and
    /// blob endpoints, and `services`.
    pub(super) fn serve_console(
        &mut self,
        plan: ConsolePlan,
        access_log: Arc<AccessLog>,
        services: &[Service],
        azurite: &(String, String),
    ) -> anyhow::Result<()> {
        let sources = Sources {
            initial_roles: self.roles.all(),
            identities: self.identities.clone(),
            roles: self.roles.clone(),
            access_log,
            logs: plan.logs,
            traces: Arc::default(),
            collector: plan.collector,
            resources: self.console_resources(services, azurite),
            http: self.http.clone(),
            storage: ops::connect::Connection::from_env(&self.client_env(Principal::Devstack)?)?,
            azurite_queues: format!("{}/{ACCOUNT}", azurite.0),
            azurite_blobs: format!("{}/{ACCOUNT}", azurite.1),
        };
        self.console = Some(Console::serve(plan.listener, sources)?);
        Ok(())
    }

    /// What the console lists: the emulators, Azurite (at `azurite`'s queue and blob
    /// endpoints), the gates and `services`.
    fn console_resources(&self, services: &[Service], azurite: &(String, String)) -> Vec<Resource> {
        let address = |url: &str| {
            url.trim_start_matches("https://")
                .split('/')
                .next()
                .unwrap_or_default()
                .to_owned()
        };
        let resource = |name: &str, kind, url: &str, probe| Resource {
            name: name.to_owned(),
            kind,
            url: url.to_owned(),
            probe,
        };
        let u = &self.urls;
        let mut all = vec![
            resource(
                "identity emulator",
                "emulator",
                &u.msi_endpoint,
                Probe::Http(format!("{}/healthz", u.identity)),
            ),
            resource(
                "Key Vault emulator",
                "emulator",
                &u.key_vault,
                Probe::Http(format!("{}/healthz", u.key_vault)),
            ),
            resource(
                "azurite",
                "storage",
                &format!("{} (queues), {} (blobs)", azurite.0, azurite.1),
                Probe::Tcp(address(&azurite.0)),
            ),
            resource(
                "queue storage gate",
                "emulator",
                &u.queue_service,
                Probe::Tcp(address(&u.queue_service)),
            ),
            resource(
                "blob storage gate",
                "emulator",
                &u.blob_service,
                Probe::Tcp(address(&u.blob_service)),
            ),
        ];
        all.extend(services.iter().map(|s| {
            let url = u.of(*s);
            resource(
                s.name(),
                "service",
                url,
                Probe::Http(format!("{url}/readyz")),
            )
        }));
        all
    }
}
