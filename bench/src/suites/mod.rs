//! The suites; each starts its own stack, measures, and stops it.

pub mod drain;
pub mod getcode;
pub mod getcode_baseline;
pub mod latency;
pub mod randomnumber;
pub mod startup;
pub mod storage_ops;

use crate::cpu::CpuWatch;
use crate::report::Row;
use crate::wrk::WrkRun;
use std::time::{Duration, Instant};

/// How hard and how long the suites measure (the command line's options).
#[derive(Debug, Clone, clap::Args)]
pub struct Settings {
    /// Seconds of each measured load run.
    #[arg(long = "seconds", value_name = "SECONDS", value_parser = seconds, default_value = "10")]
    pub duration: Duration,
    /// Connections of the RandomNumber runs.
    #[arg(long, default_value_t = 16)]
    pub connections: u32,
    /// Concurrencies of the getcode runs.
    #[arg(long, value_delimiter = ',', default_value = "1,8,32,64")]
    pub concurrencies: Vec<u32>,
    /// Codes issued, verified and expired by storage-ops.
    #[arg(long, default_value_t = 100)]
    pub codes: u32,
    /// main-app's CODE_TTL_SECONDS in storage-ops, so expiry happens within the run.
    #[arg(long = "code-ttl", value_name = "CODE_TTL", default_value_t = 15)]
    pub code_ttl_seconds: u32,
    /// Envelopes queue-worker drains in the drain suite.
    #[arg(long, default_value_t = 2000)]
    pub drain_messages: usize,
    /// Seconds the stack idles before the idle samples of the latency suite.
    #[arg(long = "idle-seconds", value_name = "IDLE_SECONDS", value_parser = seconds, default_value = "300")]
    pub idle: Duration,
    /// RUST_LOG of the services (their logs are kept in memory during the run).
    #[arg(long, default_value = "warn")]
    pub rust_log: String,
}

/// A whole number of seconds.
fn seconds(text: &str) -> Result<Duration, std::num::ParseIntError> {
    text.parse().map(Duration::from_secs)
}

/// A short unrecorded run first, so connection pools, token caches and the key cache are warm.
pub(crate) const WARM_UP: Duration = Duration::from_secs(1);
/// wrk's per-request timeout: main-app's own request budget is 10 s.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Loads `url` with `connections` for `duration` after a warm-up, reading CPU around the run.
pub async fn measure(
    watch: &CpuWatch,
    label: &str,
    url: &str,
    headers: &[(&str, &str)],
    connections: u32,
    duration: Duration,
) -> anyhow::Result<Row> {
    let mut run = WrkRun {
        url: url.to_owned(),
        connections,
        duration: WARM_UP,
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        timeout: REQUEST_TIMEOUT,
    };
    run.run().await?;
    run.duration = duration;
    let before = watch.read();
    let started = Instant::now();
    let load = run.run().await?;
    let wall = started.elapsed().as_secs_f64();
    let after = watch.read();
    Ok(Row {
        label: label.to_owned(),
        connections,
        load,
        cpu: watch.used(&before, &after, wall),
    })
}

/// One `GET /api/v1/getcode` on the stack's main-app: the code it handed out.
pub(crate) async fn get_code(stack: &devstack::stack::DevStack) -> anyhow::Result<String> {
    use anyhow::Context;
    let answer: serde_json::Value = stack
        .http()
        .get(format!("{}/api/v1/getcode", stack.urls.main_app))
        .send()
        .await?
        .error_for_status()
        .context("getcode failed")?
        .json()
        .await?;
    Ok(answer["code"]
        .as_str()
        .context("no code in the answer")?
        .to_owned())
}
