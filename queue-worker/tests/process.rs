//! The real binary refuses bad configuration by naming the variable.

use test_kit::{assert_refuses_naming, command_with_one_changed};

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
        let command = command_with_one_changed(BIN, &complete, (variable, value));
        assert_refuses_naming(command, variable).await;
    }
}
