//! API keys in the style of Azure Functions: a ring of named keys checked in constant time,
//! swappable while serving (rotation). The header and query parameter that carry a key are named
//! here; the actix-web guard that reads them is `service_kit::api_key`.

use crate::secret::Secret;
use parking_lot::RwLock;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use subtle::{ConditionallySelectable, ConstantTimeEq};

/// Header that carries a key, as in Azure Functions.
pub const KEY_HEADER: &str = "x-functions-key";
/// Query parameter that carries a key when the header is absent.
pub const KEY_QUERY_PARAMETER: &str = "code";

/// One key in the ring: its name and a digest of its value (the value itself is not kept).
struct RingEntry {
    name: Arc<str>,
    digest: [u8; 32],
}

/// A set of named keys, any of which authorises a request. Cheap to read, replaced atomically.
/// It remembers, per key name, when it last accepted that key (kept across replacements, so a
/// rotation can see that nobody presents an old key any more).
#[derive(Default)]
pub struct ApiKeyRing {
    entries: RwLock<Arc<Vec<RingEntry>>>,
    /// Key name → milliseconds since the Unix epoch of its last acceptance.
    accepted: RwLock<HashMap<Arc<str>, AtomicU64>>,
}

impl std::fmt::Debug for ApiKeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKeyRing")
            .field("names", &self.names())
            .finish()
    }
}

/// The key that authorised a request: its name only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizedKey {
    /// The key's name, safe to log.
    pub name: Arc<str>,
}

fn digest(value: &[u8]) -> [u8; 32] {
    Sha256::digest(value).into()
}

impl ApiKeyRing {
    /// A ring holding `keys` (name, value).
    pub fn new<'a>(keys: impl IntoIterator<Item = (&'a str, &'a Secret)>) -> Self {
        let ring = Self::default();
        ring.replace(keys);
        ring
    }

    /// Replaces every key at once; requests already checked are unaffected, the next ones see
    /// the new set. A key present in both sets never fails during the swap.
    pub fn replace<'a>(&self, keys: impl IntoIterator<Item = (&'a str, &'a Secret)>) {
        let entries: Vec<RingEntry> = keys
            .into_iter()
            .map(|(name, value)| RingEntry {
                name: Arc::from(name),
                digest: digest(value.expose().as_bytes()),
            })
            .collect();
        *self.entries.write() = Arc::new(entries);
    }

    /// The names of the keys in force.
    pub fn names(&self) -> Vec<String> {
        self.snapshot().iter().map(|e| e.name.to_string()).collect()
    }

    /// The number of keys in force.
    pub fn len(&self) -> usize {
        self.snapshot().len()
    }

    /// True when no key is in force (every request is refused).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn snapshot(&self) -> Arc<Vec<RingEntry>> {
        self.entries.read().clone()
    }

    /// The key `presented` matches, if any. Every entry is compared, in constant time, on
    /// digests of equal length, so neither the position of a match nor the length of the value
    /// shows in the timing.
    pub fn verify(&self, presented: &[u8]) -> Option<AuthorizedKey> {
        if presented.is_empty() {
            return None;
        }
        let candidate = digest(presented);
        let entries = self.snapshot();
        let mut found = 0u32; // index + 1 of the match, 0 for none
        for (index, entry) in entries.iter().enumerate() {
            let is_match = entry.digest.ct_eq(&candidate);
            found = u32::conditional_select(&found, &(index as u32 + 1), is_match);
        }
        let index = (found as usize).checked_sub(1)?;
        let name = entries[index].name.clone();
        self.record_acceptance(&name);
        Some(AuthorizedKey { name })
    }

    /// When the key called `name` was last accepted by this ring, if ever.
    pub fn last_accepted(&self, name: &str) -> Option<SystemTime> {
        let accepted = self.accepted.read();
        let millis = accepted.get(name)?.load(Ordering::Relaxed);
        Some(UNIX_EPOCH + Duration::from_millis(millis))
    }

    /// Notes that `name` was accepted now: an atomic store under a shared lock, the exclusive
    /// lock only the first time a name is seen.
    fn record_acceptance(&self, name: &Arc<str>) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        if let Some(at) = self.accepted.read().get(name) {
            at.store(now, Ordering::Relaxed);
            return;
        }
        self.accepted
            .write()
            .entry(name.clone())
            .or_default()
            .store(now, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(keys: &[(&str, &str)]) -> ApiKeyRing {
        let secrets: Vec<(String, Secret)> = keys
            .iter()
            .map(|(n, v)| (n.to_string(), Secret::new(*v)))
            .collect();
        ApiKeyRing::new(secrets.iter().map(|(n, s)| (n.as_str(), s)))
    }

    #[test]
    fn the_ring_remembers_when_each_key_was_last_accepted_across_replacements() {
        let r = ring(&[("old", "k-old-0123456789"), ("new", "k-new-0123456789")]);
        assert_eq!(r.last_accepted("old"), None);
        let before = SystemTime::now() - Duration::from_millis(1);
        assert!(r.verify(b"k-old-0123456789").is_some());
        assert!(r.verify(b"k-wrong-123456789").is_none());
        let at = r.last_accepted("old").expect("recorded");
        assert!(at >= before && at <= SystemTime::now() + Duration::from_millis(1));
        assert_eq!(r.last_accepted("new"), None, "only the key presented");
        let new = Secret::new("k-new-0123456789");
        r.replace([("new", &new)]);
        assert_eq!(r.last_accepted("old"), Some(at), "kept after the key left");
        assert!(r.verify(b"k-old-0123456789").is_none());
        assert_eq!(
            r.last_accepted("old"),
            Some(at),
            "a refused key is not recorded"
        );
    }

    #[test]
    fn right_key_gives_its_name_and_wrong_keys_give_nothing() {
        let ring = ring(&[
            ("default", "k-default-0123456789"),
            ("ops", "k-ops-0123456789"),
        ]);
        assert_eq!(
            ring.verify(b"k-ops-0123456789").map(|k| k.name.to_string()),
            Some("ops".into())
        );
        assert_eq!(
            ring.verify(b"k-default-0123456789")
                .map(|k| k.name.to_string()),
            Some("default".into())
        );
        for wrong in [
            &b""[..],
            b"k",
            b"k-ops-012345678",
            b"k-ops-01234567890",
            b"K-OPS-0123456789",
            &[0xff, 0x00, 0xfe, b'\n'][..],
            &[b'a'; 10_000][..],
        ] {
            assert!(ring.verify(wrong).is_none());
        }
    }

    #[test]
    fn empty_ring_refuses_everything() {
        let ring = ApiKeyRing::default();
        assert!(ring.is_empty());
        assert!(ring.verify(b"anything").is_none());
    }

    #[test]
    fn debug_lists_names_only() {
        let ring = ring(&[("default", "value-that-stays-hidden")]);
        let printed = format!("{ring:?}");
        assert!(printed.contains("default"));
        assert!(!printed.contains("value-that-stays-hidden"));
    }
}
