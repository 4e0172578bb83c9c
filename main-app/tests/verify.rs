//! `POST /api/v1/codes/verify` against the ledger container: valid once before expiry, refused
//! when unknown, used or expired, exactly one winner among concurrent verifies, 400 for bad input.
//! The ledger blobs are written here as queue-worker writes them.

mod support;

use azure_core::http::RequestContent;
use azure_storage_blob::models::BlobClientUploadOptions;
use codes::Code;
use codes::ledger::{EXPIRES_AT, ISSUED_AT};
use devstack::stack::DevStack;
use shared_auth::transport::azure_client_options;
use std::collections::HashMap;
use support::*;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Records `code` in the ledger as queue-worker does, expiring in `seconds`.
async fn record(stack: &DevStack, code: &str, seconds: i64) {
    let blob = azure_storage_blob::BlobClient::new(
        format!("{}/{code}", stack.urls.container).parse().unwrap(),
        Some(stack.credential("queue-worker").unwrap()),
        Some(azure_storage_blob::BlobClientOptions {
            client_options: azure_client_options(stack.http()),
            ..Default::default()
        }),
    )
    .unwrap();
    let now = OffsetDateTime::now_utc();
    let metadata = HashMap::from([
        (ISSUED_AT.to_owned(), now.format(&Rfc3339).unwrap()),
        (
            EXPIRES_AT.to_owned(),
            (now + time::Duration::seconds(seconds))
                .format(&Rfc3339)
                .unwrap(),
        ),
    ]);
    blob.upload(
        RequestContent::from(b"{}".to_vec()),
        Some(BlobClientUploadOptions {
            metadata: Some(metadata),
            ..Default::default()
        }),
    )
    .await
    .unwrap();
}

fn body(code: &str) -> String {
    serde_json::json!({ "code": code }).to_string()
}

#[tokio::test]
async fn a_recorded_code_is_valid_once_and_unknown_or_expired_codes_never() {
    let stack = start_stack().await;
    let app = spawn_app(&main_app_env(&stack)).await;
    let code = Code::generate(42);
    record(&stack, code.as_str(), 60).await;
    assert_eq!(
        app.verify(&body(code.as_str())).await,
        (200, serde_json::json!({"valid": true}))
    );
    assert_eq!(
        app.verify(&body(code.as_str())).await,
        (200, serde_json::json!({"valid": false}))
    );

    let unknown = Code::generate(7);
    assert_eq!(app.verify(&body(unknown.as_str())).await.1["valid"], false);

    let expired = Code::generate(9);
    record(&stack, expired.as_str(), -1).await;
    assert_eq!(app.verify(&body(expired.as_str())).await.1["valid"], false);
}

#[tokio::test]
async fn of_concurrent_verifies_of_one_code_exactly_one_wins() {
    let stack = start_stack().await;
    let app = spawn_app(&main_app_env(&stack)).await;
    for n in 1..=5 {
        let code = Code::generate(n);
        record(&stack, code.as_str(), 60).await;
        let request = body(code.as_str());
        let verdicts = futures::future::join_all((0..8).map(|_| app.verify(&request))).await;
        let wins = verdicts
            .iter()
            .filter(|(s, v)| *s == 200 && v["valid"] == true)
            .count();
        assert_eq!(wins, 1, "{verdicts:?}");
        assert!(verdicts.iter().all(|(s, _)| *s == 200));
    }
}

#[tokio::test]
async fn malformed_bodies_and_codes_get_400_saying_why() {
    let stack = start_stack().await;
    let app = spawn_app(&main_app_env(&stack)).await;
    for bad in [
        "",
        "not json",
        "{}",
        r#"{"code": 42}"#,
        r#"{"code":"a","extra":1}"#,
    ] {
        let (status, res) = app.verify(bad).await;
        assert_eq!(status, 400, "{bad}");
        assert_eq!(res["error"], "bad_request");
    }
    for bad in ["abc", "abc-0-def", "abc-1000-def", "ab-1-cde"] {
        let (status, res) = app.verify(&body(bad)).await;
        assert_eq!(status, 400, "{bad}");
        assert_eq!(res["error"], "invalid_code");
        assert!(res["message"].as_str().unwrap().contains("AAA-N-BBB"));
    }
}
