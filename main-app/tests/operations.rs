//! Operations: the home page, the OpenAPI document and 405 with `Allow` (none of which needs
//! Azure), and no key or token in logs or bodies.

mod support;

use support::*;

#[tokio::test]
async fn home_page_and_openapi_describe_the_app() {
    let app = spawn_offline_app().await;
    let res = app.http.get(format!("{}/", app.base)).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let page = res.text().await.unwrap();
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

    let doc: serde_json::Value = app
        .http
        .get(format!("{}/openapi.json", app.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
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
    let res = app
        .http
        .get(format!("{}/healthz", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn the_key_and_tokens_never_reach_logs_or_bodies() {
    let logs = logs();
    let stack = start_stack().await;
    let app = spawn_app(&main_app_env(&stack)).await;
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
        spawn_app(&main_app_env(&stack).with("THIRD_PARTY_API_ENDPOINT", &refusing.url)).await;
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

#[tokio::test]
async fn undeclared_methods_get_405_with_allow_and_unknown_paths_404() {
    let app = spawn_offline_app().await;
    for (path, method, allow) in [
        ("/api/v1/getcode", reqwest::Method::POST, "GET"),
        ("/api/v1/getcode", reqwest::Method::DELETE, "GET"),
        ("/api/v1/codes/verify", reqwest::Method::GET, "POST"),
        ("/api/v1/codes/verify", reqwest::Method::PUT, "POST"),
        ("/", reqwest::Method::POST, "GET"),
        ("/readyz", reqwest::Method::PATCH, "GET"),
        ("/openapi.json", reqwest::Method::DELETE, "GET"),
    ] {
        let res = app
            .http
            .request(method.clone(), format!("{}{path}", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 405, "{method} {path}");
        assert_eq!(res.headers()["allow"], allow, "{method} {path}");
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!(body["error"], "method_not_allowed");
    }
    let res = app
        .http
        .get(format!("{}/no/such/route", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
}
