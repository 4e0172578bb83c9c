//! The HTTP server of every service: bound once, no signal handling of its own (the caller's
//! shutdown future stops it), in-flight requests finishing within [`SHUTDOWN_GRACE`], and a
//! deadline on every request head of every kept-alive connection ([`super::head_deadline`]).
//!
//! It is actix-web's `HttpServer` taken apart (actix-server accepting, actix-http's HTTP/1
//! dispatcher, the actix-web `App`) so that each accepted stream can be wrapped: `HttpServer`
//! offers no hook between accepting a connection and handing it to the dispatcher.

use super::head_deadline::{ConnectionPhase, Guarded, Limits, Stopping};
use super::{SHUTDOWN_GRACE, Service};
use crate::error_body::json_error;
use actix_http::{HttpService as Http1, Request};
use actix_server::Server;
use actix_service::{
    IntoServiceFactory, ServiceFactoryExt as _, apply_fn_factory, fn_service, map_config,
};
use actix_web::body::MessageBody;
use actix_web::dev::{AppConfig, ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::http::{KeepAlive, StatusCode};
use actix_web::{App, HttpResponse};
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;

/// A listening address that cannot be bound.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {address}")]
pub struct ListenError {
    /// The address asked for.
    pub address: SocketAddr,
    /// Why (address in use, permission denied, ...).
    #[source]
    pub source: std::io::Error,
}

/// Binds `address:port` (port 0: any free port), naming the address when it cannot.
pub fn listen(address: IpAddr, port: u16) -> Result<TcpListener, ListenError> {
    let address = SocketAddr::new(address, port);
    TcpListener::bind(address).map_err(|source| ListenError { address, source })
}

/// What a server allows its clients and how many event loops serve them; the default is
/// actix-web's, named, but for one worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerOptions {
    /// Time for a request head: the first of a connection from its start (then 408), every
    /// later one from its first byte (then the connection closes).
    pub request_head_timeout: Duration,
    /// Time a closing connection waits for the client.
    pub disconnect_timeout: Duration,
    /// Idle time allowed between two requests on one connection; `None` closes after one.
    pub keep_alive: Option<Duration>,
    /// Worker threads (event loops); `None`: one per core. One by default: these services wait
    /// on I/O, one event loop per process does the work without waking another thread for each
    /// pooled connection, and a service scales out by replicas (measured in BENCHMARKS.md).
    pub workers: Option<usize>,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            request_head_timeout: Duration::from_secs(5),
            disconnect_timeout: Duration::from_secs(1),
            keep_alive: Some(Duration::from_secs(5)),
            workers: Some(1),
        }
    }
}

/// An HTTP server started on its listener, with the background tasks that live as long as it.
pub struct HttpService {
    port: u16,
    server: Server,
    stopping: Arc<Stopping>,
    background: Vec<JoinHandle<()>>,
}

impl HttpService {
    /// Serves the apps `app` builds (one per worker) on `listener`; `background` tasks are
    /// aborted when the server stops.
    pub fn start<F, T, B>(
        listener: TcpListener,
        options: ServerOptions,
        background: Vec<JoinHandle<()>>,
        app: F,
    ) -> std::io::Result<Self>
    where
        F: Fn() -> App<T> + Send + Clone + 'static,
        T: ServiceFactory<
                ServiceRequest,
                Config = (),
                Response = ServiceResponse<B>,
                Error = actix_web::Error,
                InitError = (),
            > + 'static,
        B: MessageBody + 'static,
    {
        let local = listener.local_addr()?;
        let limits = Limits {
            head: options.request_head_timeout,
            keep_alive: options.keep_alive,
        };
        let stopping = Arc::new(Stopping::default());
        let on_stop = stopping.clone();
        let mut server = Server::build()
            .shutdown_timeout(SHUTDOWN_GRACE.as_secs())
            .disable_signals();
        if let Some(workers) = options.workers {
            server = server.workers(workers);
        }
        let server = server
            .listen("http", listener, move || {
                let stopping = stopping.clone();
                let accept = fn_service(move |io: actix_web::rt::net::TcpStream| {
                    let peer = io.peer_addr().ok();
                    let io = Guarded::new(io, limits, stopping.clone());
                    std::future::ready(Ok::<_, actix_http::error::DispatchError>((io, peer)))
                });
                let http = Http1::build()
                    .keep_alive(
                        options
                            .keep_alive
                            .map_or(KeepAlive::Disabled, KeepAlive::Timeout),
                    )
                    .client_request_timeout(options.request_head_timeout)
                    .client_disconnect_timeout(options.disconnect_timeout)
                    .local_addr(local)
                    .on_connect_ext(|io: &Guarded<_>, ext| {
                        ext.insert(io.phase());
                    })
                    // The app's configuration: what HttpServer would give, except the host
                    // name, which comes from each request's Host header (HTTP/1.1 requires one).
                    .h1(apply_fn_factory(
                        map_config(app().into_factory(), |()| AppConfig::default())
                            .map_err(|e: actix_web::Error| {
                                actix_http::Response::from(e.error_response())
                            })
                            .map(actix_http::Response::from),
                        track_phase,
                    ));
                accept.and_then(http)
            })?
            .run();
        Ok(Self {
            port: local.port(),
            server,
            stopping: on_stop,
            background,
        })
    }
}

