//! third-party-api's shared key store on the local stack, as in Azure: two real processes on one
//! blob (through the storage RBAC gate, with their managed identity), the master key from the
//! vault emulator. A change on one replica is in force on the other within the refresh
//! interval; concurrent admin writes on both lose nothing; a blob that cannot be parsed stops a
//! new replica (naming the blob, never quoting it) while a running one keeps its last good keys.

use devstack::azurite::free_port;
use devstack::process::ChildProcess;
use devstack::stack::Principal;
use devstack::stack::{DevStack, Service};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use std::time::Duration;
use test_kit::clients::blob_client_at;
use test_kit::{TestStack, eventually, start_stack};

/// The refresh interval the replicas run with.
const REFRESH_SECONDS: &str = "1";
/// How long a change may take to reach the other replica: the interval and a margin for a
/// loaded 2-core machine.
const PROPAGATION: Duration = Duration::from_secs(6);

struct Replica {
    base: String,
    process: ChildProcess,
}

async fn replica(stack: &DevStack) -> Replica {
    replica_refreshing(stack, REFRESH_SECONDS).await
}

/// A replica reading the key store every `refresh` seconds.
async fn replica_refreshing(stack: &DevStack, refresh: &str) -> Replica {
    let port = free_port().unwrap().to_string();
    let base = format!("http://127.0.0.1:{port}");
    let process = stack
        .spawn_instance(
            Service::ThirdPartyApi,
            &[
                ("PORT", &port),
                ("THIRD_PARTY_API_KEYS_REFRESH_SECONDS", refresh),
            ],
            &base,
        )
        .await
        .unwrap_or_else(|e| panic!("{e:?}\n{}", stack.sink.captured()));
    let replica = Replica { base, process };
    // The master key arrives from the vault shortly after start.
    eventually(PROPAGATION, "the admin API opens", || async {
        replica
            .admin(stack, Method::GET, "/functions/RandomNumber/keys", None)
            .await
            .0
            == StatusCode::OK
    })
    .await;
    replica
}

impl Replica {
    async fn accepts(&self, stack: &DevStack, key: &str) -> bool {
        let res = stack
            .http()
            .get(format!("{}/api/RandomNumber", self.base))
            .header("x-functions-key", key)
            .send()
            .await
            .unwrap();
        match res.status() {
            StatusCode::OK => true,
            StatusCode::UNAUTHORIZED => false,
            other => panic!("unexpected {other}"),
        }
    }

