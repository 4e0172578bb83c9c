//! Every request head has a deadline, on every connection: the service skeleton's server keeps
//! connections alive and still closes one whose later head stalls or trickles, while requests
//! that are slow to answer, and clients that keep a connection for several requests, are
//! served. Head timeout 1 s, keep-alive 2 s.

use actix_web::{App, HttpResponse, web};
use service_kit::service::{HttpService, ServerOptions, Service, listen};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const HEAD: Duration = Duration::from_secs(1);
const KEEP_ALIVE: Duration = Duration::from_secs(2);
/// Room for a loaded machine on top of a bound under test.
const SLACK: Duration = Duration::from_millis(700);

/// A running server and what stops it.
struct Server {
    port: u16,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    running: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Server {
    fn start(keep_alive: Duration) -> Self {
        let options = ServerOptions {
            request_head_timeout: HEAD,
            keep_alive: Some(keep_alive),
            workers: Some(1),
            ..ServerOptions::default()
        };
        let service = HttpService::start(
            listen([127, 0, 0, 1].into(), 0).unwrap(),
            options,
            Vec::new(),
            || {
                App::new()
                    .route(
                        "/fast",
                        web::get().to(|| async { HttpResponse::Ok().body("ok") }),
                    )
                    .route(
                        "/slow",
                        web::get().to(|| async {
                            tokio::time::sleep(HEAD + Duration::from_millis(800)).await;
                            HttpResponse::Ok().body("ok")
                        }),
                    )
            },
        )
        .unwrap();
        let port = service.port();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let running = tokio::spawn(service.run_until(async {
            let _ = stopped.await;
        }));
        Self {
            port,
            stop: Some(stop),
            running,
        }
    }

    async fn connect(&self) -> TcpStream {
        TcpStream::connect(("127.0.0.1", self.port)).await.unwrap()
    }

    /// Stops the server; how long it took.
    async fn stop(mut self) -> Duration {
        let started = Instant::now();
        self.stop.take().unwrap().send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(30), self.running)
            .await
            .expect("the server stops")
            .unwrap()
            .unwrap();
        started.elapsed()
    }
}

fn request(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n")
}

/// Reads one answer (head and a `content-length` body) from `stream`; its status.
async fn answer(stream: &mut TcpStream) -> u16 {
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 1024];
    loop {
        let text = String::from_utf8_lossy(&bytes).into_owned();
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length: ")
                        .map(str::to_owned)
                })
                .map_or(0, |n| n.trim().parse::<usize>().unwrap());
            if bytes.len() >= end + 4 + length {
                return text[9..12].parse().unwrap();
            }
        }
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk))
            .await
            .expect("an answer within 10 s")
            .unwrap();
        assert!(n > 0, "closed before answering: {text}");
        bytes.extend_from_slice(&chunk[..n]);
    }
}

/// How long until the server closes `stream` (end of stream or reset), reading what comes.
async fn closed_after(stream: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut sink = Vec::new();
    match tokio::time::timeout(limit, stream.read_to_end(&mut sink)).await {
        Ok(_) => Some(started.elapsed()),
        Err(_) => None,
    }
}

