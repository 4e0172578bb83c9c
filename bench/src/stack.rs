//! A fresh devstack per suite (so one suite's backlog never counts in the next), with the
//! services run from the release binaries next to this one.

use crate::cpu::CpuWatch;
use anyhow::{Context, bail};
use devstack::process::LogSink;
use devstack::stack::{DevStack, Service, StackOptions, profile_dir};

/// The name this process's CPU is reported under: the emulators and storage gates run here.
pub const OWN_PROCESS: &str = "bench + devstack";

/// A running stack and its state directory, removed when dropped.
pub struct BenchStack {
    pub stack: DevStack,
    _dir: tempfile::TempDir,
}

impl BenchStack {
    /// Starts the emulators, then each of `services` with its `overrides`, logging at `rust_log`.
    pub async fn start(
        services: &[(Service, Vec<(&str, &str)>)],
        rust_log: &str,
    ) -> anyhow::Result<Self> {
        let bin_dir = profile_dir();
        for (service, _) in services {
            if !bin_dir.join(service.name()).is_file() {
                bail!(
                    "{} is not built in {}: run `cargo build --release -p main-app -p \
                     third-party-api -p queue-worker` first",
                    service.name(),
                    bin_dir.display()
                );
            }
        }
        let dir = tempfile::tempdir()?;
        let mut options = StackOptions::for_tests(dir.path());
        options.bin_dir = bin_dir;
        options.rust_log = rust_log.to_owned();
        // Captured, not printed: the report is the output. Logs are kept in memory, so the
        // services run at `warn` unless asked otherwise.
        options.sink = LogSink::capture();
        let sink = options.sink.clone();
        let mut stack = DevStack::start(options)
            .await
            .with_context(|| format!("the stack failed to start:\n{}", sink.captured()))?;
        for (service, overrides) in services {
            stack
                .launch_with(*service, overrides)
                .await
                .with_context(|| {
                    format!("{} failed to start:\n{}", service.name(), sink.captured())
                })?;
        }
        Ok(Self { stack, _dir: dir })
    }

    /// The services, Azurite and `extra` processes, plus this one and wrk.
    pub fn cpu_watch(&self, extra: &[(&str, u32)]) -> CpuWatch {
        let mut processes: Vec<(String, u32)> = Service::ALL
            .iter()
            .filter_map(|s| Some((s.name().to_owned(), self.stack.service_pid(*s)?)))
            .collect();
        if let Some(pid) = self.stack.azurite_pid() {
            processes.push(("azurite (node)".to_owned(), pid));
        }
        processes.extend(extra.iter().map(|(n, p)| (n.to_string(), *p)));
        CpuWatch::new(processes, OWN_PROCESS)
    }

    /// Stops everything gracefully.
    pub async fn stop(self) {
        self.stack.stop().await;
    }
}
