//! The limit RandomNumber is compared with: a bare actix-web handler answering a constant JSON,
//! with no key check, no middleware, keep-alive on, and one worker: the event loops the services
//! run (`ServerOptions::workers`), so under wrk both get the same share of the cores.
//! It runs as its own process (this binary, hidden argument `baseline-server`) so its CPU is
//! counted apart from devstack's.

use actix_web::{App, HttpResponse, HttpServer, web};
use anyhow::Context;
use service_kit::service::ServerOptions;
use tokio::io::{AsyncBufReadExt, BufReader};

/// The hidden argument that makes this binary the baseline server.
pub const SERVE_ARGUMENT: &str = "baseline-server";

/// The constant answer, shaped like third-party-api's `{"value": n}`.
async fn constant_number() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "value": 42 }))
}

/// Serves the baseline on a free loopback port, printing `port <n>` once listening; never returns
/// unless the server fails.
pub fn serve() -> anyhow::Result<()> {
    actix_web::rt::System::new().block_on(async {
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
        println!("port {}", listener.local_addr()?.port());
        let server = HttpServer::new(|| {
            App::new().route("/api/RandomNumber", web::get().to(constant_number))
        })
        .disable_signals();
        let server = match ServerOptions::default().workers {
            Some(workers) => server.workers(workers),
            None => server,
        };
        server.listen(listener)?.run().await
    })?;
    Ok(())
}

/// The baseline server running as a child process; killed when dropped.
pub struct BaselineServer {
    child: tokio::process::Child,
    /// Its RandomNumber URL.
    pub url: String,
}

impl BaselineServer {
    /// Starts this binary as the baseline server and waits until it listens.
    pub async fn start() -> anyhow::Result<Self> {
        let exe = std::env::current_exe()?;
        let mut child = tokio::process::Command::new(exe)
            .arg(SERVE_ARGUMENT)
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .context("cannot start the baseline server")?;
        let stdout = child.stdout.take().context("no stdout")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).await?;
        let port: u16 = line
            .trim()
            .strip_prefix("port ")
            .and_then(|p| p.parse().ok())
            .with_context(|| format!("the baseline server said {line:?}, not its port"))?;
        Ok(Self {
            child,
            url: format!("http://127.0.0.1:{port}/api/RandomNumber"),
        })
    }

    /// Its process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }
}
