//! `GET /api/v1/getcode` on main-app at each concurrency, with the CPU every process used: the
//! whole path (third-party call, queue send through the storage gate to Azurite) and the worker
//! consuming behind it.

use super::{Settings, measure};
use crate::report::SuiteResult;
use crate::stack::BenchStack;
use devstack::stack::Service;

/// Runs the suite.
pub async fn run(settings: &Settings) -> anyhow::Result<SuiteResult> {
    let services: Vec<(Service, Vec<(&str, &str)>)> =
        Service::ALL.iter().map(|s| (*s, Vec::new())).collect();
    let stack = BenchStack::start(&services, &settings.rust_log).await?;
    let watch = stack.cpu_watch(&[]);
    let url = format!("{}/api/v1/getcode", stack.stack.urls.main_app);
    let mut rows = Vec::new();
    for &connections in &settings.concurrencies {
        rows.push(
            measure(
                &watch,
                "main-app getcode",
                &url,
                &[],
                connections,
                settings.duration,
            )
            .await?,
        );
    }
    stack.stop().await;
    Ok(SuiteResult {
        suite: "getcode".into(),
        rows,
        notes: vec![
            "no baseline yet: the tight Rust loop (one third-party call and one queue send with \
             the same SDK clients) is the next step, so no service/baseline ratio here"
                .into(),
            "queue-worker drains behind the load, so each run after the first starts with a \
             backlog from the one before"
                .into(),
        ],
        ..Default::default()
    })
}
