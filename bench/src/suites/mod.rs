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

/// How hard and how long the suites measure.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Length of each measured load run.
    pub duration: Duration,
    /// Connections of the RandomNumber runs.
    pub connections: u32,
    /// Concurrencies of the getcode runs.
    pub concurrencies: Vec<u32>,
    /// Codes issued by `storage-ops`.
    pub codes: u32,
    /// `CODE_TTL_SECONDS` of main-app in `storage-ops`, so expiry happens within the run.
    pub code_ttl_seconds: u32,
    /// Envelopes the worker drains in `drain`.
    pub drain_messages: usize,
    /// How long the stack idles before the idle samples of `latency`.
    pub idle: Duration,
    /// `RUST_LOG` of the services.
    pub rust_log: String,
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