#[tokio::test]
async fn a_kept_alive_connection_serves_several_requests() {
    let server = Server::start(KEEP_ALIVE);
    let mut stream = server.connect().await;
    for pause in [0, 500, 1500] {
        tokio::time::sleep(Duration::from_millis(pause)).await;
        stream.write_all(request("/fast").as_bytes()).await.unwrap();
        assert_eq!(answer(&mut stream).await, 200, "after {pause} ms idle");
    }
    // Silent past keep-alive: closed by the keep-alive timer.
    let closed = closed_after(&mut stream, KEEP_ALIVE + SLACK * 2).await;
    assert!(
        closed.is_some(),
        "an idle connection is closed after keep-alive"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_stalled_second_head_is_closed_within_the_head_timeout() {
    let server = Server::start(KEEP_ALIVE);
    let mut stream = server.connect().await;
    stream.write_all(request("/fast").as_bytes()).await.unwrap();
    assert_eq!(answer(&mut stream).await, 200);
    tokio::time::sleep(Duration::from_millis(500)).await;
    stream
        .write_all(b"GET /fast HTTP/1.1\r\nHost: te")
        .await
        .unwrap();
    let closed = closed_after(&mut stream, Duration::from_secs(10)).await;
    let closed = closed.expect("a stalled second head is closed (actix-http alone never does)");
    assert!(closed < HEAD + SLACK, "closed after {closed:?}");
    assert!(
        closed > HEAD - Duration::from_millis(200),
        "not before the head timeout: {closed:?}"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_second_head_trickled_byte_by_byte_is_closed_within_the_head_timeout() {
    let server = Server::start(KEEP_ALIVE);
    let mut stream = server.connect().await;
    stream.write_all(request("/fast").as_bytes()).await.unwrap();
    assert_eq!(answer(&mut stream).await, 200);
    let started = Instant::now();
    let mut closed = None;
    for byte in
        b"GET /fast HTTP/1.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
    {
        if stream.write_all(&[*byte]).await.is_err() {
            closed = Some(started.elapsed());
            break;
        }
        let mut probe = [0u8; 64];
        match tokio::time::timeout(Duration::from_millis(100), stream.read(&mut probe)).await {
            Ok(Ok(0) | Err(_)) => {
                closed = Some(started.elapsed());
                break;
            }
            Ok(Ok(_)) => panic!("an answer to an incomplete head"),
            Err(_) => {}
        }
    }
    let closed = closed.expect("a trickled head is closed");
    assert!(closed < HEAD + SLACK, "closed after {closed:?}");
    server.stop().await;
}

/// The corner the guard must not break: actix-http alone closes this one too (its keep-alive
/// timer still runs), the guard bounds it in any case.
#[tokio::test]
async fn a_partial_head_pipelined_behind_a_request_is_closed_within_keep_alive_and_head() {
    let server = Server::start(KEEP_ALIVE);
    let mut stream = server.connect().await;
    let pipelined = format!("{}GET /fast HTTP/1.1\r\nHo", request("/fast"));
    stream.write_all(pipelined.as_bytes()).await.unwrap();
    assert_eq!(answer(&mut stream).await, 200);
    let closed = closed_after(&mut stream, Duration::from_secs(10)).await;
    let closed = closed.expect("a pipelined partial head is closed");
    assert!(
        closed < KEEP_ALIVE + HEAD + SLACK,
        "closed after {closed:?}"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_second_request_slower_to_answer_than_the_head_timeout_is_answered() {
    let server = Server::start(KEEP_ALIVE);
    let mut stream = server.connect().await;
    stream.write_all(request("/fast").as_bytes()).await.unwrap();
    assert_eq!(answer(&mut stream).await, 200);
    stream.write_all(request("/slow").as_bytes()).await.unwrap();
    assert_eq!(
        answer(&mut stream).await,
        200,
        "the head deadline ends with the head"
    );
    stream.write_all(request("/fast").as_bytes()).await.unwrap();
    assert_eq!(
        answer(&mut stream).await,
        200,
        "and the connection is still kept"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_stop_ends_connections_between_requests_at_once_and_finishes_the_others() {
    // Keep-alive far longer than the test: only the stop can end the idle connection quickly.
    let server = Server::start(Duration::from_secs(60));
    let mut idle = server.connect().await;
    idle.write_all(request("/fast").as_bytes()).await.unwrap();
    assert_eq!(answer(&mut idle).await, 200);
    let mut busy = server.connect().await;
    busy.write_all(request("/slow").as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let answered = tokio::spawn(async move { answer(&mut busy).await });
    let took = server.stop().await;
    assert_eq!(
        answered.await.unwrap(),
        200,
        "the request in flight is answered"
    );
    assert!(
        took < HEAD + Duration::from_secs(3),
        "stopped after {took:?}"
    );
    let closed = closed_after(&mut idle, Duration::from_secs(1)).await;
    assert!(
        closed.is_some(),
        "the idle kept-alive connection was closed by the stop"
    );
}
