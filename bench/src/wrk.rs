//! The load generator: `wrk` 4.1 (Debian package `wrk`), one run per measurement. Its results
//! come from a Lua `done()` hook printing one JSON line, so nothing depends on the layout of its
//! human output. Header values reach wrk through its environment (read by the script), never its
//! command line, so a function key does not show in `ps`.

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The prefix of the line the Lua hook prints.
const RESULT_PREFIX: &str = "BENCH_RESULT ";

/// The `done()` hook: totals, errors and latency percentiles (microseconds) as one JSON line.
const DONE_HOOK: &str = r#"
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests":%.0f,"duration_us":%.0f,"connect_errors":%.0f,"read_errors":%.0f,' ..
    '"write_errors":%.0f,"status_errors":%.0f,"timeouts":%.0f,"p50_us":%.0f,"p90_us":%.0f,' ..
    '"p99_us":%.0f,"max_us":%.0f,"mean_us":%.1f}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    latency.mean))
end
"#;

/// One wrk run: where, how hard, how long.
#[derive(Debug, Clone)]
pub struct WrkRun {
    /// The URL loaded with `GET`.
    pub url: String,
    /// Open connections (the concurrency).
    pub connections: u32,
    pub duration: Duration,
    /// Extra request headers `(name, value)`; values go through the environment.
    pub headers: Vec<(String, String)>,
    /// Per-request timeout: a slower answer counts as a timeout, not a latency.
    pub timeout: Duration,
}

/// What one load run measured; latencies in milliseconds.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct LoadResult {
    pub requests: u64,
    pub rps: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// Answers that were not 2xx or 3xx.
    pub non_2xx: u64,
    /// Connect, read and write errors and timeouts.
    pub socket_errors: u64,
}

/// The JSON line of the hook, as printed.
#[derive(Debug, Deserialize)]
struct HookLine {
    requests: f64,
    duration_us: f64,
    connect_errors: f64,
    read_errors: f64,
    write_errors: f64,
    status_errors: f64,
    timeouts: f64,
    p50_us: f64,
    p90_us: f64,
    p99_us: f64,
    max_us: f64,
}

/// Reads the hook's line out of wrk's standard output.
pub fn parse_output(stdout: &str) -> anyhow::Result<LoadResult> {
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix(RESULT_PREFIX))
        .context("wrk printed no result line (did the done() hook run?)")?;
    let hook: HookLine = serde_json::from_str(line).context("wrk's result line is not JSON")?;
    let seconds = hook.duration_us / 1e6;
    if seconds <= 0.0 {
        bail!("wrk ran for no time");
    }
    let ms = |us: f64| us / 1e3;
    Ok(LoadResult {
        requests: hook.requests as u64,
        rps: hook.requests / seconds,
        p50_ms: ms(hook.p50_us),
        p90_ms: ms(hook.p90_us),
        p99_ms: ms(hook.p99_us),
        max_ms: ms(hook.max_us),
        non_2xx: hook.status_errors as u64,
        socket_errors: (hook.connect_errors + hook.read_errors + hook.write_errors + hook.timeouts)
            as u64,
    })
}

/// The Lua script for `headers`: each value read from `BENCH_HEADER_<i>`, then the hook.
fn script(headers: &[(String, String)]) -> String {
    let mut script = String::new();
    for (i, (name, _)) in headers.iter().enumerate() {
        script.push_str(&format!(
            "wrk.headers[\"{name}\"] = os.getenv(\"BENCH_HEADER_{i}\")\n"
        ));
    }
    script.push_str(DONE_HOOK);
    script
}

impl WrkRun {
    /// Runs wrk to completion (two threads at most: one per core) and reads its result.
    pub async fn run(&self) -> anyhow::Result<LoadResult> {
        let dir = tempfile::tempdir()?;
        let script_path = dir.path().join("bench.lua");
        std::fs::write(&script_path, script(&self.headers))?;
        let threads = self.connections.clamp(1, 2);
        let mut command = tokio::process::Command::new("wrk");
        command
            .arg(format!("-t{threads}"))
            .arg(format!("-c{}", self.connections))
            .arg(format!("-d{}s", self.duration.as_secs().max(1)))
            .arg(format!("--timeout={}s", self.timeout.as_secs().max(1)))
            .arg("-s")
            .arg(&script_path)
            .arg(&self.url)
            .kill_on_drop(true);
        for (i, (_, value)) in self.headers.iter().enumerate() {
            command.env(format!("BENCH_HEADER_{i}"), value);
        }
        let output = command
            .output()
            .await
            .context("cannot run wrk: install it (apt-get install wrk)")?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        if !output.status.success() {
            bail!(
                "wrk failed ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            );
        }
        parse_output(&stdout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hook_line_is_read_among_wrks_own_output() {
        let stdout = "Running 1s test @ http://127.0.0.1:1/\n  2 threads and 8 connections\n\
            BENCH_RESULT {\"requests\":2000,\"duration_us\":2000000,\"connect_errors\":1,\
            \"read_errors\":0,\"write_errors\":0,\"status_errors\":3,\"timeouts\":2,\
            \"p50_us\":1500,\"p90_us\":2500,\"p99_us\":9000,\"max_us\":12000,\"mean_us\":1700.5}\n";
        let result = parse_output(stdout).unwrap();
        assert_eq!(result.requests, 2000);
        assert_eq!(result.rps, 1000.0);
        assert_eq!(result.p50_ms, 1.5);
        assert_eq!(result.p99_ms, 9.0);
        assert_eq!(result.max_ms, 12.0);
        assert_eq!(result.non_2xx, 3);
        assert_eq!(result.socket_errors, 3);
        assert!(parse_output("Running 1s test\n").is_err());
    }

    #[test]
    fn header_values_stay_out_of_the_script() {
        let script = script(&[("x-functions-key".into(), "s3cret".into())]);
        assert!(
            script.contains("wrk.headers[\"x-functions-key\"] = os.getenv(\"BENCH_HEADER_0\")")
        );
        assert!(!script.contains("s3cret"));
    }
}
