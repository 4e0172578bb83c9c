//! The storage gate: an HTTPS reverse proxy in front of Azurite that enforces the role table as
//! Azure Storage does. Azurite checks a token's issuer, audience and lifetime but never the
//! caller's roles, so without the gate a missing role would pass locally and fail in Azure.
//! Requests the roles allow are forwarded (token included: Azurite checks it too).
//!
//! The path is normalised once ([`CheckedPath`]): percent-decoded segment by segment, refused
//! with 400 `InvalidUri` when it holds a dot segment (`.`, `..`, percent-encoded or not), an
//! encoded separator (`%2F`, `%5C`), a backslash, an empty segment other than one trailing slash,
//! or an undecodable escape; then classified, and the upstream URL is built from that same checked
//! path, so Azurite acts on exactly the resource the roles were checked against.
//!
//! Key-based authorization is refused as by a storage account with `allowSharedKeyAccess: false`
//! (what `infra/` deploys): a `SharedKey`/`SharedKeyLite` `Authorization` header, or an account
//! or service SAS (a `sig` query parameter), gets 403 `KeyBasedAuthenticationNotPermitted`.
//! A user-delegation SAS (`skoid`/`sktid`), which Azure would accept, is refused too (403
//! `AuthorizationFailure`): the gate cannot check its roles, so devstack supports tokens only.
//!
//! By concern: `classify` (the resource, permission and operation of a request), `auth` (who may
//! pass), `proxy` (forwarding), `errors` (as Azure Storage answers them) and `counts`.

mod auth;
mod classify;
mod counts;
mod errors;
mod proxy;

use crate::azurite::ACCOUNT;
use crate::caller::AccessCheck;
use crate::stall::Stall;
use actix_web::web;
use parking_lot::Mutex;
use std::sync::Arc;

pub use crate::caller::Need;
pub use crate::storage_path::{CheckedPath, PathError};
pub use classify::{classify, operation};
pub use counts::{OperationCount, OperationCounts};

/// Which storage service a gate fronts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageService {
    /// Queue Storage.
    Queue,
    /// Blob Storage.
    Blob,
}

impl StorageService {
    /// The Azure service's name (`Queue Storage`, `Blob Storage`).
    pub fn azure_name(self) -> &'static str {
        match self {
            StorageService::Queue => "Queue Storage",
            StorageService::Blob => "Blob Storage",
        }
    }
}

/// One gate: the service it fronts and where Azurite listens.
pub struct StorageGate {
    service: StorageService,
    upstream: String,
    http: reqwest::Client,
    access: AccessCheck,
    counts: OperationCounts,
    fault: Mutex<Option<Fault>>,
    stall: Stall,
}

/// An answer a gate can give every request instead of forwarding it, to fail one storage
/// service alone (the other keeps answering).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// 503 `ServerBusy`: a throttled or failing account; the SDK retries it.
    ServerBusy,
    /// 400 `InvalidInput`: Storage refusing the request for itself, not for the account's state.
    InvalidInput,
    /// The next request of this operation (`"Set Blob Metadata"`, ...) is carried out, and its
    /// answer lost: the caller gets 500 `InternalError` instead, as when a response is lost on
    /// the way back. Once; then the gate forwards again.
    LoseAnswer(&'static str),
}

impl StorageGate {
    /// A gate for `service` forwarding to `upstream` (Azurite's endpoint) with `http`, letting
    /// through what `access` allows.
    pub fn new(
        service: StorageService,
        upstream: String,
        http: reqwest::Client,
        access: AccessCheck,
    ) -> Self {
        Self {
            service,
            upstream,
            http,
            access,
            counts: OperationCounts::default(),
            fault: Mutex::new(None),
            stall: Stall::default(),
        }
    }

    /// While `Some`, every request gets `fault`'s answer; `None` forwards again.
    pub fn set_fault(&self, fault: Option<Fault>) {
        *self.fault.lock() = fault;
    }

    /// The gate's simulated hang: while set, every request waits, unanswered, until it ends or
    /// its client gives up.
    pub fn stall(&self) -> &Stall {
        &self.stall
    }

    /// The service this gate fronts.
    pub fn service(&self) -> StorageService {
        self.service
    }

    /// The requests this gate forwarded to Azurite, by caller and operation.
    pub fn operation_counts(&self) -> &OperationCounts {
        &self.counts
    }

    /// The fault in force, if any.
    fn fault(&self) -> Option<Fault> {
        *self.fault.lock()
    }

    /// Whether this request of `operation` is the one whose answer is lost (once).
    fn loses_answer_to(&self, operation: &str) -> bool {
        let mut fault = self.fault.lock();
        let lost = matches!(*fault, Some(Fault::LoseAnswer(op)) if op == operation);
        if lost {
            *fault = None;
        }
        lost
    }

    /// Registers the one handler every path goes through.
    pub fn configure(self: &Arc<Self>, cfg: &mut web::ServiceConfig) {
        cfg.app_data(web::Data::from(self.clone()))
            .app_data(web::PayloadConfig::new(256 * 1024 * 1024))
            .default_service(web::to(proxy::gate));
    }

    /// The audiences a token for this service may name.
    fn audiences(&self) -> [String; 3] {
        let service = match self.service {
            StorageService::Queue => "queue",
            StorageService::Blob => "blob",
        };
        [
            "https://storage.azure.com".to_owned(),
            "e406a681-f3d4-42a8-90b6-c2b029497af1".to_owned(),
            format!("https://{ACCOUNT}.{service}.core.windows.net"),
        ]
    }
}

#[cfg(test)]
mod tests;
