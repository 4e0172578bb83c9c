//! The shared stop signal: SIGTERM ends `shutdown_signal` (its own test binary, so the signal
//! reaches no other test).

use service_kit::service::shutdown_signal;
use std::time::Duration;

#[tokio::test]
async fn sigterm_resolves_the_shutdown_signal() {
    let stopped = tokio::spawn(shutdown_signal());
    // Let the task install its handlers before the signal is sent.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!stopped.is_finished(), "nothing stops it before a signal");
    let sent = std::process::Command::new("kill")
        .args(["-TERM", &std::process::id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    tokio::time::timeout(Duration::from_secs(5), stopped)
        .await
        .expect("SIGTERM stops it")
        .unwrap();
}
