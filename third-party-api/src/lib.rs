//! third-party-api: the example third-party API of the walkthrough, an Azure-Functions-style host
//! serving one function, `RandomNumber`, behind access keys.
//!
//! A request to `/api/RandomNumber` passes the [`service_kit::RequireApiKey`] guard built from
//! the [`key_store::KeyStore`] (function keys, host keys, master key), then
//! [`routes::random_number`] answers `{"value": N}`. The admin API ([`routes::admin`]) changes
//! keys with the master key; each change is written to its store first and only then put in
//! force. Its key lifecycle in Azure: `docs/ARCHITECTURE.md` at the repository's root.

pub mod config;
pub mod key_store;
pub mod routes;
pub mod startup;
