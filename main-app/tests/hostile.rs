//! Hostile clients against main-app's public port: oversized heads and bodies, bytes that are
//! not UTF-8, a client that stalls mid-request, a thousand that stall in the second head of a
//! kept-alive connection. Each gets a 4xx or a closed connection, and the service keeps
//! answering everyone else. None of it reaches Azure: the app runs without any.

mod support;

use std::time::{Duration, Instant};
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn verify_request(body: &[u8], content_type: &str) -> Vec<u8> {
    let mut request = format!(
        "POST /api/v1/codes/verify HTTP/1.1\r\nHost: test\r\nContent-Type: {content_type}\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(body);
    request
}

#[tokio::test]
async fn oversized_heads_and_bodies_and_invalid_utf8_get_4xx_and_the_service_stays_up() {
    let app = spawn_offline_app().await;
    let huge_header = format!(
        "GET /healthz HTTP/1.1\r\nHost: test\r\nX-Big: {}\r\nConnection: close\r\n\r\n",
        "a".repeat(200 * 1024)
    );
    let many_headers = format!(
        "GET /healthz HTTP/1.1\r\nHost: test\r\n{}Connection: close\r\n\r\n",
        (0..200)
            .map(|i| format!("X-H{i}: v\r\n"))
            .collect::<String>()
    );
    let huge_target = format!(
        "GET /{} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n",
        "a".repeat(200 * 1024)
    );
    for request in [huge_header, many_headers, huge_target] {
        let (status, _) = app.raw(request.as_bytes()).await;
        assert!(status.is_none_or(|s| (400..500).contains(&s)), "{status:?}");
        assert!(app.is_alive().await);
    }
    let (status, _) = app
        .raw(&verify_request(&vec![b'x'; 64 * 1024], "application/json"))
        .await;
    assert_eq!(status, Some(413));
    for body in [
        &b"{\"code\": \"\xff\xfe-1-abc\"}"[..],
        b"\xc3\x28",
        b"{\"code\": \"abc-1-DEF\"",
        b"[]",
        b"{\"code\": 7}",
    ] {
        let (status, text) = app.raw(&verify_request(body, "application/json")).await;
        assert_eq!(status, Some(400), "{text}");
    }
    assert!(app.is_alive().await);
}

#[tokio::test]
async fn a_client_stalling_mid_request_is_cut_off_while_others_are_served() {
    let app = spawn_offline_app().await;
    let address = app.addr().to_owned();
    // Half a head, then nothing.
    let mut stalled = tokio::net::TcpStream::connect(&address).await.unwrap();
    stalled
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: te")
        .await
        .unwrap();
    // Half a body, then nothing.
    let mut stalled_body = tokio::net::TcpStream::connect(&address).await.unwrap();
    stalled_body
        .write_all(
            b"POST /api/v1/codes/verify HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n\
              Content-Length: 100\r\n\r\n{\"code\":",
        )
        .await
        .unwrap();
    for _ in 0..5 {
        assert!(app.is_alive().await, "others are served meanwhile");
    }
    for stream in [&mut stalled, &mut stalled_body] {
        let mut answer = Vec::new();
        let closed =
            tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut answer)).await;
        assert!(
            closed.is_ok(),
            "the stalled connection is closed by the server"
        );
        let text = String::from_utf8_lossy(&answer);
        assert!(
            text.is_empty() || text.starts_with("HTTP/1.1 4"),
            "a 4xx or a plain close: {text}"
        );
    }
    assert!(app.is_alive().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_clients_stalled_in_a_second_head_are_closed_and_others_are_served() {
    // main-app's production server options: head timeout 5 s, keep-alive 5 s.
    let head_timeout = service_kit::service::ServerOptions::default().request_head_timeout;
    let app = spawn_offline_app().await;
    let mut stalled = Vec::new();
    for _ in 0..1000 {
        stalled.push(app.stalled_in_second_head("/healthz").await.unwrap());
    }
    let stalled_at = Instant::now();
    // Served meanwhile, each at once.
    for _ in 0..10 {
        let asked = Instant::now();
        assert!(app.is_alive().await, "others are served meanwhile");
        assert!(
            asked.elapsed() < Duration::from_secs(2),
            "{:?}",
            asked.elapsed()
        );
    }
    // Every stalled connection is closed within the head timeout (actix-web alone holds them
    // for ever: it times only the first head of a connection).
    let mut last = Duration::ZERO;
    for stream in &mut stalled {
        let mut rest = Vec::new();
        tokio::time::timeout(Duration::from_secs(15), stream.read_to_end(&mut rest))
            .await
            .expect("a stalled connection is closed")
            .ok();
        assert!(rest.is_empty(), "no answer to half a head");
        last = last.max(stalled_at.elapsed());
    }
    assert!(
        last < head_timeout + Duration::from_secs(3),
        "the last closed after {last:?}"
    );
    assert!(app.is_alive().await);
}
