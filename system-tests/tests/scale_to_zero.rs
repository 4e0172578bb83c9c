//! The worker can scale to zero: once the codes are handled, nothing but real work keeps
//! `code-requests` non-empty. KEDA's azure-queue scaler (the worker's scale rule in
//! `infra/modules/container-app.bicep`) reads the queue's approximate message count, hidden
//! messages included; a main-app that proved its Sender role with a message every few seconds
//! would hold one replica of the worker up for ever.

use devstack::stack::Service;
use std::time::Duration;
use test_kit::{eventually, get_code, messages_in, start_stack};
use tokio::time::Instant;

/// How long the system stays idle after the last getcode before the count is read.
const IDLE: Duration = Duration::from_secs(60);
/// How long the count is then watched (two of main-app's former probe periods).
const WATCH: Duration = Duration::from_secs(30);

#[tokio::test]
async fn idle_after_the_last_getcode_the_queue_is_empty_while_main_app_stays_ready() {
    let system = start_stack(Service::ALL).await;
    let stack = &system.stack;
    let http = stack.http();
    let ready = || async {
        http.get(format!("{}/readyz", stack.urls.main_app))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
    };
    for _ in 0..3 {
        get_code(stack).await;
    }
    let last_getcode = Instant::now();
    // The worker takes the three messages within seconds: the queue is empty well before the
    // idle period ends, so the count at its end shows only what idling leaves.
    eventually(
        Duration::from_secs(20),
        "the worker took every message",
        || async { messages_in(stack, &stack.urls.queue).await == 0 },
    )
    .await;
    tokio::time::sleep_until(last_getcode + IDLE).await;

    let until = Instant::now() + WATCH;
    let mut samples = 0;
    while Instant::now() < until {
        assert_eq!(
            messages_in(stack, &stack.urls.queue).await,
            0,
            "code-requests holds a message {:?} after the last getcode: KEDA would keep a worker",
            last_getcode.elapsed()
        );
        assert!(ready().await, "main-app stays ready while idle");
        samples += 1;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(samples >= 30, "the count was read {samples} times");
    system.stop().await;
}