/// Reports each request to its connection's phase: started once its head is read, finished
/// once answered.
fn track_phase<S: actix_service::Service<Request>>(
    req: Request,
    service: &S,
) -> impl Future<Output = Result<S::Response, S::Error>> + use<S> {
    let phase = req.conn_data::<ConnectionPhase>().cloned();
    if let Some(phase) = &phase {
        phase.request_started();
    }
    let answer = service.call(req);
    async move {
        let answer = answer.await;
        if let Some(phase) = phase {
            phase.request_finished();
        }
        answer
    }
}

impl Service for HttpService {
    fn port(&self) -> u16 {
        self.port
    }

    /// Serves until `shutdown` resolves, then stops accepting and lets in-flight requests
    /// finish within [`SHUTDOWN_GRACE`]; background tasks are aborted last.
    async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let handle = self.server.handle();
        let mut server = self.server;
        let result = tokio::select! {
            result = &mut server => result,
            () = shutdown => {
                // Connections between requests end now; the server's own future carries out
                // the stop of the rest: poll both.
                self.stopping.stop();
                let ((), result) = tokio::join!(handle.stop(true), server);
                result
            }
        };
        for task in self.background {
            task.abort();
        }
        result
    }
}

/// The JSON 404 for a path no route serves.
pub async fn not_found() -> HttpResponse {
    json_error(StatusCode::NOT_FOUND, "not_found", "No such route.")
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::web;
    use std::io::{Read, Write};
    use std::net::TcpStream;

    fn get(port: u16, path: &str) -> std::io::Result<String> {
        let mut stream = TcpStream::connect(("127.0.0.1", port))?;
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer)?;
        Ok(answer)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_request_in_flight_at_shutdown_finishes_and_background_tasks_end() {
        let listener = listen([127, 0, 0, 1].into(), 0).unwrap();
        let background = vec![tokio::spawn(std::future::pending())];
        let watched = background[0].abort_handle();
        let options = ServerOptions {
            workers: Some(1),
            ..ServerOptions::default()
        };
        let service = HttpService::start(listener, options, background, || {
            App::new()
                .route(
                    "/slow",
                    web::get().to(|| async {
                        tokio::time::sleep(Duration::from_millis(600)).await;
                        HttpResponse::Ok().body("done")
                    }),
                )
                .default_service(web::to(not_found))
        })
        .unwrap();
        let port = service.port();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let running = tokio::spawn(service.run_until(async {
            let _ = stopped.await;
        }));
        let missing = tokio::task::spawn_blocking(move || get(port, "/nowhere"));
        assert!(missing.await.unwrap().unwrap().starts_with("HTTP/1.1 404"));

        let slow = tokio::task::spawn_blocking(move || get(port, "/slow"));
        tokio::time::sleep(Duration::from_millis(200)).await;
        stop.send(()).unwrap();
        let answer = slow.await.unwrap().unwrap();
        assert!(answer.starts_with("HTTP/1.1 200") && answer.ends_with("done"));
        tokio::time::timeout(Duration::from_secs(5), running)
            .await
            .expect("stops once the request is answered")
            .unwrap()
            .unwrap();
        for _ in 0..100 {
            if watched.is_finished() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(
            watched.is_finished(),
            "background tasks end with the server"
        );
        // Not asserted: that a new connection is refused. The freed port may already belong to
        // another test's listener, which such a probe would steal.
    }

    #[test]
    fn a_taken_port_is_named() {
        let taken = listen([127, 0, 0, 1].into(), 0).unwrap();
        let port = taken.local_addr().unwrap().port();
        let err = listen([127, 0, 0, 1].into(), port).unwrap_err();
        assert!(
            err.to_string().contains(&format!("127.0.0.1:{port}")),
            "{err}"
        );
    }
}
