//! The limit getcode is compared with: the same work with no web framework. A tight loop per
//! connection calling what getcode's handler calls (`main_app::routes::getcode::issue`: the
//! third-party call with its Key Vault key cache, the code reserved in the ledger, the queue
//! send) with main-app's own clients, as main-app's identity, over the same TLS. It runs as its
//! own process (this binary, hidden argument `baseline-loop`, main-app's environment) so its CPU
//! is counted apart, like main-app's.

use crate::timing::percentile_ms;
use crate::wrk::LoadResult;
use anyhow::Context;
use codes::{Code, CodeEnvelope};
use devstack::stack::{DevStack, Service};
use main_app::config::Settings;
use main_app::routes::AppState;
use main_app::routes::getcode::issue;
use main_app::startup::Application;
use shared_auth::secret_cache::SecretCacheOptions;
use shared_auth::{EnvSource, ProcessEnv};
use std::time::{Duration, Instant};
use time::OffsetDateTime;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout};

/// The hidden argument that makes this binary the baseline loop.
pub const LOOP_ARGUMENT: &str = "baseline-loop";

/// main-app's clients, built from its production settings as main-app builds them.
#[derive(Clone)]
pub struct CodeLoop {
    state: AppState,
}

impl CodeLoop {
    /// The clients for main-app's environment in `stack`, its identity as a service principal.
    pub fn new(stack: &DevStack) -> anyhow::Result<Self> {
        Self::from_env(&stack.service_env_as_client(Service::MainApp)?)
    }

    /// The clients for main-app's environment `env`.
    pub fn from_env(env: &dyn EnvSource) -> anyhow::Result<Self> {
        let settings = Settings::from_env(env)?;
        let state = Application::state(&settings, env, SecretCacheOptions::default())?;
        Ok(Self { state })
    }

    /// One code, as getcode issues it; true when it was.
    async fn issue(&self) -> bool {
        issue(&self.state).await.is_ok()
    }

    /// Reserves and sends `n` `code-issued` envelopes (valid for an hour) as main-app does,
    /// `senders` at a time: a backlog.
    pub async fn enqueue(&self, n: usize, senders: usize) -> anyhow::Result<()> {
        let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..senders {
            let (state, next) = (self.state.clone(), next.clone());
            tasks.spawn(async move {
                while next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < n {
                    let number = rand::random_range(1..=999);
                    let envelope = CodeEnvelope::issued(
                        Code::generate(number),
                        OffsetDateTime::now_utc(),
                        Duration::from_secs(3600),
                        None,
                    );
                    let id = envelope.id.to_string();
                    let (code, issued, expires) =
                        (&envelope.code, envelope.issued_at, envelope.expires_at);
                    state.ledger.record(code, issued, expires, &id).await?;
                    let deadline = tokio::time::Instant::now() + state.request_timeout;
                    state.queue.send(&envelope, deadline).await?;
                }
                anyhow::Ok(())
            });
        }
        while let Some(sent) = tasks.join_next().await {
            sent??;
        }
        Ok(())
    }

    /// `concurrency` loops issuing codes for `duration`.
    pub async fn run(&self, concurrency: u32, duration: Duration) -> LoadResult {
        let started = Instant::now();
        let deadline = started + duration;
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..concurrency {
            let this = self.clone();
            tasks.spawn(async move {
                let mut latencies = Vec::new();
                let mut failures = 0u64;
                while Instant::now() < deadline {
                    let t = Instant::now();
                    if this.issue().await {
                        latencies.push(t.elapsed());
                    } else {
                        failures += 1;
                    }
                }
                (latencies, failures)
            });
        }
        let mut latencies = Vec::new();
        let mut failures = 0;
        while let Some(Ok((l, f))) = tasks.join_next().await {
            latencies.extend(l);
            failures += f;
        }
        from_samples(latencies, failures, started.elapsed())
    }
}

/// In the child: the loop from this process's environment (main-app's), warmed, then `warm` on
/// stdout; at a line on stdin, `concurrency` loops for `duration`, the result as one JSON line;
/// then alive until stdin ends.
pub fn serve_loop(concurrency: u32, duration: Duration) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let code_loop = CodeLoop::from_env(&ProcessEnv)?;
        // Warm: a key in the cache, tokens, pooled connections.
        code_loop.run(concurrency, super::WARM_UP).await;
        println!("warm");
        tokio::task::spawn_blocking(|| std::io::stdin().read_line(&mut String::new())).await??;
        let load = code_loop.run(concurrency, duration).await;
        println!("{}", serde_json::to_string(&load)?);
        // Alive, connections and all, until the parent has read its memory and lets go.
        tokio::task::spawn_blocking(|| std::io::stdin().read_line(&mut String::new())).await??;
        anyhow::Ok(())
    })
}

/// The baseline loop running as a child process with main-app's environment, warmed and
/// waiting; killed when dropped.
pub struct LoopProcess {
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
}

impl LoopProcess {
    /// Starts this binary as the loop for main-app in `stack` and waits until it is warm.
    pub async fn start(
        stack: &DevStack,
        concurrency: u32,
        duration: Duration,
    ) -> anyhow::Result<Self> {
        let mut child = tokio::process::Command::new(std::env::current_exe()?)
            .args([LOOP_ARGUMENT, "--concurrencies", &concurrency.to_string()])
            .args(["--seconds", &duration.as_secs().to_string()])
            .envs(stack.service_env(Service::MainApp))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .context("cannot start the baseline loop")?;
        let stdout = child.stdout.take().context("no stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let said = lines.next_line().await?;
        anyhow::ensure!(
            said.as_deref() == Some("warm"),
            "the baseline loop said {said:?}, not warm"
        );
        Ok(Self { child, lines })
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id().unwrap_or_default()
    }

    /// Runs the measured loop and returns what it measured; the process lives on until dropped.
    pub async fn run(&mut self) -> anyhow::Result<LoadResult> {
        let stdin = self.child.stdin.as_mut().context("no stdin")?;
        stdin.write_all(b"go\n").await?;
        stdin.flush().await?;
        let line = self.lines.next_line().await?.context("the loop ended")?;
        Ok(serde_json::from_str(&line)?)
    }
}

/// Percentiles (nearest rank) of `latencies` of successful requests over `wall` time.
pub fn from_samples(mut latencies: Vec<Duration>, failures: u64, wall: Duration) -> LoadResult {
    latencies.sort();
    let rank = |p: f64| percentile_ms(&latencies, p);
    LoadResult {
        requests: latencies.len() as u64 + failures,
        rps: latencies.len() as f64 / wall.as_secs_f64().max(f64::EPSILON),
        p50_ms: rank(50.0),
        p90_ms: rank(90.0),
        p99_ms: rank(99.0),
        max_ms: rank(100.0),
        non_2xx: failures,
        socket_errors: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let latencies = (1..=100).rev().map(Duration::from_millis).collect();
        let result = from_samples(latencies, 2, Duration::from_secs(10));
        assert_eq!(result.requests, 102);
        assert_eq!(result.rps, 10.0);
        assert_eq!(result.p50_ms, 50.0);
        assert_eq!(result.p90_ms, 90.0);
        assert_eq!(result.p99_ms, 99.0);
        assert_eq!(result.max_ms, 100.0);
        assert_eq!(result.non_2xx, 2);
        assert_eq!(from_samples(Vec::new(), 0, Duration::ZERO).p99_ms, 0.0);
    }
}
