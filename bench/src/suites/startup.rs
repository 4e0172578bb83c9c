//! Start to ready, and idle memory: each service's release binary started `runs` times with its
//! local environment, `/readyz` polled every 2 ms from the moment of spawn, then its resident
//! memory read after a second of idling. Each service's readiness includes its own round trips
//! (main-app: the Key Vault secret and a queue probe; third-party-api: its key store blob and its
//! master key from Key Vault; queue-worker: a first receive); the Key Vault part is also timed on
//! its own, as main-app's identity from a cold start (token, then secret) and warm (secret only).

use super::Settings;
use crate::memory::{self, MemoryRow};
use crate::report::SuiteResult;
use crate::stack::BenchStack;
use crate::timing::TimingRow;
use anyhow::{Context, bail};
use devstack::process::{ChildProcess, LogSink};
use devstack::stack::{DevStack, Service, profile_dir};
use shared_auth::secret_cache::{SecretCache, SecretCacheOptions};
use shared_auth::transport::azure_client_options;
use std::time::{Duration, Instant};
use tokio::process::Command;

/// Starts per service.
const RUNS: usize = 5;
/// How long a service idles before its memory is read.
const IDLE: Duration = Duration::from_secs(1);
/// The most a start may take before the suite gives up.
const READY_LIMIT: Duration = Duration::from_secs(30);

/// Runs the suite.
pub async fn run(settings: &Settings) -> anyhow::Result<SuiteResult> {
    let bench = BenchStack::start(&[], &settings.rust_log).await?;
    let stack = &bench.stack;
    let mut timings = Vec::new();
    let mut memory = Vec::new();
    for service in Service::ALL {
        let mut samples = Vec::new();
        for run in 0..RUNS {
            let (took, idle) = start_once(stack, *service, &settings.rust_log).await?;
            samples.push(took);
            if run == 0 {
                memory.push(idle);
            }
        }
        timings.push(TimingRow::of(
            &format!("{}: process start to /readyz 200", service.name()),
            &samples,
        ));
    }
    timings.extend(key_vault_round_trips(stack).await?);
    bench.stop().await;
    Ok(SuiteResult {
        suite: "startup".into(),
        timings,
        memory,
        notes: vec![format!(
            "{RUNS} starts per service, /readyz polled every 2 ms from the spawn; memory read \
             after {} s idle",
            IDLE.as_secs()
        )],
        ..Default::default()
    })
}

/// Starts `service` once: the time until `/readyz` answered 200, and its memory a moment later.
async fn start_once(
    stack: &DevStack,
    service: Service,
    rust_log: &str,
) -> anyhow::Result<(Duration, MemoryRow)> {
    let base = match service {
        Service::ThirdPartyApi => &stack.urls.third_party_api,
        Service::MainApp => &stack.urls.main_app,
        Service::QueueWorker => &stack.urls.queue_worker,
    };
    let mut command = Command::new(profile_dir().join(service.name()));
    command
        .env_clear()
        .envs(stack.service_env(service))
        .env("RUST_LOG", rust_log);
    let sink = LogSink::capture();
    let started = Instant::now();
    let mut process = ChildProcess::spawn(service.name(), command, &sink)
        .with_context(|| format!("cannot start {}", service.name()))?;
    let readyz = format!("{base}/readyz");
    let took = loop {
        let ready = stack
            .http()
            .get(&readyz)
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        if ready {
            break started.elapsed();
        }
        if let Some(status) = process.try_exit() {
            bail!("{} exited ({status}):\n{}", service.name(), sink.captured());
        }
        if started.elapsed() > READY_LIMIT {
            bail!(
                "{} not ready in {READY_LIMIT:?}:\n{}",
                service.name(),
                sink.captured()
            );
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    };
    tokio::time::sleep(IDLE).await;
    let idle = memory::read(service.name(), process.pid(), "idle, after start")
        .context("the process is gone")?;
    process.stop(Duration::from_secs(30)).await;
    Ok((took, idle))
}

/// main-app's Key Vault round trips on their own: a cold fetch (a new credential gets its token
/// first) and a warm one (token cached), each `RUNS` times.
async fn key_vault_round_trips(stack: &DevStack) -> anyhow::Result<Vec<TimingRow>> {
    let env = stack.client_env(Service::MainApp)?;
    let settings =
        main_app::config::Settings::from_env(&stack.service_env_as_client(Service::MainApp)?)?;
    let (mut cold, mut warm) = (Vec::new(), Vec::new());
    for _ in 0..RUNS {
        let credential = shared_auth::credential_from_env(&env, stack.http())?.credential;
        let options = SecretCacheOptions {
            client_options: azure_client_options(stack.http()),
            ..SecretCacheOptions::default()
        };
        let cache = SecretCache::new(
            settings.key_vault_url.clone(),
            credential,
            &settings.secret_name,
            Some(options),
        )?;
        let t = Instant::now();
        cache.refresh().await?;
        cold.push(t.elapsed());
        let t = Instant::now();
        cache.refresh().await?;
        warm.push(t.elapsed());
    }
    Ok(vec![
        TimingRow::of(
            "main-app identity: Key Vault secret, cold (token + GET)",
            &cold,
        ),
        TimingRow::of("main-app identity: Key Vault secret, warm (GET)", &warm),
    ])
}
