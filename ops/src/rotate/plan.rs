//! What is left to do, derived from what the vault and the key store say (pure: no I/O, no
//! clock). A rerun after an interruption at any point reads the same state and finishes.

use super::names::{fresh_key_name, in_family, key_name, key_stamp};
use super::report::rfc3339;
use serde::Serialize;
use time::OffsetDateTime;

/// The master key's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MasterState {
    /// In the vault and accepted by the admin API.
    Accepted,
    /// In the vault, not accepted yet (third-party-api has not reloaded it).
    NotAccepted,
    /// The placeholder or no usable value: a master key is to be generated.
    Placeholder,
}

/// A function key as the plan sees it: no value, whether the vault holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyInfo {
    /// The key's name.
    pub name: String,
    /// Whether the apps' secret's latest version holds this key's value.
    pub in_vault: bool,
    /// When it was last accepted (by the replica that answered).
    #[serde(serialize_with = "rfc3339")]
    pub last_accepted: Option<OffsetDateTime>,
}

/// What a run starts from.
#[derive(Debug, Clone)]
pub struct Observed {
    /// When the apps' secret's latest version was created.
    pub secret_created: Option<OffsetDateTime>,
    /// The master key's state.
    pub master: MasterState,
    /// The function keys; `None` while the admin API cannot be used (no master key yet).
    pub keys: Option<Vec<KeyInfo>>,
}

/// Where the key the vault will hold comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KeySource {
    /// A new key is to be added.
    New,
    /// An interrupted run added it and did not write it to the vault yet.
    AddedEarlier,
    /// The vault already holds it and older keys remain: an interrupted rotation to finish.
    Resume,
}

/// What is left to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    /// The master key's state (generate, wait for it, or nothing).
    pub master: MasterState,
    /// The key the vault holds at the end.
    pub key: String,
    /// Where it comes from.
    pub source: KeySource,
    /// Whether it still has to be written to the vault.
    pub write: bool,
    /// When main-app was last seen using it.
    #[serde(serialize_with = "rfc3339")]
    pub used_at: Option<OffsetDateTime>,
    /// The older family keys to revoke; `None` while the key store cannot be read.
    pub older: Option<Vec<KeyInfo>>,
}

/// Derives what is left to do from `observed`, for keys of `prefix`, a new key being named
/// after `now`. The key the vault is to hold is, in order: a family key newer than the vault's
/// (added by an interrupted run); the vault's own when older family keys remain (an interrupted
/// rotation); else a new one.
pub fn plan(observed: &Observed, prefix: &str, now: OffsetDateTime) -> Plan {
    let Some(keys) = &observed.keys else {
        return Plan {
            master: observed.master,
            key: key_name(prefix, now),
            source: KeySource::New,
            write: true,
            used_at: None,
            older: None,
        };
    };
    let family: Vec<&KeyInfo> = keys.iter().filter(|k| in_family(prefix, &k.name)).collect();
    let current = family.iter().copied().find(|k| k.in_vault);
    let newer_than = |stamp: OffsetDateTime| match current {
        Some(c) => match key_stamp(prefix, &c.name) {
            Some(current_stamp) => stamp > current_stamp,
            // The vault holds an unstamped key (the seed): newer than its version.
            None => observed
                .secret_created
                .is_none_or(|created| stamp >= whole(created)),
        },
        None => observed
            .secret_created
            .is_none_or(|created| stamp >= whole(created)),
    };
    let pending = family
        .iter()
        .copied()
        .filter(|k| !k.in_vault)
        .filter_map(|k| key_stamp(prefix, &k.name).map(|s| (s, k)))
        .filter(|(s, _)| newer_than(*s))
        .max_by(|(a, ka), (b, kb)| a.cmp(b).then(ka.name.cmp(&kb.name)))
        .map(|(_, k)| k);
    let (key, source) = match (pending, current) {
        (Some(p), _) => (p.name.clone(), KeySource::AddedEarlier),
        (None, Some(c)) if family.len() > 1 => (c.name.clone(), KeySource::Resume),
        _ => (
            fresh_key_name(prefix, now, keys.iter().map(|k| k.name.as_str())),
            KeySource::New,
        ),
    };
    let used_at = family
        .iter()
        .find(|k| k.name == key)
        .and_then(|k| k.last_accepted);
    let older = family
        .iter()
        .filter(|k| k.name != key)
        .map(|k| (*k).clone())
        .collect();
    Plan {
        master: observed.master,
        write: source != KeySource::Resume,
        key,
        source,
        used_at,
        older: Some(older),
    }
}