    async fn admin(
        &self,
        stack: &DevStack,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = stack
            .http()
            .request(method, format!("{}/admin{path}", self.base))
            .header("x-functions-key", stack.master_key().expose());
        if let Some(body) = body {
            req = req.json(&body);
        }
        let res = req.send().await.unwrap();
        let status = res.status();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    async fn function_key_names(&self, stack: &DevStack) -> Vec<String> {
        let (status, list) = self
            .admin(stack, Method::GET, "/functions/RandomNumber/keys", None)
            .await;
        assert_eq!(status, StatusCode::OK, "{list}");
        list["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["name"].as_str().unwrap().to_owned())
            .collect()
    }
}

async fn stack() -> TestStack {
    start_stack(&[]).await
}

#[tokio::test]
async fn two_replicas_share_one_blob_store_and_lose_no_concurrent_change() {
    let stack = stack().await;
    let a = replica(&stack).await;
    let b = replica(&stack).await;
    let seeded = stack.third_party_api_key().expose().to_owned();
    assert!(a.accepts(&stack, &seeded).await && b.accepts(&stack, &seeded).await);

    // A key added on A is accepted by B within the refresh interval.
    let (status, added) = a
        .admin(
            &stack,
            Method::POST,
            "/functions/RandomNumber/keys/rotated",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{added}");
    let new_key = added["value"].as_str().unwrap().to_owned();
    assert!(
        a.accepts(&stack, &new_key).await,
        "in force at once where added"
    );
    eventually(PROPAGATION, "B accepts the key added on A", || async {
        b.accepts(&stack, &new_key).await
    })
    .await;

    // The seeded key revoked on B is refused by A within the refresh interval.
    let (status, _) = b
        .admin(
            &stack,
            Method::DELETE,
            "/functions/RandomNumber/keys/main-app",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(!b.accepts(&stack, &seeded).await);
    eventually(PROPAGATION, "A refuses the key revoked on B", || async {
        !a.accepts(&stack, &seeded).await
    })
    .await;

    // Twelve writes at once, six on each replica: every one lands (ETag conflicts re-applied).
    let writes = (0..12).map(|i| {
        let (replica, name) = if i % 2 == 0 { (&a, "a") } else { (&b, "b") };
        let path = format!("/functions/RandomNumber/keys/{name}-{i}");
        let stack = &stack;
        async move {
            let body =
                serde_json::json!({"value": format!("concurrent-key-value-{i:04}-0123456789")});
            replica.admin(stack, Method::PUT, &path, Some(body)).await.0
        }
    });
    let statuses = futures::future::join_all(writes).await;
    assert!(
        statuses.iter().all(|s| *s == StatusCode::CREATED),
        "{statuses:?}"
    );
    let mut expected: Vec<String> = (0..12)
        .map(|i| format!("{}-{i}", if i % 2 == 0 { "a" } else { "b" }))
        .chain(["rotated".to_owned()])
        .collect();
    expected.sort();
    for replica in [&a, &b] {
        eventually(PROPAGATION, "every replica lists every key", || async {
            replica.function_key_names(&stack).await == expected
        })
        .await;
    }
    for i in 0..12 {
        let key = format!("concurrent-key-value-{i:04}-0123456789");
        assert!(a.accepts(&stack, &key).await && b.accepts(&stack, &key).await);
    }
    // lastAccepted is per replica: B never saw the new key presented... until now.
    let (_, list) = a
        .admin(&stack, Method::GET, "/functions/RandomNumber/keys", None)
        .await;
    let rotated = list["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "rotated")
        .unwrap();
    assert!(rotated["lastAccepted"].is_string(), "{rotated}");

    drop(a.process);
    drop(b.process);
}

/// How many times third-party-api has read a blob, as the storage gate counted.
fn key_store_reads(stack: &DevStack) -> u64 {
    stack.storage_operations_by("third-party-api", "Get Blob")
}

#[tokio::test]
async fn a_replica_that_missed_a_refresh_accepts_a_new_key_at_once_and_wrong_keys_cost_one_read_a_second()
 {
    let stack = stack().await;
    // Both read the store once an hour: B misses every change A makes.
    let a = replica_refreshing(&stack, "3600").await;
    let b = replica_refreshing(&stack, "3600").await;
    let (status, added) = a
        .admin(
            &stack,
            Method::POST,
            "/functions/RandomNumber/keys/new",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{added}");
    let new_key = added["value"].as_str().unwrap().to_owned();
    let before = key_store_reads(&stack);
    assert!(
        b.accepts(&stack, &new_key).await,
        "B reads the store when a key it does not hold is presented"
    );
    assert_eq!(key_store_reads(&stack) - before, 1, "one read");

    // A flood of wrong keys at once: B reads the store at most once a second for them.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let before = key_store_reads(&stack);
    let started = std::time::Instant::now();
    let wrong = futures::future::join_all((0..100).map(|i| {
        let (b, stack) = (&b, &stack);
        async move {
            b.accepts(stack, &format!("wrong-key-{i:04}-0123456789abcdef"))
                .await
        }
    }))
    .await;
    assert!(
        wrong.iter().all(|accepted| !accepted),
        "every wrong key refused"
    );
    let reads = key_store_reads(&stack) - before;
    let seconds = started.elapsed().as_secs();
    assert!(
        (1..=seconds + 1).contains(&reads),
        "{reads} reads of the store for 100 wrong keys in {seconds} s"
    );
    println!("100 wrong keys in {seconds} s: {reads} reads of the key store");
    drop(a.process);
    drop(b.process);
}

#[tokio::test]
async fn an_unparsable_blob_stops_a_new_replica_and_a_running_one_keeps_its_keys() {
    let stack = stack().await;
    let running = replica(&stack).await;
    let seeded = stack.third_party_api_key().expose().to_owned();
    let garbage = r#"{"version": 1, "functionKeys": {"x": "GARBAGE-SECRET-should-never-print"#;
    blob_client_at(&stack, &stack.urls.key_store, Principal::Devstack)
        .upload(
            azure_core::http::RequestContent::from(garbage.as_bytes().to_vec()),
            None,
        )
        .await
        .unwrap();
    // Two refresh intervals later the running replica has read it and kept its keys.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(running.accepts(&stack, &seeded).await);
    let logs = stack.sink.captured();
    assert!(
        logs.lines()
            .any(|l| l.contains("key store refresh failed") && l.contains(&stack.urls.key_store)),
        "the failure is logged naming the blob"
    );

    let port = free_port().unwrap().to_string();
    let started = stack
        .spawn_instance(
            Service::ThirdPartyApi,
            &[("PORT", &port)],
            &format!("http://127.0.0.1:{port}"),
        )
        .await;
    let error = match started {
        Ok(_) => panic!("start-up must be refused"),
        Err(e) => format!("{e:?}"),
    };
    assert!(error.contains("exited during start-up"), "{error}");
    let logs = stack.sink.captured();
    assert!(
        logs.lines().any(|l| l.contains("cannot run")
            && l.contains(&stack.urls.key_store)
            && l.contains("truncated JSON")),
        "the refusal names the blob and what is wrong"
    );
    assert!(
        !logs.contains("GARBAGE-SECRET"),
        "no part of the blob is quoted"
    );
    drop(running.process);
}

/// The function key names in the store's blob, read as the stack's admin; `None` when absent.
async fn names_in_blob(stack: &DevStack) -> Option<Vec<String>> {
    let blob = blob_client_at(stack, &stack.urls.key_store, Principal::Devstack);
    let body = match blob.download(None).await {
        Ok(response) => response.body.collect().await.unwrap(),
        Err(_) => return None,
    };
    let document: Value = serde_json::from_slice(&body).unwrap();
    Some(
        document["functionKeys"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect(),
    )
}

#[tokio::test]
async fn a_deleted_store_is_restored_by_a_replica_holding_keys_never_emptied() {
    let stack = stack().await;
    let running = replica(&stack).await;
    let seeded = stack.third_party_api_key().expose().to_owned();
    let main_app = vec![devstack::stack::FUNCTION_KEY_NAME.to_owned()];
    assert_eq!(names_in_blob(&stack).await, Some(main_app.clone()));
    let restored = |what: &'static str| {
        let (stack, running, seeded, main_app) = (&stack, &running, &seeded, &main_app);
        async move {
            let deadline = std::time::Instant::now() + PROPAGATION;
            loop {
                assert!(
                    running.accepts(stack, seeded).await,
                    "{what}: never refused meanwhile"
                );
                if names_in_blob(stack).await.as_ref() == Some(main_app) {
                    return;
                }
                assert!(std::time::Instant::now() < deadline, "{what}: not restored");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    // What a replica that starts where it finds no store writes: nothing anybody chose.
    let created_empty =
        r#"{"version": 1, "functionKeys": {}, "hostKeys": {}, "createdEmpty": true}"#;
    blob_client_at(&stack, &stack.urls.key_store, Principal::Devstack)
        .upload(
            azure_core::http::RequestContent::from(created_empty.as_bytes().to_vec()),
            None,
        )
        .await
        .unwrap();
    restored("an empty store made over it").await;

    // Deleted outright, and a replica starting meanwhile: it makes an empty store or finds the
    // restored one; either way every replica ends with the keys.
    blob_client_at(&stack, &stack.urls.key_store, Principal::Devstack)
        .delete(None)
        .await
        .unwrap();
    let started = replica(&stack).await;
    restored("deleted").await;
    eventually(PROPAGATION, "the new replica has the keys", || async {
        started.accepts(&stack, &seeded).await
    })
    .await;
    assert!(
        stack
            .sink
            .captured()
            .contains("restoring the keys this replica holds"),
        "the restore is logged"
    );

    // An empty store somebody chose (every key deleted through the admin API) is kept.
    let (status, _) = started
        .admin(
            &stack,
            Method::DELETE,
            &format!(
                "/functions/RandomNumber/keys/{}",
                devstack::stack::FUNCTION_KEY_NAME
            ),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    eventually(
        PROPAGATION,
        "the chosen empty store reaches the running replica",
        || async { !running.accepts(&stack, &seeded).await },
    )
    .await;
    assert_eq!(names_in_blob(&stack).await, Some(Vec::new()), "kept empty");
    drop(started.process);
    drop(running.process);
}
