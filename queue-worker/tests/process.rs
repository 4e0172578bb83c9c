//! The real binary refuses bad configuration by naming the variable.

use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_queue-worker");

#[tokio::test]
async fn a_missing_or_malformed_variable_stops_start_up_with_its_name() {
    let complete = [
        (
            "STORAGE_QUEUE_URL",
            "https://127.0.0.1:9/devstoreaccount1/code-requests",
        ),
        (
            "CODE_LEDGER_URL",
            "https://127.0.0.1:9/devstoreaccount1/codes",
        ),
        ("IDENTITY_ENDPOINT", "http://127.0.0.1:9/msi/token"),
        ("IDENTITY_HEADER", "header"),
        ("PORT", "0"),
    ];
    for (variable, value) in [
        ("STORAGE_QUEUE_URL", None),
        ("CODE_LEDGER_URL", Some("http://insecure.example/codes")),
        ("WORKER_BATCH_SIZE", Some("64")),
        ("WORKER_MAX_DEQUEUE_COUNT", Some("zero")),
        ("QUEUE_MESSAGE_ENCODING", Some("rot13")),
    ] {
        let mut command = tokio::process::Command::new(BIN);
        command.env_clear();
        for (k, v) in complete {
            if k != variable {
                command.env(k, v);
            }
        }
        if let Some(value) = value {
            command.env(variable, value);
        }
        let output = tokio::time::timeout(Duration::from_secs(20), command.output())
            .await
            .expect("refuses promptly")
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{variable}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(variable), "{variable}: {stderr}");
    }
}
