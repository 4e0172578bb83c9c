//! The shared transport: an extra CA is trusted on top of the system roots, connections are
//! reused, and a slow server hits the request timeout.

use test_kit::servers::{TestCa, serve};

use actix_web::{HttpRequest, HttpResponse, web};
use shared_auth::MapEnv;
use shared_auth::transport::{TransportOptions, http_client, http_client_from_env};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const AUTH_CHECK: &str = env!("CARGO_BIN_EXE_auth-check");

fn hello_server(ca: &TestCa) -> String {
    serve(Some(ca), |cfg| {
        cfg.route(
            "/",
            web::get().to(|| async { HttpResponse::Ok().body("hello") }),
        );
    })
}

#[actix_web::test]
async fn extra_ca_is_trusted_only_when_given() {
    let ca = TestCa::new();
    let url = hello_server(&ca);

    let trusting = http_client_from_env(
        &MapEnv::new().with("EXTRA_CA_CERTS", ca.pem_path().to_str().unwrap()),
    )
    .unwrap();
    let response = trusting.get(&url).send().await.unwrap();
    assert_eq!(response.text().await.unwrap(), "hello");

    let plain = http_client_from_env(&MapEnv::new()).unwrap();
    let err = plain.get(&url).send().await.unwrap_err();
    assert!(err.is_connect(), "expected a TLS failure, got {err:?}");
}

/// `auth-check get` in a child process whose "system roots" are CA A (through `SSL_CERT_FILE`,
/// which the platform verifier reads on Linux) and whose `EXTRA_CA_CERTS` is CA B.
async fn get_status(url: &str, system_ca: &str, extra_ca: Option<&str>) -> Option<u16> {
    let mut command = tokio::process::Command::new(AUTH_CHECK);
    command
        .env_clear()
        .env("SSL_CERT_FILE", system_ca)
        .args(["get", url]);
    if let Some(extra) = extra_ca {
        command.env("EXTRA_CA_CERTS", extra);
    }
    let output = tokio::time::timeout(Duration::from_secs(30), command.output())
        .await
        .expect("no hang")
        .unwrap();
    if !output.status.success() {
        return None;
    }
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    json["status"].as_u64().map(|s| s as u16)
}

#[actix_web::test]
async fn extra_ca_is_added_to_the_system_roots_not_replacing_them() {
    let system = TestCa::new();
    let extra = TestCa::new();
    let system_url = hello_server(&system);
    let extra_url = hello_server(&extra);
    let system_pem = system.pem_path().to_str().unwrap();
    let extra_pem = extra.pem_path().to_str().unwrap();

    assert_eq!(get_status(&system_url, system_pem, None).await, Some(200));
    assert_eq!(get_status(&extra_url, system_pem, None).await, None);
    assert_eq!(
        get_status(&system_url, system_pem, Some(extra_pem)).await,
        Some(200)
    );
    assert_eq!(
        get_status(&extra_url, system_pem, Some(extra_pem)).await,
        Some(200)
    );
}

#[actix_web::test]
async fn sequential_requests_reuse_one_connection() {
    let ca = TestCa::new();
    let peers: Arc<Mutex<HashSet<u16>>> = Arc::default();
    let seen = peers.clone();
    let url = serve(Some(&ca), move |cfg| {
        let seen = seen.clone();
        cfg.route(
            "/",
            web::get().to(move |req: HttpRequest| {
                let seen = seen.clone();
                async move {
                    seen.lock().unwrap().insert(req.peer_addr().unwrap().port());
                    HttpResponse::Ok().finish()
                }
            }),
        );
    });
    let client = http_client(&TransportOptions {
        extra_ca_certs: Some(ca.pem_path().to_path_buf()),
        ..Default::default()
    })
    .unwrap();
    for _ in 0..20 {
        assert!(client.get(&url).send().await.unwrap().status().is_success());
    }
    assert_eq!(peers.lock().unwrap().len(), 1, "one pooled connection");
}

#[actix_web::test]
async fn a_slow_server_hits_the_request_timeout() {
    let ca = TestCa::new();
    let url = serve(Some(&ca), |cfg| {
        cfg.route(
            "/",
            web::get().to(|| async {
                actix_web::rt::time::sleep(Duration::from_secs(10)).await;
                HttpResponse::Ok().finish()
            }),
        );
    });
    let client = http_client(&TransportOptions {
        extra_ca_certs: Some(ca.pem_path().to_path_buf()),
        request_timeout: Duration::from_millis(300),
        ..Default::default()
    })
    .unwrap();
    let err = client.get(&url).send().await.unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
}
