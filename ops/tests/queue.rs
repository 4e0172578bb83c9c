//! `keyless queue` against the local stack, as the developer (an operator): peek changes
//! nothing, clear empties (reporting progress per batch), requeue-poison moves garbage and valid
//! messages back intact, peek --poison says why each poison message is there; without the role,
//! the error names it.

mod support;

use azure_storage_queue::models::{
    QueueClientGetPropertiesResultHeaders, QueueClientPeekMessagesOptions, QueueMessage,
};
use codes::{Code, CodeEnvelope, MessageEncoding};
use devstack::stack::Principal;
use devstack::stack::{CONTAINER, DevStack, QUEUE, Service};
use std::collections::BTreeSet;
use support::{developer_env, keyless, keyless_with_stderr};
use test_kit::{drain_texts, env_as_client, queue_client, start_stack};

async fn put(stack: &DevStack, url: &str, text: &str) {
    let content = QueueMessage {
        message_text: Some(text.to_owned()),
    }
    .try_into()
    .unwrap();
    queue_client(stack, url, Principal::Devstack)
        .send_message(content, None)
        .await
        .unwrap();
}

/// (approximate count, each message's id and dequeue count), as the admin sees them.
async fn state(stack: &DevStack, url: &str) -> (i64, Vec<(String, i64)>) {
    let queue = queue_client(stack, url, Principal::Devstack);
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

/// A well-formed envelope whose code is not a code (a path), base64-encoded.
fn envelope_with_bad_code() -> String {
    use base64::Engine;
    let envelope = CodeEnvelope::decode(&envelope(), MessageEncoding::Base64).unwrap();
    let mut value = serde_json::to_value(envelope).unwrap();
    value["code"] = "../ledger".into();
    base64::engine::general_purpose::STANDARD.encode(value.to_string())
}

/// The counts of `keyless: <verb> N so far ...` lines in `stderr`; panics on any other line.
fn progress(stderr: &str, verb: &str) -> Vec<usize> {
    stderr
        .lines()
        .map(|line| {
            line.strip_prefix(&format!("keyless: {verb} "))
                .and_then(|rest| rest.strip_suffix(" so far ..."))
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("not a progress line: {line:?}"))
        })
        .collect()
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
    assert_eq!(
        peeked["messages"][0]["reason"],
        serde_json::Value::Null,
        "a valid message in the code queue has nothing wrong with it"
    );
    assert_eq!(peeked["messages"][1]["raw"], "not base64 at all %%%");
    let (code, text) = keyless(&env, &["queue", "peek", "--max", "2"]).await;
    assert_eq!(code, 0);
    println!("{text}");
    assert!(text.contains("code-issued AbC-417-xYz"), "{text}");
    assert!(text.contains("undecodable: "), "{text}");
    assert!(!text.contains("poisoned: "), "{text}");
    assert_eq!(
        state(&stack, &stack.urls.queue).await,
        before,
        "peek changed the queue"
    );

    // main-app only sends: peeking needs Message Processor, and the error says so.
    let main_app = env_as_client(&stack, Service::MainApp);
    let (code, out, err) = keyless_with_stderr(&main_app, &["queue", "peek"]).await;
    assert_eq!((code, out.as_str()), (1, ""), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with(&format!("keyless: could not peek queue {QUEUE}: 403 ")),
        "{err}"
    );
    assert!(
        err.ends_with(&format!(
            "; the identity needs the role Storage Queue Data Message Processor on queue \
             {QUEUE} (role id 8a0f0c08-91a1-4084-bc3d-661d67233fed; run `keyless doctor`)\n"
        )),
        "{err}"
    );

    let (code, out) = keyless(&env, &["queue", "clear", "--yes"]).await;
    assert_eq!(code, 0);
    assert_eq!(out, "queue code-requests: deleted 3 message(s)\n");
    assert_eq!(state(&stack, &stack.urls.queue).await.0, 0);

    // More than one batch (32): a progress line per batch on stderr, stdout one JSON document.
    for i in 0..40 {
        put(&stack, &stack.urls.queue, &format!("message {i}")).await;
    }
    let (code, out, err) = keyless_with_stderr(&env, &["queue", "clear", "--yes", "--json"]).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&out).unwrap(),
        serde_json::json!({ "queue": QUEUE, "deleted": 40 })
    );
    let counts = progress(&err, "deleted");
    assert!(counts.len() >= 2, "one line per batch: {err}");
    assert!(counts.windows(2).all(|w| w[0] < w[1]), "{err}");
    assert_eq!(counts.last(), Some(&40), "{err}");
    assert_eq!(state(&stack, &stack.urls.queue).await.0, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn requeue_poison_moves_garbage_and_valid_messages_back_intact() {
    let stack = start_stack(&[]).await;
    let env = developer_env(&stack);
    let (valid, bad_code) = (envelope(), envelope_with_bad_code());
    let originals: BTreeSet<String> = [
        valid.clone(),
        bad_code.clone(),
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
    let messages = peeked["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 4);
    let reason = |raw: &str| -> String {
        let m = messages.iter().find(|m| m["raw"] == raw).unwrap();
        m["reason"]
            .as_str()
            .unwrap_or_else(|| panic!("no reason: {m}"))
            .to_owned()
    };
    assert_eq!(reason(&valid), ops::queue::RETRIES_EXHAUSTED);
    assert!(
        reason(&valid).starts_with(
            "delivered and failed the worker's maximum number of times (its setting \
             WORKER_MAX_DEQUEUE_COUNT, default 5), then moved here unchanged; the worker's log \
             holds each failure"
        ),
        "{}",
        reason(&valid)
    );
    assert!(
        reason(&bad_code).starts_with("message is not a valid envelope: "),
        "{}",
        reason(&bad_code)
    );
    assert_eq!(reason("%%%"), "message is not valid base64");
    assert_eq!(reason("{\"garbage\": true"), "message is not valid base64");
    let (code, text) = keyless(&env, &["queue", "peek", "--poison"]).await;
    assert_eq!(code, 0);
    println!("{text}");
    assert!(text.contains("code-issued AbC-417-xYz issued "), "{text}");
    assert!(
        text.contains(&format!(
            "    poisoned: {}\n",
            ops::queue::RETRIES_EXHAUSTED
        )),
        "{text}"
    );
    assert_eq!(text.matches("    poisoned: ").count(), 1, "{text}");
    assert!(
        text.contains("    undecodable: message is not a valid envelope: "),
        "{text}"
    );
    assert_eq!(
        text.matches("    undecodable: message is not valid base64\n")
            .count(),
        2,
        "{text}"
    );

    let (code, out, err) =
        keyless_with_stderr(&env, &["queue", "requeue-poison", "--max", "2"]).await;
    assert_eq!(
        (code, out.as_str()),
        (
            0,
            "requeued 2 message(s) from code-requests-poison to code-requests\n"
        )
    );
    assert_eq!(progress(&err, "requeued"), [2], "{err}");
    let (code, out) = keyless(&env, &["queue", "requeue-poison", "--json"]).await;
    assert_eq!(code, 0);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&out).unwrap()["requeued"],
        2
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
    let ledger = test_kit::clients::ledger(&stack, Principal::Devstack);
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
    let rfc3339 = |t: time::OffsetDateTime| {
        t.format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    };
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
        if code == "AbC-1-xYz" {
            assert_eq!(status["issued_at"], rfc3339(now), "{out}");
            assert_eq!(status["expires_at"], rfc3339(now + ten), "{out}");
            assert_eq!(status["used_at"], serde_json::Value::Null, "{out}");
        }
    }
    let (_, text) = keyless(&env, &["code", "status", "AbC-2-xYz"]).await;
    assert!(text.starts_with("AbC-2-xYz: used, issued "), "{text}");
    assert!(text.contains(", used "), "{text}");

    // third-party-api holds no role on the ledger: the error names the one it lacks.
    let outsider = env_as_client(&stack, Service::ThirdPartyApi)
        .with("CODE_LEDGER_URL", &stack.urls.container);
    let (exit, out, err) = keyless_with_stderr(&outsider, &["code", "status", "AbC-1-xYz"]).await;
    assert_eq!((exit, out.as_str()), (1, ""), "{err}");
    assert!(
        err.starts_with(&format!(
            "keyless: could not read a code's record in ledger container {CONTAINER}: 403 "
        )),
        "{err}"
    );
    assert!(
        err.ends_with(&format!(
            "; the identity needs the role Storage Blob Data Contributor on container \
             {CONTAINER} (role id ba92f5b4-2d11-453d-a403-e96b0029c9fe; run `keyless doctor`)\n"
        )),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn requeue_poison_moves_each_message_once_even_when_it_is_poisoned_again_at_once() {
    let stack = start_stack(&[]).await;
    for text in ["first", "second", "third"] {
        put(&stack, &stack.urls.poison_queue, text).await;
    }
    // The target is the poison queue itself: every message moved is poisoned again at once, as
    // by a worker that still fails it. Moving what arrives during the run would never end.
    stack.grant(
        Principal::Developer,
        devstack::rbac::Role::StorageQueueDataMessageSender,
        devstack::rbac::Scope::Queue(format!("{QUEUE}-poison")),
    );
    let env = developer_env(&stack).with("STORAGE_QUEUE_URL", &stack.urls.poison_queue);
    let (code, out) = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        keyless(&env, &["queue", "requeue-poison", "--json"]),
    )
    .await
    .expect("requeue-poison ends");
    assert_eq!(code, 0, "{out}");
    let result: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(result["requeued"], 3, "each message moved once: {result}");
    // The copies: one each (hidden for a minute by the run's last look, which left them).
    assert_eq!(
        test_kit::messages_in(&stack, &stack.urls.poison_queue).await,
        3,
        "one copy of each, none sent twice"
    );
}
