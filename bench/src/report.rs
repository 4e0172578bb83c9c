//! What a run measured: rows of load results with the CPU each process used, ratios of a service
//! to its baseline, storage operation counts; printed as a table or as JSON, and kept in
//! `target/bench/<timestamp>.json`.

use crate::cpu::CpuUse;
use crate::memory::MemoryRow;
use crate::timing::TimingRow;
use crate::wrk::LoadResult;
use serde::Serialize;
use std::fmt::Write as _;

/// One run of the bench command.
#[derive(Debug, Serialize)]
pub struct Report {
    /// When the run started (UTC, RFC 3339).
    pub started_at: String,
    /// The machine and how busy it was.
    pub machine: Machine,
    /// Each suite run, in order.
    pub suites: Vec<SuiteResult>,
}

/// The machine the run happened on.
#[derive(Debug, Serialize)]
pub struct Machine {
    pub cores: usize,
    /// `/proc/loadavg` when the run started.
    pub load_before: String,
    /// `/proc/loadavg` when it ended.
    pub load_after: String,
    /// `release`, or `debug` (numbers not worth keeping).
    pub profile: &'static str,
}

impl Machine {
    /// `/proc/loadavg` now: the 1, 5 and 15 minute load averages.
    pub fn load_average() -> String {
        std::fs::read_to_string("/proc/loadavg")
            .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
            .unwrap_or_default()
    }
}

/// One suite's results.
#[derive(Debug, Default, Serialize)]
pub struct SuiteResult {
    /// The suite (`randomnumber`, `getcode`, `storage-ops`).
    pub suite: String,
    /// Load runs.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rows: Vec<Row>,
    /// Service against baseline.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ratios: Vec<Ratio>,
    /// Storage operations counted at the gate.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub operations: Vec<OperationRow>,
    /// Timed events (start to ready, issued to verifiable).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub timings: Vec<TimingRow>,
    /// Resident memory of the services.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub memory: Vec<MemoryRow>,
    /// What a reader needs to read the numbers right.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// One load run of one target.
#[derive(Debug, Serialize)]
pub struct Row {
    pub label: String,
    pub connections: u32,
    /// What wrk measured.
    pub load: LoadResult,
    /// CPU each process used during the run.
    pub cpu: Vec<CpuUse>,
}

/// A service's result divided by its baseline's.
#[derive(Debug, Serialize)]
pub struct Ratio {
    pub label: String,
    /// Requests per second, service / baseline (1.0: as fast as the baseline); `None` when the
    /// baseline completed nothing.
    pub throughput: Option<f64>,
    /// p99 latency, service / baseline (1.0: as fast as the baseline); `None` as above.
    pub p99: Option<f64>,
}

impl Ratio {
    /// `service` against `baseline`.
    pub fn of(label: &str, service: &Row, baseline: &Row) -> Self {
        let divide = |a: f64, b: f64| (b > 0.0 && a > 0.0).then(|| a / b);
        Self {
            label: label.to_owned(),
            throughput: divide(service.load.rps, baseline.load.rps),
            p99: divide(service.load.p99_ms, baseline.load.p99_ms),
        }
    }
}

fn ratio_text(ratio: Option<f64>, digits: usize) -> String {
    ratio.map_or_else(|| "n/a".to_owned(), |r| format!("{r:.digits$}"))
}

/// Storage operations of one caller and one kind during a suite.
#[derive(Debug, Serialize)]
pub struct OperationRow {
    pub caller: String,
    pub operation: String,
    pub count: u64,
    pub per_code: f64,
}

impl Report {
    /// The human table.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let m = &self.machine;
        let _ = writeln!(
            out,
            "bench {} ({} build): {} cores, load average {} before, {} after",
            self.started_at, m.profile, m.cores, m.load_before, m.load_after
        );
        for suite in &self.suites {
            let _ = writeln!(out, "\n== {}", suite.suite);
            if !suite.rows.is_empty() {
                let _ = writeln!(
                    out,
                    "{:<48} {:>4} {:>9} {:>8} {:>8} {:>8} {:>8} {:>7} {:>6}",
                    "target",
                    "conn",
                    "req/s",
                    "p50 ms",
                    "p90 ms",
                    "p99 ms",
                    "max ms",
                    "non2xx",
                    "errors"
                );
            }
            for row in &suite.rows {
                let l = &row.load;
                let _ = writeln!(
                    out,
                    "{:<48} {:>4} {:>9.0} {:>8.2} {:>8.2} {:>8.2} {:>8.1} {:>7} {:>6}",
                    row.label,
                    row.connections,
                    l.rps,
                    l.p50_ms,
                    l.p90_ms,
                    l.p99_ms,
                    l.max_ms,
                    l.non_2xx,
                    l.socket_errors
                );
                let cpu: Vec<String> = row
                    .cpu
                    .iter()
                    .filter(|c| c.cpu_seconds > 0.0)
                    .map(|c| {
                        let per_request = c.cpu_seconds * 1e3 / (l.requests.max(1) as f64);
                        format!("{} {:.2} ({:.3} ms/req)", c.process, c.cores, per_request)
                    })
                    .collect();
                let _ = writeln!(out, "    cores used: {}", cpu.join(", "));
            }
            for ratio in &suite.ratios {
                let _ = writeln!(
                    out,
                    "ratio {}: throughput {}, p99 {}",
                    ratio.label,
                    ratio_text(ratio.throughput, 3),
                    ratio_text(ratio.p99, 2)
                );
            }
            if !suite.operations.is_empty() {
                let _ = writeln!(
                    out,
                    "{:<18} {:<24} {:>7} {:>9}",
                    "caller", "operation", "count", "per code"
                );
            }
            for op in &suite.operations {
                let _ = writeln!(
                    out,
                    "{:<18} {:<24} {:>7} {:>9.2}",
                    op.caller, op.operation, op.count, op.per_code
                );
            }
            for t in &suite.timings {
                let _ = writeln!(
                    out,
                    "{:<72} n={:<4} p50 {:>9.1} ms  p99 {:>9.1} ms  max {:>9.1} ms",
                    t.label, t.samples, t.p50_ms, t.p99_ms, t.max_ms
                );
            }
            for m in &suite.memory {
                let _ = writeln!(
                    out,
                    "{:<16} {:<44} resident {:>7.1} MiB  peak {:>7.1} MiB",
                    m.process,
                    m.when,
                    m.rss_kib as f64 / 1024.0,
                    m.peak_kib as f64 / 1024.0
                );
            }
            for note in &suite.notes {
                let _ = writeln!(out, "note: {note}");
            }
        }
        out
    }
}
