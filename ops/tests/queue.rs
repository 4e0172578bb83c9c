//! `keyless queue` against the local stack, as the developer (an operator): peek changes
//! nothing, clear empties, requeue-poison moves garbage and valid messages back intact.

mod support;

use azure_storage_queue::models::{
    QueueClientGetPropertiesResultHeaders, QueueClientPeekMessagesOptions, QueueMessage,
};
use codes::{Code, CodeEnvelope, MessageEncoding};
use devstack::stack::DevStack;
use devstack::testing::{drain_texts, queue_client, start_stack};
use std::collections::BTreeSet;
use support::{developer_env, keyless};

async fn put(stack: &DevStack, url: &str, text: &str) {
    let content = QueueMessage {
        message_text: Some(text.to_owned()),
    }
    .try_into()
    .unwrap();
    queue_client(stack, url, "devstack")
        .send_message(content, None)
        .await
        .unwrap();
}

/// (approximate count, each message's id and dequeue count), as the admin sees them.
async fn state(stack: &DevStack, url: &str) -> (i64, Vec<(String, i64)>) {
    let queue = queue_client(stack, url, "devstack");
    let count = queue
        .get_properties(None)
        .await
        .unwrap()
        .approximate_messages_count()
        .unwrap()
        .unwrap_or_default();
    let peeked = queue
        .peek_messages(Some(QueueClientPeekMessagesOptions {
            number_of_messages: Some(32),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_model()
        .unwrap()
        .items
        .unwrap_or_default();
    let messages = peeked
        .into_iter()
        .map(|m| (m.message_id.unwrap(), m.dequeue_count.unwrap()))
        .collect();
    (count, messages)
}

fn envelope() -> String {
    let now = time::OffsetDateTime::now_utc();
    CodeEnvelope::issued(
        Code::parse("AbC-417-xYz").unwrap(),
        now,
        std::time::Duration::from_secs(600),
        None,
    )
    .encode(MessageEncoding::Base64)
}

#[tokio::test(flavor = "multi_thread")]
async fn peek_changes_nothing_and_clear_empties() {
    let stack = start_stack(&[]).await;
    let env = developer_env(&stack);
    let valid = envelope();
    put(&stack, &stack.urls.queue, &valid).await;
    put(&stack, &stack.urls.queue, "not base64 at all %%%").await;
    put(
        &stack,
        &stack.urls.queue,
        &codes::envelope::probe_text(MessageEncoding::Base64),
    )
    .await;
    let before = state(&stack, &stack.urls.queue).await;
    assert_eq!(before.0, 3);

    let (code, out) = keyless(&env, &["queue", "peek", "--json"]).await;
    assert_eq!(code, 0, "{out}");
    let peeked: serde_json::Value = serde_json::from_str(&out).unwrap();
    let kinds: Vec<&str> = peeked["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["code-issued", "undecodable", "probe"]);
    assert_eq!(peeked["messages"][0]["envelope"]["code"], "AbC-417-xYz");
    assert_eq!(peeked["messages"][1]["raw"], "not base64 at all %%%");
    let (code, text) = keyless(&env, &["queue", "peek", "--max", "2"]).await;
    assert_eq!(code, 0);
    println!("{text}");
    assert!(text.contains("code-issued AbC-417-xYz"), "{text}");
    assert!(text.contains("undecodable: "), "{text}");
    assert_eq!(
        state(&stack, &stack.urls.queue).await,
        before,
        "peek changed the queue"
    );

    let (code, out) = keyless(&env, &["queue", "clear", "--yes"]).await;
    assert_eq!(code, 0);
    assert_eq!(out, "queue code-requests: deleted 3 message(s)\n");
    assert_eq!(state(&stack, &stack.urls.queue).await.0, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn requeue_poison_moves_garbage_and_valid_messages_back_intact() {
    let stack = start_stack(&[]).await;
    let env = developer_env(&stack);
    let originals: BTreeSet<String> = [
        envelope(),
        "{\"garbage\": true".to_owned(),
        "%%%".to_owned(),
    ]
    .into_iter()
    .collect();
    for text in &originals {
        put(&stack, &stack.urls.poison_queue, text).await;
    }
    let (code, out) = keyless(&env, &["queue", "peek", "--poison", "--json"]).await;
    assert_eq!(code, 0);
    let peeked: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(peeked["queue"], "code-requests-poison");
    assert_eq!(peeked["messages"].as_array().unwrap().len(), 3);

    let (code, out) = keyless(&env, &["queue", "requeue-poison", "--max", "2"]).await;
    assert_eq!(
        (code, out.as_str()),
        (
            0,
            "requeued 2 message(s) from code-requests-poison to code-requests\n"
        )
    );
    let (code, out) = keyless(&env, &["queue", "requeue-poison", "--json"]).await;
    assert_eq!(code, 0);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&out).unwrap()["requeued"],
        1
    );

    assert_eq!(state(&stack, &stack.urls.poison_queue).await.0, 0);
    let moved: BTreeSet<String> = drain_texts(&stack, &stack.urls.queue)
        .await
        .into_iter()
        .collect();
    assert_eq!(moved, originals);

    let (code, out) = keyless(&env, &["queue", "clear", "--poison", "--yes", "--json"]).await;
    assert_eq!(code, 0);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&out).unwrap()["deleted"],
        0
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn code_status_reads_the_ledger() {
    let stack = start_stack(&[]).await;
    let env = developer_env(&stack);
    let ledger = codes::CodeLedger::new(
        stack.urls.container.parse().unwrap(),
        stack.credential("devstack").unwrap(),
        Some(codes::CodeLedgerOptions {
            http: Some(stack.http().clone()),
        }),
    )
    .unwrap();
    let now = time::OffsetDateTime::now_utc();
    let issued = Code::parse("AbC-1-xYz").unwrap();
    let used = Code::parse("AbC-2-xYz").unwrap();
    let expired = Code::parse("AbC-3-xYz").unwrap();
    let ten = time::Duration::minutes(10);
    ledger.record(&issued, now, now + ten, "m1").await.unwrap();
    ledger.record(&used, now, now + ten, "m2").await.unwrap();
    assert!(ledger.consume(&used).await.unwrap());
    ledger
        .record(&expired, now - ten, now - time::Duration::minutes(1), "m3")
        .await
        .unwrap();
    for (code, state) in [
        ("AbC-1-xYz", "issued"),
        ("AbC-2-xYz", "used"),
        ("AbC-3-xYz", "expired"),
        ("AbC-4-xYz", "unknown"),
    ] {
        let (exit, out) = keyless(&env, &["code", "status", code, "--json"]).await;
        assert_eq!(exit, 0, "{out}");
        let status: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(status["state"], state, "{code}: {out}");
    }
    let (_, text) = keyless(&env, &["code", "status", "AbC-2-xYz"]).await;
    assert!(text.starts_with("AbC-2-xYz: used, issued "), "{text}");
}
