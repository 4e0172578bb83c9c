//! Test support: a local Azure stack, clients as its identities, the worker in-process (as the
//! queue-worker identity, client-secret flavour) or as its binary through devstack.
#![allow(dead_code, missing_docs, unused_imports)]

use azure_core::http::StatusCode;
use azure_storage_blob::models::BlobClientGetPropertiesResultHeaders;
use azure_storage_queue::models::QueueMessage;
use codes::{Code, CodeEnvelope};
use devstack::stack::{DevStack, Identity, Service};
use queue_worker::config::Settings;
use queue_worker::startup::Application;
use queue_worker::worker::Worker;
use service_kit::service::Service as _;
use shared_auth::MapEnv;
use shared_auth::transport::azure_client_options;
use std::collections::HashMap;
use std::time::Duration;
use time::OffsetDateTime;

pub use test_kit::{
    TestStack as Stack, drain_texts, eventually, get_code, ledger_codes, ledger_record,
    messages_in, queue_client as queue_as,
};

pub async fn start_stack(services: &[Service]) -> Stack {
    test_kit::start_stack(services).await
}

/// Fast settings for tests: short visibility, immediate retry, short polling, a sweep a second.
pub const FAST: &[(&str, &str)] = &[
    ("WORKER_SWEEP_INTERVAL_SECONDS", "1"),
    ("WORKER_VISIBILITY_TIMEOUT_SECONDS", "4"),
    ("WORKER_RETRY_DELAY_SECONDS", "0"),
    ("WORKER_MAX_POLL_INTERVAL_MS", "300"),
    ("WORKER_SHUTDOWN_GRACE_SECONDS", "10"),
];

/// The worker's production environment from devstack, identity as a service principal, fast.
pub fn worker_env(stack: &DevStack) -> MapEnv {
    let mut env = test_kit::env_as_client(stack, Service::QueueWorker);
    for (k, v) in FAST {
        env = env.with(k, *v);
    }
    env
}

pub struct RunningWorker {
    pub worker: Worker,
    pub base: String,
    pub stop: tokio::sync::oneshot::Sender<()>,
    pub done: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl RunningWorker {
    pub fn processed(&self) -> u64 {
        self.worker
            .stats
            .processed
            .load(std::sync::atomic::Ordering::Relaxed)
    }
    pub fn retried(&self) -> u64 {
        self.worker
            .stats
            .retried
            .load(std::sync::atomic::Ordering::Relaxed)
    }
    pub fn poisoned(&self) -> u64 {
        self.worker
            .stats
            .poisoned
            .load(std::sync::atomic::Ordering::Relaxed)
    }
    pub async fn shutdown(self) {
        let _ = self.stop.send(());
        let _ = self.done.await;
    }
}

pub use test_kit::captured_logs as logs;

/// The worker in this process against a fresh local stack, with its production environment
/// (fast settings): the stack and the worker, in one call.
pub async fn spawn_app() -> (Stack, RunningWorker) {
    let stack = start_stack(&[]).await;
    let worker = spawn_worker(&worker_env(&stack));
    (stack, worker)
}

/// The worker in this process with the environment `env`.
pub fn spawn_worker(env: &MapEnv) -> RunningWorker {
    logs();
    let settings = Settings::from_env(env).unwrap();
    let app = Application::build(settings, env).unwrap();
    let worker = app.worker().clone();
    let base = test_kit::wire::LocalService::on_port(app.port()).base;
    let (stop, stopped) = tokio::sync::oneshot::channel();
    let done = tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));
    RunningWorker {
        worker,
        base,
        stop,
        done,
    }
}

pub fn envelope(code: &str, ttl_seconds: u64) -> CodeEnvelope {
    CodeEnvelope::issued(
        Code::parse(code).unwrap(),
        OffsetDateTime::now_utc(),
        Duration::from_secs(ttl_seconds),
        None,
    )
}

/// Sends raw text to the main queue as main-app would.
pub async fn send_text(stack: &DevStack, text: &str) {
    queue_as(stack, &stack.urls.queue, Identity::MainApp)
        .send_message(
            QueueMessage {
                message_text: Some(text.to_owned()),
            }
            .try_into()
            .unwrap(),
            None,
        )
        .await
        .unwrap();
}

pub async fn send(stack: &DevStack, envelope: &CodeEnvelope) {
    send_text(stack, &envelope.encode(Default::default())).await;
}
