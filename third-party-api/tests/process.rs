//! The real binary: refuses bad configuration by name, keeps keys across a restart, stops on
//! SIGTERM, and its logs name keys but never show their values.

use reqwest::StatusCode;
use std::process::Stdio;
use std::time::Duration;
use test_kit::assert_refuses_naming;
use test_kit::otlp::OtlpReceiver;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};

const BIN: &str = env!("CARGO_BIN_EXE_third-party-api");
const MASTER: &str = "process-master-key-0123456789";
const SEEDED: &str = "process-seeded-key-0123456789";

fn command(keys_file: &std::path::Path) -> Command {
    let mut command = Command::new(BIN);
    command
        .env_clear()
        .env("PORT", "0")
        .env("BIND_ADDRESS", "127.0.0.1")
        .env("RUST_LOG", "debug")
        .env("THIRD_PARTY_API_KEYS_FILE", keys_file)
        .env("THIRD_PARTY_API_MASTER_KEY", MASTER)
        .env("THIRD_PARTY_API_FUNCTION_KEYS", format!("seeded={SEEDED}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

/// A running binary, the port it reported and every log line so far.
struct Running {
    child: Child,
    port: u16,
    logs: String,
}

async fn start(keys_file: &std::path::Path) -> Running {
    let mut child = command(keys_file).spawn().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut logs = String::new();
    let port = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let mut line = String::new();
            assert!(
                stdout.read_line(&mut line).await.unwrap() > 0,
                "exited: {logs}"
            );
            logs.push_str(&line);
            let json: serde_json::Value = serde_json::from_str(&line).unwrap();
            if json["message"] == "third-party-api listening" {
                return json["port"].as_u64().unwrap() as u16;
            }
        }
    })
    .await
    .expect("the binary reports its port");
    child.stdout = Some(stdout.into_inner());
    Running { child, port, logs }
}

/// SIGTERM, then the exit status and the rest of the logs.
async fn stop(mut running: Running) -> (std::process::ExitStatus, String) {
    let pid = running.child.id().unwrap().to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .unwrap();
    assert!(killed.success());
    let status = tokio::time::timeout(Duration::from_secs(30), running.child.wait())
        .await
        .expect("exits within the grace period")
        .unwrap();
    let mut rest = String::new();
    running
        .child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut rest)
        .await
        .unwrap();
    running.logs.push_str(&rest);
    (status, running.logs)
}

#[tokio::test]
async fn keys_survive_a_restart_sigterm_stops_it_and_logs_hold_no_key() {
    let dir = tempfile::tempdir().unwrap();
    let keys_file = dir.path().join("nested/keys.json");
    let http = reqwest::Client::new();

    let first = start(&keys_file).await;
    let base = format!("http://127.0.0.1:{}", first.port);
    let added = "added-at-runtime-key-0123456789";
    let res = http
        .put(format!("{base}/admin/functions/RandomNumber/keys/added"))
        .header("x-functions-key", MASTER)
        .json(&serde_json::json!({ "value": added }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let res = http
        .get(format!("{base}/api/RandomNumber?code={SEEDED}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let res = http
        .get(format!(
            "{base}/api/RandomNumber?code=a-wrong-key-0123456789"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let (status, first_logs) = stop(first).await;
    assert!(status.success(), "{status:?}");
    assert!(first_logs.contains("third-party-api stopped"));

    // Restart: the runtime key and the seeded key still work.
    let second = start(&keys_file).await;
    let base = format!("http://127.0.0.1:{}", second.port);
    for key in [added, SEEDED] {
        let res = http
            .get(format!("{base}/api/RandomNumber"))
            .header("x-functions-key", key)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
    }
    let (_, second_logs) = stop(second).await;

    let logs = format!("{first_logs}{second_logs}");
    assert!(
        logs.contains("\"api_key\":\"function/seeded\""),
        "the access log names the key"
    );
    assert!(logs.contains("\"status\":401"));
    for secret in [MASTER, SEEDED, added, "a-wrong-key-0123456789"] {
        assert!(!logs.contains(secret), "a key value reached the logs");
    }
}

#[tokio::test]
async fn bad_configuration_stops_start_up_naming_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    let keys_file = dir.path().join("keys.json");
    let cases = [
        ("PORT", "not-a-port"),
        ("THIRD_PARTY_API_MASTER_KEY", "tiny-master"),
        ("THIRD_PARTY_API_FUNCTION_KEYS", "default"),
        ("RUST_LOG", "[[[not a filter"),
        ("LOG_FORMAT", "xml"),
    ];
    for (variable, value) in cases {
        let mut command = command(&keys_file);
        command.env(variable, value);
        let stderr = assert_refuses_naming(command, variable).await;
        if variable.starts_with("THIRD_PARTY") {
            assert!(!stderr.contains(value), "the value must not be echoed");
        }
    }
    assert!(
        !keys_file.exists(),
        "nothing was written by a refused start"
    );

    // A corrupt store is refused with its path, not overwritten.
    std::fs::write(&keys_file, "{\"version\":1,").unwrap();
    let output = command(&keys_file).output().await.unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("keys.json"));
    assert_eq!(
        std::fs::read_to_string(&keys_file).unwrap(),
        "{\"version\":1,"
    );
}

#[tokio::test]
async fn spans_are_exported_over_otlp_and_continue_the_callers_trace() {
    let receiver = OtlpReceiver::start();
    let dir = tempfile::tempdir().unwrap();
    let mut command = command(&dir.path().join("keys.json"));
    command.env("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint());
    let mut child = command.spawn().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut port = 0;
    while port == 0 {
        let mut line = String::new();
        assert!(stdout.read_line(&mut line).await.unwrap() > 0);
        let json: serde_json::Value = serde_json::from_str(&line).unwrap();
        if json["message"] == "third-party-api listening" {
            port = json["port"].as_u64().unwrap() as u16;
        }
    }
    child.stdout = Some(stdout.into_inner());
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let res = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/api/RandomNumber"))
        .header("x-functions-key", SEEDED)
        .header("traceparent", format!("00-{trace_id}-00f067aa0ba902b7-01"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let (status, _) = stop(Running {
        child,
        port,
        logs: String::new(),
    })
    .await;
    assert!(status.success());

    // The batch exporter flushes at shutdown: everything is in by now.
    let spans = receiver.spans();
    assert!(!spans.is_empty(), "no export reached the receiver");
    assert!(
        spans.iter().any(|s| s.service == "third-party-api"
            && s.name == "GET /api/RandomNumber"
            && s.trace_id == trace_id),
        "the server span continues the caller's trace: {spans:#?}"
    );
    assert!(
        !receiver.bodies_contain(SEEDED.as_bytes()),
        "no key in the spans"
    );
}
