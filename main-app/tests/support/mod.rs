//! Test support: main-app built in-process, either against a local Azure stack (devstack) with
//! third-party-api running and the main-app identity (client-secret flavour, since a managed
//! identity is read from the process environment; the binary path is covered by devstack), or
//! with every Azure endpoint unreachable, for what needs no Azure (routing, input checks, limits).
#![allow(dead_code, missing_docs)]

use actix_web::{App, HttpResponse, web};
use codes::envelope::{CodeEnvelope, EnvelopeError};
use codes::variables::CODE_LEDGER_URL;
use codes::variables::STORAGE_QUEUE_URL;
use devstack::stack::{DevStack, Service};
use main_app::config::Settings;
use main_app::routes::getcode::CodeSource;
use main_app::startup::Application;
use service_kit::service::Service as _;
use shared_auth::MapEnv;
use shared_auth::secret_cache::SecretCacheOptions;
use shared_auth::variables::KEY_VAULT_URL;
use shared_auth::variables::THIRD_PARTY_API_ENDPOINT;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use test_kit::eventually_ok;
use test_kit::servers::serve;
use test_kit::wire::LocalService;

pub use test_kit::TestStack as Stack;
pub use test_kit::captured_logs as logs;

pub async fn start_stack() -> Stack {
    test_kit::start_stack(&[Service::ThirdPartyApi]).await
}

/// main-app's production environment from devstack, with the identity as a service principal.
pub fn main_app_env(stack: &DevStack) -> MapEnv {
    test_kit::env_as_client(stack, Service::MainApp)
}

/// main-app's four endpoints, each on a closed loopback port: valid settings, nothing answers.
pub const UNREACHABLE: [(&str, &str); 4] = [
    (
        THIRD_PARTY_API_ENDPOINT,
        "http://127.0.0.1:9/api/RandomNumber",
    ),
    (KEY_VAULT_URL, "https://127.0.0.1:9"),
    (
        STORAGE_QUEUE_URL,
        "https://127.0.0.1:9/devstoreaccount1/code-requests",
    ),
    (
        CODE_LEDGER_URL,
        "https://127.0.0.1:9/devstoreaccount1/codes",
    ),
];

/// An environment with no Azure behind it: [`UNREACHABLE`] endpoints and a service principal
/// whose token endpoint is closed too. The app builds and serves; it never becomes ready.
pub fn offline_env() -> MapEnv {
    UNREACHABLE
        .iter()
        .fold(MapEnv::new(), |env, (k, v)| env.with(k, *v))
        .with("AZURE_TENANT_ID", "00000000-0000-0000-0000-000000000001")
        .with("AZURE_CLIENT_ID", "00000000-0000-0000-0000-000000000002")
        .with("AZURE_CLIENT_SECRET", "offline-test-secret")
        .with("AZURE_AUTHORITY_HOST", "https://127.0.0.1:9")
        .with("PORT", "0")
}

/// An answer of [`call_offline`]: status, headers, body.
pub struct Answer {
    pub status: u16,
    pub headers: actix_web::http::header::HeaderMap,
    pub body: actix_web::web::Bytes,
}

impl Answer {
    /// The body as JSON (`Null` when it is not).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_default()
    }

    /// The value of header `name`, or "" when absent.
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }
}

/// `request` through main-app's routes with `actix_web::test`: no socket, no background task,
/// no Azure behind them ([`offline_env`]); for what the routes answer on their own.
pub async fn call_offline(request: actix_web::test::TestRequest) -> Answer {
    let env = offline_env();
    let settings = Settings::from_env(&env).unwrap();
    let state = Application::state(&settings, &env, fast_cache()).unwrap();
    let app = actix_web::test::init_service(
        App::new()
            .app_data(web::Data::new(state))
            .configure(main_app::routes::configure),
    )
    .await;
    let res = actix_web::test::call_service(&app, request.to_request()).await;
    Answer {
        status: res.status().as_u16(),
        headers: res.headers().clone(),
        body: actix_web::test::read_body(res).await,
    }
}

/// main-app with no Azure behind it ([`offline_env`]) on a real socket: for what its server
/// does with hostile connections.
pub async fn spawn_offline_app() -> TestApp {
    spawn_app_with(&offline_env()).await
}

pub fn fast_cache() -> SecretCacheOptions {
    SecretCacheOptions {
        min_retry_delay: Duration::from_millis(100),
        max_retry_delay: Duration::from_millis(500),
        ..Default::default()
    }
}

/// main-app running in this process: base URL, client, raw requests and liveness.
pub struct TestApp(pub LocalService);

impl std::ops::Deref for TestApp {
    type Target = LocalService;
    fn deref(&self) -> &LocalService {
        &self.0
    }
}

impl TestApp {
    pub async fn get_code(&self) -> reqwest::Response {
        self.http
            .get(format!("{}/api/v1/getcode", self.base))
            .send()
            .await
            .unwrap()
    }

