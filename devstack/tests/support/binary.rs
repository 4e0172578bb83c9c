//! The `devstack` binary as a test runs it: on free ports, without building, its output piped;
//! its "devstack ready" line, its env files, and whether a pid is alive.

use shared_auth::MapEnv;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_devstack");

/// `devstack --ephemeral-ports --no-build --state-dir <state_dir>`, its output piped.
pub fn devstack(state_dir: &Path) -> Command {
    let mut command = Command::new(BIN);
    command
        .args(["--ephemeral-ports", "--no-build", "--state-dir"])
        .arg(state_dir)
        .env_remove("CARGO")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

/// The `KEY=VALUE` lines of an env file devstack wrote.
pub fn read_env_file(path: &Path) -> MapEnv {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// Whether process `pid` runs (not a zombie).
pub fn alive(pid: u64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|stat| !stat.contains(") Z "))
        .unwrap_or(false)
}

/// Everything the child wrote to stderr (it has exited or is about to).
pub async fn stderr_of(child: &mut tokio::process::Child) -> String {
    use tokio::io::AsyncReadExt;
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .await
        .unwrap();
    stderr
}

/// The "devstack ready" line (its URLs and pids), within two minutes.
pub async fn ready_line(
    child: &mut tokio::process::Child,
    stdout: &mut tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
) -> serde_json::Value {
    let ready = tokio::time::timeout(Duration::from_secs(120), async {
        while let Some(line) = stdout.next_line().await.unwrap() {
            if let Ok(json) = serde_json::from_str::<serde_json::Value>(&line)
                && json["message"] == "devstack ready"
            {
                return Some(json);
            }
        }
        None
    })
    .await
    .expect("ready in time");
    match ready {
        Some(json) => json,
        None => panic!("devstack exited before ready: {}", stderr_of(child).await),
    }
}
