//! The real binary refuses bad configuration by naming the variable, without starting.

mod support;

use support::UNREACHABLE;
use test_kit::{assert_refuses_naming, command_with_one_changed};

const BIN: &str = env!("CARGO_BIN_EXE_main-app");

#[tokio::test]
async fn a_missing_or_malformed_variable_stops_start_up_with_its_name() {
    let complete = UNREACHABLE.into_iter().chain([
        ("IDENTITY_ENDPOINT", "http://127.0.0.1:9/msi/token"),
        ("IDENTITY_HEADER", "header"),
        ("PORT", "0"),
    ]);
    let cases = [
        ("KEY_VAULT_URL", None),
        ("STORAGE_QUEUE_URL", Some("http://insecure.example/q")),
        ("CODE_TTL_SECONDS", Some("soon")),
        ("IDENTITY_HEADER", None),
        ("AZURE_TOKEN_CREDENTIALS", Some("Everything")),
    ];
    let complete: Vec<_> = complete.collect();
    for (variable, value) in cases {
        let command = command_with_one_changed(BIN, &complete, (variable, value));
        assert_refuses_naming(command, variable).await;
    }
}
