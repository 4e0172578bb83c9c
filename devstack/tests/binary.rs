//! The `devstack` binary: start, wait for ready, fetch the seeded key from the vault as the
//! developer, call third-party-api with it, dry-run the key rotation from `rotation.env`, refuse a
//! second instance, stop on SIGTERM, and leave no process behind.

mod support;

use azure_security_keyvault_secrets::{SecretClient, SecretClientOptions};
use devstack::stack::SECRET_NAME;
use shared_auth::credential_from_env;
use shared_auth::transport::{azure_client_options, http_client_from_env};
use std::path::Path;
use std::time::Duration;
use support::binary::{alive, devstack, read_env_file, ready_line, stderr_of};
use test_kit::{eventually, eventually_ok};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

#[tokio::test]
async fn runs_the_system_and_stops_without_leaving_a_process() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = devstack(dir.path()).spawn().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let ready = ready_line(&mut child, &mut stdout).await;
    let pids: Vec<u64> = ready["pids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_u64().unwrap())
        .collect();
    assert_eq!(
        pids.len(),
        4,
        "azurite, third-party-api, main-app and queue-worker"
    );
    assert!(pids.iter().all(|p| alive(*p)));

    // As a developer would: the environment file, the vault, then the API with the key.
    let env = read_env_file(Path::new(ready["developer_env"].as_str().unwrap()));
    let http = http_client_from_env(&env).unwrap();
    let credential = credential_from_env(&env, &http).unwrap().credential;
    let vault = SecretClient::new(
        ready["key_vault"].as_str().unwrap(),
        credential,
        Some(SecretClientOptions {
            client_options: azure_client_options(&http),
            verify_challenge_resource: Some(false),
            ..Default::default()
        }),
    )
    .unwrap();
    let key = vault
        .get_secret(SECRET_NAME, None)
        .await
        .unwrap()
        .into_model()
        .unwrap()
        .value
        .unwrap();
    let api = ready["third_party_api"].as_str().unwrap();
    let res = http
        .get(api)
        .header("x-functions-key", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let res = http
        .get(api)
        .header("x-functions-key", "wrong-key-000000000")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    // main-app, with its managed identity, issues a code.
    let main_app = ready["main_app"].as_str().unwrap();
    let res = http
        .get(format!("{main_app}/api/v1/getcode"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let issued: serde_json::Value = res.json().await.unwrap();
    let code = issued["code"].as_str().unwrap();
    // queue-worker records it (through the queue), then main-app verifies it once.
    let ledger = azure_storage_blob::BlobClient::new(
        format!("{}/{code}", ready["ledger"].as_str().unwrap())
            .parse()
            .unwrap(),
        Some(credential_from_env(&env, &http).unwrap().credential),
        Some(azure_storage_blob::BlobClientOptions {
            client_options: azure_client_options(&http),
            ..Default::default()
        }),
    )
    .unwrap();
    let recorded = format!("queue-worker records {code}");
    eventually_ok(Duration::from_secs(30), &recorded, || {
        ledger.get_properties(None)
    })
    .await;
    for expected in [true, false] {
        let verdict: serde_json::Value = http
            .post(format!("{main_app}/api/v1/codes/verify"))
            .json(&serde_json::json!({ "code": code }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(verdict["valid"], expected);
    }

    let service_env = std::fs::read_to_string(dir.path().join("third-party-api.env")).unwrap();
    assert!(service_env.contains("IDENTITY_ENDPOINT="));
    assert!(
        !service_env.contains(&key),
        "the key is never in an env file"
    );

    // As an operator would: the rotation job's environment file, a dry run of the rotation
    // (its preflight reads both secrets and proves write access; the plan reads the key store).
    let rotation = read_env_file(Path::new(ready["rotation_env"].as_str().unwrap()));
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let args = ["keyless", "rotate", "--dry-run"];
    let exit = ops::cli::run(args, &rotation, &mut out, &mut err).await;
    let out = String::from_utf8(out).unwrap() + &String::from_utf8(err).unwrap();
    assert_eq!(exit, 0, "{out}");
    assert!(out.contains("nothing changed"), "{out}");
    assert!(!out.contains(&key), "the key is never printed");

    // A second instance on the same state refuses at once.
    let second = devstack(dir.path()).output().await.unwrap();
    assert_eq!(second.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&second.stderr).contains("already running"));

    let pid = child.id().unwrap().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .await
            .unwrap()
            .success()
    );
    let status = tokio::time::timeout(Duration::from_secs(60), child.wait())
        .await
        .expect("stops within its grace period")
        .unwrap();
    assert!(status.success(), "{status:?}");
    eventually(
        Duration::from_secs(10),
        "no child outlives devstack",
        || async { !pids.iter().any(|p| alive(*p)) },
    )
    .await;
    assert!(!dir.path().join("devstack.pid").exists());
}

#[tokio::test]
async fn a_port_in_use_is_named_in_a_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let mut options = devstack::stack::StackOptions::for_tests(dir.path());
    options.ports.key_vault = port;
    let err = devstack::stack::DevStack::start(options).await.unwrap_err();
    let message = format!("{err:#}");
    assert!(
        message.contains(&port.to_string()) && message.contains("already in use"),
        "{message}"
    );
}

#[tokio::test]
async fn missing_node_is_a_clear_message_not_a_hang() {
    let dir = tempfile::tempdir().unwrap();
    let empty = tempfile::tempdir().unwrap();
    let output = tokio::time::timeout(
        Duration::from_secs(60),
        devstack(dir.path()).env("PATH", empty.path()).output(),
    )
    .await
    .expect("fails promptly")
    .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("Node.js"), "{stderr}");
    assert!(!dir.path().join("devstack.pid").exists());
}

/// Every binary of the workspace answers `--help` and `--version` the same way (clap: usage on
/// stdout, exit 0) and refuses an argument it does not know (exit 2, naming it), instead of
/// ignoring it (the services used to serve) or calling it unknown (devstack used to).
#[test]
fn every_binary_answers_help_and_refuses_an_unknown_argument() {
    let dir = devstack::stack::profile_dir();
    for name in [
        "devstack",
        "main-app",
        "queue-worker",
        "third-party-api",
        "keyless",
        "auth-check",
    ] {
        let binary = dir.join(name);
        assert!(
            binary.exists(),
            "{} (built by the workspace's tests)",
            binary.display()
        );
        let run = |arg: &str| {
            std::process::Command::new(&binary)
                .arg(arg)
                .env_clear()
                .output()
                .unwrap()
        };
        let help = run("--help");
        let text = String::from_utf8_lossy(&help.stdout);
        assert_eq!(help.status.code(), Some(0), "{name} --help");
        assert!(text.contains(&format!("Usage: {name}")), "{name}: {text}");
        let version = run("--version");
        assert_eq!(version.status.code(), Some(0), "{name} --version");
        assert!(String::from_utf8_lossy(&version.stdout).starts_with(name));
        let wrong = run("--no-such-option");
        assert_eq!(wrong.status.code(), Some(2), "{name} --no-such-option");
        assert!(
            String::from_utf8_lossy(&wrong.stderr).contains("--no-such-option"),
            "{name} names the argument"
        );
    }
}

/// `cargo run -p devstack` is quiet and never half-alive: Azurite's access log is off by default
/// (the worker polls every second), a person's `RUST_LOG` reaches the services, and when a child
/// dies devstack says which, stops the rest and exits 1 instead of warning in a loop.
#[tokio::test]
async fn quiet_by_default_and_a_dead_child_stops_everything_with_a_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = devstack(dir.path())
        .env("RUST_LOG", "info,queue_worker=debug")
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let ready = ready_line(&mut child, &mut stdout).await;
    // Five seconds of an idle system: the worker polls about five times.
    let mut lines = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(line) = stdout.next_line().await.unwrap() {
            lines.push(line);
        }
    })
    .await;
    let access_log = lines
        .iter()
        .filter(|l| l.starts_with("[azurite]") && l.contains("/devstoreaccount1/"))
        .count();
    assert_eq!(access_log, 0, "Azurite's access log is off: {lines:#?}");
    for service in ["main-app", "queue-worker", "third-party-api"] {
        let env = read_env_file(&dir.path().join(format!("{service}.env")));
        assert_eq!(
            shared_auth::EnvSource::var(&env, "RUST_LOG").as_deref(),
            Some("info,queue_worker=debug"),
            "{service} got the person's RUST_LOG"
        );
    }

    // Azurite dies: devstack says so, stops the services and exits 1.
    let pids: Vec<i32> = ready["pids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_i64().unwrap() as i32)
        .collect();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pids[0]),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let status = tokio::time::timeout(Duration::from_secs(60), child.wait())
        .await
        .expect("devstack stops by itself")
        .unwrap();
    assert_eq!(status.code(), Some(1));
    let stderr = stderr_of(&mut child).await;
    assert!(
        stderr.contains("devstack: azurite exited") && stderr.contains("Stopping everything"),
        "{stderr}"
    );
    for pid in &pids[1..] {
        assert!(!alive(*pid as u64), "service {pid} left running");
    }
}
