//! The worker in-process against the local stack: duplicates, poison after exactly the allowed
//! attempts, garbage poisoned at once while good messages flow, missing roles and recovery.

mod support;

use base64::Engine;
use devstack::rbac::{Role, Scope};
use devstack::stack::{CONTAINER, QUEUE};
use queue_worker::worker::PoisonRecord;
use std::time::Duration;
use support::*;

fn poison_records(texts: &[String]) -> Vec<PoisonRecord> {
    texts
        .iter()
        .map(|t| {
            let json = base64::engine::general_purpose::STANDARD.decode(t).unwrap();
            serde_json::from_slice(&json).unwrap()
        })
        .collect()
}

#[tokio::test]
async fn a_duplicate_delivery_records_once_and_a_used_code_stays_used() {
    let stack = start_stack(&[]).await;
    let worker = spawn_worker(&worker_env(&stack));
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
    let ledger = shared_auth::ledger::CodeLedger::new(
        stack.urls.container.parse().unwrap(),
        stack.credential("main-app").unwrap(),
        stack.http(),
    )
    .unwrap();
    assert!(ledger.consume("dUp-7-CaT").await.unwrap());
    send(&stack, &message).await;
    eventually(
        Duration::from_secs(20),
        "third delivery handled",
        || async { worker.processed() >= 3 },
    )
    .await;
    assert!(
        !ledger.consume("dUp-7-CaT").await.unwrap(),
        "never valid twice"
    );
    assert_eq!(
        ledger_record(&stack, "dUp-7-CaT").await.unwrap()["state"],
        "used"
    );
    worker.shutdown().await;
}

#[tokio::test]
async fn a_failing_handler_is_tried_exactly_five_times_then_poisoned_with_the_reason() {
    let stack = start_stack(&[]).await;
    let oid = stack
        .identities
        .get("queue-worker")
        .unwrap()
        .object_id
        .clone();
    let scope = Scope::Container(CONTAINER.into());
    // Without its blob role every attempt to record fails.
    assert!(
        stack
            .roles
            .revoke(&oid, Role::StorageBlobDataContributor, &scope)
    );
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
    let records = poison_records(&drain_texts(&stack, &stack.urls.poison_queue).await);
    assert_eq!(records.len(), 1);
    assert_eq!(
        records[0].original, original,
        "the original payload, untouched"
    );
    assert_eq!(records[0].dequeue_count, 5);
    assert!(
        records[0].reason.contains("failed 5 times"),
        "{}",
        records[0].reason
    );
    assert!(
        records[0].reason.contains("Blob Data Contributor"),
        "{}",
        records[0].reason
    );
    assert!(
        drain_texts(&stack, &stack.urls.queue).await.is_empty(),
        "gone from the main queue"
    );
    assert!(ledger_record(&stack, "pOi-5-SoN").await.is_none());
    worker.shutdown().await;
}

#[tokio::test]
async fn undecodable_messages_are_poisoned_at_once_while_good_ones_are_recorded() {
    let stack = start_stack(&[]).await;
    let worker = spawn_worker(&worker_env(&stack));
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
            ledger_record(&stack, &message.code).await.is_some(),
            "{}",
            message.code
        );
    }
    let records = poison_records(&drain_texts(&stack, &stack.urls.poison_queue).await);
    assert_eq!(records.len(), 4);
    for record in &records {
        assert_eq!(record.dequeue_count, 1, "at once");
        assert!(
            record.reason.starts_with("undecodable"),
            "{}",
            record.reason
        );
        assert!(garbage.contains(&record.original));
    }
    assert!(records.iter().any(|r| r.reason.contains("version 2")));
    worker.shutdown().await;
}

#[tokio::test]
async fn without_its_queue_role_it_is_not_ready_deletes_nothing_and_recovers() {
    let stack = start_stack(&[]).await;
    let oid = stack
        .identities
        .get("queue-worker")
        .unwrap()
        .object_id
        .clone();
    let scope = Scope::Queue(QUEUE.into());
    assert!(
        stack
            .roles
            .revoke(&oid, Role::StorageQueueDataMessageProcessor, &scope)
    );
    let message = envelope("rOl-9-EsS", 300);
    send(&stack, &message).await;
    let worker = spawn_worker(&worker_env(&stack));
    let http = reqwest::Client::new();
    eventually(
        Duration::from_secs(20),
        "not ready with a reason",
        || async {
            let res = http
                .get(format!("{}/readyz", worker.base))
                .send()
                .await
                .unwrap();
            let status = res.status();
            let body: serde_json::Value = res.json().await.unwrap();
            status == 503
                && body["checks"]["queue"]
                    .as_str()
                    .unwrap_or("")
                    .contains("Message Processor")
        },
    )
    .await;
    assert_eq!(worker.processed(), 0);
    assert!(ledger_record(&stack, &message.code).await.is_none());

    stack
        .roles
        .grant(&oid, Role::StorageQueueDataMessageProcessor, scope);
    eventually(Duration::from_secs(30), "recovered and handled", || async {
        ledger_record(&stack, &message.code).await.is_some()
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
