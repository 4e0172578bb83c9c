//! Azurite, the Microsoft storage emulator, installed on demand from npm (pinned) and started as a
//! child process for Queue and Blob Storage over HTTPS with token authentication.
//!
//! Its account key is random, made at each start and handed over in `AZURITE_ACCOUNTS` (kept
//! nowhere else, never logged): Azurite would otherwise accept SharedKey and SAS signed with the
//! public well-known key, which anyone reaching its ports could use to skip the storage gate.

use crate::process::{ChildProcess, LogSink};
use anyhow::{Context, bail};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio::process::Command;

/// The pinned version: the newest that runs on Node 20.
pub const AZURITE_VERSION: &str = "3.35.0";
/// The account Azurite serves.
pub const ACCOUNT: &str = "devstoreaccount1";
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// `AZURITE_ACCOUNTS` for [`ACCOUNT`] with a fresh random 512-bit key (base64, as Azurite
/// expects): nobody, devstack included, ever needs it, since every client uses tokens.
fn random_accounts() -> anyhow::Result<String> {
    use base64::Engine;
    let mut key = [0u8; 64];
    aws_lc_rs::rand::fill(&mut key).map_err(|_| anyhow::anyhow!("no system randomness"))?;
    let key = base64::engine::general_purpose::STANDARD.encode(key);
    Ok(format!("{ACCOUNT}:{key}"))
}

