//! Issued to verifiable: the time from a 200 on getcode until verify says the code is valid,
//! with default settings. Busy: while other codes are issued at a steady rate, so the worker is
//! receiving anyway. Idle: after nothing has happened for `idle` (5 minutes by default, the longest any
//! back-off could grow), then again after each code, a pause long enough for the worker's
//! polling to reach its cap. Verify is asked every 10 ms; a verify that finds no record costs
//! one storage read and changes nothing, and one answered 503 (storage slower than verify's
//! budget under load) is asked again.

use super::Settings;
use crate::report::SuiteResult;
use crate::stack::BenchStack;
use crate::timing::TimingRow;
use anyhow::bail;
use devstack::stack::{DevStack, Service};
use std::time::{Duration, Instant};

/// Codes timed while the service is loaded.
const BUSY_SAMPLES: usize = 50;
/// Codes timed after idling (the first after the long idle).
const IDLE_SAMPLES: usize = 10;
/// The pause between idle samples: the worker's back-off reaches its cap in about 1.5 s.
const IDLE_GAP: Duration = Duration::from_secs(5);
/// Other getcodes per second while the busy samples are taken.
const BUSY_RATE: u32 = 20;
/// The most one code may take before the suite gives up.
const LIMIT: Duration = Duration::from_secs(120);

/// Runs the suite.
pub async fn run(settings: &Settings) -> anyhow::Result<SuiteResult> {
    let services: Vec<(Service, Vec<(&str, &str)>)> =
        Service::ALL.iter().map(|s| (*s, Vec::new())).collect();
    let bench = BenchStack::start(&services, &settings.rust_log).await?;
    let stack = &bench.stack;

    // Busy: other codes issued at a steady rate well under what the worker drains (about 120/s
    // on this machine), so the worker is receiving all along without a growing backlog.
    let background = tokio::spawn(steady_getcodes(
        stack.http().clone(),
        format!("{}/api/v1/getcode", stack.urls.main_app),
    ));
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut busy = Vec::new();
    for _ in 0..BUSY_SAMPLES {
        busy.push(issued_to_verifiable(stack).await?);
    }
    background.abort();

    eprintln!("bench: latency: idling {} s", settings.idle.as_secs());
    tokio::time::sleep(settings.idle).await;
    let mut idle = Vec::new();
    for _ in 0..IDLE_SAMPLES {
        idle.push(issued_to_verifiable(stack).await?);
        tokio::time::sleep(IDLE_GAP).await;
    }
    bench.stop().await;
    Ok(SuiteResult {
        suite: "latency".into(),
        timings: vec![
            TimingRow::of(
                &format!("issued to verifiable, busy ({BUSY_RATE} other getcodes/s)"),
                &busy,
            ),
            TimingRow::of(
                &format!(
                    "issued to verifiable, idle ({} s, then {} s between codes)",
                    settings.idle.as_secs(),
                    IDLE_GAP.as_secs()
                ),
                &idle,
            ),
        ],
        notes: vec!["default settings: WORKER_MAX_POLL_INTERVAL_MS=1000".into()],
        ..Default::default()
    })
}

/// One code: getcode, then verify every 10 ms until it is valid; the time from the 200.
async fn issued_to_verifiable(stack: &DevStack) -> anyhow::Result<Duration> {
    let http = stack.http();
    let code = super::get_code(stack).await?;
    let issued = Instant::now();
    loop {
        let answer = http
            .post(format!("{}/api/v1/codes/verify", stack.urls.main_app))
            .json(&serde_json::json!({ "code": code }))
            .send()
            .await?;
        // A 503 (the ledger slower than verify's budget under load) is asked again, as a client
        // honouring Retry-After would; it consumed nothing.
        if answer.status() != reqwest::StatusCode::SERVICE_UNAVAILABLE {
            let verdict: serde_json::Value = answer.error_for_status()?.json().await?;
            if verdict["valid"] == true {
                return Ok(issued.elapsed());
            }
        }
        if issued.elapsed() > LIMIT {
            bail!("{code} not verifiable within {LIMIT:?}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Issues getcodes at [`BUSY_RATE`] per second until aborted, each on its own task.
async fn steady_getcodes(http: reqwest::Client, url: String) {
    let mut tick = tokio::time::interval(Duration::from_secs(1) / BUSY_RATE);
    loop {
        tick.tick().await;
        let (http, url) = (http.clone(), url.clone());
        tokio::spawn(async move { http.get(url).send().await });
    }
}
