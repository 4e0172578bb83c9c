//! The test kit: what the integration tests of every crate share. It exists for tests only: every
//! crate lists it in `[dev-dependencies]`, so no binary ever contains it.
//!
//! - Here: an isolated stack that goes away with its temporary state, a service's production
//!   environment with its identity as a service principal (a managed identity is read from the
//!   process environment, so in-process services use the same identity through the client-secret
//!   flow), polling until a condition holds, and the test process's captured logs.
//! - [`clients`]: the official SDK clients acting as one of the stack's identities.
//! - [`wire`]: HTTP requests sent byte for byte, and liveness.
//! - [`otlp`]: an OTLP/HTTP receiver for what services export.
//! - [`servers`]: a CA of one test's own, and routes served over HTTP or HTTPS.
//! - [`strategies`]: proptest strategies the configuration property tests share.
//! - [`hygiene`]: finding a secret in what a test captured (logs, bodies, output).
//! - [`python`]: Python tools (pinned PyPI packages in a virtualenv) the tests drive.

pub mod clients;
pub mod hygiene;
pub mod otlp;
pub mod python;
pub mod servers;
pub mod strategies;
pub mod wire;

pub use clients::{drain_texts, get_code, ledger_codes, ledger_record, messages_in, queue_client};

use devstack::stack::{DevStack, Service, StackOptions};
use shared_auth::MapEnv;
use std::time::{Duration, Instant};

/// A stack and its state directory, removed when dropped.
pub struct TestStack {
    /// The stack.
    pub stack: DevStack,
    /// Its state directory.
    pub dir: tempfile::TempDir,
}

impl TestStack {
    /// Stops the stack as [`DevStack::stop`] does, then removes its state directory.
    pub async fn stop(self) {
        self.stack.stop().await;
    }
}

impl std::ops::Deref for TestStack {
    type Target = DevStack;
    fn deref(&self) -> &DevStack {
        &self.stack
    }
}

impl std::ops::DerefMut for TestStack {
    fn deref_mut(&mut self) -> &mut DevStack {
        &mut self.stack
    }
}

/// Starts an isolated stack running `services`; panics with the captured logs on failure.
pub async fn start_stack(services: &[Service]) -> TestStack {
    start_stack_with(|options| options.services = services.to_vec()).await
}

/// Starts an isolated stack with the test options as `configure` leaves them (no service runs
/// unless it adds one); panics with the captured logs on failure.
pub async fn start_stack_with(configure: impl FnOnce(&mut StackOptions)) -> TestStack {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut options = StackOptions::for_tests(dir.path());
    configure(&mut options);
    let sink = options.sink.clone();
    match DevStack::start(options).await {
        Ok(stack) => TestStack { stack, dir },
        Err(e) => panic!("the stack failed to start: {e:?}\n{}", sink.captured()),
    }
}

/// `service`'s production environment from `stack`, its identity as a service principal, on a
/// free port ([`DevStack::service_env_as_client`]).
pub fn env_as_client(stack: &DevStack, service: Service) -> MapEnv {
    stack
        .service_env_as_client(service)
        .expect("every service has an identity")
}

/// How often [`eventually`] and [`eventually_ok`] ask again.
const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// Polls `probe` every 100 ms until it answers `Ok`, and returns that value; after `limit`,
/// panics naming `what` and the last `Err`.
pub async fn eventually_ok<T, E, F, Fut>(limit: Duration, what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
    E: std::fmt::Display,
{
    let deadline = Instant::now() + limit;
    loop {
        match probe().await {
            Ok(value) => return value,
            Err(last) => assert!(
                Instant::now() < deadline,
                "timed out waiting: {what} (last: {last})"
            ),
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// Polls `condition` every 100 ms until it holds; panics naming `what` after `limit`.
pub async fn eventually<F, Fut>(limit: Duration, what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    eventually_ok(limit, what, || {
        let holds = condition();
        async move { if holds.await { Ok(()) } else { Err("not yet") } }
    })
    .await
}

/// `bin` with exactly the variables of `complete`, except `variable`: left out when `value` is
/// `None`, else set to `value`.
pub fn command_with_one_changed(
    bin: &str,
    complete: &[(&str, &str)],
    (variable, value): (&str, Option<&str>),
) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(bin);
    command.env_clear().kill_on_drop(true);
    for (k, v) in complete.iter().filter(|(k, _)| *k != variable) {
        command.env(k, v);
    }
    if let Some(value) = value {
        command.env(variable, value);
    }
    command
}

/// Runs `command`, which must refuse to start: exit code 2 within 20 s, `variable` named on
/// stderr. Returns stderr.
pub async fn assert_refuses_naming(mut command: tokio::process::Command, variable: &str) -> String {
    let output = tokio::time::timeout(Duration::from_secs(20), command.output())
        .await
        .unwrap_or_else(|_| panic!("{variable}: start-up was not refused within 20 s"))
        .expect("the binary runs");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(2), "{variable}: {stderr}");
    assert!(stderr.contains(variable), "{variable}: {stderr}");
    stderr
}

static LOGS: std::sync::OnceLock<service_kit::telemetry::LogCapture> = std::sync::OnceLock::new();

/// Telemetry for the whole test process at `debug`, captured: spans get real trace ids and tests
/// can read every log line. The first call sets it up; later calls return the same capture.
pub fn captured_logs() -> service_kit::telemetry::LogCapture {
    LOGS.get_or_init(|| {
        let capture = service_kit::telemetry::LogCapture::default();
        let env = MapEnv::new().with("RUST_LOG", "debug");
        let guard =
            service_kit::telemetry::init_telemetry_with_writer("test", &env, capture.clone())
                .expect("a valid filter");
        // Kept for the life of the test process.
        std::mem::forget(guard);
        capture
    })
    .clone()
}
