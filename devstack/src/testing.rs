//! What the integration tests of every crate share: an isolated stack that goes away with its
//! temporary state, a service's production environment with its identity as a service principal
//! (a managed identity is read from the process environment, so in-process services use the same
//! identity through the client-secret flow), and polling until a condition holds.

use crate::stack::{DevStack, Service, StackOptions};
use shared_auth::{EnvSource, MapEnv};
use std::time::{Duration, Instant};

/// A stack and its state directory, removed when dropped.
pub struct TestStack {
    /// The stack.
    pub stack: DevStack,
    /// Its state directory.
    pub dir: tempfile::TempDir,
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
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut options = StackOptions::for_tests(dir.path());
    options.services = services.to_vec();
    let sink = options.sink.clone();
    match DevStack::start(options).await {
        Ok(stack) => TestStack { stack, dir },
        Err(e) => panic!("the stack failed to start: {e:?}\n{}", sink.captured()),
    }
}

/// `service`'s production environment from `stack`, its identity as a service principal, on a
/// free port.
pub fn env_as_client(stack: &DevStack, service: Service) -> MapEnv {
    let managed = [
        "IDENTITY_ENDPOINT",
        "IDENTITY_HEADER",
        "AZURE_TOKEN_CREDENTIALS",
    ];
    let mut env: MapEnv = stack
        .service_env(service)
        .into_iter()
        .filter(|(k, _)| !managed.contains(&k.as_str()))
        .collect();
    let client = stack
        .client_env(service.name())
        .expect("every service has an identity");
    for var in [
        "AZURE_TOKEN_CREDENTIALS",
        "AZURE_TENANT_ID",
        "AZURE_CLIENT_ID",
        "AZURE_CLIENT_SECRET",
        "AZURE_AUTHORITY_HOST",
    ] {
        if let Some(value) = client.var(var) {
            env = env.with(var, value);
        }
    }
    env.with("PORT", "0")
}

/// Polls `condition` every 100 ms until it holds; panics naming `what` after `limit`.
pub async fn eventually<F, Fut>(limit: Duration, what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while !condition().await {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

static LOGS: std::sync::OnceLock<shared_auth::telemetry::LogCapture> = std::sync::OnceLock::new();

/// Telemetry for the whole test process at `debug`, captured: spans get real trace ids and tests
/// can read every log line. The first call sets it up; later calls return the same capture.
pub fn captured_logs() -> shared_auth::telemetry::LogCapture {
    LOGS.get_or_init(|| {
        let capture = shared_auth::telemetry::LogCapture::default();
        let env = MapEnv::new().with("RUST_LOG", "debug");
        let guard =
            shared_auth::telemetry::init_telemetry_with_writer("test", &env, capture.clone())
                .expect("a valid filter");
        // Kept for the life of the test process.
        std::mem::forget(guard);
        capture
    })
    .clone()
}

/// A queue client for `url` acting as `identity`.
pub fn queue_client(
    stack: &DevStack,
    url: &str,
    identity: &str,
) -> azure_storage_queue::QueueClient {
    azure_storage_queue::QueueClient::new(
        url.parse().expect("a queue URL"),
        Some(stack.credential(identity).expect("a known identity")),
        Some(azure_storage_queue::QueueClientOptions {
            client_options: shared_auth::transport::azure_client_options(stack.http()),
            ..Default::default()
        }),
    )
    .expect("a queue client")
}

/// Every visible message of the queue at `url`, received as the stack's admin (hidden for a
/// minute), as raw text.
pub async fn drain_texts(stack: &DevStack, url: &str) -> Vec<String> {
    let queue = queue_client(stack, url, "devstack");
    let mut texts = Vec::new();
    loop {
        let batch = queue
            .receive_messages(Some(
                azure_storage_queue::models::QueueClientReceiveMessagesOptions {
                    number_of_messages: Some(32),
                    visibility_timeout: Some(60),
                    ..Default::default()
                },
            ))
            .await
            .expect("receive as admin")
            .into_model()
            .expect("a message list")
            .items
            .unwrap_or_default();
        if batch.is_empty() {
            return texts;
        }
        texts.extend(batch.into_iter().filter_map(|m| m.message_text));
    }
}
