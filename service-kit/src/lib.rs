//! The skeleton every service of this workspace is built on: what makes a binary a service, not
//! how it authenticates (that is `shared_auth`).
//!
//! - [`service`]: one entry point, stop signal and grace, the HTTP server (a deadline on every
//!   request head, bounded keep-alive), `/readyz` with `Retry-After`, the settings every service
//!   reads, the command line.
//! - [`telemetry`]: logs, OpenTelemetry spans and log records over OTLP, `traceparent`
//!   propagation, access logs.
//! - [`api_key`]: the actix-web guard for Azure-Functions-style API keys.
//! - [`http_methods`]: a resource that answers 405 with `Allow` for a method it does not serve.
//! - [`request_body`]: a request body read with a size and a time limit.
//! - [`error_body`]: the JSON error body every service answers with.
//! - [`healthcheck`]: `<binary> healthcheck`, the container probe for images without a shell.

pub mod api_key;
pub mod error_body;
pub mod healthcheck;
pub mod http_methods;
pub mod request_body;
pub mod service;
pub mod telemetry;

pub use api_key::RequireApiKey;
pub use error_body::{ErrorBody, json_error};
