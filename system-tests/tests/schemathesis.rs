//! Schemathesis (PyPI, pinned) against both HTTP services' own `/openapi.json`, every check on:
//! generated valid and invalid requests, undeclared methods, missing auth, response schemas and
//! status codes must all conform. The services run as real processes in the local stack; the
//! admin API is exercised with the master key, which never appears in the output (every key of
//! the store is redacted from it).

use devstack::stack::{DevStack, Service};
use std::process::Command;
use test_kit::start_stack;

/// The pinned release (its Hypothesis stack generates bodies for `additionalProperties: false`).
const SCHEMATHESIS: &str = "schemathesis==4.32.5";

/// Every key of third-party-api: main-app's function key (the only one its blob store is seeded
/// with) and the master key (in the vault).
fn store_keys(stack: &DevStack) -> Vec<String> {
    vec![
        stack.third_party_api_key().expose().to_owned(),
        stack.master_key().expose().to_owned(),
    ]
}

/// Runs schemathesis on `base`'s OpenAPI document; returns (success, redacted output).
async fn run(base: &str, header: Option<String>, secrets: Vec<String>) -> (bool, String) {
    let python =
        tokio::task::spawn_blocking(|| test_kit::python::venv("schemathesis", &[SCHEMATHESIS]))
            .await
            .unwrap()
            .expect("schemathesis installs from PyPI");
    let cli = python.with_file_name("schemathesis");
    let base = base.to_owned();
    let output = tokio::task::spawn_blocking(move || {
        let mut command = Command::new(&cli);
        // Its cache and reports go beside the venv, not into the work tree.
        command.current_dir(cli.parent().unwrap());
        command
            .arg("run")
            .arg(format!("{base}/openapi.json"))
            .args(["--checks", "all", "--seed", "20261127", "--workers", "1"])
            .args(["--max-examples", "60", "--wait-for-schema", "10"])
            .env("NO_COLOR", "1")
            .env("SCHEMATHESIS_TELEMETRY", "false");
        if let Some(header) = header {
            command.arg("-H").arg(header);
        }
        command.output().expect("schemathesis runs")
    })
    .await
    .unwrap();
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    // Tracebacks quote whole source files on one line: keep every line readable.
    let text: String = text
        .lines()
        .map(|line| line.chars().take(400).collect::<String>() + "\n")
        .collect();
    let mut text = text;
    for secret in secrets {
        text = text.replace(&secret, "<key>");
    }
    (output.status.success(), text)
}

#[tokio::test]
async fn both_services_conform_to_their_openapi_documents_under_every_check() {
    let stack = start_stack(Service::ALL).await;
    let (main_ok, main_out) = run(&stack.urls.main_app, None, Vec::new()).await;

    let third_party = stack
        .urls
        .third_party_api
        .trim_end_matches("/api/RandomNumber")
        .to_owned();
    let before = store_keys(&stack);
    let master = store_keys_master(&stack);
    let (tp_ok, tp_out) = run(
        &third_party,
        Some(format!("x-functions-key: {master}")),
        before.clone(),
    )
    .await;
    let mut tp_out = tp_out;
    for key in store_keys(&stack).into_iter().chain(before) {
        tp_out = tp_out.replace(&key, "<key>");
    }
    assert!(!tp_out.contains(&master), "the master key is redacted");

    println!("== main-app\n{}", tail(&main_out));
    println!("== third-party-api\n{}", tail(&tp_out));
    assert!(
        main_out.contains("passed") && tp_out.contains("passed"),
        "schemathesis ran test cases"
    );
    assert!(main_ok, "main-app:\n{main_out}");
    assert!(tp_ok, "third-party-api:\n{tp_out}");
}

fn store_keys_master(stack: &DevStack) -> String {
    stack.master_key().expose().to_owned()
}

/// The summary at the end of a run.
fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(25)..].join("\n")
}
