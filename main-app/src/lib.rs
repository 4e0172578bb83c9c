//! main-app: the public app of the walkthrough. It holds no Azure credential: its Entra identity
//! reads the third-party key from Key Vault, sends queue messages, and consumes ledger blobs.
//!
//! A request's path: [`routes::getcode`] asks [`third_party::ThirdPartyApi`] for a number (key
//! from [`shared_auth::secret_cache::SecretCache`]), builds a [`codes::Code`], reserves it in the
//! ledger ([`reservations::Reservations`]), sends a `code-issued` envelope with
//! [`queue::CodeQueue`], then answers. [`routes::verify`] consumes a
//! code from [`codes::ledger::CodeLedger`]. The whole flow, end to end: `docs/ARCHITECTURE.md`
//! at the repository's root.

pub mod config;
pub mod queue;
pub mod reservations;
pub mod routes;
pub mod startup;
pub mod third_party;
