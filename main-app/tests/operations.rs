//! Operations: the home page, the OpenAPI document and 405 with `Allow` (none of which needs
//! Azure: they go through the routes with `actix_web::test`), and no key or token in logs or
//! bodies.

mod support;

use actix_web::http::Method;
use actix_web::test::TestRequest;
use support::*;

#[actix_web::test]
async fn home_page_and_openapi_describe_the_app() {
    let home = call_offline(TestRequest::get().uri("/")).await;
    assert_eq!(home.status, 200);
    assert!(home.header("content-type").starts_with("text/html"));
    let page = String::from_utf8(home.body.to_vec()).unwrap();
    for needle in [
        "/api/v1/getcode",
        "/api/v1/codes/verify",
        "Get a code",
        "Verify",
        "Key Vault",
    ] {
        assert!(page.contains(needle), "{needle}");
    }
    assert!(
        !page.contains("http://") && !page.contains("https://"),
        "no external assets"
    );

    let doc = call_offline(TestRequest::get().uri("/openapi.json"))
        .await
        .json();
    for path in [
        "/",
        "/api/v1/getcode",
        "/api/v1/codes/verify",
        "/healthz",
        "/readyz",
        "/openapi.json",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path}");
    }
    let health = call_offline(TestRequest::get().uri("/healthz")).await;
    assert_eq!(health.status, 200);
}

#[tokio::test]
async fn the_key_and_tokens_never_reach_logs_or_bodies() {
    let logs = logs();
    let (stack, app) = spawn_app().await;
    app.wait_ready().await;
    let mut bodies = Vec::new();
    for _ in 0..3 {
        let res = app.get_code().await;
        assert_eq!(res.status(), 200);
        bodies.push(res.text().await.unwrap());
    }
    // An upstream refusal path too: the key travels and is refused.
    let refusing = fake_upstream(Behaviour::Status(403));
    let failing =
        spawn_app_with(&main_app_env(&stack).with("THIRD_PARTY_API_ENDPOINT", &refusing.url)).await;
    failing.wait_ready().await;
    bodies.push(failing.get_code().await.text().await.unwrap());

    let text = logs.text();
    assert!(text.contains("code issued"), "main-app logged its work");
    let key = stack.third_party_api_key().expose();
    let client_secret = stack
        .identities
        .get("main-app")
        .unwrap()
        .client_secret()
        .expose()
        .to_owned();
    for haystack in std::iter::once(&text).chain(bodies.iter()) {
        assert!(!haystack.contains(key), "the API key leaked");
        assert!(
            !haystack.contains(&client_secret),
            "the client secret leaked"
        );
        assert!(!haystack.contains("eyJ"), "a JWT leaked");
    }
}

#[actix_web::test]
async fn undeclared_methods_get_405_with_allow_and_unknown_paths_404() {
    for (path, method, allow) in [
        ("/api/v1/getcode", Method::POST, "GET"),
        ("/api/v1/getcode", Method::DELETE, "GET"),
        ("/api/v1/codes/verify", Method::GET, "POST"),
        ("/api/v1/codes/verify", Method::PUT, "POST"),
        ("/", Method::POST, "GET"),
        ("/readyz", Method::PATCH, "GET"),
        ("/openapi.json", Method::DELETE, "GET"),
    ] {
        let res = call_offline(TestRequest::default().method(method.clone()).uri(path)).await;
        assert_eq!(res.status, 405, "{method} {path}");
        assert_eq!(res.header("allow"), allow, "{method} {path}");
        assert_eq!(res.json()["error"], "method_not_allowed");
    }
    let res = call_offline(TestRequest::get().uri("/no/such/route")).await;
    assert_eq!(res.status, 404);
}
