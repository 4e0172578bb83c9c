//! The command line: which suites, how long, how hard; runs them in order and writes the report.

use crate::report::{Machine, Report};
use crate::suites::{self, Settings};
use anyhow::Context;
use clap::{Parser, ValueEnum};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// A suite to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SuiteName {
    /// Every suite, in the order below.
    All,
    /// third-party-api's RandomNumber against a bare actix-web handler.
    Randomnumber,
    /// main-app's getcode at each concurrency, CPU per process.
    Getcode,
    /// queue-worker draining a backlog against a bare receive-record-delete loop.
    Drain,
    /// Storage operations per issued code, by operation.
    StorageOps,
    /// Issued to verifiable, with the worker busy and after it idled.
    Latency,
    /// Start to ready and idle memory of each service; Key Vault round trips on their own.
    Startup,
    /// Internal: serve the bare actix-web baseline (started by the randomnumber suite).
    #[value(hide = true)]
    BaselineServer,
    /// Internal: the getcode baseline loop (started by the getcode suite).
    #[value(hide = true)]
    BaselineLoop,
}

/// Benchmarks of the services against their baselines on a local Azure stack (release build).
#[derive(Debug, Parser)]
#[command(name = "bench")]
pub struct Cli {
    /// Suites to run (`all` for every one).
    #[arg(value_enum, required = true)]
    pub suites: Vec<SuiteName>,
    /// Print the report as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// How hard and how long.
    #[command(flatten)]
    pub settings: Settings,
}

impl Cli {
    /// Runs what was asked.
    pub fn run(self) -> anyhow::Result<()> {
        if self.suites.contains(&SuiteName::BaselineServer) {
            return crate::baseline::serve();
        }
        if self.suites.contains(&SuiteName::BaselineLoop) {
            let concurrency = self.settings.concurrencies.first().copied().unwrap_or(1);
            return suites::getcode_baseline::serve_loop(concurrency, self.settings.duration);
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?;
        runtime.block_on(self.run_suites())
    }

    async fn run_suites(self) -> anyhow::Result<()> {
        if cfg!(debug_assertions) {
            eprintln!("bench: this is a debug build; run `cargo run -p bench --release`");
        }
        let settings = &self.settings;
        let now = OffsetDateTime::now_utc();
        let load_before = Machine::load_average();
        let all = self.suites.contains(&SuiteName::All);
        let mut results = Vec::new();
        for suite in [
            SuiteName::Startup,
            SuiteName::Randomnumber,
            SuiteName::Getcode,
            SuiteName::Drain,
            SuiteName::StorageOps,
            SuiteName::Latency,
        ] {
            if !all && !self.suites.contains(&suite) {
                continue;
            }
            eprintln!("bench: running {suite:?}");
            let result = match suite {
                SuiteName::Randomnumber => suites::randomnumber::run(settings).await,
                SuiteName::Getcode => suites::getcode::run(settings).await,
                SuiteName::Drain => suites::drain::run(settings).await,
                SuiteName::Latency => suites::latency::run(settings).await,
                SuiteName::Startup => suites::startup::run(settings).await,
                _ => suites::storage_ops::run(settings).await,
            };
            results.push(result.with_context(|| format!("suite {suite:?} failed"))?);
        }
        let report = Report {
            started_at: now.format(&Rfc3339)?,
            machine: Machine {
                cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
                load_before,
                load_after: Machine::load_average(),
                profile: if cfg!(debug_assertions) {
                    "debug"
                } else {
                    "release"
                },
            },
            suites: results,
        };
        let json = serde_json::to_string_pretty(&report)?;
        let dir = devstack::stack::target_dir().join("bench");
        std::fs::create_dir_all(&dir)?;
        let dir = dir.canonicalize().unwrap_or(dir);
        let stamp = now.format(time::macros::format_description!(
            "[year][month][day]T[hour][minute][second]Z"
        ))?;
        let path = dir.join(format!("{stamp}.json"));
        std::fs::write(&path, &json).with_context(|| format!("cannot write {}", path.display()))?;
        if let Some(chart) = crate::chart::getcode_svg(&report) {
            let svg = dir.join(format!("{stamp}-getcode.svg"));
            std::fs::write(&svg, chart)
                .with_context(|| format!("cannot write {}", svg.display()))?;
            eprintln!("bench: getcode chart in {}", svg.display());
        }
        if self.json {
            println!("{json}");
        } else {
            print!("{}", report.table());
        }
        eprintln!("bench: results in {}", path.display());
        Ok(())
    }
}
