//! `GET /api/v1/getcode` against the local Azure stack with real SDK clients: the end-to-end
//! path, rotation without restart, each error mapping, start-up with Key Vault down, a burst,
//! and one deadline per request whatever hangs (Key Vault, the identity endpoint, the
//! third-party API, Storage), each followed by recovery without a restart.

mod support;

use codes::Code;
use codes::envelope::{ENVELOPE_VERSION, MessageType};
use devstack::rbac::{Role, Scope};
use devstack::stack::Identity;
use devstack::stack::{CONTAINER, FUNCTION_KEY_NAME, QUEUE, SECRET_NAME};
use main_app::config::{REQUEST_TIMEOUT_SECONDS, Settings};
use main_app::startup::Application;
use serde_json::json;
use service_kit::service::Service as _;
use service_kit::telemetry::is_valid_traceparent;
use shared_auth::MapEnv;
use shared_auth::variables::SECRET_CACHE_TTL_SECONDS;
use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::time::Duration;
use support::*;
use test_kit::eventually;
use test_kit::wire::LocalService;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

#[tokio::test]
async fn a_code_is_issued_only_with_its_message_in_the_queue() {
    let stack = start_stack().await;
    let app = spawn_app_with(&main_app_env(&stack).with("CODE_TTL_SECONDS", "120")).await;
    app.wait_ready().await;
    let res = app.get_code().await;
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.unwrap();
    let code = Code::parse(body["code"].as_str().unwrap()).expect("AAA-N-BBB");
    let timestamp = OffsetDateTime::parse(body["timestamp"].as_str().unwrap(), &Rfc3339).unwrap();
    assert!(body["timestamp"].as_str().unwrap().ends_with('Z'), "UTC");

    let messages = drain_queue(&stack).await;
    assert_eq!(messages.len(), 1, "exactly one message");
    let envelope = &messages[0];
    assert_eq!(envelope.kind, MessageType::CodeIssued);
    assert_eq!(envelope.version, ENVELOPE_VERSION);
    assert_eq!(envelope.code, code);
    assert_eq!(envelope.issued_at, timestamp);
    assert_eq!(
        envelope.expires_at - envelope.issued_at,
        time::Duration::seconds(120)
    );
    let traceparent = envelope.traceparent.as_deref().expect("a traceparent");
    assert!(is_valid_traceparent(traceparent), "{traceparent}");
}

#[tokio::test]
async fn a_rotated_key_is_picked_up_without_restart_with_one_fetch() {
    let (stack, app) = spawn_app().await;
    app.wait_ready().await;
    assert_eq!(app.get_code().await.status(), 200);
    assert_eq!(stack.vault.reads(SECRET_NAME), 1);

    // Rotate: new value in the vault, then the key replaced (old one revoked) in the API.
    let new_key = "rotated-key-value-0123456789abcdef";
    stack
        .vault
        .seed(SECRET_NAME, &shared_auth::Secret::new(new_key));
    // The master key lives in the vault (third-party-api's keys are in a blob, as in Azure).
    let master = stack.master_key().expose();
    let res = stack
        .http()
        .put(format!(
            "{}/admin/functions/RandomNumber/keys/{FUNCTION_KEY_NAME}",
            stack.urls.third_party_api
        ))
        .header("x-functions-key", master)
        .json(&serde_json::json!({ "value": new_key }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "replaced");

    let res = app.get_code().await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        stack.vault.reads(SECRET_NAME),
        2,
        "fetched again exactly once"
    );
    assert_eq!(app.get_code().await.status(), 200);
    assert_eq!(stack.vault.reads(SECRET_NAME), 2);
    assert_eq!(drain_queue(&stack).await.len(), 3);
}

