//! `POST /api/v1/codes/verify` against the ledger container: valid once before expiry, refused
//! when unknown, used or expired, exactly one winner among concurrent verifies; and, with no
//! Azure at all, 400 for bad input and 415 for anything but JSON. The ledger records are written
//! here through the ledger type, as queue-worker writes them.

mod support;

use actix_web::test::TestRequest;
use codes::Code;
use devstack::stack::DevStack;
use devstack::stack::Identity;
use support::*;
use time::OffsetDateTime;

/// Records `code` in the ledger as queue-worker does (its identity, the ledger type), expiring
/// in `seconds`.
async fn record(stack: &DevStack, code: &Code, seconds: i64) {
    let ledger = test_kit::clients::ledger(stack, Identity::QueueWorker);
    let now = OffsetDateTime::now_utc();
    let expires = now + time::Duration::seconds(seconds);
    ledger.record(code, now, expires, "test").await.unwrap();
}

fn body(code: &str) -> String {
    serde_json::json!({ "code": code }).to_string()
}

#[tokio::test]
async fn a_recorded_code_is_valid_once_and_unknown_or_expired_codes_never() {
    let (stack, app) = spawn_app().await;
    let code = Code::generate(42);
    record(&stack, &code, 60).await;
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
    record(&stack, &expired, -1).await;
    assert_eq!(app.verify(&body(expired.as_str())).await.1["valid"], false);

    let res = app
        .http
        .post(format!("{}/api/v1/codes/verify", app.base))
        .header("content-type", "application/json; charset=utf-8")
        .body(r#"{"code":"abc-1-DEF"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "JSON with a charset is JSON");
}

#[tokio::test]
async fn of_concurrent_verifies_of_one_code_exactly_one_wins() {
    let (stack, app) = spawn_app().await;
    for n in 1..=5 {
        let code = Code::generate(n);
        record(&stack, &code, 60).await;
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

/// `body` posted to verify as JSON through the routes, with no Azure behind them.
async fn verify_offline(body: &str) -> Answer {
    call_offline(
        TestRequest::post()
            .uri("/api/v1/codes/verify")
            .insert_header(("content-type", "application/json"))
            .set_payload(body.to_owned()),
    )
    .await
}

#[actix_web::test]
async fn malformed_bodies_and_codes_get_400_saying_why() {
    for bad in [
        "",
        "not json",
        "{}",
        r#"{"code": 42}"#,
        r#"{"code":"a","extra":1}"#,
    ] {
        let res = verify_offline(bad).await;
        assert_eq!(res.status, 400, "{bad}");
        assert_eq!(res.json()["error"], "bad_request");
    }
    for bad in ["abc", "abc-0-def", "abc-1000-def", "ab-1-cde"] {
        let res = verify_offline(&body(bad)).await;
        assert_eq!(res.status, 400, "{bad}");
        let json = res.json();
        assert_eq!(json["error"], "invalid_code");
        assert!(json["message"].as_str().unwrap().contains("AAA-N-BBB"));
    }
}

#[actix_web::test]
async fn verify_refuses_anything_but_json_and_spends_nothing() {
    for content_type in [
        Some("application/x-www-form-urlencoded"),
        Some("text/plain"),
        Some("multipart/form-data; boundary=x"),
        None,
    ] {
        let mut req = TestRequest::post()
            .uri("/api/v1/codes/verify")
            .set_payload(r#"{"code":"abc-1-DEF"}"#);
        if let Some(ct) = content_type {
            req = req.insert_header(("content-type", ct));
        }
        let res = call_offline(req).await;
        assert_eq!(res.status, 415, "{content_type:?}");
        assert_eq!(res.json()["error"], "unsupported_media_type");
    }
}
