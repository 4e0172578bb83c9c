//! `/healthz` (the process is alive) and `/readyz` (the keys are loaded). `/readyz` says only
//! ready or not and which check fails; why goes to the log.

use crate::key_store::KeyStore;
use actix_web::web;
use service_kit::service::Readiness;

pub use service_kit::service::healthz;

/// Readiness: the keys are loaded (and a file store is still on disk), check `key_store`. The
/// master key is not part of it: `RandomNumber` serves without it; only the admin API waits.
pub async fn readyz(store: web::Data<KeyStore>) -> Readiness {
    let keys = match store.is_ready() {
        true => Ok(()),
        false => Err("the keys are not loaded (or the key file is gone)"),
    };
    Readiness::new().check("key_store", keys)
}