    pub async fn verify(&self, body: &str) -> (u16, serde_json::Value) {
        let res = self
            .http
            .post(format!("{}/api/v1/codes/verify", self.base))
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or_default())
    }

    pub async fn readyz(&self) -> (u16, serde_json::Value) {
        let res = self
            .http
            .get(format!("{}/readyz", self.base))
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or_default())
    }

    /// Waits until /readyz says ready.
    pub async fn wait_ready(&self) {
        eventually_ok(Duration::from_secs(20), "ready", || async {
            match self.readyz().await {
                (200, _) => Ok(()),
                (_, body) => Err(body),
            }
        })
        .await
    }
}

/// main-app in this process against a fresh local stack (third-party-api running), with its
/// production environment: the stack and the app, in one call.
pub async fn spawn_app() -> (Stack, TestApp) {
    let stack = start_stack().await;
    let app = spawn_app_with(&main_app_env(&stack)).await;
    (stack, app)
}

/// main-app in this process with the environment `env`.
pub async fn spawn_app_with(env: &MapEnv) -> TestApp {
    spawn_app_drawing(env, CodeSource::default()).await
}

/// [`spawn_app_with`] with its codes drawn from `codes`.
pub async fn spawn_app_drawing(env: &MapEnv, codes: CodeSource) -> TestApp {
    logs();
    let settings = Settings::from_env(env).unwrap();
    let app = Application::build_with(settings, env, fast_cache(), codes).unwrap();
    let service = LocalService::on_port(app.port());
    tokio::spawn(app.run_until(std::future::pending()));
    TestApp(service)
}

/// Every code message in the queue, received (hidden for a minute) and decoded; readiness
/// probes (visible in the last second of their two) are left out, as the worker deletes them.
pub async fn drain_queue(stack: &DevStack) -> Vec<CodeEnvelope> {
    test_kit::drain_texts(stack, &stack.urls.queue)
        .await
        .iter()
        .filter_map(
            |text| match CodeEnvelope::decode(text, Default::default()) {
                Err(EnvelopeError::Probe) => None,
                decoded => Some(decoded.expect("decodable")),
            },
        )
        .collect()
}

/// A stand-in third-party API for fault injection: counts calls, answers as told.
#[derive(Clone)]
pub struct FakeUpstream {
    pub url: String,
    pub calls: Arc<AtomicUsize>,
    pub keys_seen: Arc<Mutex<Vec<String>>>,
    pub traceparents: Arc<Mutex<Vec<String>>>,
    /// The most calls it was answering at once.
    pub most_at_once: Arc<AtomicUsize>,
    /// When each call arrived, in order.
    pub arrivals: Arc<Mutex<Vec<std::time::Instant>>>,
}

#[derive(Clone, Copy)]
pub enum Behaviour {
    Number(u32),
    Status(u16),
    Slow(Duration),
}

pub const UPSTREAM_BODY: &str = "UPSTREAM-INTERNAL-DETAIL";

pub fn fake_upstream(behaviour: Behaviour) -> FakeUpstream {
    let calls = Arc::new(AtomicUsize::new(0));
    let keys_seen = Arc::new(Mutex::new(Vec::new()));
    let traceparents = Arc::new(Mutex::new(Vec::new()));
    let most_at_once = Arc::new(AtomicUsize::new(0));
    let at_once = Arc::new(AtomicUsize::new(0));
    let arrivals = Arc::new(Mutex::new(Vec::new()));
    let (c, k, t) = (calls.clone(), keys_seen.clone(), traceparents.clone());
    let (m, a, r) = (most_at_once.clone(), at_once, arrivals.clone());
    let base = serve(None, move |cfg| {
        let (c, k, t, m, a) = (c.clone(), k.clone(), t.clone(), m.clone(), a.clone());
        let r = r.clone();
        cfg.default_service(web::to(move |req: actix_web::HttpRequest| {
            let (c, k, t, m, a) = (c.clone(), k.clone(), t.clone(), m.clone(), a.clone());
            let r = r.clone();
            async move {
                c.fetch_add(1, Ordering::SeqCst);
                r.lock().unwrap().push(std::time::Instant::now());
                m.fetch_max(a.fetch_add(1, Ordering::SeqCst) + 1, Ordering::SeqCst);
                let _done = Decrement(a);
                if let Some(tp) = req.headers().get("traceparent") {
                    t.lock()
                        .unwrap()
                        .push(tp.to_str().unwrap_or_default().to_owned());
                }
                if let Some(key) = req.headers().get("x-functions-key") {
                    k.lock()
                        .unwrap()
                        .push(key.to_str().unwrap_or_default().to_owned());
                }
                match behaviour {
                    Behaviour::Number(value) => {
                        HttpResponse::Ok().json(serde_json::json!({ "value": value }))
                    }
                    Behaviour::Status(code) => {
                        HttpResponse::build(actix_web::http::StatusCode::from_u16(code).unwrap())
                            .body(UPSTREAM_BODY)
                    }
                    Behaviour::Slow(delay) => {
                        tokio::time::sleep(delay).await;
                        HttpResponse::Ok().json(serde_json::json!({ "value": 5 }))
                    }
                }
            }
        }));
    });
    let url = format!("{base}/api/RandomNumber");
    FakeUpstream {
        url,
        calls,
        keys_seen,
        traceparents,
        most_at_once,
        arrivals,
    }
}

/// Takes one off its counter when dropped (a call answered, or abandoned).
struct Decrement(Arc<AtomicUsize>);

impl Drop for Decrement {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}