/// `t` without its fraction of a second (key names have whole seconds).
fn whole(t: OffsetDateTime) -> OffsetDateTime {
    t.replace_nanosecond(0).unwrap_or(t)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use time::format_description::well_known::Rfc3339;

    pub(in crate::rotate) const P: &str = "main-app";
    pub(in crate::rotate) const NOW: &str = "2026-11-20T09:30:05Z";

    pub(in crate::rotate) fn at(text: &str) -> OffsetDateTime {
        OffsetDateTime::parse(text, &Rfc3339).unwrap()
    }

    pub(in crate::rotate) fn key(name: &str, in_vault: bool, last: Option<&str>) -> KeyInfo {
        KeyInfo {
            name: name.into(),
            in_vault,
            last_accepted: last.map(at),
        }
    }

    pub(in crate::rotate) fn observed(created: &str, keys: Vec<KeyInfo>) -> Observed {
        Observed {
            secret_created: Some(at(created)),
            master: MasterState::Accepted,
            keys: Some(keys),
        }
    }

    /// Plans from a vault version created at `created` holding the key marked `in_vault`, and
    /// checks the key chosen, where it comes from and the keys to revoke.
    fn check(created: &str, keys: Vec<KeyInfo>, key: &str, source: KeySource, revoke: &[&str]) {
        let p = plan(&observed(created, keys), P, at(NOW));
        let older: Vec<&str> = p.older.iter().flatten().map(|k| k.name.as_str()).collect();
        assert_eq!((p.key.as_str(), p.source), (key, source));
        assert_eq!(older, revoke, "the keys to revoke");
        assert_eq!(p.write, source != KeySource::Resume);
    }

    const NEW: &str = "main-app-20261120093005";
    const ADDED: &str = "main-app-20261120092000";

    #[test]
    fn a_first_rotation_from_the_seed_adds_writes_and_revokes_the_seed_only() {
        let keys = vec![
            key(P, true, Some("2026-11-20T09:30:00Z")),
            key("other-client", false, None),
        ];
        check("2026-11-01T00:00:00Z", keys, NEW, KeySource::New, &[P]);
    }

    #[test]
    fn the_vault_holding_the_placeholder_gets_a_new_key_and_nothing_to_revoke() {
        check("2026-11-01T00:00:00Z", vec![], NEW, KeySource::New, &[]);
    }

    #[test]
    fn interrupted_after_add_reuses_the_added_key() {
        let old = "main-app-20260801000000";
        for (created, in_vault, revoke) in [
            // The seed in the vault (created at provisioning), the new key added, not written.
            ("2026-11-01T00:00:00Z", Some(P), &[P][..]),
            // Same after a completed rotation: the vault holds a stamped key.
            ("2026-08-01T00:00:20Z", Some(old), &[old][..]),
            // With the placeholder in the vault.
            ("2026-11-01T00:00:00Z", None, &[][..]),
        ] {
            let mut keys: Vec<KeyInfo> = in_vault
                .map(|name| key(name, true, Some("2026-11-20T09:29:00Z")))
                .into_iter()
                .collect();
            keys.push(key(ADDED, false, None));
            check(created, keys, ADDED, KeySource::AddedEarlier, revoke);
        }
    }

    #[test]
    fn a_key_stamped_before_the_vaults_version_is_not_reused() {
        // A stale key from before the placeholder was written, or one stamped before a vault
        // value it does not match: a new key, the stale one revoked with the rest.
        for (created, stale) in [
            ("2026-11-01T00:00:00Z", "main-app-20261031000000"),
            ("2026-11-20T09:20:15Z", ADDED),
        ] {
            let keys = vec![key(stale, false, None)];
            check(created, keys, NEW, KeySource::New, &[stale]);
        }
    }

    #[test]
    fn interrupted_after_write_finishes_that_rotation_without_a_new_key() {
        for used in [None, Some("2026-11-20T09:29:30Z")] {
            let keys = vec![
                key(P, false, Some("2026-11-20T09:29:00Z")),
                key(ADDED, true, used),
            ];
            let p = plan(&observed("2026-11-20T09:20:15Z", keys.clone()), P, at(NOW));
            assert_eq!(p.used_at, used.map(at));
            check("2026-11-20T09:20:15Z", keys, ADDED, KeySource::Resume, &[P]);
        }
        // Interrupted during the revoke: finished with the keys left.
        let old = "main-app-20260801000000";
        let keys = vec![key(old, false, None), key(ADDED, true, Some(NOW))];
        check(
            "2026-11-20T09:20:15Z",
            keys,
            ADDED,
            KeySource::Resume,
            &[old],
        );
    }

    #[test]
    fn after_a_completed_rotation_the_next_run_rotates_again() {
        let keys = vec![key(ADDED, true, Some("2026-11-20T09:30:00Z"))];
        check("2026-11-20T09:20:15Z", keys, NEW, KeySource::New, &[ADDED]);
    }

    #[test]
    fn of_two_added_keys_the_newest_is_used_and_the_other_revoked() {
        let first = "main-app-20261120091000";
        let keys = vec![
            key(P, true, None),
            key(first, false, None),
            key(ADDED, false, None),
        ];
        check(
            "2026-11-01T00:00:00Z",
            keys,
            ADDED,
            KeySource::AddedEarlier,
            &[P, first],
        );
    }

    #[test]
    fn without_the_key_list_the_plan_is_tentative() {
        for master in [MasterState::Placeholder, MasterState::NotAccepted] {
            let o = Observed {
                secret_created: None,
                master,
                keys: None,
            };
            let p = plan(&o, P, at(NOW));
            assert_eq!(p.master, master);
            assert_eq!(p.source, KeySource::New);
            assert_eq!(p.older, None);
        }
    }
}
