//! queue-worker drain: `drain` `code-issued` envelopes reserved and enqueued (as main-app) before
//! the worker starts; timed from the worker's spawn until the storage gate has seen it delete
//! every one (each confirmed first). Baseline: the same storage operations per message in a tight
//! loop with no worker framework, as the worker's identity, in this process: receive a batch of
//! the worker's default size, confirm each code's record and delete each message concurrently,
//! repeat.

use super::Settings;
use super::getcode_baseline::CodeLoop;
use super::storage_ops::{counts, wait_for};
use crate::cpu::{CpuReading, CpuWatch};
use crate::report::{Ratio, Row, SuiteResult};
use crate::stack::BenchStack;
use crate::wrk::LoadResult;
use anyhow::bail;
use azure_storage_queue::models::QueueClientReceiveMessagesOptions;
use azure_storage_queue::{QueueClient, QueueClientOptions};
use codes::{CodeLedger, Incoming};
use devstack::stack::{DevStack, Service};
use shared_auth::transport::azure_client_options;
use std::time::{Duration, Instant};

/// The worker's default batch (`WORKER_BATCH_SIZE`), used by the baseline too.
const BATCH: usize = 16;
/// Concurrent sends while enqueueing.
const SENDERS: usize = 32;
/// The most a drain may take before the suite gives up.
const DRAIN_LIMIT: Duration = Duration::from_secs(600);

/// Runs the suite.
pub async fn run(settings: &Settings) -> anyhow::Result<SuiteResult> {
    let n = settings.drain_messages;
    let mut bench = BenchStack::start(&[], &settings.rust_log).await?;
    let producer = CodeLoop::new(&bench.stack)?;

    producer.enqueue(n, SENDERS).await?;
    let counts_before = counts(&bench.stack);
    let started = Instant::now();
    bench.stack.launch(Service::QueueWorker).await?;
    let watch = bench.cpu_watch(&[]);
    let before = watch.read();
    let stack = &bench.stack;
    wait_for(
        stack,
        &counts_before,
        "queue-worker",
        "Delete Message",
        n as u64,
        DRAIN_LIMIT,
    )
    .await?;
    let worker = drained("queue-worker drain", n, started, &watch, &before);
    bench.stack.stop_service(Service::QueueWorker, false).await;

    producer.enqueue(n, SENDERS).await?;
    let before = watch.read();
    let started = Instant::now();
    baseline_drain(&bench.stack, n).await?;
    let baseline = drained(
        "baseline: receive, confirm, delete loop",
        n,
        started,
        &watch,
        &before,
    );
    bench.stop().await;
    Ok(SuiteResult {
        suite: "drain".into(),
        ratios: vec![Ratio::of("drain / baseline", &worker, &baseline)],
        rows: vec![worker, baseline],
        notes: vec![format!(
            "{n} code-issued envelopes per drain, enqueued before it starts; req/s is \
             messages confirmed and deleted per second, the worker's time includes its start"
        )],
        ..Default::default()
    })
}

/// The row of a drain of `n` messages that started at `started` (no per-message latencies),
/// with the CPU used since `before`.
fn drained(label: &str, n: usize, started: Instant, watch: &CpuWatch, before: &CpuReading) -> Row {
    let wall = started.elapsed();
    Row {
        label: label.to_owned(),
        connections: BATCH as u32,
        load: LoadResult {
            requests: n as u64,
            rps: n as f64 / wall.as_secs_f64().max(f64::EPSILON),
            ..Default::default()
        },
        cpu: watch.used(before, &watch.read(), wall.as_secs_f64()),
    }
}

/// The baseline: the worker's storage operations per message with nothing around them.
async fn baseline_drain(stack: &DevStack, n: usize) -> anyhow::Result<()> {
    let env = stack.service_env_as_client(Service::QueueWorker)?;
    let settings = queue_worker::config::Settings::from_env(&env)?;
    let http = shared_auth::transport::http_client_from_env(&env)?;
    let credential = shared_auth::credential_from_env(&env, &http)?.credential;
    let queue = QueueClient::new(
        settings.queue_url.clone(),
        Some(credential.clone()),
        Some(QueueClientOptions {
            client_options: azure_client_options(&http),
            ..Default::default()
        }),
    )?;
    let ledger = CodeLedger::new(
        settings.ledger_url.clone(),
        credential,
        Some(azure_client_options(&http).into()),
    )?;
    let mut handled = 0;
    while handled < n {
        let received = queue
            .receive_messages(Some(QueueClientReceiveMessagesOptions {
                number_of_messages: Some(BATCH as i32),
                visibility_timeout: Some(30),
                ..Default::default()
            }))
            .await?
            .into_model()?
            .items
            .unwrap_or_default();
        let work = received.into_iter().map(|message| {
            let (queue, ledger) = (&queue, &ledger);
            async move {
                let text = message.message_text.unwrap_or_default();
                let Ok(Incoming::Code(envelope)) = Incoming::decode(&text, settings.encoding)
                else {
                    bail!("the baseline received a message that is not an envelope");
                };
                ledger.confirm(&envelope).await?;
                let (Some(message_id), Some(receipt)) = (message.message_id, message.pop_receipt)
                else {
                    bail!("a received message without id or pop receipt");
                };
                queue.delete_message(&message_id, &receipt, None).await?;
                anyhow::Ok(())
            }
        });
        for result in futures::future::join_all(work).await {
            result?;
            handled += 1;
        }
    }
    Ok(())
}
