//! `GET /api/v1/getcode` on main-app at each concurrency, with the CPU every process used: the
//! whole path (third-party call, queue send through the storage gate to Azurite) and the worker
//! consuming behind it. Each concurrency is measured twice, service then baseline (the same work
//! in a tight loop with main-app's clients, [`super::getcode_baseline`]), and the ratio reported.

use super::getcode_baseline::LoopProcess;
use super::{Settings, measure};
use crate::memory::{self, MemoryRow};
use crate::report::{Ratio, Row, SuiteResult};
use crate::stack::BenchStack;
use devstack::stack::Service;
use std::time::Instant;

/// The name the baseline loop's CPU is reported under.
const LOOP: &str = "baseline loop";

/// Runs the suite: every row on a fresh stack, so no run inherits the queue and the ledger the
/// one before left (Azurite slows down as they grow).
pub async fn run(settings: &Settings) -> anyhow::Result<SuiteResult> {
    let mut rows = Vec::new();
    let mut ratios = Vec::new();
    let mut memory = Vec::new();
    for &connections in &settings.concurrencies {
        let (service, peaks) = measure_on_fresh_stack(settings, connections, false).await?;
        let (baseline, loop_peaks) = measure_on_fresh_stack(settings, connections, true).await?;
        memory.extend(peaks);
        memory.extend(loop_peaks.into_iter().filter(|row| row.process == LOOP));
        ratios.push(Ratio::of(
            &format!("getcode / baseline at {connections} connections"),
            &service,
            &baseline,
        ));
        rows.push(service);
        rows.push(baseline);
    }
    Ok(SuiteResult {
        suite: "getcode".into(),
        rows,
        ratios,
        memory,
        notes: vec![
            "the baseline loop runs as its own process with main-app's environment: its CPU \
             shows under `baseline loop`, comparable with main-app's"
                .into(),
            "each row runs on a fresh stack; queue-worker drains behind the load".into(),
            format!("services log at RUST_LOG={}", settings.rust_log),
        ],
        ..Default::default()
    })
}

/// One row: main-app's getcode with wrk, or the baseline loop, on a stack of its own; with the
/// services' memory after it (resident, and peak since their start).
async fn measure_on_fresh_stack(
    settings: &Settings,
    connections: u32,
    baseline: bool,
) -> anyhow::Result<(Row, Vec<MemoryRow>)> {
    let services: Vec<(Service, Vec<(&str, &str)>)> =
        Service::ALL.iter().map(|s| (*s, Vec::new())).collect();
    let stack = BenchStack::start(&services, &settings.rust_log).await?;
    let mut code_loop = None;
    let row = if baseline {
        let code_loop = code_loop
            .insert(LoopProcess::start(&stack.stack, connections, settings.duration).await?);
        let watch = stack.cpu_watch(&[(LOOP, code_loop.pid())]);
        let before = watch.read();
        let started = Instant::now();
        let load = code_loop.run().await?;
        let wall = started.elapsed().as_secs_f64();
        Row {
            label: "baseline: loop with main-app's clients".into(),
            connections,
            load,
            cpu: watch.used(&before, &watch.read(), wall),
        }
    } else {
        let url = format!("{}/api/v1/getcode", stack.stack.urls.main_app);
        measure(
            &stack.cpu_watch(&[]),
            "main-app getcode",
            &url,
            &[],
            connections,
            settings.duration,
        )
        .await?
    };
    let when = format!("after getcode at {connections} connections");
    let loop_pid = code_loop.as_ref().map(|l| (LOOP, l.pid()));
    let memory = Service::ALL
        .iter()
        .filter_map(|s| Some((s.name(), stack.stack.service_pid(*s)?)))
        .chain(loop_pid)
        .filter_map(|(name, pid)| memory::read(name, pid, &when))
        .collect();
    stack.stop().await;
    Ok((row, memory))
}
