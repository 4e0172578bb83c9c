//! Keyless Azure authentication shared by every service of this workspace (how the services use
//! it, and the role each identity holds: `docs/ARCHITECTURE.md` at the repository's root).
//!
//! - [`credential`]: which Azure credential a process uses, chosen once from the environment.
//! - [`azure_error`]: a failed Azure call in an operator's words (status and Azure's error code,
//!   the missing role), never a body or a token.
//! - [`transport`]: the one HTTP client (extra CA trust, timeouts, pooling) all calls go through.
//! - [`api_key`]: Azure-Functions-style API keys for actix-web, checked in constant time.
//! - [`telemetry`]: logs, OpenTelemetry spans, `traceparent` propagation, access logs.
//! - [`request_body`]: a request body read with a size and a time limit.
//! - [`token_cache`]: the last good token, served while a refresh fails and it is still valid.
//! - [`secret_cache`]: a Key Vault secret kept in memory, refreshed, single flight.
//! - [`healthcheck`]: `<binary> healthcheck`, the container probe for images without a shell.
//! - [`service`]: the skeleton of every service binary: entry point, stop signal and grace, HTTP
//!   server, `/readyz`, `Retry-After`, listening and range settings.
//! - [`secret`], [`config`], [`error_body`]: secrets that never print, configuration errors that
//!   name the variable, the JSON error body.
//! - [`variables`]: the name of every environment variable this crate reads.
//! - [`role_names`]: the Azure role names errors name, one spelling for every crate.
//!
//! This crate knows nothing of the services that use it.

pub mod api_key;
pub mod azure_error;
pub mod config;
pub mod credential;
pub mod error_body;
pub mod healthcheck;
pub mod http_methods;
pub mod request_body;
pub mod role_names;
pub mod secret;
pub mod secret_cache;
pub mod service;
pub mod telemetry;
pub mod token_cache;
pub mod transport;
pub mod variables;

pub use api_key::{ApiKeyRing, AuthorizedKey, RequireApiKey};
pub use config::{ConfigError, EnvSource, MapEnv, ProcessEnv};
pub use credential::{CredentialChoice, CredentialKind, SelectedCredential, credential_from_env};
pub use error_body::{ErrorBody, json_error};
pub use secret::Secret;
