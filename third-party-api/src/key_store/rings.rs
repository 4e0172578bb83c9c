//! The keys in force, mirrored into the API-key rings that guard the routes: every function and
//! host key and the master key open `RandomNumber`; the master key alone opens the admin API.

use super::{Current, KeyDocument, KeyRef, KeyScope, KeyStore, KeyValue, MasterKeySource};
use azure_core::http::Etag;
use std::sync::atomic::Ordering;

impl KeyStore {
    /// Puts `document` in force: the rings first, then the document and its ETag.
    pub(super) fn install(&self, current: &mut Current, document: KeyDocument, etag: Option<Etag>) {
        self.refresh_rings(&document);
        current.document = Some(document);
        current.etag = etag;
        self.loaded.store(true, Ordering::Release);
    }

    /// Swaps both rings to `document`'s keys and the master key in force.
    pub(super) fn refresh_rings(&self, document: &KeyDocument) {
        let master = match self.master_source {
            MasterKeySource::Store => document.master_key(),
            MasterKeySource::KeyVault => self.vault_master.read().clone(),
        };
        let mut entries: Vec<(String, KeyValue)> = Vec::new();
        for scope in [KeyScope::Function, KeyScope::Host] {
            for (name, value) in document.keys(scope) {
                entries.push((ring_name(scope.label(), name), value));
            }
        }
        if let Some(master) = &master {
            entries.push(("master".into(), master.clone()));
        }
        self.function_ring
            .replace(entries.iter().map(|(n, v)| (n.as_str(), v.secret())));
        self.master_ring
            .replace(master.iter().map(|m| ("master", m.secret())));
    }
}

/// A key's name in the rings: `function/<name>` or `host/<name>`.
pub(super) fn ring_name(scope: &str, name: &str) -> String {
    format!("{scope}/{name}")
}

/// A key as logs name it: `master`, `function/<name>` or `host/<name>`.
pub(super) fn describe(key: &KeyRef) -> String {
    match key {
        KeyRef::Master => "master".into(),
        KeyRef::Named(scope, name) => ring_name(scope.label(), name.as_str()),
    }
}