/// Asserts an error answer: status, code, a message, Retry-After on 503, and nothing from
/// upstream or any secret in the body; and that nothing was enqueued.
async fn assert_mapped(stack: &Stack, res: reqwest::Response, status: u16, error: &str) {
    assert_eq!(res.status().as_u16(), status);
    let retry_after = res.headers().get("retry-after").cloned();
    let text = res.text().await.unwrap();
    let body: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["error"], error, "{text}");
    assert!(!body["message"].as_str().unwrap().is_empty());
    assert_eq!(
        retry_after.is_some(),
        status == 503,
        "Retry-After only with 503"
    );
    assert!(!text.contains(UPSTREAM_BODY));
    assert!(!text.contains(stack.third_party_api_key().expose()));
    assert!(
        drain_queue(stack).await.is_empty(),
        "nothing enqueued on failure"
    );
}

#[tokio::test]
async fn upstream_down_slow_failing_or_refusing_maps_to_502_or_504() {
    let stack = start_stack().await;

    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_url = format!("http://{}/api/RandomNumber", closed.local_addr().unwrap());
    drop(closed);
    let app =
        spawn_app_with(&main_app_env(&stack).with("THIRD_PARTY_API_ENDPOINT", &closed_url)).await;
    app.wait_ready().await;
    assert_mapped(&stack, app.get_code().await, 502, "upstream_error").await;

    let slow = fake_upstream(Behaviour::Slow(Duration::from_secs(5)));
    let env = main_app_env(&stack)
        .with("THIRD_PARTY_API_ENDPOINT", &slow.url)
        .with("THIRD_PARTY_API_TIMEOUT_SECONDS", "1");
    let app = spawn_app_with(&env).await;
    app.wait_ready().await;
    let (res, took) = timed(app.get_code()).await;
    println!("third-party API hung, 1 s timeout: 504 after {took:?}");
    assert_mapped(&stack, res, 504, "upstream_timeout").await;
    // Within the configured third-party timeout (1 s), not the 5 s the upstream takes.
    assert!(took < Duration::from_secs(1) + MARGIN, "504 after {took:?}");
    assert_eq!(
        slow.calls.load(Ordering::SeqCst),
        1,
        "no retry after a timeout"
    );

    // A third-party timeout longer than the request budget: the budget answers first.
    let hung = fake_upstream(Behaviour::Slow(Duration::from_secs(10)));
    let env = main_app_env(&stack)
        .with("THIRD_PARTY_API_ENDPOINT", &hung.url)
        .with("THIRD_PARTY_API_TIMEOUT_SECONDS", "5")
        .with(REQUEST_TIMEOUT_SECONDS, "1");
    let app = spawn_app_with(&env).await;
    app.wait_ready().await;
    let (res, took) = timed(app.get_code()).await;
    println!("third-party API hung, 5 s timeout, 1 s budget: 503 after {took:?}");
    assert_mapped(&stack, res, 503, "deadline_exceeded").await;
    assert!(took < Duration::from_secs(1) + MARGIN, "503 after {took:?}");

    let failing = fake_upstream(Behaviour::Status(500));
    let app =
        spawn_app_with(&main_app_env(&stack).with("THIRD_PARTY_API_ENDPOINT", &failing.url)).await;
    app.wait_ready().await;
    assert_mapped(&stack, app.get_code().await, 502, "upstream_error").await;
    assert_eq!(
        failing.calls.load(Ordering::SeqCst),
        3,
        "bounded retries on 5xx"
    );

    let reads_before = stack.vault.reads(SECRET_NAME);
    let refusing = fake_upstream(Behaviour::Status(401));
    let app =
        spawn_app_with(&main_app_env(&stack).with("THIRD_PARTY_API_ENDPOINT", &refusing.url)).await;
    app.wait_ready().await;
    assert_mapped(&stack, app.get_code().await, 502, "upstream_auth_failed").await;
    assert_eq!(
        refusing.calls.load(Ordering::SeqCst),
        2,
        "one retry after one refresh"
    );
    assert_eq!(
        stack.vault.reads(SECRET_NAME),
        reads_before + 2,
        "load + one refresh"
    );
    assert!(
        refusing
            .keys_seen
            .lock()
            .unwrap()
            .iter()
            .all(|k| k == stack.third_party_api_key().expose())
    );

    let bad_request = fake_upstream(Behaviour::Status(400));
    let app =
        spawn_app_with(&main_app_env(&stack).with("THIRD_PARTY_API_ENDPOINT", &bad_request.url))
            .await;
    app.wait_ready().await;
    assert_mapped(&stack, app.get_code().await, 502, "upstream_error").await;
    assert_eq!(
        bad_request.calls.load(Ordering::SeqCst),
        1,
        "no retry on 4xx"
    );
}

