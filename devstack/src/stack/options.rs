//! How a stack starts (ports, services, state and log destinations) and where this workspace's
//! build output is.

use super::topology::{Ports, Service};
use crate::process::LogSink;
use service_kit::telemetry::{LOG_FORMAT, RUST_LOG};
use std::path::{Path, PathBuf};

/// How to start a stack.
#[derive(Clone)]
pub struct StackOptions {
    /// Certificates, key store, env files, Azurite data.
    pub state_dir: PathBuf,
    /// Where Azurite's npm package is installed (shared between stacks).
    pub npm_dir: PathBuf,
    /// Where the service binaries are.
    pub bin_dir: PathBuf,
    /// Listening ports.
    pub ports: Ports,
    /// Services to launch.
    pub services: Vec<Service>,
    /// Keep Azurite's data in `state_dir/azurite` (otherwise in memory).
    pub persist_storage: bool,
    /// Where child output goes.
    pub sink: LogSink,
    /// `RUST_LOG` for the services.
    pub rust_log: String,
    /// Azurite's access log (one line per storage request) in the output.
    pub azurite_access_log: bool,
    /// Serve the console on this port (0: a free one); `None`: no console.
    pub console: Option<u16>,
    /// Telemetry settings passed to every service as they are (`OTEL_*`, `LOG_FORMAT`): the
    /// services start with a cleared environment, so nothing else reaches them.
    pub telemetry_env: Vec<(String, String)>,
}

/// Whether a variable of devstack's own environment is telemetry to pass to the services.
pub fn is_telemetry_variable(name: &str) -> bool {
    name.starts_with("OTEL_") || name == LOG_FORMAT
}

/// The telemetry variables among `vars` (`OTEL_*` and `LOG_FORMAT`, values as they are), what
/// [`StackOptions::for_development`] passes to the services from devstack's own environment.
pub fn telemetry_env_from(
    vars: impl IntoIterator<Item = (String, String)>,
) -> Vec<(String, String)> {
    vars.into_iter()
        .filter(|(name, _)| is_telemetry_variable(name))
        .collect()
}

/// `target/` of this workspace (or `CARGO_TARGET_DIR`).
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"))
}

/// The directory of the running executable's profile (`target/debug`), also from a test binary
/// in `target/debug/deps`.
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    let dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    if dir.file_name().is_some_and(|n| n == "deps") {
        dir.parent().map(Path::to_path_buf).unwrap_or(dir)
    } else {
        dir
    }
}

impl StackOptions {
    /// `cargo run -p devstack`: documented ports, state in `target/devstack`, every service.
    pub fn for_development() -> Self {
        let state_dir = target_dir().join("devstack");
        Self {
            npm_dir: state_dir.join("npm"),
            state_dir,
            bin_dir: profile_dir(),
            ports: Ports::DEFAULT,
            services: Service::ALL.to_vec(),
            persist_storage: true,
            sink: LogSink::Stdout,
            // A person's RUST_LOG reaches the services too, not only devstack's own log.
            rust_log: std::env::var(RUST_LOG).unwrap_or_else(|_| "info".into()),
            azurite_access_log: false,
            console: Some(crate::console::DEFAULT_PORT),
            telemetry_env: telemetry_env_from(std::env::vars()),
        }
    }

    /// An isolated stack in `state_dir`: free ports, in-memory storage, captured logs.
    pub fn for_tests(state_dir: &Path) -> Self {
        Self {
            state_dir: state_dir.to_owned(),
            npm_dir: target_dir().join("devstack/npm"),
            bin_dir: profile_dir(),
            ports: Ports::EPHEMERAL,
            services: Vec::new(),
            persist_storage: false,
            sink: LogSink::capture(),
            rust_log: "info".into(),
            azurite_access_log: false,
            console: None,
            telemetry_env: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(vars: &[(&str, &str)]) -> Vec<(String, String)> {
        vars.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn only_otel_variables_and_log_format_pass_to_the_services_unchanged() {
        let shell = pairs(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318"),
            ("PATH", "/usr/bin"),
            ("LOG_FORMAT", "json"),
            ("AZURE_CLIENT_SECRET", "not-for-the-services"),
            ("OTEL_SERVICE_NAME", "with spaces = and, commas"),
            ("RUST_LOG", "trace"),
            ("IDENTITY_HEADER", "x"),
            (
                "otel_exporter_otlp_endpoint",
                "lower case is another variable",
            ),
            ("MY_OTEL_ENDPOINT", "OTEL_ only as a prefix"),
            ("LOG_FORMAT_EXTRA", "LOG_FORMAT only exactly"),
            ("OTEL_", ""),
        ]);
        assert_eq!(
            telemetry_env_from(shell),
            pairs(&[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318"),
                ("LOG_FORMAT", "json"),
                ("OTEL_SERVICE_NAME", "with spaces = and, commas"),
                ("OTEL_", ""),
            ])
        );
        assert!(telemetry_env_from(Vec::new()).is_empty());
    }

    #[test]
    fn for_development_takes_only_telemetry_from_the_environment() {
        // Whatever this process's environment holds, nothing else is passed.
        let options = StackOptions::for_development();
        assert!(
            options
                .telemetry_env
                .iter()
                .all(|(name, _)| is_telemetry_variable(name))
        );
        assert_eq!(
            options.telemetry_env,
            telemetry_env_from(std::env::vars()),
            "for_development passes what telemetry_env_from keeps"
        );
    }
}
