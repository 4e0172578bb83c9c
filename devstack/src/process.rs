//! Child processes that never outlive the stack: each runs in its own process group, its output
//! goes line by line to the stack's log with a `[name]` prefix, and stopping it sends SIGTERM to
//! the whole group (node and anything it spawned), then SIGKILL after a grace period.

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use parking_lot::Mutex;
use std::io::Write;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// Where children's output goes.
#[derive(Clone, Default)]
pub enum LogSink {
    /// The terminal, each line prefixed with the child's name.
    #[default]
    Stdout,
    /// A buffer (tests read it).
    Capture(Arc<Mutex<String>>),
    /// The terminal, and the last lines of each child kept for the console.
    Console(Arc<LogTail>),
}

/// The last [`LogTail::LINES`] lines of each child, for the console.
#[derive(Debug, Default)]
pub struct LogTail(Mutex<std::collections::BTreeMap<String, std::collections::VecDeque<String>>>);

impl LogTail {
    /// How many lines are kept per child.
    pub const LINES: usize = 40;

    fn push(&self, name: &str, line: &str) {
        let mut tails = self.0.lock();
        let tail = tails.entry(name.to_owned()).or_default();
        if tail.len() == Self::LINES {
            tail.pop_front();
        }
        tail.push_back(line.to_owned());
    }

    /// The kept lines of `name`, oldest first.
    pub fn lines(&self, name: &str) -> Vec<String> {
        self.0
            .lock()
            .get(name)
            .map(|tail| tail.iter().cloned().collect())
            .unwrap_or_default()
    }
}

impl LogSink {
    /// A new capturing sink.
    pub fn capture() -> Self {
        Self::Capture(Arc::default())
    }

    /// Everything captured so far (empty for stdout).
    pub fn captured(&self) -> String {
        match self {
            Self::Stdout | Self::Console(_) => String::new(),
            Self::Capture(buffer) => buffer.lock().clone(),
        }
    }

    /// Writes one line with its prefix.
    pub fn line(&self, name: &str, line: &str) {
        match self {
            Self::Capture(buffer) => buffer.lock().push_str(&format!("[{name}] {line}\n")),
            Self::Stdout | Self::Console(_) => {
                if let Self::Console(tail) = self {
                    tail.push(name, line);
                }
                let _ = writeln!(std::io::stdout().lock(), "[{name}] {line}");
            }
        }
    }
}

/// Sends each line `stream` gives to `sink` as `name`'s, until it ends.
fn pump(stream: impl tokio::io::AsyncRead + Send + Unpin + 'static, sink: LogSink, name: String) {
    tokio::spawn(async move {
        let mut lines = BufReader::new(stream).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            sink.line(&name, &line);
        }
    });
}

/// A running child in its own process group.
pub struct ChildProcess {
    name: String,
    child: Child,
    pgid: Pid,
}

impl std::fmt::Debug for ChildProcess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChildProcess")
            .field("name", &self.name)
            .field("pgid", &self.pgid)
            .finish()
    }
}

impl ChildProcess {
    /// Spawns `command` as `name`, its stdout and stderr sent to `sink`.
    pub fn spawn(name: &str, mut command: Command, sink: &LogSink) -> std::io::Result<Self> {
        command
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command.spawn()?;
        let pid = child
            .id()
            .ok_or_else(|| std::io::Error::other("child exited at once"))?;
        if let Some(stdout) = child.stdout.take() {
            pump(stdout, sink.clone(), name.to_owned());
        }
        if let Some(stderr) = child.stderr.take() {
            pump(stderr, sink.clone(), name.to_owned());
        }
        Ok(Self {
            name: name.to_owned(),
            child,
            pgid: Pid::from_raw(pid as i32),
        })
    }

    /// The process (and group) id.
    pub fn pid(&self) -> u32 {
        self.pgid.as_raw() as u32
    }

    /// Whether it has exited, and how.
    pub fn try_exit(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// SIGKILL to the group at once (a crash); waits for the child.
    pub async fn kill(mut self) -> Option<std::process::ExitStatus> {
        let _ = killpg(self.pgid, Signal::SIGKILL);
        self.child.wait().await.ok()
    }

    /// SIGTERM to the group, then SIGKILL after `grace`; waits for the child.
    pub async fn stop(mut self, grace: Duration) -> Option<std::process::ExitStatus> {
        let _ = killpg(self.pgid, Signal::SIGTERM);
        match tokio::time::timeout(grace, self.child.wait()).await {
            Ok(status) => {
                // The leader is gone; anything left in its group goes too.
                let _ = killpg(self.pgid, Signal::SIGKILL);
                status.ok()
            }
            Err(_) => {
                let _ = killpg(self.pgid, Signal::SIGKILL);
                self.child.wait().await.ok()
            }
        }
    }
}

impl Drop for ChildProcess {
    /// Last resort when the stack was not stopped: the same SIGTERM-then-SIGKILL, blocking.
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_some() {
            let _ = killpg(self.pgid, Signal::SIGKILL);
            return;
        }
        let _ = killpg(self.pgid, Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if self.child.try_wait().ok().flatten().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = killpg(self.pgid, Signal::SIGKILL);
    }
}