#[tokio::test]
async fn queue_or_key_vault_without_the_role_maps_to_503_with_retry_after() {
    let (stack, app) = spawn_app().await;
    app.wait_ready().await;
    let queue_scope = Scope::Queue(QUEUE.into());
    assert!(stack.revoke(
        Identity::MainApp,
        Role::StorageQueueDataMessageSender,
        &queue_scope
    ));
    assert_mapped(&stack, app.get_code().await, 503, "queue_unavailable").await;
    let (status, ready) = app.readyz().await;
    assert_eq!((status, &ready["failing"]), (503, &json!(["queue"])));
    stack.grant(
        Identity::MainApp,
        Role::StorageQueueDataMessageSender,
        queue_scope,
    );
    assert_eq!(
        app.get_code().await.status(),
        200,
        "recovers once the role is back"
    );
    drain_queue(&stack).await;

    let secret_scope = Scope::Secret(SECRET_NAME.into());
    assert!(stack.revoke(Identity::MainApp, Role::KeyVaultSecretsUser, &secret_scope));
    let fresh = fake_upstream(Behaviour::Status(200));
    let app =
        spawn_app_with(&main_app_env(&stack).with("THIRD_PARTY_API_ENDPOINT", &fresh.url)).await;
    assert_mapped(&stack, app.get_code().await, 503, "secret_unavailable").await;
    assert_eq!(
        fresh.calls.load(Ordering::SeqCst),
        0,
        "no call without a key"
    );
    // This app never got a 200 from /readyz: its queue probe may not have answered yet (and
    // counts as failing until it does), so wait for the probe rather than race it.
    eventually(
        Duration::from_secs(10),
        "only the secret check failing",
        || async { app.readyz().await.1["failing"] == json!(["secret"]) },
    )
    .await;
    let (status, ready) = app.readyz().await;
    assert_eq!((status, &ready["failing"]), (503, &json!(["secret"])));
    assert!(
        logs()
            .text()
            .lines()
            .any(|l| l.contains("secret refresh failed") && l.contains("Secrets User")),
        "the log names the missing role"
    );
}

/// Whether a readiness line names the missing role and its queue. The log capture is shared by
/// every test of this binary (a stalled-storage test logs "cannot send" with another reason), so
/// the line is found by what it must say, not by being the first.
fn names_the_role(log: &str) -> bool {
    log.lines().any(|l| {
        l.contains("readiness: cannot send to the queue")
            && l.contains("Storage Queue Data Message Sender on queue code-requests")
    })
}

#[tokio::test]
async fn without_the_sender_role_it_never_becomes_ready_and_the_log_names_the_role() {
    let stack = start_stack().await;
    let scope = Scope::Queue(QUEUE.into());
    assert!(stack.revoke(
        Identity::MainApp,
        Role::StorageQueueDataMessageSender,
        &scope
    ));
    let logs = logs();
    let app = spawn_app_with(&main_app_env(&stack)).await;
    eventually(
        Duration::from_secs(10),
        "only the queue check failing",
        || async {
            names_the_role(&logs.text()) && app.readyz().await.1["failing"] == json!(["queue"])
        },
    )
    .await;
    let (status, ready) = app.readyz().await;
    assert_eq!(
        (status, &ready["failing"]),
        (503, &json!(["queue"])),
        "{ready}"
    );
    assert_eq!(
        ready.as_object().unwrap().len(),
        2,
        "nothing but status and failing: {ready}"
    );
    assert!(names_the_role(&logs.text()));
    // The probe leaves nothing the worker must handle: hidden, then expired.
    assert!(drain_queue(&stack).await.is_empty());

    stack.grant(
        Identity::MainApp,
        Role::StorageQueueDataMessageSender,
        scope,
    );
    app.wait_ready().await;
    assert_eq!(app.get_code().await.status(), 200);
}

