//! Keyless Azure authentication shared by every service of this workspace (how the services use
//! it, and the role each identity holds: `docs/ARCHITECTURE.md` at the repository's root).
//!
//! - [`credential`]: which Azure credential a process uses, chosen once from the environment.
//! - [`azure_error`]: a failed Azure call in an operator's words (status and Azure's error code,
//!   the missing role), never a body or a token.
//! - [`transport`]: the one HTTP client (extra CA trust, timeouts, pooling) all calls go through.
//! - [`api_key`]: Azure-Functions-style API keys, checked in constant time.
//! - [`token_cache`]: the last good token, served while a refresh fails and it is still valid.
//! - [`secret_cache`]: a Key Vault secret kept in memory, refreshed, single flight.
//! - [`check_state`]: how one dependency check stands, what readiness is made of.
//! - [`secret`], [`config`]: secrets that never print, configuration errors that name the
//!   variable.
//! - [`variables`]: the name of every environment variable this crate reads.
//! - [`role_names`]: the Azure role names errors name, one spelling for every crate.
//!
//! This crate knows nothing of the services that use it, nor of HTTP servers: the service
//! skeleton (server, `/readyz`, telemetry, the API-key guard) is `service_kit`.

pub mod api_key;
pub mod azure_error;
pub mod check_state;
pub mod config;
pub mod credential;
pub mod role_names;
pub mod secret;
pub mod secret_cache;
pub mod token_cache;
pub mod transport;
pub mod variables;

pub use api_key::{ApiKeyRing, AuthorizedKey};
pub use check_state::{CheckState, Health};
pub use config::{ConfigError, EnvSource, MapEnv, ProcessEnv};
pub use credential::{CredentialChoice, CredentialKind, SelectedCredential, credential_from_env};
pub use secret::Secret;
