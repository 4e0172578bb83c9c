//! The worker in-process against the local stack: duplicates, poison after exactly the allowed
//! attempts, garbage poisoned at once while good messages flow, producers' readiness probes
//! deleted unread, missing roles and recovery.

mod support;

use base64::Engine;
use devstack::rbac::{Role, Scope};
use devstack::stack::Identity;
use devstack::stack::{CONTAINER, QUEUE};
use devstack::storage_gate::{Fault, StorageService};
use std::time::Duration;
use support::*;

#[tokio::test]
async fn a_duplicate_delivery_records_once_and_a_used_code_stays_used() {
    let (stack, worker) = spawn_app().await;
    let message = envelope("dUp-7-CaT", 300);
    send(&stack, &message).await;
    send(&stack, &message).await;
    eventually(
        Duration::from_secs(20),
        "both deliveries handled",
        || async { worker.processed() >= 2 },
    )
    .await;
    let record = ledger_record(&stack, "dUp-7-CaT").await.expect("recorded");
    assert_eq!(record["message_id"], message.id.to_string());
    assert_eq!(record["state"], "issued");

    // Consumed, then delivered once more: still used (the record is a tombstone, not deleted).
    let ledger = test_kit::clients::ledger(&stack, Identity::MainApp);
    assert!(ledger.consume(&message.code).await.unwrap());
    send(&stack, &message).await;
    eventually(
        Duration::from_secs(20),
        "third delivery handled",
        || async { worker.processed() >= 3 },
    )
    .await;
    assert!(
        !ledger.consume(&message.code).await.unwrap(),
        "never valid twice"
    );
    assert_eq!(
        ledger_record(&stack, "dUp-7-CaT").await.unwrap()["state"],
        "used"
    );
    worker.shutdown().await;
}

#[tokio::test]
async fn a_message_storage_refuses_for_itself_is_tried_five_times_then_poisoned_with_the_reason() {
    let logs = logs();
    let stack = start_stack(&[]).await;
    // Storage refuses every record request for itself (400), not for its state.
    stack
        .storage_gate(StorageService::Blob)
        .set_fault(Some(Fault::InvalidInput));
    let worker = spawn_worker(&worker_env(&stack));
    let message = envelope("pOi-5-SoN", 300);
    let original = message.encode(Default::default());
    send_text(&stack, &original).await;
    eventually(Duration::from_secs(40), "poisoned", || async {
        worker.poisoned() == 1
    })
    .await;
    assert_eq!(
        worker.retried(),
        4,
        "four retries, then the fifth failure poisons"
    );
    let poisoned = drain_texts(&stack, &stack.urls.poison_queue).await;
    assert_eq!(poisoned, [original], "the original message, unchanged");
    let log = logs.text();
    let line = log
        .lines()
        .find(|l| l.contains("moved to the poison queue") && l.contains("failed 5 times"))
        .unwrap_or_else(|| panic!("the reason is logged:\n{log}"));
    assert!(line.contains("InvalidInput"), "{line}");
    assert!(line.contains("\"dequeue_count\":5"), "{line}");
    // The envelope's id is the operator's key to the poisoned copy (its queue id is new), on the
    // poison line and on each failed attempt's line.
    let envelope_id = message.id.to_string();
    assert!(line.contains(&envelope_id), "{line}");
    let attempts = log
        .lines()
        .filter(|l| l.contains("handling failed") && l.contains(&envelope_id))
        .count();
    assert_eq!(attempts, 4, "each retried failure names the envelope");
    assert!(
        drain_texts(&stack, &stack.urls.queue).await.is_empty(),
        "gone from the main queue"
    );
    stack.storage_gate(StorageService::Blob).set_fault(None);
    assert!(ledger_record(&stack, "pOi-5-SoN").await.is_none());
    worker.shutdown().await;
}

/// The worker's `/readyz`: status and the names of the failing checks.
async fn readiness(worker: &RunningWorker) -> (u16, serde_json::Value) {
    let res = reqwest::get(format!("{}/readyz", worker.base))
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or_default())
}