#[tokio::test]
async fn started_while_key_vault_is_down_it_becomes_ready_without_restart() {
    let stack = start_stack().await;
    stack.vault.set_available(false);
    let app = spawn_app_with(&main_app_env(&stack)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, body) = app.readyz().await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["status"], "not_ready");
    assert_mapped(&stack, app.get_code().await, 503, "secret_unavailable").await;

    stack.vault.set_available(true);
    app.wait_ready().await;
    assert_eq!(app.get_code().await.status(), 200);
}

#[tokio::test]
async fn a_concurrent_burst_gets_one_message_per_code_and_no_duplicates() {
    let (stack, app) = spawn_app().await;
    app.wait_ready().await;
    let responses = futures::future::join_all((0..60).map(|_| app.get_code())).await;
    let mut codes = HashSet::new();
    for res in responses {
        assert_eq!(res.status(), 200);
        let body: serde_json::Value = res.json().await.unwrap();
        codes.insert(body["code"].as_str().unwrap().to_owned());
    }
    assert_eq!(codes.len(), 60, "distinct codes");
    let messages = drain_queue(&stack).await;
    assert_eq!(messages.len(), 60, "one message per 200");
    let queued: HashSet<String> = messages.iter().map(|m| m.code.to_string()).collect();
    assert_eq!(queued, codes);
    let ids: HashSet<_> = messages.iter().map(|m| m.id).collect();
    assert_eq!(ids.len(), 60, "no duplicate messages");
}

#[tokio::test]
async fn requests_beyond_max_concurrent_requests_wait_their_turn_within_the_budget() {
    let stack = start_stack().await;
    let upstream = fake_upstream(Behaviour::Slow(Duration::from_millis(300)));
    let env = main_app_env(&stack)
        .with("THIRD_PARTY_API_ENDPOINT", &upstream.url)
        .with("MAX_CONCURRENT_REQUESTS", "2");
    let app = spawn_app_with(&env).await;
    app.wait_ready().await;
    let answers = futures::future::join_all((0..8).map(|_| app.get_code())).await;
    assert!(answers.iter().all(|a| a.status() == 200));
    assert_eq!(
        upstream.most_at_once.load(Ordering::SeqCst),
        2,
        "two at a time, the others waited their turn"
    );
    assert_eq!(drain_queue(&stack).await.len(), 8);

    // A turn that does not come within the budget is a 503 at the deadline, not a queue for ever.
    let hung = fake_upstream(Behaviour::Slow(Duration::from_secs(30)));
    let env = main_app_env(&stack)
        .with("THIRD_PARTY_API_ENDPOINT", &hung.url)
        .with("MAX_CONCURRENT_REQUESTS", "1")
        .with(REQUEST_TIMEOUT_SECONDS, "1");
    let app = spawn_app_with(&env).await;
    app.wait_ready().await;
    let started = std::time::Instant::now();
    let answers = futures::future::join_all((0..3).map(|_| app.get_code())).await;
    for answer in answers {
        assert_mapped(&stack, answer, 503, "deadline_exceeded").await;
    }
    assert!(started.elapsed() < Duration::from_secs(1) + MARGIN);
    // Never two at once: a later call starts only once the first one's turn ended at its 1 s
    // deadline (a waiting request can take the slot in the instant before its own deadline).
    // The upstream's own count cannot tell: it drops an abandoned call only once it notices.
    let arrivals = hung.arrivals.lock().unwrap().clone();
    assert!(!arrivals.is_empty(), "the first call reached the upstream");
    for later in &arrivals[1..] {
        let after = later.duration_since(arrivals[0]);
        assert!(
            after >= Duration::from_millis(500),
            "a second call started {after:?} after the first, within its turn"
        );
    }
}

