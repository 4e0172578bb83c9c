//! The whole system with the real binaries (main-app and queue-worker with their managed
//! identities through devstack): issue, record, verify once, expiry, a code verified before the
//! worker saw it, SIGKILL in the middle of a batch, SIGTERM during work.

mod support;

use devstack::stack::Service;
use std::collections::HashSet;
use std::time::{Duration, Instant};
use support::*;

async fn verify(stack: &Stack, code: &str) -> bool {
    let res = stack
        .http()
        .post(format!("{}/api/v1/codes/verify", stack.urls.main_app))
        .json(&serde_json::json!({ "code": code }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.unwrap();
    body["valid"].as_bool().unwrap()
}

/// How many records the worker has read (each message's confirmation is one).
fn worker_reads(stack: &Stack) -> u64 {
    stack.storage_operations_by("queue-worker", "Get Blob Properties")
}

#[tokio::test]
async fn issue_record_verify_once_and_expire() {
    let mut stack = start_stack(&[Service::ThirdPartyApi]).await;
    stack
        .launch_with(Service::MainApp, &[("CODE_TTL_SECONDS", "8")])
        .await
        .unwrap();

    // Verified before any worker runs: valid at once (main-app recorded it before answering).
    let early = get_code(&stack).await;
    assert!(
        verify(&stack, &early).await,
        "valid before the worker saw it"
    );
    stack.launch_with(Service::QueueWorker, FAST).await.unwrap();

    let code = get_code(&stack).await;
    assert!(verify(&stack, &code).await, "valid once");
    assert!(!verify(&stack, &code).await, "then not valid");

    // The worker confirms both records with one read each and changes neither: the early code
    // stays used, never valid again.
    eventually(
        Duration::from_secs(20),
        "both messages confirmed",
        || async { worker_reads(&stack) >= 2 },
    )
    .await;
    assert_eq!(
        ledger_record(&stack, &early).await.unwrap()["state"],
        "used"
    );
    assert!(!verify(&stack, &early).await, "a used code stays used");

    // A code never used: its record goes at the first sweep after its expiry, 8 seconds on.
    let unused = get_code(&stack).await;
    eventually(Duration::from_secs(20), "unused code recorded", || async {
        ledger_record(&stack, &unused).await.is_some()
    })
    .await;
    eventually(
        Duration::from_secs(30),
        "expired record removed",
        || async { ledger_record(&stack, &unused).await.is_none() },
    )
    .await;
    assert!(!verify(&stack, &unused).await, "expired: not valid");
    eventually(
        Duration::from_secs(30),
        "used record removed at expiry too",
        || async { ledger_record(&stack, &code).await.is_none() },
    )
    .await;
}

#[tokio::test]
async fn sigkill_in_the_middle_of_a_batch_of_200_loses_nothing() {
    let mut stack = start_stack(&[]).await;
    let messages: Vec<_> = (1..=200)
        .map(|n| envelope(&format!("kIl-{n}-LlL"), 3600))
        .collect();
    for message in &messages {
        send(&stack, message).await;
    }
    stack.launch_with(Service::QueueWorker, FAST).await.unwrap();
    eventually(Duration::from_secs(60), "some recorded", || async {
        ledger_codes(&stack).await.len() >= 30
    })
    .await;
    stack.stop_service(Service::QueueWorker, true).await;
    let at_kill = ledger_codes(&stack).await.len();
    assert!(at_kill < 200, "killed mid-batch ({at_kill} recorded)");

    stack.launch_with(Service::QueueWorker, FAST).await.unwrap();
    eventually(Duration::from_secs(120), "all 200 recorded", || async {
        ledger_codes(&stack).await.len() == 200
    })
    .await;
    let codes: HashSet<String> = ledger_codes(&stack).await.into_iter().collect();
    let expected: HashSet<String> = messages.iter().map(|m| m.code.to_string()).collect();
    assert_eq!(
        codes, expected,
        "every code recorded, none lost, nothing else"
    );
    for message in messages.iter().step_by(20) {
        let record = ledger_record(&stack, message.code.as_str()).await.unwrap();
        assert_eq!(
            record["message_id"],
            message.id.to_string(),
            "recorded once, by its message"
        );
    }
}

#[tokio::test]
async fn sigterm_finishes_in_flight_work_and_exits_within_the_grace_period() {
    let mut stack = start_stack(&[]).await;
    let messages: Vec<_> = (1..=150)
        .map(|n| envelope(&format!("tRm-{n}-EeE"), 3600))
        .collect();
    for message in &messages {
        send(&stack, message).await;
    }
    stack.launch_with(Service::QueueWorker, FAST).await.unwrap();
    eventually(Duration::from_secs(60), "work under way", || async {
        ledger_codes(&stack).await.len() >= 20
    })
    .await;
    let started = Instant::now();
    let status = stack
        .stop_service(Service::QueueWorker, false)
        .await
        .unwrap();
    assert!(status.success(), "clean exit: {status:?}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "within the 10 s grace period"
    );
    let log = stack.sink.captured();
    assert!(log.contains("finishing in-flight work"), "drained");

    // Nothing lost: what was not done is still queued and a new worker finishes it.
    stack.launch_with(Service::QueueWorker, FAST).await.unwrap();
    eventually(
        Duration::from_secs(120),
        "all recorded after restart",
        || async { ledger_codes(&stack).await.len() == 150 },
    )
    .await;
}
