//! The real binary refuses bad configuration by naming the variable, without starting.

mod support;

use std::time::Duration;
use support::UNREACHABLE;

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
    for (variable, value) in cases {
        let mut command = tokio::process::Command::new(BIN);
        command.env_clear();
        for (k, v) in complete.clone() {
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
