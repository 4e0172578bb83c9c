//! Telemetry: trace context in and out, the access log, and no secret in any log line even at
//! `trace` level, while a real credential fetches a token and requests carry API keys.

use test_kit::servers::{TestCa, serve};

use actix_web::{App, HttpResponse, test as actix_test, web};
use service_kit::RequireApiKey;
use service_kit::telemetry::{
    LogCapture, RequestTelemetry, continue_trace, init_telemetry_with_writer, is_valid_traceparent,
    trace_id, traceparent,
};
use shared_auth::{ApiKeyRing, MapEnv, Secret, credential_from_env};
use std::sync::Arc;

static CAPTURE: std::sync::OnceLock<LogCapture> = std::sync::OnceLock::new();

/// One subscriber per test process, at `trace` for everything.
fn capture() -> LogCapture {
    CAPTURE
        .get_or_init(|| {
            let capture = LogCapture::default();
            let env = MapEnv::new().with("RUST_LOG", "trace");
            let guard =
                init_telemetry_with_writer("telemetry-test", &env, capture.clone()).unwrap();
            std::mem::forget(guard); // spans stay exportable for the whole process
            capture
        })
        .clone()
}

#[test]
fn traceparent_goes_out_and_comes_back_in() {
    capture();
    let producer = tracing::info_span!("produce");
    let header = traceparent(&producer).expect("a traceparent once telemetry is set up");
    assert!(is_valid_traceparent(&header), "{header}");
    let consumer = tracing::info_span!("consume");
    assert!(continue_trace(&consumer, &header));
    assert_eq!(trace_id(&consumer), trace_id(&producer));
    assert!(header.contains(&trace_id(&producer).unwrap()));

    for bad in [
        "",
        "00-zz-00-01",
        "00-00000000000000000000000000000000-0000000000000000-01",
    ] {
        assert!(!is_valid_traceparent(bad), "{bad}");
        assert!(!continue_trace(&tracing::info_span!("x"), bad));
    }
}

#[actix_web::test]
async fn no_key_secret_or_token_reaches_the_logs() {
    let logs = capture();
    const TOKEN: &str = "eyJ0eXAiOiJKV1QifQ.token-that-must-not-be-logged.sig";
    const CLIENT_SECRET: &str = "client-secret-that-must-not-be-logged";
    const API_KEY: &str = "api-key-that-must-not-be-logged-0123";

    // A real ClientSecretCredential against an HTTPS token endpoint.
    let ca = TestCa::new();
    let authority = serve(Some(&ca), |cfg| {
        cfg.route(
            "/{tenant}/oauth2/v2.0/token",
            web::post().to(|| async {
                HttpResponse::Ok().json(serde_json::json!({
                    "token_type": "Bearer", "expires_in": 3600,
                    "ext_expires_in": 3600, "access_token": TOKEN,
                }))
            }),
        );
    });
    let env = MapEnv::new()
        .with("EXTRA_CA_CERTS", ca.pem_path().to_str().unwrap())
        .with("AZURE_AUTHORITY_HOST", &authority)
        .with("AZURE_TENANT_ID", "72f988bf-86f1-41af-91ab-2d7cd011db47")
        .with("AZURE_CLIENT_ID", "11111111-2222-3333-4444-555555555555")
        .with("AZURE_CLIENT_SECRET", CLIENT_SECRET);
    let http = shared_auth::transport::http_client_from_env(&env).unwrap();
    let selected = credential_from_env(&env, &http).unwrap();
    let token = selected
        .credential
        .get_token(&["https://storage.azure.com/.default"], None)
        .await
        .unwrap();
    assert_eq!(token.token.secret(), TOKEN);

    // Requests carrying the key in the header and in the query string, through the access log.
    let key = Secret::new(API_KEY);
    let ring = Arc::new(ApiKeyRing::new([("rotation-2026", &key)]));
    let app = actix_test::init_service(
        App::new().wrap(RequestTelemetry::default()).service(
            web::scope("/api")
                .wrap(RequireApiKey::new(ring))
                .route("/thing", web::get().to(HttpResponse::Ok)),
        ),
    )
    .await;
    for req in [
        actix_test::TestRequest::get()
            .uri("/api/thing")
            .insert_header(("x-functions-key", API_KEY)),
        actix_test::TestRequest::get().uri(&format!("/api/thing?code={API_KEY}&other=1")),
        actix_test::TestRequest::get().uri("/api/thing?code=wrong-key-value"),
    ] {
        actix_test::call_service(&app, req.to_request()).await;
    }

    let text = logs.text();
    assert!(
        text.contains("selected Azure credential"),
        "credential line missing"
    );
    assert!(text.contains("rotation-2026"), "access log names the key");
    assert!(text.contains("\"status\":401"), "refusals are logged");
    for secret in [TOKEN, CLIENT_SECRET, API_KEY, "wrong-key-value"] {
        assert!(!text.contains(secret), "a secret reached the logs");
    }
}
