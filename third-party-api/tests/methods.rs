//! Methods a route does not declare get 405 with `Allow` listing the declared ones (schemathesis
//! "unsupported method"), on every route; unknown paths still get 404; keys are checked first.

mod support;

use reqwest::{Method, StatusCode};
use serde_json::Value;
use support::{DEFAULT_KEY, MASTER, spawn_app};

/// Every route of the service: path, the key it needs, the methods the OpenAPI document declares.
const ROUTES: &[(&str, Option<&str>, &str)] = &[
    ("/api/RandomNumber", Some(DEFAULT_KEY), "GET, POST"),
    ("/admin/functions/RandomNumber/keys", Some(MASTER), "GET"),
    (
        "/admin/functions/RandomNumber/keys/default",
        Some(MASTER),
        "PUT, POST, DELETE",
    ),
    ("/admin/host/keys", Some(MASTER), "GET"),
    ("/admin/host/keys/ops", Some(MASTER), "PUT, POST, DELETE"),
    ("/healthz", None, "GET"),
    ("/readyz", None, "GET"),
    ("/openapi.json", None, "GET"),
];

const METHODS: &[&str] = &[
    "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "BREW",
];

#[tokio::test]
async fn undeclared_methods_get_405_with_allow_on_every_route() {
    let app = spawn_app().await;
    let mut checked = 0;
    for (path, key, allow) in ROUTES {
        let declared: Vec<&str> = allow.split(", ").collect();
        for method in METHODS.iter().filter(|m| !declared.contains(m)) {
            let mut req = app.http.request(
                Method::from_bytes(method.as_bytes()).unwrap(),
                format!("{}{path}", app.base),
            );
            if let Some(key) = key {
                req = req.header("x-functions-key", *key);
            }
            let res = req.send().await.unwrap();
            assert_eq!(
                res.status(),
                StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path}"
            );
            assert_eq!(res.headers()["allow"], *allow, "{method} {path}");
            if *method != "HEAD" {
                let body: Value = res.json().await.unwrap();
                assert_eq!(body["error"], "method_not_allowed", "{method} {path}");
                assert_eq!(body["message"], format!("Allowed methods: {allow}."));
            }
            checked += 1;
        }
    }
    assert!(checked > 40);
}

#[tokio::test]
async fn delete_on_random_number_is_405_allow_get_post_and_unknown_paths_stay_404() {
    let app = spawn_app().await;
    let res = app
        .http
        .delete(format!("{}/api/RandomNumber", app.base))
        .header("x-functions-key", DEFAULT_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(res.headers()["allow"], "GET, POST");

    for (path, key) in [
        ("/no/such/route", None),
        ("/healthz/more", None),
        ("/api/Other", Some(DEFAULT_KEY)),
        ("/admin/host/nothing", Some(MASTER)),
    ] {
        for method in [Method::GET, Method::DELETE] {
            let mut req = app
                .http
                .request(method.clone(), format!("{}{path}", app.base));
            if let Some(key) = key {
                req = req.header("x-functions-key", key);
            }
            let res = req.send().await.unwrap();
            assert_eq!(res.status(), StatusCode::NOT_FOUND, "{method} {path}");
            assert!(res.headers().get("allow").is_none());
            let body: Value = res.json().await.unwrap();
            assert_eq!(body["error"], "not_found");
        }
    }
}

#[tokio::test]
async fn the_key_is_checked_before_the_method() {
    let app = spawn_app().await;
    for path in ["/api/RandomNumber", "/admin/host/keys"] {
        let res = app
            .http
            .delete(format!("{}{path}", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{path}");
        assert!(res.headers().get("allow").is_none());
    }
    // A function key does not open the admin API, whatever the method.
    let res = app
        .http
        .patch(format!("{}/admin/host/keys", app.base))
        .header("x-functions-key", DEFAULT_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}