/// Installs Azurite under `npm_dir` unless it is there; returns its entry script. Concurrent
/// callers (parallel tests) wait on a file lock instead of installing twice.
pub async fn ensure_installed(npm_dir: &Path) -> anyhow::Result<PathBuf> {
    let entry = npm_dir.join("node_modules/azurite/dist/src/azurite.js");
    let marker = npm_dir.join(format!(".azurite-{AZURITE_VERSION}"));
    if entry.is_file() && marker.is_file() {
        return Ok(entry);
    }
    check_node().await?;
    std::fs::create_dir_all(npm_dir)
        .with_context(|| format!("cannot create {}", npm_dir.display()))?;
    let lock_path = npm_dir.join(".install.lock");
    let npm_dir = npm_dir.to_owned();
    let (entry, marker) = (entry.clone(), marker.clone());
    tokio::task::spawn_blocking(move || -> anyhow::Result<PathBuf> {
        let lock = std::fs::File::create(&lock_path)?;
        lock.lock()?;
        if entry.is_file() && marker.is_file() {
            return Ok(entry);
        }
        eprintln!("devstack: installing azurite@{AZURITE_VERSION} with npm into {}", npm_dir.display());
        let output = std::process::Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--loglevel=error", "--prefix"])
            .arg(&npm_dir)
            .arg(format!("azurite@{AZURITE_VERSION}"))
            .output()
            .context("npm is not installed: install Node.js 20 and npm (apt-get install nodejs npm)")?;
        if !output.status.success() {
            bail!(
                "npm could not install azurite@{AZURITE_VERSION} (is the npm registry reachable?): {}",
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        if !entry.is_file() {
            bail!("npm installed azurite but {} is missing", entry.display());
        }
        std::fs::write(&marker, AZURITE_VERSION)?;
        Ok(entry)
    })
    .await?
}

async fn check_node() -> anyhow::Result<()> {
    let output = Command::new("node").arg("--version").output().await.context(
        "Node.js is not installed: Azurite needs Node.js 20 or later (apt-get install nodejs npm)",
    )?;
    let version = String::from_utf8_lossy(&output.stdout);
    let major: u32 = version
        .trim()
        .trim_start_matches('v')
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    if major < 20 {
        bail!(
            "Azurite needs Node.js 20 or later; found {}",
            version.trim()
        );
    }
    Ok(())
}

/// Ports handed out by [`free_port`] may come from this range: below Linux's ephemeral range
/// (32768-60999), so a listener bound to port 0 or an outgoing connection never takes a port a
/// child process is about to bind.
const RESERVABLE_PORTS: std::ops::Range<u16> = 20_000..32_000;

/// A free loopback port for a child process to bind: outside the kernel's ephemeral range and
/// never handed out twice by this process, so concurrent stacks cannot race for it.
pub fn free_port() -> anyhow::Result<u16> {
    static HANDED_OUT: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut handed_out = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
    for _ in 0..200 {
        let port = rand::random_range(RESERVABLE_PORTS);
        if handed_out.contains(&port) {
            continue;
        }
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            handed_out.push(port);
            return Ok(port);
        }
    }
    bail!("no free loopback port in {RESERVABLE_PORTS:?} after 200 tries")
}

/// A running Azurite.
#[derive(Debug)]
pub struct Azurite {
    /// The process.
    pub process: ChildProcess,
    /// `https://127.0.0.1:<port>` of the blob service (account in the path).
    pub blob_endpoint: String,
    /// `https://127.0.0.1:<port>` of the queue service (account in the path).
    pub queue_endpoint: String,
    /// Blob, queue and table ports, kept for a restart.
    ports: [u16; 3],
}

/// How to start Azurite.
#[derive(Debug, Clone)]
pub struct AzuriteOptions {
    /// Where the npm package lives.
    pub npm_dir: PathBuf,
    /// Data directory; `None` keeps everything in memory.
    pub data_dir: Option<PathBuf>,
    /// Server certificate chain (PEM).
    pub cert: PathBuf,
    /// Server key (PEM).
    pub key: PathBuf,
    /// Azurite's access log (a line per request: one per worker poll, every second); off, it
    /// still prints its start-up lines and errors.
    pub access_log: bool,
}

impl Azurite {
    /// Installs if needed, starts on free loopback ports and waits until both services accept
    /// connections. Another process can take a free port before Azurite binds it: then it starts
    /// again on new ports (three times at most).
    pub async fn start(options: &AzuriteOptions, sink: &LogSink) -> anyhow::Result<Self> {
        let mut attempts = 1;
        loop {
            let ports = [free_port()?, free_port()?, free_port()?];
            let taken = |ports: &[u16]| {
                let in_use = |&port: &u16| TcpListener::bind(("127.0.0.1", port)).is_err();
                ports.iter().any(in_use)
            };
            match Self::start_on(options, sink, ports).await {
                Err(e) if attempts < 3 && taken(&ports) => {
                    tracing::warn!(error = %e, "a port was taken before Azurite bound it; new ports");
                    attempts += 1;
                }
                started => return started,
            }
        }
    }

    /// Stops this Azurite (SIGTERM: it saves its data) and starts another on the same ports
    /// with `options`, so every client and the gates find it where it was.
    pub async fn stop_keeping_ports(self) -> [u16; 3] {
        self.process.stop(Duration::from_secs(10)).await;
        self.ports
    }

    /// Starts on `ports` (blob, queue, table) and waits until both services accept connections.
    pub async fn start_on(
        options: &AzuriteOptions,
        sink: &LogSink,
        ports: [u16; 3],
    ) -> anyhow::Result<Self> {
        let entry = ensure_installed(&options.npm_dir).await?;
        let [blob, queue, _table] = ports;
        let mut command = Command::new("node");
        command.arg(&entry);
        for (service, port) in ["blob", "queue", "table"].into_iter().zip(ports) {
            let (host, port_flag) = (format!("--{service}Host"), format!("--{service}Port"));
            command.args([host, "127.0.0.1".into(), port_flag, port.to_string()]);
        }
        command
            .args([
                "--oauth",
                "basic",
                "--skipApiVersionCheck",
                "--disableProductStyleUrl",
            ])
            .args(["--disableTelemetry", "--loose"])
            .args((!options.access_log).then_some("--silent"))
            .arg("--cert")
            .arg(&options.cert)
            .arg("--key")
            .arg(&options.key)
            // Not the well-known key: a random one, in the child's environment only.
            .env("AZURITE_ACCOUNTS", random_accounts()?);
        match &options.data_dir {
            Some(dir) => {
                std::fs::create_dir_all(dir)?;
                command.arg("--location").arg(dir);
            }
            None => {
                command.arg("--inMemoryPersistence");
            }
        }
        let mut process = ChildProcess::spawn("azurite", command, sink).context(
            "cannot start Azurite: Node.js 20 or later must be on PATH (apt-get install nodejs npm)",
        )?;
        let started = Instant::now();
        for port in [blob, queue] {
            while tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_err()
            {
                if let Some(status) = process.try_exit() {
                    bail!("Azurite exited during start-up ({status}); its output is above");
                }
                if started.elapsed() > READY_TIMEOUT {
                    bail!("Azurite did not listen on port {port} within {READY_TIMEOUT:?}");
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        if let Some(status) = process.try_exit() {
            bail!("Azurite exited during start-up ({status}); its output is above");
        }
        Ok(Self {
            process,
            blob_endpoint: format!("https://127.0.0.1:{blob}"),
            queue_endpoint: format!("https://127.0.0.1:{queue}"),
            ports,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    #[test]
    fn the_account_key_is_random_and_in_the_format_azurite_parses() {
        let (a, b) = (random_accounts().unwrap(), random_accounts().unwrap());
        assert_ne!(a, b);
        for accounts in [a, b] {
            // Azurite splits on ';' then ':' and reads the key as base64.
            assert!(!accounts.contains(';'));
            let parts: Vec<&str> = accounts.split(':').collect();
            assert_eq!(parts.len(), 2);
            assert_eq!(parts[0], ACCOUNT);
            let key = base64::engine::general_purpose::STANDARD
                .decode(parts[1])
                .unwrap();
            assert_eq!(key.len(), 64);
        }
    }
}
