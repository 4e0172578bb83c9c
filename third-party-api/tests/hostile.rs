//! Hostile clients over raw TCP: oversized heads and bodies, invalid UTF-8, slow and idle
//! connections, key names that try to leave the store. Each gets a 4xx or a closed connection,
//! and the service keeps answering everyone else.

mod support;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use service_kit::request_body::BodyLimits;
use service_kit::service::ServerOptions;
use std::time::{Duration, Instant};
use support::{MASTER, TestApp, spawn_app, spawn_app_with, status_of};
use third_party_api::config::BODY_LIMITS;
use third_party_api::key_store::KeyName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const KEYS: &str = "/admin/functions/RandomNumber/keys";
const VALUE_BODY: &str = r#"{"value":"hostile-test-value-0123456789"}"#;

/// The app with head and body timeouts short enough for a test.
async fn quick() -> TestApp {
    let server = ServerOptions {
        request_head_timeout: Duration::from_secs(1),
        ..ServerOptions::default()
    };
    let body = BodyLimits {
        timeout: Duration::from_secs(1),
        ..BODY_LIMITS
    };
    spawn_app_with(server, body).await
}

/// A `PUT` of `body` to `path` (raw bytes) with the master key, on a connection closed after it.
fn put(path: &[u8], body: &[u8]) -> Vec<u8> {
    let mut request = b"PUT ".to_vec();
    request.extend_from_slice(path);
    request.extend_from_slice(
        format!(
            " HTTP/1.1\r\nHost: test\r\nx-functions-key: {MASTER}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    );
    request.extend_from_slice(body);
    request
}

fn get(path: &str, extra_headers: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: test\r\n{extra_headers}Connection: close\r\n\r\n")
        .into_bytes()
}

/// A 4xx, or the connection closed without an answer.
fn refused(status: Option<u16>) -> bool {
    status.is_none_or(|s| (400..500).contains(&s))
}

/// The names in the store's directory.
fn listing(app: &TestApp) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(app.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn oversized_heads_are_refused_and_the_service_keeps_answering() {
    let app = spawn_app().await;
    let huge = format!("x-padding: {}\r\n", "a".repeat(200 * 1024));
    let (status, _) = app.raw(&get("/healthz", &huge)).await;
    assert!(
        matches!(status, None | Some(431)),
        "200 KiB header: {status:?}"
    );

    let many: String = (0..200).map(|i| format!("x-h{i}: v\r\n")).collect();
    let (status, _) = app.raw(&get("/healthz", &many)).await;
    assert!(refused(status), "200 headers: {status:?}");

    let long_target = format!("/healthz?{}", "q".repeat(200 * 1024));
    let (status, _) = app.raw(&get(&long_target, "")).await;
    assert!(refused(status), "200 KiB request target: {status:?}");

    assert!(app.is_alive().await);
}

#[tokio::test]
async fn oversized_bodies_get_413_and_the_service_keeps_answering() {
    let app = spawn_app().await;
    // Announced too large: refused before a byte of it is read.
    let head = format!(
        "PUT {KEYS}/big HTTP/1.1\r\nHost: test\r\nx-functions-key: {MASTER}\r\n\
         Content-Type: application/json\r\nContent-Length: 10000000\r\n\r\n"
    );
    let (status, text) = app.raw(head.as_bytes()).await;
    assert_eq!(status, Some(413), "{text}");
    assert!(text.contains("payload_too_large"));

    // Chunked, no length announced: refused once the limit is crossed.
    let mut chunked = format!(
        "PUT {KEYS}/big HTTP/1.1\r\nHost: test\r\nx-functions-key: {MASTER}\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )
    .into_bytes();
    for _ in 0..20 {
        chunked.extend_from_slice(format!("400\r\n{}\r\n", "a".repeat(0x400)).as_bytes());
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let (status, _) = app.raw(&chunked).await;
    assert!(matches!(status, None | Some(413)), "chunked: {status:?}");

    // Through an ordinary client too.
    let res = app
        .http
        .put(format!("{}{KEYS}/big", app.base))
        .header("x-functions-key", MASTER)
        .body(vec![b'{'; 64 * 1024])
        .send()
        .await;
    if let Ok(res) = res {
        assert_eq!(res.status(), 413);
    }

    assert!(app.is_alive().await);
    assert_eq!(listing(&app), ["keys.json"]);
}

#[tokio::test]
async fn invalid_utf8_in_an_admin_body_is_400_without_echo() {
    let app = spawn_app().await;
    let bodies: [&[u8]; 4] = [
        b"{\"value\":\"abcdefghij\xff\xfeklmnopq0123\"}",
        b"\xff\xfe{\"value\":\"abcdefghijklmnop0123\"}",
        b"{\"value\":\"abcdefghijklmnop0123\",\"name\":\"\xc0\xae\xc0\xae\"}",
        b"{\"val\xe2\x82ue\":\"abcdefghijklmnop0123\"}",
    ];
    for body in bodies {
        let (status, text) = app.raw(&put(format!("{KEYS}/utf8").as_bytes(), body)).await;
        assert_eq!(status, Some(400), "{text}");
        assert!(text.contains("malformed JSON"), "{text}");
        assert!(!text.contains("abcdefghij"), "echoes the body: {text}");
    }
    assert!(app.is_alive().await);
}

#[tokio::test]
async fn a_client_stalling_in_its_head_gets_408_and_others_are_served_meanwhile() {
    let app = quick().await;
    let started = Instant::now();
    let mut slow = tokio::net::TcpStream::connect(app.addr()).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: test\r\nx-partial: yes")
        .await
        .unwrap();
    // An idle connection that never sends a byte.
    let mut idle = tokio::net::TcpStream::connect(app.addr()).await.unwrap();

    for _ in 0..5 {
        let t = Instant::now();
        assert!(app.is_alive().await);
        assert!(
            t.elapsed() < Duration::from_millis(500),
            "others are served"
        );
    }

    let mut received = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), slow.read_to_end(&mut received))
        .await
        .expect("the stalled connection is closed")
        .ok();
    let text = String::from_utf8_lossy(&received);
    assert!(matches!(status_of(&text), None | Some(408)), "{text}");
    assert!(started.elapsed() >= Duration::from_millis(900));

    let mut nothing = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), idle.read_to_end(&mut nothing))
        .await
        .expect("the idle connection is closed")
        .ok();
    assert!(app.is_alive().await);
}

#[tokio::test]
async fn a_client_stalling_in_its_body_gets_408_and_the_connection_closes() {
    let app = quick().await;
    let mut slow = tokio::net::TcpStream::connect(app.addr()).await.unwrap();
    let head = format!(
        "PUT {KEYS}/slow HTTP/1.1\r\nHost: test\r\nx-functions-key: {MASTER}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"value\":"
    );
    slow.write_all(head.as_bytes()).await.unwrap();
    let started = Instant::now();
    assert!(app.is_alive().await);
    let mut received = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), slow.read_to_end(&mut received))
        .await
        .expect("the stalled connection is closed")
        .unwrap();
    let text = String::from_utf8_lossy(&received);
    assert_eq!(status_of(&text), Some(408), "{text}");
    assert!(text.contains("request_timeout"));
    assert!(started.elapsed() >= Duration::from_millis(900));
    assert!(app.is_alive().await);
    assert_eq!(listing(&app), ["keys.json"]);
}

