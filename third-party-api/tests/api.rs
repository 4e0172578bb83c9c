//! third-party-api over real HTTP: keys in header and query, refusals, the value range, bursts,
//! the admin API, storage failures, readiness and the OpenAPI document.

mod support;

use reqwest::{Method, StatusCode};
use serde_json::Value;
use std::collections::HashSet;
use support::{DEFAULT_KEY, MASTER, spawn_app};

#[tokio::test]
async fn a_key_in_the_header_or_the_query_gets_a_number() {
    let app = spawn_app().await;
    let res = app.random_number(Some(DEFAULT_KEY)).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let body: Value = res.json().await.unwrap();
    let value = body["value"].as_u64().unwrap();
    assert!((1..=999).contains(&value));

    for method in [Method::GET, Method::POST] {
        let res = app
            .http
            .request(
                method,
                format!("{}/api/RandomNumber?code={DEFAULT_KEY}", app.base),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
    }
    // The master key opens every function too, as in Azure Functions.
    assert!(app.key_works(MASTER).await);
}

#[tokio::test]
async fn missing_wrong_or_odd_keys_get_401_with_a_json_error() {
    let app = spawn_app().await;
    let url = format!("{}/api/RandomNumber", app.base);
    let requests = [
        app.http.get(&url),
        app.http.get(&url).header("x-functions-key", ""),
        app.http.get(&url).header("x-functions-key", "wrong"),
        app.http
            .get(&url)
            .header("x-functions-key", &DEFAULT_KEY[1..]),
        app.http
            .get(&url)
            .header("x-functions-key", format!("{DEFAULT_KEY}x")),
        app.http.get(&url).header(
            "x-functions-key",
            reqwest::header::HeaderValue::from_bytes(&[0xff, 0xfe, b'\t', b'~']).unwrap(),
        ),
        app.http.get(format!("{url}?code=%00%FF")),
        app.http.get(format!("{url}?code={}", "k".repeat(4000))),
    ];
    let mut bodies = HashSet::new();
    for req in requests {
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"], "unauthorized");
        bodies.insert(body.to_string());
    }
    assert_eq!(bodies.len(), 1, "every refusal looks the same");
    let res = app
        .http
        .put(&url)
        .header("x-functions-key", DEFAULT_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn values_cover_the_range_over_many_calls() {
    let app = spawn_app().await;
    let mut seen = HashSet::new();
    for _ in 0..2000 {
        let body: Value = app
            .random_number(Some(DEFAULT_KEY))
            .await
            .json()
            .await
            .unwrap();
        let value = body["value"].as_u64().unwrap();
        assert!((1..=999).contains(&value), "{value} out of range");
        seen.insert(value);
    }
    // 2000 uniform draws from 999 values leave about 135 unseen; far fewer distinct values
    // would mean a broken generator.
    assert!(seen.len() > 750, "only {} distinct values", seen.len());
}

#[tokio::test]
async fn a_concurrent_burst_has_no_error() {
    let app = spawn_app().await;
    let calls = (0..500).map(|_| app.random_number(Some(DEFAULT_KEY)));
    let results = futures::future::join_all(calls).await;
    assert!(results.iter().all(|r| r.status() == StatusCode::OK));
}

#[tokio::test]
async fn only_the_master_key_opens_the_admin_api() {
    let app = spawn_app().await;
    let (status, _) = app
        .admin(
            Method::PUT,
            "/host/keys/ops",
            MASTER,
            Some(r#"{"value":"host-key-value-0123456789"}"#),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    for key in [DEFAULT_KEY, "host-key-value-0123456789", "", "nope"] {
        let (status, body) = app.admin(Method::GET, "/host/keys", key, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "key {key:?}");
        assert_eq!(body["error"], "unauthorized");
    }
    let (status, _) = app
        .admin(Method::GET, "/functions/RandomNumber/keys", MASTER, None)
        .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn function_keys_can_be_listed_set_generated_and_deleted() {
    let app = spawn_app().await;
    let path = "/functions/RandomNumber/keys";
    let (status, list) = app.admin(Method::GET, path, MASTER, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        list["keys"],
        serde_json::json!([{"name": "default", "value": DEFAULT_KEY, "lastAccepted": null}])
    );
    assert_eq!(list["links"][0]["rel"], "self");

    // Accepting a key is recorded, per key, and shown to the master key.
    let before = time::OffsetDateTime::now_utc() - time::Duration::milliseconds(1);
    assert!(app.key_works(DEFAULT_KEY).await);
    assert!(!app.key_works("not-a-key-of-this-host-0000").await);
    let (_, list) = app.admin(Method::GET, path, MASTER, None).await;
    let at = list["keys"][0]["lastAccepted"].as_str().expect("recorded");
    let at =
        time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339).unwrap();
    assert!(
        at >= before && at <= time::OffsetDateTime::now_utc(),
        "{at}"
    );

    // PUT creates, then replaces: the old value stops working, the new one works.
    let first = "partner-key-value-first-0001";
    let second = "partner-key-value-second-002";
    let (status, body) = app
        .admin(
            Method::PUT,
            &format!("{path}/partner"),
            MASTER,
            Some(&format!(r#"{{"name":"partner","value":"{first}"}}"#)),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(body, serde_json::json!({"name": "partner", "value": first}));
    assert!(app.key_works(first).await);
    let (status, _) = app
        .admin(
            Method::PUT,
            &format!("{path}/partner"),
            MASTER,
            Some(&format!(r#"{{"value":"{second}"}}"#)),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(!app.key_works(first).await);
    assert!(app.key_works(second).await);

    // POST generates a value.
    let (status, body) = app
        .admin(Method::POST, &format!("{path}/generated"), MASTER, None)
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let generated = body["value"].as_str().unwrap().to_owned();
    assert!(generated.len() >= 40);
    assert!(app.key_works(&generated).await);
    let (status, body) = app
        .admin(Method::POST, &format!("{path}/generated"), MASTER, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_ne!(body["value"].as_str().unwrap(), generated);
    assert!(!app.key_works(&generated).await);

    // DELETE removes; a second DELETE is 404.
    let (status, _) = app
        .admin(Method::DELETE, &format!("{path}/partner"), MASTER, None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(!app.key_works(second).await);
    let (status, body) = app
        .admin(Method::DELETE, &format!("{path}/partner"), MASTER, None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"], "not_found");

    // Another function does not exist.
    let (status, _) = app
        .admin(Method::GET, "/functions/Other/keys", MASTER, None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn host_keys_open_every_function_and_the_master_key_is_special() {
    let app = spawn_app().await;
    let host_value = "host-key-value-abcdefghij";
    let (status, _) = app
        .admin(
            Method::PUT,
            "/host/keys/default",
            MASTER,
            Some(&format!(r#"{{"value":"{host_value}"}}"#)),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert!(app.key_works(host_value).await);

    let (_, list) = app.admin(Method::GET, "/host/keys", MASTER, None).await;
    let names: Vec<&str> = list["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["default"], "the master key is never listed");
    assert!(!list.to_string().contains(MASTER));

    let (status, body) = app
        .admin(Method::DELETE, "/host/keys/_master", MASTER, None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("cannot be deleted")
    );

    // Regenerating the master key retires the old one at once.
    let (status, body) = app
        .admin(Method::POST, "/host/keys/_master", MASTER, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let new_master = body["value"].as_str().unwrap().to_owned();
    let (status, _) = app.admin(Method::GET, "/host/keys", MASTER, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = app
        .admin(Method::GET, "/host/keys", &new_master, None)
        .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn malformed_names_and_bodies_get_400_saying_why_without_echoing_values() {
    let app = spawn_app().await;
    let path = "/functions/RandomNumber/keys";
    let cases: [(&str, Option<&str>, &str); 6] = [
        (
            "bad%20name",
            Some(r#"{"value":"abcdefghijklmnop0123"}"#),
            "key name",
        ),
        (
            "_reserved",
            Some(r#"{"value":"abcdefghijklmnop0123"}"#),
            "reserved",
        ),
        ("ok", Some("{not json"), "malformed JSON"),
        ("ok", Some(r#"{"value": 12}"#), "wrong fields"),
        ("ok", Some(r#"{"value":"tiny-secret"}"#), "16 to 256"),
        (
            "ok",
            Some(r#"{"value":"has spaces in it 0123"}"#),
            "only letters",
        ),
    ];
    for (name, body, why) in cases {
        let (status, res) = app
            .admin(Method::PUT, &format!("{path}/{name}"), MASTER, body)
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{name} {body:?}");
        let message = res["message"].as_str().unwrap();
        assert!(message.contains(why), "{message} should say {why}");
        assert!(!message.contains("tiny-secret") && !message.contains("has spaces"));
    }
    let (status, _) = app
        .admin(Method::PUT, &format!("{path}/ok"), MASTER, None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // The path names the key; a different name in the body does not rename it.
    let (status, _) = app
        .admin(
            Method::PUT,
            &format!("{path}/ok"),
            MASTER,
            Some(r#"{"name":"other","value":"abcdefghijklmnop0123"}"#),
        )
        .await;
    assert!(status.is_success(), "{status}");
    let (_, list) = app.admin(Method::GET, path, MASTER, None).await;
    let names: Vec<&str> = list["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"ok") && !names.contains(&"other"),
        "{names:?}"
    );
}

#[tokio::test]
async fn an_unwritable_store_fails_the_change_and_keeps_the_keys_in_force() {
    let app = spawn_app().await;
    // A directory where the store goes makes every write fail (the rename), even for root.
    let before = std::fs::read(app.keys_file()).unwrap();
    let saved = app.dir.path().join("saved.json");
    std::fs::rename(app.keys_file(), &saved).unwrap();
    std::fs::create_dir(app.keys_file()).unwrap();

    let (status, body) = app
        .admin(
            Method::PUT,
            "/functions/RandomNumber/keys/new",
            MASTER,
            Some(r#"{"value":"never-in-force-0123456"}"#),
        )
        .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(body["error"], "storage_unavailable");
    assert!(!app.key_works("never-in-force-0123456").await);
    let (status, _) = app
        .admin(
            Method::DELETE,
            "/functions/RandomNumber/keys/default",
            MASTER,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(
        app.key_works(DEFAULT_KEY).await,
        "the delete did not take effect"
    );
    let mut left: Vec<_> = std::fs::read_dir(app.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    left.sort();
    assert_eq!(left, ["keys.json", "saved.json"], "no temporary file left");

    std::fs::remove_dir(app.keys_file()).unwrap();
    std::fs::rename(&saved, app.keys_file()).unwrap();
    assert_eq!(std::fs::read(app.keys_file()).unwrap(), before);
    let (status, _) = app
        .admin(
            Method::PUT,
            "/functions/RandomNumber/keys/new",
            MASTER,
            Some(r#"{"value":"in-force-now-0123456"}"#),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert!(app.key_works("in-force-now-0123456").await);
}

#[tokio::test]
async fn the_store_is_private_and_readiness_follows_it() {
    use std::os::unix::fs::PermissionsExt;
    let app = spawn_app().await;
    let mode = std::fs::metadata(app.keys_file())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let ready = app
        .http
        .get(format!("{}/readyz", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
    let alive = app
        .http
        .get(format!("{}/healthz", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(alive.status(), StatusCode::OK);

    std::fs::remove_file(app.keys_file()).unwrap();
    let res = app
        .http
        .get(format!("{}/readyz", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        body,
        serde_json::json!({"status": "not_ready", "failing": ["key_store"]})
    );
}

#[tokio::test]
async fn the_openapi_document_describes_every_route() {
    let app = spawn_app().await;
    let doc: Value = app
        .http
        .get(format!("{}/openapi.json", app.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["openapi"], "3.0.3");
    for path in [
        "/api/RandomNumber",
        "/admin/functions/{function}/keys",
        "/admin/functions/{function}/keys/{name}",
        "/admin/host/keys",
        "/admin/host/keys/{name}",
        "/healthz",
        "/readyz",
        "/openapi.json",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path} missing");
    }
    let res = app
        .http
        .get(format!("{}/no/such/route", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "not_found");
}
