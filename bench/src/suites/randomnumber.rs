//! `GET /api/RandomNumber` on third-party-api (function key checked) against a bare actix-web
//! handler answering a constant JSON with as many workers, same machine, same wrk settings, both
//! keeping connections alive (the service skeleton's `ServerOptions::keep_alive`, 5 s by
//! default). The baseline is also measured with every request sending `Connection: close`, to
//! show what closing costs.

use super::{Settings, measure};
use crate::baseline::BaselineServer;
use crate::report::{Ratio, SuiteResult};
use crate::stack::BenchStack;
use devstack::stack::Service;

/// Runs the suite.
pub async fn run(settings: &Settings) -> anyhow::Result<SuiteResult> {
    let stack =
        BenchStack::start(&[(Service::ThirdPartyApi, Vec::new())], &settings.rust_log).await?;
    let baseline = BaselineServer::start().await?;
    let baseline_pid = baseline.pid().unwrap_or_default();
    let watch = stack.cpu_watch(&[("bare actix-web", baseline_pid)]);
    let key = stack.stack.third_party_api_key().expose().to_owned();
    let c = settings.connections;
    let d = settings.duration;
    let service = measure(
        &watch,
        "third-party-api RandomNumber (as deployed)",
        &stack.stack.urls.third_party_api_endpoint,
        &[("x-functions-key", &key)],
        c,
        d,
    )
    .await?;
    let kept_alive = measure(
        &watch,
        "bare actix-web (keep-alive)",
        &baseline.url,
        &[],
        c,
        d,
    )
    .await?;
    let closing = measure(
        &watch,
        "bare actix-web (Connection: close)",
        &baseline.url,
        &[("Connection", "close")],
        c,
        d,
    )
    .await?;
    let ratios = vec![
        Ratio::of(
            "third-party-api as deployed / bare actix-web with keep-alive",
            &service,
            &kept_alive,
        ),
        Ratio::of(
            "keep-alive off / on (bare actix-web): what closing costs",
            &closing,
            &kept_alive,
        ),
    ];
    drop(baseline);
    stack.stop().await;
    Ok(SuiteResult {
        suite: "randomnumber".into(),
        rows: vec![service, kept_alive, closing],
        ratios,
        notes: vec![format!(
            "services log at RUST_LOG={}; wrk: 2 threads, {c} connections",
            settings.rust_log
        )],
        ..Default::default()
    })
}