#[tokio::test]
async fn without_its_ledger_role_the_worker_keeps_messages_unpoisoned_and_records_them_once_granted()
 {
    let logs = logs();
    let stack = start_stack(&[]).await;
    let scope = Scope::Container(CONTAINER.into());
    // Without its blob role every attempt to record fails with 403: the ledger's state, not
    // the messages' fault.
    assert!(stack.revoke(
        Identity::QueueWorker,
        Role::StorageBlobDataContributor,
        &scope
    ));
    let worker = spawn_worker(&worker_env(&stack));
    let codes = ["kEp-1-RoL", "kEp-2-RoL", "kEp-3-RoL"];
    for code in codes {
        send(&stack, &envelope(code, 300)).await;
    }
    eventually(
        Duration::from_secs(20),
        "the ledger reported failing",
        || async { readiness(&worker).await.1["failing"] == serde_json::json!(["ledger"]) },
    )
    .await;
    // Longer than five deliveries at the test's 4 s visibility and no retry delay: the old
    // rule would have poisoned them all by now.
    tokio::time::sleep(Duration::from_secs(25)).await;
    assert_eq!(
        worker.poisoned(),
        0,
        "a dependency failure spends no delivery"
    );
    assert_eq!(
        worker.retried(),
        0,
        "nor is the message given back to be redelivered"
    );
    assert!(
        drain_texts(&stack, &stack.urls.poison_queue)
            .await
            .is_empty()
    );
    assert_eq!(readiness(&worker).await.0, 503);
    let log = logs.text();
    let line = log
        .lines()
        .find(|l| l.contains("the ledger is failing"))
        .unwrap_or_else(|| panic!("the outage is logged:\n{log}"));
    assert!(
        line.contains("Blob Data Contributor"),
        "the missing role is named: {line}"
    );
    stack.grant(
        Identity::QueueWorker,
        Role::StorageBlobDataContributor,
        scope,
    );
    eventually(
        Duration::from_secs(15),
        "recorded once the role is back",
        || async { worker.processed() == codes.len() as u64 },
    )
    .await;
    for code in codes {
        assert!(
            ledger_record(&stack, code).await.is_some(),
            "{code} recorded"
        );
    }
    assert_eq!(readiness(&worker).await.0, 200, "ready again");
    assert_eq!(worker.poisoned(), 0);
    worker.shutdown().await;
}

#[tokio::test]
async fn undecodable_messages_are_poisoned_at_once_while_good_ones_are_recorded() {
    let logs = logs();
    let (stack, worker) = spawn_app().await;
    let mut v2 = serde_json::to_value(envelope("vEr-2-SiO", 300)).unwrap();
    v2["version"] = 2.into();
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let garbage = [
        "%%% not base64 %%%".to_owned(),
        b64("{not json"),
        base64::engine::general_purpose::STANDARD.encode([0xff, 0xfe, 0x00]),
        b64(&v2.to_string()),
    ];
    let good: Vec<_> = (1..=6)
        .map(|n| envelope(&format!("gOo-{n}-DdD"), 300))
        .collect();
    for (i, message) in good.iter().enumerate() {
        send(&stack, message).await;
        if let Some(bad) = garbage.get(i) {
            send_text(&stack, bad).await;
        }
    }
    eventually(Duration::from_secs(30), "all handled", || async {
        worker.processed() == 6 && worker.poisoned() == 4
    })
    .await;
    assert_eq!(worker.retried(), 0, "no retry for what can never succeed");
    for message in &good {
        assert!(
            ledger_record(&stack, message.code.as_str()).await.is_some(),
            "{}",
            message.code
        );
    }
    let mut poisoned = drain_texts(&stack, &stack.urls.poison_queue).await;
    let mut expected = garbage.to_vec();
    poisoned.sort();
    expected.sort();
    assert_eq!(poisoned, expected, "each poisoned at once, unchanged");
    let log = logs.text();
    assert!(
        log.lines().any(|l| l.contains("moved to the poison queue")
            && l.contains("undecodable")
            && l.contains("version 2")
            && l.contains("\"dequeue_count\":1")),
        "{log}"
    );
    worker.shutdown().await;
}