/// A code source that draws `codes` in order, then random codes.
fn drawing(codes: &[&str]) -> main_app::routes::getcode::CodeSource {
    let queue = std::sync::Mutex::new(
        codes
            .iter()
            .map(|c| Code::parse(c).unwrap())
            .collect::<std::collections::VecDeque<_>>(),
    );
    main_app::routes::getcode::CodeSource::new(move |n| {
        queue
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or_else(|| Code::generate(n))
    })
}

async fn issued(app: &TestApp) -> String {
    let res = app.get_code().await;
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.unwrap();
    body["code"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_code_equal_to_a_live_one_is_drawn_again_and_an_expired_one_never_blocks_it() {
    let stack = start_stack().await;
    let env = main_app_env(&stack).with("CODE_TTL_SECONDS", "3");
    // The source draws SaM-7-CoD three times: the second draw meets a live record of it, the
    // third (after it expired, never verified) does not.
    let app = spawn_app_drawing(
        &env,
        drawing(&["SaM-7-CoD", "SaM-7-CoD", "NeW-7-CoD", "SaM-7-CoD"]),
    )
    .await;
    app.wait_ready().await;
    assert_eq!(issued(&app).await, "SaM-7-CoD");
    assert_eq!(
        issued(&app).await,
        "NeW-7-CoD",
        "a code held by a live record is drawn again"
    );
    let verdict = |code: &str| format!(r#"{{"code":"{code}"}}"#);
    assert_eq!(
        app.verify(&verdict("NeW-7-CoD")).await.1["valid"],
        true,
        "verifiable at once"
    );
    tokio::time::sleep(Duration::from_millis(3_200)).await;
    assert_eq!(
        issued(&app).await,
        "SaM-7-CoD",
        "an expired record does not block a new code equal to it"
    );
    assert_eq!(
        app.verify(&verdict("SaM-7-CoD")).await.1["valid"],
        true,
        "the new holder's code is valid"
    );
    assert_eq!(
        app.verify(&verdict("SaM-7-CoD")).await.1["valid"],
        false,
        "once"
    );
    let queued: Vec<String> = drain_queue(&stack)
        .await
        .iter()
        .map(|m| m.code.to_string())
        .collect();
    assert_eq!(
        queued,
        ["SaM-7-CoD", "NeW-7-CoD", "SaM-7-CoD"],
        "one message per 200"
    );
}

#[tokio::test]
async fn a_code_that_cannot_be_reserved_is_not_answered_and_not_queued() {
    let stack = start_stack().await;
    let app = spawn_app_drawing(&main_app_env(&stack), drawing(&["OnE-7-CoD"; 5])).await;
    app.wait_ready().await;
    assert_eq!(issued(&app).await, "OnE-7-CoD");
    assert_eq!(drain_queue(&stack).await.len(), 1);
    // Every draw now meets the live record: no code, a 503 the client can retry, no message.
    assert_mapped(&stack, app.get_code().await, 503, "ledger_unavailable").await;
    // And without the ledger role, the same.
    let ledger = Scope::Container(CONTAINER.into());
    assert!(stack.revoke(Identity::MainApp, Role::StorageBlobDataContributor, &ledger));
    assert_mapped(&stack, app.get_code().await, 503, "ledger_unavailable").await;
}

/// A getcode sent with a caller's `traceparent` to main-app with `extra` variables: the trace id the caller
/// sent, the `traceparent` the third-party API received, the envelope's, and main-app's access-log
/// line for the request.
async fn getcode_with_a_callers_trace(extra: &[(&str, &str)]) -> (String, String, String, String) {
    let logs = logs();
    let stack = start_stack().await;
    let upstream = fake_upstream(Behaviour::Number(417));
    let mut env = main_app_env(&stack).with("THIRD_PARTY_API_ENDPOINT", &upstream.url);
    for (name, value) in extra {
        env = env.with(name, *value);
    }
    let app = spawn_app_with(&env).await;
    app.wait_ready().await;
    let caller_trace = "0af7651916cd43dd8448eb211c80319c".to_owned();
    let res = app
        .http
        .get(format!("{}/api/v1/getcode", app.base))
        .header(
            "traceparent",
            format!("00-{caller_trace}-b7ad6b7169203331-01"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.unwrap();
    assert!(body["code"].as_str().unwrap().contains("-417-"));
    let sent = upstream.traceparents.lock().unwrap().clone();
    assert_eq!(sent.len(), 1);
    assert!(is_valid_traceparent(&sent[0]));
    let envelope = drain_queue(&stack).await.remove(0);
    let in_envelope = envelope.traceparent.expect("a traceparent in the envelope");
    let access = logs
        .text()
        .lines()
        .find(|l| l.contains("\"message\":\"request\"") && l.contains("/api/v1/getcode"))
        .expect("the access-log line")
        .to_owned();
    (caller_trace, sent[0].clone(), in_envelope, access)
}

#[tokio::test]
async fn a_callers_trace_is_linked_not_continued_by_default() {
    let (caller, upstream, envelope, access) = getcode_with_a_callers_trace(&[]).await;
    assert!(
        !upstream.contains(&caller),
        "a trace of main-app's own: {upstream}"
    );
    let own = upstream.split('-').nth(1).unwrap();
    assert!(
        envelope.contains(own),
        "the same trace goes into the message"
    );
    assert!(
        access.contains(&format!("\"linked_trace_id\":\"{caller}\"")),
        "linked to the caller's: {access}"
    );
    assert!(
        access.contains(&format!("\"trace_id\":\"{own}\"")),
        "{access}"
    );
}

#[tokio::test]
async fn with_incoming_traceparent_continue_the_callers_trace_goes_upstream_and_into_the_envelope()
{
    let continuing = [(main_app::config::INCOMING_TRACEPARENT, "continue")];
    let (caller, upstream, envelope, access) = getcode_with_a_callers_trace(&continuing).await;
    assert!(
        upstream.contains(&caller),
        "the caller's trace continues upstream"
    );
    assert!(envelope.contains(&caller), "and into the message");
    assert!(access.contains("\"linked_trace_id\":\"\""), "{access}");
}

/// Resumes a stopped process when dropped, so a failed assertion never leaves Azurite frozen.
struct Resume(nix::unistd::Pid);

impl Drop for Resume {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(self.0, nix::sys::signal::Signal::SIGCONT);
    }
}

#[tokio::test]
async fn a_stalled_storage_gets_503_within_the_budget_readiness_follows_and_both_recover() {
    let stack = start_stack().await;
    let budget = Duration::from_secs(2);
    let app = spawn_app_with(&main_app_env(&stack).with("REQUEST_TIMEOUT_SECONDS", "2")).await;
    app.wait_ready().await;
    assert_eq!(app.get_code().await.status(), 200);
    drain_queue(&stack).await;

    let pid = nix::unistd::Pid::from_raw(stack.azurite_pid().expect("Azurite runs") as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGSTOP).unwrap();
    let resume = Resume(pid);
    let started = std::time::Instant::now();
    let answers = futures::future::join_all((0..3).map(|_| async {
        let res = app.get_code().await;
        (
            res.status().as_u16(),
            res.headers().contains_key("retry-after"),
            started.elapsed(),
        )
    }))
    .await;
    for (status, retry_after, took) in answers {
        assert_eq!((status, retry_after), (503, true));
        // The bound under test is the deadline itself, with room for a slow machine.
        assert!(
            took < budget + Duration::from_secs(3),
            "answered after {took:?}"
        );
    }
    // getcode stalled reserving its code: the ledger fails; the queue too once it is probed.
    let (status, ready) = app.readyz().await;
    assert_eq!(status, 503, "{ready}");
    assert_eq!(ready["failing"][0], "ledger", "{ready}");

    drop(resume);
    app.wait_ready().await;
    assert_eq!(
        app.get_code().await.status(),
        200,
        "recovers without restart"
    );
}

/// Room on top of a time bound under test, for a loaded 2-core machine.
const MARGIN: Duration = Duration::from_secs(2);

/// `request`'s answer and how long it took; a request unanswered after 60 s fails the test.
async fn timed(
    request: impl std::future::Future<Output = reqwest::Response>,
) -> (reqwest::Response, Duration) {
    let started = std::time::Instant::now();
    let res = tokio::time::timeout(Duration::from_secs(60), request)
        .await
        .expect("main-app answers");
    (res, started.elapsed())
}

/// One getcode under a fault: within `budget` + [`MARGIN`], and 200 or 503 with `Retry-After`
/// (never 200 without a code). Returns the status and the error code ("" on 200), and prints
/// them with the time taken (`--nocapture` shows the timings).
async fn within_budget(app: &TestApp, budget: Duration) -> (u16, String) {
    let (res, took) = timed(app.get_code()).await;
    let status = res.status().as_u16();
    let retry_after = res.headers().contains_key("retry-after");
    let body: serde_json::Value = res.json().await.unwrap_or_default();
    let error = body["error"].as_str().unwrap_or_default().to_owned();
    println!("getcode under a fault: {status} {error} after {took:?} (budget {budget:?})");
    assert!(took < budget + MARGIN, "answered {status} after {took:?}");
    match status {
        200 => assert!(
            body["code"]
                .as_str()
                .is_some_and(|c| Code::parse(c).is_ok())
        ),
        503 => assert!(retry_after, "503 without Retry-After: {body}"),
        _ => panic!("answered {status}: {body}"),
    }
    (
        status,
        body["error"].as_str().unwrap_or_default().to_owned(),
    )
}

/// Runs `f` when dropped: a failed assertion never leaves an emulator stalled.
struct OnDrop<F: FnMut()>(F);

impl<F: FnMut()> Drop for OnDrop<F> {
    fn drop(&mut self) {
        (self.0)()
    }
}

/// main-app built as its binary builds it (`Application::build`: the secret cache timed by
/// `SECRET_CACHE_TTL_SECONDS`, production retry delays), running in this process.
async fn spawn_production_app(env: &MapEnv) -> TestApp {
    logs();
    let settings = Settings::from_env(env).unwrap();
    let app = Application::build(settings, env).unwrap();
    let service = LocalService::on_port(app.port());
    tokio::spawn(app.run_until(std::future::pending()));
    TestApp(service)
}

#[tokio::test]
async fn a_hung_key_vault_with_nothing_cached_gets_503_within_the_budget_then_recovers() {
    let stack = start_stack().await;
    let budget = Duration::from_secs(2);
    stack.vault.stall().set(true);
    let _unstall = OnDrop(|| stack.vault.stall().set(false));
    // Started during the hang: its first fetch of the key never answers.
    let app = spawn_app_with(&main_app_env(&stack).with(REQUEST_TIMEOUT_SECONDS, "2")).await;
    let answers = futures::future::join_all((0..3).map(|_| within_budget(&app, budget))).await;
    for answer in answers {
        assert_eq!(answer, (503, "deadline_exceeded".to_owned()));
    }
    assert!(stack.vault.stall().held() >= 1, "the hang was felt");
    eventually(
        Duration::from_secs(10),
        "not ready, only the secret check failing",
        || async {
            app.readyz().await == (503, json!({"status": "not_ready", "failing": ["secret"]}))
        },
    )
    .await;
    assert!(drain_queue(&stack).await.is_empty(), "nothing enqueued");

    stack.vault.stall().set(false);
    app.wait_ready().await;
    assert_eq!(
        app.get_code().await.status(),
        200,
        "recovers without restart"
    );
}

#[tokio::test]
async fn a_hung_key_vault_with_a_stale_key_answers_within_the_budget_then_recovers() {
    let stack = start_stack().await;
    let budget = Duration::from_secs(2);
    let env = main_app_env(&stack)
        .with(REQUEST_TIMEOUT_SECONDS, "2")
        .with(SECRET_CACHE_TTL_SECONDS, "1");
    let app = spawn_production_app(&env).await;
    app.wait_ready().await;
    assert_eq!(app.get_code().await.status(), 200);

    stack.vault.stall().set(true);
    let _unstall = OnDrop(|| stack.vault.stall().set(false));
    // Past the key's 1 s lifetime: every getcode needs a fetch, and every fetch hangs.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(within_budget(&app, budget).await);
    }
    assert!(stack.vault.stall().held() >= 1, "the hang was felt");
    println!("Key Vault hung, key stale: {statuses:?}");
    // The stale key is served after at most the secret cache's patience (1 s), within budget.
    assert!(
        statuses.iter().all(|(status, _)| *status == 200),
        "the stale key keeps serving: {statuses:?}"
    );

    stack.vault.stall().set(false);
    app.wait_ready().await;
    eventually(
        Duration::from_secs(10),
        "200 again without restart",
        || async { app.get_code().await.status() == 200 },
    )
    .await;
}

#[tokio::test]
async fn a_hung_identity_endpoint_with_tokens_to_refresh_answers_within_the_budget_then_recovers() {
    let stack = start_stack().await;
    let logs = logs();
    // Four-minute tokens: inside the SDK's refresh window, so every use asks for a new one; a
    // 1 s key: every getcode fetches it from Key Vault with a Key Vault token.
    stack.identities.set_token_lifetime(240);
    let env = main_app_env(&stack).with(SECRET_CACHE_TTL_SECONDS, "1");
    // Both budgets, the production one (10 s) and 2 s, leave room for the last good token to
    // be served after a refresh has waited its patience (shared-auth's REFRESH_PATIENCE, 1 s).
    let default_budget = main_app::config::DEFAULT_REQUEST_TIMEOUT;
    let app = spawn_production_app(&env).await;
    let short_budget = Duration::from_secs(2);
    let short_env = env.clone().with(REQUEST_TIMEOUT_SECONDS, "2");
    let short = spawn_production_app(&short_env).await;
    for app in [&app, &short] {
        app.wait_ready().await;
        assert_eq!(app.get_code().await.status(), 200);
    }
    drain_queue(&stack).await;

    stack.identities.stall().set(true);
    let _unstall = OnDrop(|| stack.identities.stall().set(false));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(within_budget(&app, default_budget).await);
    }
    println!("identity endpoint hung, tokens to refresh, 10 s budget: {statuses:?}");
    assert!(
        statuses.iter().all(|(status, _)| *status == 200),
        "the last good tokens keep serving: {statuses:?}"
    );
    assert!(logs.text().contains("serving the last good token"));
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(within_budget(&short, short_budget).await);
    }
    println!("identity endpoint hung, tokens to refresh, 2 s budget: {statuses:?}");
    assert!(
        statuses.iter().all(|(status, _)| *status == 200),
        "the last good tokens keep serving within 2 s too: {statuses:?}"
    );
    // A replica started during the hang holds no token at all.
    let fresh = spawn_production_app(&short_env).await;
    assert_eq!(
        within_budget(&fresh, short_budget).await,
        (503, "deadline_exceeded".to_owned())
    );
    assert!(stack.identities.stall().held() >= 2, "the hang was felt");

    stack.identities.stall().set(false);
    for app in [&app, &short, &fresh] {
        app.wait_ready().await;
        eventually(
            Duration::from_secs(10),
            "200 again without restart",
            || async { app.get_code().await.status() == 200 },
        )
        .await;
    }
}
