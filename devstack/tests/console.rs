//! The console in a real browser: `devstack` serves it with a token in the URL it prints;
//! headless Chromium (Debian's `chromium`, driven by `playwright-core` from
//! `tests/console/package.json`) is refused without the token, sees every resource ready, a
//! getcode from main-app's page as allowed decisions, a ledger record and a trace across the
//! three services, then a denial naming Storage Queue Data Message Sender once that role is
//! revoked on the page. No response the console served holds a secret.

mod support;

use azure_security_keyvault_secrets::{SecretClient, SecretClientOptions};
use devstack::stack::{MASTER_KEY_SECRET_NAME, SECRET_NAME};
use shared_auth::transport::{azure_client_options, http_client_from_env};
use shared_auth::{EnvSource, credential_from_env};
use std::path::{Path, PathBuf};
use support::binary::{devstack, read_env_file, ready_line};
use test_kit::hygiene::{leaks, redact};
use tokio::io::{AsyncBufReadExt, BufReader};

/// Where the browser test's npm packages are installed (outside the source tree).
fn npm_dir() -> PathBuf {
    devstack::stack::target_dir().join("devstack/console-browser")
}

/// `npm ci` of `tests/console/package.json` and its lock into [`npm_dir`], unless that lock is
/// already installed there.
fn install_playwright() -> PathBuf {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/console");
    let dir = npm_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let lock = std::fs::read(source.join("package-lock.json")).unwrap();
    let installed = dir.join("node_modules/.installed-lock.json");
    if std::fs::read(&installed).ok().as_ref() != Some(&lock) {
        for file in ["package.json", "package-lock.json"] {
            std::fs::copy(source.join(file), dir.join(file)).unwrap();
        }
        let status = std::process::Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(&dir)
            .status()
            .expect("npm runs (apt-get install nodejs npm)");
        assert!(
            status.success(),
            "npm ci of tests/console/package.json failed"
        );
        std::fs::write(&installed, &lock).unwrap();
    }
    std::fs::copy(source.join("drive.mjs"), dir.join("drive.mjs")).unwrap();
    dir.join("drive.mjs")
}

/// Debian's Chromium, or `CHROMIUM`.
fn chromium() -> String {
    let path = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&path).is_file(),
        "{path} is missing: apt-get install chromium (or set CHROMIUM to a Chromium binary)"
    );
    path
}

/// Every value the console must never serve: the vault's two secrets (read as the rotation
/// job), the client secrets of the env files and the services' identity headers.
async fn secrets(ready: &serde_json::Value, state_dir: &Path) -> Vec<String> {
    let rotation = read_env_file(Path::new(ready["rotation_env"].as_str().unwrap()));
    let http = http_client_from_env(&rotation).unwrap();
    let vault = SecretClient::new(
        ready["key_vault"].as_str().unwrap(),
        credential_from_env(&rotation, &http).unwrap().credential,
        Some(SecretClientOptions {
            client_options: azure_client_options(&http),
            verify_challenge_resource: Some(false),
            ..Default::default()
        }),
    )
    .unwrap();
    let mut secrets = Vec::new();
    for name in [SECRET_NAME, MASTER_KEY_SECRET_NAME] {
        let secret = vault.get_secret(name, None).await.unwrap();
        secrets.push(secret.into_model().unwrap().value.unwrap());
    }
    for file in ["developer", "rotation"] {
        let env = read_env_file(&state_dir.join(format!("{file}.env")));
        secrets.push(env.var("AZURE_CLIENT_SECRET").unwrap());
    }
    for service in ["main-app", "queue-worker", "third-party-api"] {
        let env = read_env_file(&state_dir.join(format!("{service}.env")));
        secrets.push(env.var("IDENTITY_HEADER").unwrap());
    }
    assert!(
        secrets.iter().all(|s| s.len() >= 16),
        "real secrets to look for"
    );
    secrets
}

#[tokio::test]
async fn the_console_shows_tokens_roles_decisions_and_a_trace_in_a_real_browser() {
    let chromium = chromium();
    let script = install_playwright();
    let dir = tempfile::tempdir().unwrap();
    let mut child = devstack(dir.path()).spawn().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let ready = ready_line(&mut child, &mut stdout).await;
    // The services log to devstack's stdout: keep reading it so that no write blocks.
    tokio::spawn(async move { while let Ok(Some(_)) = stdout.next_line().await {} });
    let console = ready["console"]
        .as_str()
        .expect("the console's URL")
        .to_owned();
    assert!(
        console.starts_with("http://127.0.0.1:") && console.contains("/?token="),
        "{console}"
    );

    let out = dir.path().join("browser");
    let responses = out.join("responses");
    let screenshot = std::env::var("CONSOLE_SCREENSHOT")
        .map(PathBuf::from)
        .unwrap_or_else(|_| out.join("console.png"));
    let resources = [
        "identity emulator",
        "Key Vault emulator",
        "azurite",
        "queue storage gate",
        "blob storage gate",
        "third-party-api",
        "main-app",
        "queue-worker",
    ];
    let driven = tokio::process::Command::new("node")
        .arg(&script)
        .env("CHROMIUM", &chromium)
        .env("CONSOLE_URL", &console)
        .env("MAIN_APP_URL", ready["main_app"].as_str().unwrap())
        .env("RESPONSES_DIR", &responses)
        .env("SCREENSHOT", &screenshot)
        .env("EXPECT_RESOURCES", resources.join(","))
        .current_dir(npm_dir())
        .kill_on_drop(true)
        .output()
        .await
        .unwrap();
    let report = String::from_utf8_lossy(&driven.stdout);
    assert!(
        driven.status.success(),
        "the browser test failed:\n{}{report}",
        String::from_utf8_lossy(&driven.stderr)
    );
    let seen: serde_json::Value = serde_json::from_str(report.trim()).expect("one JSON line");
    assert!(seen["trace_spans"].as_u64().unwrap() >= 3, "{seen}");
    assert!(
        seen["refused_getcode"].as_str().unwrap().starts_with("503"),
        "{seen}"
    );

    let png = std::fs::read(&screenshot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 20_000,
        "a screenshot"
    );

    // Every response the browser got from the console, state included: no secret and no bearer
    // token in any (the check the logs get; it finds a planted one).
    let secrets = secrets(&ready, dir.path()).await;
    assert!(leaks(&format!("x {} y", secrets[0]), &secrets).is_some());
    let mut states = 0;
    let mut files = 0;
    for entry in std::fs::read_dir(&responses).unwrap() {
        let body = std::fs::read(entry.unwrap().path()).unwrap();
        files += 1;
        let text = String::from_utf8_lossy(&body);
        states += usize::from(text.contains("/api/state") && text.contains("\"decisions\""));
        if let Some(line) = leaks(&text, &secrets) {
            panic!("a secret in a console response: {}", redact(line, &secrets));
        }
    }
    assert!(
        files > 5 && states > 3,
        "{files} responses, {states} states looked at"
    );

    // The token alone does not admit a page served under another host name (DNS rebinding).
    let base = console.split("/?token=").next().unwrap();
    let token = console.split("/?token=").nth(1).unwrap();
    let rebound = reqwest::Client::new()
        .get(format!("{base}/api/state"))
        .header("host", "console.attacker.example")
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(rebound.status(), 403);

    // SIGTERM: devstack stops its children (SIGKILL would leave them running).
    let pid = child.id().expect("still running") as i32;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = child.wait().await.unwrap();
    assert!(status.success(), "devstack stopped cleanly: {status}");
}
