//! Bad input to the `keyless` binary: unknown subcommand or flag, malformed or missing
//! variables, a malformed code. Each is exit 2 with one line on stderr naming what is wrong,
//! never a panic; `--help` works on every subcommand.

use std::process::{Command, Output};

fn keyless(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_keyless"));
    command.args(args).env_clear();
    for (k, v) in env {
        command.env(k, v);
    }
    command.output().expect("keyless runs")
}

fn assert_usage_error(args: &[&str], env: &[(&str, &str)], names: &str) {
    let output = keyless(args, env);
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "{args:?}: one line: {stderr}");
    assert!(
        stderr.contains(names),
        "{args:?}: {stderr} should name {names}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(output.stdout.is_empty(), "{args:?}");
}

const QUEUE: (&str, &str) = (
    "STORAGE_QUEUE_URL",
    "https://acct.queue.core.windows.net/code-requests",
);

#[test]
fn bad_input_is_one_line_and_exit_2() {
    assert_usage_error(&["frobnicate"], &[], "unrecognized subcommand 'frobnicate'");
    assert_usage_error(&["queue", "peek", "--bogus"], &[], "--bogus");
    assert_usage_error(&["queue", "peek", "--max", "99"], &[], "99");
    assert_usage_error(&["queue", "peek", "--max", "many"], &[], "many");
    assert_usage_error(&["doctor", "--as", "nobody"], &[], "nobody");
    assert_usage_error(&[], &[], "a subcommand is required");
    assert_usage_error(&["queue"], &[], "a subcommand is required");
    assert_usage_error(&["queue", "peek"], &[], "STORAGE_QUEUE_URL");
    assert_usage_error(
        &["queue", "peek"],
        &[("STORAGE_QUEUE_URL", "not a url")],
        "configuration error in STORAGE_QUEUE_URL: is not a URL",
    );
    assert_usage_error(
        &["queue", "peek"],
        &[("STORAGE_QUEUE_URL", "http://acct.queue.core.windows.net/q")],
        "configuration error in STORAGE_QUEUE_URL: must be an https URL",
    );
    assert_usage_error(
        &["queue", "peek", "--poison"],
        &[QUEUE, ("POISON_QUEUE_URL", "::")],
        "POISON_QUEUE_URL",
    );
    assert_usage_error(
        &["queue", "peek"],
        &[QUEUE, ("QUEUE_MESSAGE_ENCODING", "rot13")],
        "QUEUE_MESSAGE_ENCODING",
    );
    assert_usage_error(
        &["queue", "peek"],
        &[QUEUE, ("AZURE_TOKEN_CREDENTIALS", "ClientSecretCredential")],
        "AZURE_",
    );
    assert_usage_error(&["queue", "clear"], &[QUEUE], "--yes");
    assert_usage_error(&["queue", "requeue-poison", "--max", "0"], &[], "0");
    assert_usage_error(&["code", "status", "not-a-code"], &[], "is not a code");
    assert_usage_error(&["code", "status", "AbC-1-xYz"], &[], "CODE_LEDGER_URL");
    assert_usage_error(&["doctor"], &[], "pass --as");
    assert_usage_error(&["doctor", "--as", "main-app"], &[QUEUE], "KEY_VAULT_URL");
    assert_usage_error(
        &["doctor", "--as", "queue-worker"],
        &[QUEUE],
        "CODE_LEDGER_URL",
    );
    assert_usage_error(
        &["doctor", "--as", "third-party-api"],
        &[VAULT],
        "THIRD_PARTY_API_KEYS_URL",
    );
    assert_usage_error(
        &["doctor", "--as", "third-party-api"],
        &[
            VAULT,
            (
                "THIRD_PARTY_API_KEYS_URL",
                "https://acct.blob.core.windows.net",
            ),
        ],
        "THIRD_PARTY_API_KEYS_URL must name a blob",
    );
    assert_usage_error(&["doctor", "--as", "rotation"], &[], "KEY_VAULT_URL");
    assert_usage_error(&["rotate"], &[ENDPOINT], "KEY_VAULT_URL");
    assert_usage_error(&["rotate"], &[VAULT], "THIRD_PARTY_API_ENDPOINT");
    assert_usage_error(
        &["rotate"],
        &[VAULT, ("THIRD_PARTY_API_ENDPOINT", "not a url")],
        "THIRD_PARTY_API_ENDPOINT is not a valid URL",
    );
    assert_usage_error(
        &["rotate"],
        &[
            VAULT,
            ("THIRD_PARTY_API_ENDPOINT", "https://api.example.net/"),
        ],
        "THIRD_PARTY_API_ENDPOINT must name the function",
    );
    assert_usage_error(
        &["rotate"],
        &[
            VAULT,
            ENDPOINT,
            ("THIRD_PARTY_API_KEYS_REFRESH_SECONDS", "often"),
        ],
        "THIRD_PARTY_API_KEYS_REFRESH_SECONDS",
    );
    assert_usage_error(
        &["rotate", "--key-prefix", "_x"],
        &[VAULT, ENDPOINT],
        "--key-prefix",
    );
    assert_usage_error(&["rotate", "--expires-in-days", "0"], &[], "0");
    assert_usage_error(&["rotate", "--grace-seconds", "soon"], &[], "soon");
    assert_usage_error(&["rotate", "--wait-timeout-seconds", "0"], &[], "0");
    assert_usage_error(&["rotate", "--bogus"], &[], "--bogus");
}

const VAULT: (&str, &str) = ("KEY_VAULT_URL", "https://kv.vault.azure.net");
const ENDPOINT: (&str, &str) = (
    "THIRD_PARTY_API_ENDPOINT",
    "https://api.example.net/api/RandomNumber",
);

#[test]
fn help_on_every_subcommand() {
    for args in [
        &["--help"][..],
        &["doctor", "--help"],
        &["queue", "--help"],
        &["queue", "peek", "--help"],
        &["queue", "clear", "--help"],
        &["queue", "requeue-poison", "--help"],
        &["code", "--help"],
        &["code", "status", "--help"],
        &["rotate", "--help"],
        &["help", "queue"],
    ] {
        let output = keyless(args, &[]);
        let stdout = String::from_utf8(output.stdout).unwrap();
        assert_eq!(output.status.code(), Some(0), "{args:?}");
        assert!(stdout.contains("Usage: keyless"), "{args:?}: {stdout}");
    }
    let output = keyless(&["--version"], &[]);
    assert_eq!(output.status.code(), Some(0));
}
