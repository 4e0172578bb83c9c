//! Test support: the real application on a random port with its own key store.
#![allow(dead_code, missing_docs, unused_imports)]

use reqwest::StatusCode;
use serde_json::Value;
use service_kit::request_body::BodyLimits;
use service_kit::service::ServerOptions;
use service_kit::service::Service as _;
use test_kit::wire::LocalService;
use third_party_api::config::{BODY_LIMITS, DEFAULT_KEYS_REFRESH, KeyStoreLocation, Settings};
use third_party_api::key_store::{KeyName, KeyValue};
use third_party_api::startup::Application;

pub use test_kit::wire::status_of;

pub const MASTER: &str = "master-key-for-tests-0123456789";
pub const DEFAULT_KEY: &str = "default-function-key-0123456789";

/// The running application (base URL, client, raw requests, liveness) and its key store's
/// directory.
pub struct TestApp {
    pub service: LocalService,
    pub dir: tempfile::TempDir,
}

impl std::ops::Deref for TestApp {
    type Target = LocalService;
    fn deref(&self) -> &LocalService {
        &self.service
    }
}

impl TestApp {
    pub fn keys_file(&self) -> std::path::PathBuf {
        self.dir.path().join("keys.json")
    }

    pub async fn random_number(&self, key: Option<&str>) -> reqwest::Response {
        let mut req = self.http.get(format!("{}/api/RandomNumber", self.base));
        if let Some(key) = key {
            req = req.header("x-functions-key", key);
        }
        req.send().await.unwrap()
    }

    pub async fn admin(
        &self,
        method: reqwest::Method,
        path: &str,
        key: &str,
        body: Option<&str>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .http
            .request(method, format!("{}/admin{path}", self.base))
            .header("x-functions-key", key);
        if let Some(body) = body {
            req = req
                .header("content-type", "application/json")
                .body(body.to_owned());
        }
        let res = req.send().await.unwrap();
        let status = res.status();
        let text = res.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    pub async fn key_works(&self, key: &str) -> bool {
        self.random_number(Some(key)).await.status() == StatusCode::OK
    }
}

/// Builds and runs the application on 127.0.0.1:0 with a fresh key store seeded with
/// [`MASTER`] and a `default` function key [`DEFAULT_KEY`].
pub async fn spawn_app() -> TestApp {
    spawn_app_with(ServerOptions::default(), BODY_LIMITS).await
}

/// [`spawn_app`] with other server limits (shorter timeouts).
pub async fn spawn_app_with(server: ServerOptions, body: BodyLimits) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let settings = Settings {
        bind_address: [127, 0, 0, 1].into(),
        port: 0,
        key_store: KeyStoreLocation::File(dir.path().join("keys.json")),
        keys_refresh: DEFAULT_KEYS_REFRESH,
        master_key_secret: None,
        seed_master_key: Some(KeyValue::parse(MASTER).unwrap()),
        seed_function_keys: vec![(
            KeyName::parse("default").unwrap(),
            KeyValue::parse(DEFAULT_KEY).unwrap(),
        )],
        server,
        body,
    };
    let app = Application::build(settings, &shared_auth::MapEnv::new())
        .await
        .expect("the app builds");
    let service = LocalService::on_port(app.port());
    tokio::spawn(app.run_until(std::future::pending()));
    TestApp { service, dir }
}