#[tokio::test]
async fn a_connection_cannot_be_held_by_stalling_in_a_second_head() {
    let app = quick().await;
    let mut conn = tokio::net::TcpStream::connect(app.addr()).await.unwrap();
    conn.write_all(b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n")
        .await
        .unwrap();
    let mut first = [0u8; 512];
    let n = conn.read(&mut first).await.unwrap();
    let text = String::from_utf8_lossy(&first[..n]);
    assert_eq!(status_of(&text), Some(200), "{text}");
    assert!(
        !text.to_ascii_lowercase().contains("connection: close"),
        "kept alive: {text}"
    );
    // The second request never completes its head (actix-web alone would wait for it forever
    // on a kept-alive connection: it times only the first head).
    conn.write_all(b"GET /healthz HTTP/1.1\r\nHost: te")
        .await
        .unwrap();
    let started = Instant::now();
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), conn.read_to_end(&mut rest))
        .await
        .expect("the connection is closed")
        .ok();
    assert!(rest.is_empty(), "no answer to half a head");
    let took = started.elapsed();
    assert!(took < Duration::from_millis(1800), "closed after {took:?}");
    assert!(app.is_alive().await);
}

#[test]
fn the_default_limits_are_sane() {
    let server = ServerOptions::default();
    for timeout in [server.request_head_timeout, BODY_LIMITS.timeout] {
        assert!(Duration::from_secs(1) <= timeout && timeout <= Duration::from_secs(30));
    }
    assert!(server.disconnect_timeout <= Duration::from_secs(5));
    assert!(
        server
            .keep_alive
            .is_some_and(|idle| idle <= Duration::from_secs(30)),
        "kept alive, for a bounded idle time"
    );
    assert!((1024..=1024 * 1024).contains(&BODY_LIMITS.max_bytes));
}

/// `PUT` of a valid key to the function key named by the raw path `segment`.
async fn put_named(app: &TestApp, segment: &[u8]) -> (Option<u16>, String) {
    let mut path = format!("{KEYS}/").into_bytes();
    path.extend_from_slice(segment);
    app.raw(&put(&path, VALUE_BODY.as_bytes())).await
}

