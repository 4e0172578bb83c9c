//! Storage operations per issued code, counted at the storage gate by caller and operation, and
//! summed by phase (issue, verify, cleanup), over `codes` getcodes, their verification and their
//! expiry (main-app runs with a short
//! `CODE_TTL_SECONDS` so expiry happens within the run). The bench waits on the gate's counters,
//! never on Storage, so its own polling adds no operation to the count.

use super::Settings;
use crate::report::{OperationRow, SuiteResult};
use crate::stack::BenchStack;
use anyhow::bail;
use devstack::stack::{DevStack, Service};
use devstack::storage_gate::OperationCount;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// How long the worker may take past the expiry to remove every record: its sweep runs every
/// minute by default.
const EXPIRY_SLACK: Duration = Duration::from_secs(150);
/// What issuing a code costs until its message is handled: main-app's reservation (the record)
/// and send, the worker's receive (a batch, shared by the codes in it), confirming read and
/// delete.
const ISSUE: &[(&str, &str)] = &[
    ("main-app", "Put Blob"),
    ("main-app", "Put Message"),
    ("queue-worker", "Get Messages"),
    ("queue-worker", "Get Blob Properties"),
    ("queue-worker", "Delete Message"),
];
/// What a verify costs: the record's read and its conditional update.
const VERIFY: &[(&str, &str)] = &[
    ("main-app", "Get Blob Properties"),
    ("main-app", "Set Blob Metadata"),
];
/// What the cleanup costs locally (in Azure a lifecycle rule deletes, at no transaction cost).
const CLEANUP: &[(&str, &str)] = &[
    ("queue-worker", "List Blobs"),
    ("queue-worker", "Delete Blob"),
];

type Counts = BTreeMap<(String, &'static str), u64>;

/// The storage gate's count of every operation by caller so far.
pub(super) fn counts(stack: &DevStack) -> Counts {
    stack
        .storage_operations()
        .into_iter()
        .map(
            |OperationCount {
                 caller,
                 operation,
                 count,
             }| ((caller, operation), count),
        )
        .collect()
}

fn delta(before: &Counts, after: &Counts) -> Counts {
    after
        .iter()
        .map(|(key, n)| (key.clone(), n - before.get(key).copied().unwrap_or(0)))
        .filter(|(_, n)| *n > 0)
        .collect()
}

/// Waits until `caller` has made at least `at_least` `operation`s since `before`.
pub(super) async fn wait_for(
    stack: &DevStack,
    before: &Counts,
    caller: &str,
    operation: &'static str,
    at_least: u64,
    limit: Duration,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + limit;
    let key = (caller.to_owned(), operation);
    loop {
        let done = delta(before, &counts(stack))
            .get(&key)
            .copied()
            .unwrap_or(0);
        if done >= at_least {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{caller} made {done} of {at_least} {operation} within {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Runs the suite.
pub async fn run(settings: &Settings) -> anyhow::Result<SuiteResult> {
    let ttl = settings.code_ttl_seconds.to_string();
    let services = vec![
        (Service::ThirdPartyApi, Vec::new()),
        (Service::MainApp, vec![("CODE_TTL_SECONDS", ttl.as_str())]),
        (Service::QueueWorker, Vec::new()),
    ];
    let bench = BenchStack::start(&services, &settings.rust_log).await?;
    let stack = &bench.stack;
    let n = u64::from(settings.codes);
    let http = stack.http();
    let before = counts(stack);
    let started = Instant::now();

    let mut codes = Vec::new();
    for _ in 0..n {
        codes.push(super::get_code(stack).await?);
    }
    let ttl = Duration::from_secs(settings.code_ttl_seconds.into());
    // Verified once the worker has handled every message, so the issue phase is counted whole.
    wait_for(stack, &before, "queue-worker", "Delete Message", n, ttl).await?;
    let mut valid = 0u64;
    for code in &codes {
        let verdict: serde_json::Value = http
            .post(format!("{}/api/v1/codes/verify", stack.urls.main_app))
            .json(&serde_json::json!({ "code": code }))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        valid += u64::from(verdict["valid"] == true);
    }
    // Each code's one message deleted once handled; its record swept after its expiry.
    wait_for(
        stack,
        &before,
        "queue-worker",
        "Delete Blob",
        n,
        ttl + EXPIRY_SLACK,
    )
    .await?;
    wait_for(
        stack,
        &before,
        "queue-worker",
        "Delete Message",
        n,
        EXPIRY_SLACK,
    )
    .await?;
    let elapsed = started.elapsed();
    let spent = delta(&before, &counts(stack));
    bench.stop().await;

    let per_code = |count: u64| count as f64 / n as f64;
    let mut operations: Vec<OperationRow> = spent
        .iter()
        .map(|((caller, operation), count)| OperationRow {
            caller: caller.clone(),
            operation: (*operation).to_owned(),
            count: *count,
            per_code: per_code(*count),
        })
        .collect();
    let sum = |phase: &[(&str, &str)]| -> u64 {
        spent
            .iter()
            .filter(|((caller, op), _)| phase.contains(&(caller.as_str(), *op)))
            .map(|(_, count)| count)
            .sum()
    };
    let polls = sum(&[("queue-worker", "Get Messages")]);
    for (phase, ops) in [
        ("issue", ISSUE),
        ("verify", VERIFY),
        ("cleanup (local sweep)", CLEANUP),
    ] {
        operations.push(OperationRow {
            caller: "main-app + queue-worker".into(),
            operation: phase.into(),
            count: sum(ops),
            per_code: per_code(sum(ops)),
        });
    }
    Ok(SuiteResult {
        suite: "storage-ops".into(),
        operations,
        notes: vec![
            format!(
                "{n} codes issued one after another, {valid} verified valid, all expired and \
                 removed, in {:.1} s (CODE_TTL_SECONDS={})",
                elapsed.as_secs_f64(),
                settings.code_ttl_seconds
            ),
            format!(
                "issue without the worker's Get Messages ({polls}, empty polls included, which \
                 depend on time, not codes): {:.2} per code",
                per_code(sum(ISSUE) - polls)
            ),
        ],
        ..Default::default()
    })
}