#[tokio::test]
async fn without_its_queue_role_it_is_not_ready_deletes_nothing_and_recovers() {
    let stack = start_stack(&[]).await;
    let scope = Scope::Queue(QUEUE.into());
    assert!(stack.revoke(
        Identity::QueueWorker,
        Role::StorageQueueDataMessageProcessor,
        &scope
    ));
    let message = envelope("rOl-9-EsS", 300);
    send(&stack, &message).await;
    let worker = spawn_worker(&worker_env(&stack));
    let http = reqwest::Client::new();
    eventually(
        Duration::from_secs(20),
        "not ready, the reason logged",
        || async {
            let res = http
                .get(format!("{}/readyz", worker.base))
                .send()
                .await
                .unwrap();
            let status = res.status();
            let body: serde_json::Value = res.json().await.unwrap();
            status == 503
                && body == serde_json::json!({ "status": "not_ready", "failing": ["queue"] })
                && logs().text().lines().any(|l| {
                    l.contains("receiving from the queue failed") && l.contains("Message Processor")
                })
        },
    )
    .await;
    assert_eq!(worker.processed(), 0);
    assert!(ledger_record(&stack, message.code.as_str()).await.is_none());

    stack.grant(
        Identity::QueueWorker,
        Role::StorageQueueDataMessageProcessor,
        scope,
    );
    eventually(Duration::from_secs(30), "recovered and handled", || async {
        ledger_record(&stack, message.code.as_str()).await.is_some()
    })
    .await;
    // Recorded first, deleted (and counted) just after.
    eventually(Duration::from_secs(20), "counted", || async {
        worker.processed() == 1
    })
    .await;
    let res = http
        .get(format!("{}/readyz", worker.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let metrics = http
        .get(format!("{}/metrics", worker.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("queue_worker_messages_processed_total 1"),
        "{metrics}"
    );
    worker.shutdown().await;
}

#[tokio::test]
async fn each_message_is_handled_in_a_span_continuing_the_producers_trace() {
    let stack = start_stack(&[]).await;
    let logs = logs();
    let worker = spawn_worker(&worker_env(&stack));
    let trace = "5f1c0a6e2b7d4c3a9e8f7d6c5b4a3928";
    let mut message = envelope("tRa-3-CeD", 300);
    message.traceparent = Some(format!("00-{trace}-a1b2c3d4e5f60718-01"));
    send(&stack, &message).await;
    eventually(Duration::from_secs(20), "handled", || async {
        worker.processed() >= 1
    })
    .await;
    let handled = logs
        .text()
        .lines()
        .filter(|l| l.contains("message handled") && l.contains(trace))
        .count();
    assert_eq!(
        handled, 1,
        "the handling log line carries the producer's trace id"
    );
    worker.shutdown().await;
}

#[tokio::test]
async fn a_large_bad_message_is_poisoned_unchanged_and_leaves_the_main_queue() {
    let (stack, worker) = spawn_app().await;
    // Near the 64 KiB limit: a poison record that wrapped and re-encoded it would not fit.
    let large = "x".repeat(60_000);
    send_text(&stack, &large).await;
    eventually(Duration::from_secs(20), "poisoned", || async {
        worker.poisoned() == 1
    })
    .await;
    assert_eq!(drain_texts(&stack, &stack.urls.poison_queue).await, [large]);
    assert!(drain_texts(&stack, &stack.urls.queue).await.is_empty());
    worker.shutdown().await;
}

#[tokio::test]
async fn a_message_whose_code_is_not_a_code_is_poisoned_and_touches_no_blob() {
    let (stack, worker) = spawn_app().await;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let mut bad = Vec::new();
    for code in ["..", "../other", "abc-1-DEF/x", "%2e%2e"] {
        let mut value = serde_json::to_value(envelope("gOo-1-DdD", 300)).unwrap();
        value["code"] = code.into();
        bad.push(b64(&value.to_string()));
    }
    for text in &bad {
        send_text(&stack, text).await;
    }
    eventually(Duration::from_secs(20), "all poisoned", || async {
        worker.poisoned() == bad.len() as u64
    })
    .await;
    assert_eq!(worker.processed(), 0);
    assert!(ledger_codes(&stack).await.is_empty(), "no blob written");
    worker.shutdown().await;
}

#[tokio::test]
async fn a_readiness_probe_is_deleted_unread_never_recorded_nor_poisoned() {
    let stack = start_stack(&[]).await;
    // main-app's probe, byte for byte as its prober writes it (there hidden until its last
    // second; sent visible here so the worker meets it at once), then a code behind it.
    let probe = codes::envelope::probe_text(Default::default());
    send_text(&stack, &probe).await;
    let code = envelope("pRo-1-BeS", 300);
    send(&stack, &code).await;
    assert_eq!(messages_in(&stack, &stack.urls.queue).await, 2);
    let worker = spawn_worker(&worker_env(&stack));
    eventually(Duration::from_secs(20), "the code handled", || async {
        worker.processed() >= 1
    })
    .await;
    // A probe left behind would still be counted (hidden or not) until its TTL of 7 days.
    eventually(Duration::from_secs(20), "the main queue empty", || async {
        messages_in(&stack, &stack.urls.queue).await == 0
    })
    .await;
    assert_eq!(worker.processed(), 1, "the probe is not counted as handled");
    assert_eq!(worker.retried(), 0, "nor retried");
    assert_eq!(worker.poisoned(), 0, "nor poisoned");
    assert_eq!(messages_in(&stack, &stack.urls.poison_queue).await, 0);
    assert_eq!(
        ledger_codes(&stack).await,
        [code.code.to_string()],
        "only the code is in the ledger"
    );
    worker.shutdown().await;
}