#[tokio::test]
async fn traversal_and_oversized_key_names_are_refused() {
    let app = spawn_app().await;
    let cases: [(&[u8], u16, &str); 12] = [
        (b"../x", 404, "not_found"),
        (b"..%2fx", 400, "only letters"),
        (b"..%2Fkeys.json", 400, "only letters"),
        (b"%2e%2e", 400, "start with `.`"),
        (b"%2E%2E", 400, "start with `.`"),
        (b"%2e", 400, "start with `.`"),
        (b"..", 400, "start with `.`"),
        (b"%ff%fe", 400, "only letters"),
        (b"%c0%ae%c0%ae", 400, "only letters"),
        (b"a%00b", 400, "only letters"),
        (&[b'k'; 65], 400, "1 to 64"),
        (&[b'k'; 5000], 400, "1 to 64"),
    ];
    for (segment, status, why) in cases {
        let shown = String::from_utf8_lossy(segment).into_owned();
        let (got, text) = put_named(&app, segment).await;
        assert_eq!(got, Some(status), "{shown}: {text}");
        assert!(text.contains(why), "{shown}: {text}");
    }
    // Not even an HTTP request: raw bytes that are not UTF-8, a target too long to parse.
    for segment in [&[0xffu8, 0xfe][..], &[b'k'; 100_000][..]] {
        let (got, _) = put_named(&app, segment).await;
        assert!(refused(got), "{got:?}");
    }
    assert_eq!(listing(&app), ["keys.json"]);
    let (_, list) = app
        .admin(
            reqwest::Method::GET,
            "/functions/RandomNumber/keys",
            MASTER,
            None,
        )
        .await;
    assert_eq!(list["keys"].as_array().unwrap().len(), 1, "{list}");
    assert!(app.is_alive().await);
}

/// A path segment as sent on the wire: hostile classics, percent-encoded arbitrary bytes,
/// printable ASCII, raw bytes that are not UTF-8, very long names.
fn segments() -> impl Strategy<Value = Vec<u8>> {
    let classics = prop::sample::select(vec![
        "..",
        ".",
        "../x",
        "..%2fx",
        "..%2Fx",
        "%2e%2e",
        "%2E%2E",
        "%2e",
        "%2e%2e%2fkeys.json",
        "..%5c..%5cx",
        "%00",
        "a%00b",
        "%ff%fe",
        "%c0%ae%c0%ae",
        "~",
        "keys.json",
        "..%252f..%252fx",
        "%2e%2e%2f%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "_master",
        "default%2F..",
    ])
    .prop_map(|s| s.as_bytes().to_vec());
    let encoded = prop::collection::vec(any::<u8>(), 1..80).prop_map(|bytes| {
        bytes
            .iter()
            .flat_map(|b| format!("%{b:02X}").into_bytes())
            .collect()
    });
    let printable = "[!-~&&[^?#]]{1,80}".prop_map(String::into_bytes);
    let not_utf8 = prop::collection::vec(0x80u8..=0xff, 1..12);
    let long = (65usize..6000).prop_map(|n| vec![b'k'; n]);
    prop_oneof![classics, encoded, printable, not_utf8, long]
}

#[test]
fn key_names_in_the_path_never_reach_the_file_system() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let app = runtime.block_on(spawn_app());
    let store_before = std::fs::read(app.keys_file()).unwrap();
    let mut runner = TestRunner::new(Config {
        cases: 160,
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&segments(), |segment| {
        runtime.block_on(async {
            let (status, text) = put_named(&app, &segment).await;
            let shown = String::from_utf8_lossy(&segment).into_owned();
            prop_assert!(
                status.is_none_or(|s| s < 500),
                "{shown:?} -> {status:?}: {text}"
            );
            if status.is_some_and(|s| (200..300).contains(&s)) {
                // Accepted: the name is a plain key name, stored in the JSON file only.
                let body = text.split("\r\n\r\n").nth(1).unwrap_or_default();
                let json: serde_json::Value = serde_json::from_str(body).unwrap();
                let name = json["name"].as_str().unwrap().to_owned();
                prop_assert!(KeyName::parse(&name).is_ok(), "{shown:?} stored {name:?}");
                let (deleted, _) = app
                    .raw(
                        format!(
                            "DELETE {KEYS}/{name} HTTP/1.1\r\nHost: test\r\n\
                             x-functions-key: {MASTER}\r\nConnection: close\r\n\r\n"
                        )
                        .as_bytes(),
                    )
                    .await;
                prop_assert_eq!(deleted, Some(204));
            } else {
                prop_assert!(refused(status), "{shown:?} -> {status:?}");
            }
            prop_assert_eq!(listing(&app), vec!["keys.json".to_owned()]);
            prop_assert!(app.is_alive().await, "down after {shown:?}");
            Ok(())
        })
    });
    if let Err(failure) = result {
        panic!("{failure}");
    }
    // Every accepted key was deleted again: the store holds what it held.
    let now: serde_json::Value =
        serde_json::from_slice(&std::fs::read(app.keys_file()).unwrap()).unwrap();
    let before: serde_json::Value = serde_json::from_slice(&store_before).unwrap();
    assert_eq!(now, before);
}
