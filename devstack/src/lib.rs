//! devstack: local Azure on one machine, so the services run their production code path with no
//! Azure account and no Docker.
//!
//! - [`pki`]: a local CA and server certificate, made at run time.
//! - [`identity`]: managed-identity and Entra token endpoints issuing signed JWTs per identity.
//! - [`keyvault`]: the Key Vault secrets API with challenge auth and RBAC.
//! - [`azurite`]: Azurite (Queue and Blob Storage) from npm, over HTTPS with token auth.
//! - [`storage_gate`]: an HTTPS gate in front of Azurite enforcing the storage role table.
//! - `storage_path`: a storage request path checked once, the one the gate classifies and forwards.
//! - [`rbac`]: the role assignments both enforce.
//! - `caller`: who is calling and whether they may: the token and role check both share.
//! - `access_log`: every access that check decided, for the console.
//! - [`console`]: a page on loopback showing resources, roles, tokens, access decisions, queues,
//!   the ledger and traces (it is the services' OTLP receiver when the person runs no collector).
//! - [`stack`]: all of it started together, seeded, and the services launched as child processes.
//! - [`process`], [`jwt`]: child processes in their own group; the tokens' format.
//! - [`compose`]: the same emulators in containers, for `docker-compose.yml`.
//!
//! The test kit every crate's integration tests share is the `test-kit` crate, built on this one.

pub(crate) mod access_log;
pub mod azurite;
pub(crate) mod caller;
pub mod compose;
pub mod console;
pub mod identity;
pub mod jwt;
pub mod keyvault;
pub mod pki;
pub mod process;
pub mod rbac;
pub mod stack;
pub mod stall;
pub mod storage_gate;
pub(crate) mod storage_path;
