//! What the waits and the master key's renewal decide, from times alone (pure: no I/O, no
//! clock): when main-app counts as using the new key, which older keys are still within their
//! grace period, whether the master key's expiry is due, and how long each wait may take.

use super::report::when;
use std::collections::HashMap;
use std::time::Duration;
use time::OffsetDateTime;

/// Added to the key store's refresh interval before a new key is handed to main-app.
pub const PROPAGATION_MARGIN: Duration = Duration::from_secs(2);
/// Added to main-app's key cache lifetime before its cache counts as expired: a read in flight
/// at the write, and the clocks of the vault and of this host.
pub const CACHE_MARGIN: Duration = Duration::from_secs(2);
/// How often a wait reads the key store again.
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// How long each wait of a run may take at most.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitLimits {
    /// The admin API accepting the master key in the vault.
    pub master: Duration,
    /// A new key reaching every third-party-api replica (its stamp's second, then the refresh).
    pub propagation: Duration,
    /// main-app using the new key, or its key cache expiring without traffic.
    pub used: Duration,
    /// Every older key going unused for the grace period.
    pub idle: Duration,
}

impl WaitLimits {
    /// The limits for a run with these settings and third-party-api's key store refresh.
    pub fn new(
        wait_timeout: Duration,
        grace: Duration,
        main_app_cache: Duration,
        keys_refresh: Duration,
    ) -> Self {
        Self {
            master: wait_timeout,
            propagation: Duration::from_secs(1) + keys_refresh + PROPAGATION_MARGIN,
            used: wait_timeout.max(main_app_cache + CACHE_MARGIN + POLL_INTERVAL),
            idle: wait_timeout.max(main_app_cache + CACHE_MARGIN + POLL_INTERVAL) + grace,
        }
    }

    /// The longest a run can wait in all (its HTTP calls add seconds).
    pub fn total(&self) -> Duration {
        self.master + self.propagation + self.used + self.idle
    }
}

/// The latest use of each key that any look reported: each look is answered by one replica,
/// and each replica knows only the uses it accepted.
#[derive(Debug, Default)]
pub struct Sightings(HashMap<String, OffsetDateTime>);

impl Sightings {
    /// Records that a replica last accepted `name` at `at`; returns the latest use known.
    pub fn record(&mut self, name: &str, at: Option<OffsetDateTime>) -> Option<OffsetDateTime> {
        let known = self.0.get(name).copied();
        let latest = match (at, known) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        if let Some(latest) = latest {
            self.0.insert(name.to_owned(), latest);
        }
        latest
    }
}

/// A key's name and its latest known use.
pub type Use = (String, Option<OffsetDateTime>);

/// Where step "wait used" stands.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Used {
    /// main-app presented the new key at this time.
    Accepted(#[serde(serialize_with = "super::report::rfc3339_at")] OffsetDateTime),
    /// No older key exists: main-app had no other key, there is nothing to prove.
    NothingToProve,
    /// No older key was accepted for main-app's whole cache lifetime since the write: every
    /// replica of main-app reads the new value at its next call (and at once after a 401).
    CacheExpired {
        /// How long it has been quiet.
        #[serde(serialize_with = "super::report::seconds")]
        quiet: Duration,
        /// The last use of an older key after the write, if there was one.
        #[serde(serialize_with = "super::report::rfc3339")]
        last_older: Option<OffsetDateTime>,
    },
    /// Not yet, in words for the progress line.
    NotYet(String),
}

/// Decides "wait used" for the new key last accepted at `new_key`, the `older` keys of the
/// family, the new version written at `written`, main-app's key cache lifetime `cache`, `now`.
/// Uses of an older key before the write are main-app's own old traffic; one after the write
/// restarts the count, so the cache is expired only after a whole lifetime with none.
pub fn wait_used(
    new_key: Option<OffsetDateTime>,
    older: &[Use],
    written: OffsetDateTime,
    cache: Duration,
    now: OffsetDateTime,
) -> Used {
    if let Some(t) = new_key {
        return Used::Accepted(t);
    }
    if older.is_empty() {
        return Used::NothingToProve;
    }
    let last_older = older
        .iter()
        .filter_map(|(_, last)| *last)
        .filter(|last| *last > written)
        .max();
    let quiet = now - last_older.unwrap_or(written);
    let left =
        time::Duration::try_from(cache + CACHE_MARGIN).unwrap_or(time::Duration::MAX) - quiet;
    if !left.is_positive() {
        return Used::CacheExpired {
            quiet: Duration::try_from(quiet).unwrap_or_default(),
            last_older,
        };
    }
    let traffic = match last_older {
        Some(t) => format!(
            "an older key was accepted at {}, after the write",
            when(Some(t))
        ),
        None => "no traffic since the write".into(),
    };
    Used::NotYet(format!(
        "not accepted yet; {traffic}: main-app's cache ({} s) expires in {} s",
        cache.as_secs(),
        left.whole_seconds() + 1
    ))
}

/// The older keys still within their grace period, each with the seconds left; empty when all
/// are idle. Every main-app replica reads the new value within its key cache lifetime `cache`
/// of the write, so a key's idle time counts from the later of its last use and `written +
/// cache`: nobody calling, a run ends one cache lifetime plus the grace period after the write;
/// an older key still accepted after that (a replica serving a stale key while Key Vault fails)
/// holds the revocation until it has been quiet for the grace period.
pub fn still_busy(
    older: &[Use],
    written: OffsetDateTime,
    (cache, grace): (Duration, Duration),
    now: OffsetDateTime,
) -> Vec<(String, i64)> {
    let grace = time::Duration::try_from(grace).unwrap_or(time::Duration::MAX);
    let cached_until = written + time::Duration::try_from(cache).unwrap_or(time::Duration::MAX);
    older
        .iter()
        .filter_map(|(name, last)| {
            let idle_since = last.map_or(cached_until, |l| l.max(cached_until));
            let left = grace - (now - idle_since);
            left.is_positive()
                .then(|| (name.clone(), left.whole_seconds() + 1))
        })
        .collect()
}

/// Whether a secret version expiring at `expires` is due for a new expiry: it has none, or it
/// expires within half of `expires_in_days` of `now`.
pub fn expiry_due(
    expires: Option<OffsetDateTime>,
    expires_in_days: u32,
    now: OffsetDateTime,
) -> bool {
    let half = time::Duration::hours(i64::from(expires_in_days) * 12);
    expires.is_none_or(|exp| exp - now < half)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rotate::plan::tests::at;

    const WRITTEN: &str = "2026-11-20T09:00:00Z";
    const CACHE: Duration = Duration::from_secs(300);

    fn after(seconds: i64) -> OffsetDateTime {
        at(WRITTEN) + time::Duration::seconds(seconds)
    }

    fn older(last: Option<OffsetDateTime>) -> Vec<Use> {
        vec![("main-app".into(), last), ("main-app-old".into(), None)]
    }

    #[test]
    fn the_new_key_accepted_ends_the_wait_at_once() {
        let used = wait_used(
            Some(after(3)),
            &older(Some(after(2))),
            at(WRITTEN),
            CACHE,
            after(4),
        );
        assert_eq!(used, Used::Accepted(after(3)));
    }

    #[test]
    fn without_an_older_key_there_is_nothing_to_prove() {
        assert_eq!(
            wait_used(None, &[], at(WRITTEN), CACHE, after(0)),
            Used::NothingToProve
        );
    }

    #[test]
    fn without_traffic_the_wait_ends_once_main_apps_cache_has_expired() {
        // Uses before the write are main-app's old traffic: they do not count.
        for last in [None, Some(after(-30))] {
            let used = |s| wait_used(None, &older(last), at(WRITTEN), CACHE, after(s));
            let Used::NotYet(detail) = used(301) else {
                panic!("still within the cache lifetime and its margin")
            };
            assert!(detail.contains("no traffic since the write"), "{detail}");
            assert!(detail.contains("cache (300 s) expires in 2 s"), "{detail}");
            assert_eq!(
                used(302),
                Used::CacheExpired {
                    quiet: Duration::from_secs(302),
                    last_older: None
                }
            );
        }
    }

    #[test]
    fn an_older_key_used_after_the_write_restarts_the_count() {
        let last = Some(after(100));
        let used = |s| wait_used(None, &older(last), at(WRITTEN), CACHE, after(s));
        let Used::NotYet(detail) = used(302) else {
            panic!("an older key was used 202 s ago")
        };
        assert!(detail.contains("accepted at 2026-11-20T09:01:40Z, after the write"));
        assert_eq!(
            used(402),
            Used::CacheExpired {
                quiet: Duration::from_secs(302),
                last_older: last
            }
        );
    }

    #[test]
    fn older_keys_are_idle_one_cache_lifetime_and_the_grace_period_after_the_write() {
        let times = (CACHE, Duration::from_secs(15));
        // Nobody calls, or calls stop before the cache lifetime: idle at 300 + 15 s.
        for last in [None, Some(after(-30)), Some(after(200))] {
            let quiet = older(last);
            let busy = still_busy(&quiet, at(WRITTEN), times, after(314));
            assert_eq!(busy.len(), 2, "{busy:?}");
            assert_eq!(busy[1], ("main-app-old".into(), 2));
            assert!(still_busy(&quiet, at(WRITTEN), times, after(315)).is_empty());
        }
        // A use after the cache lifetime (a replica serving a stale key) counts from then.
        let stale = older(Some(after(320)));
        assert_eq!(
            still_busy(&stale, at(WRITTEN), times, after(330)),
            vec![("main-app".into(), 6)]
        );
        assert!(still_busy(&stale, at(WRITTEN), times, after(335)).is_empty());
        assert!(still_busy(&[], at(WRITTEN), times, after(0)).is_empty());
    }

    #[test]
    fn sightings_keep_the_latest_use_any_replica_reported() {
        let mut seen = Sightings::default();
        assert_eq!(seen.record("k", None), None);
        assert_eq!(seen.record("k", Some(after(5))), Some(after(5)));
        assert_eq!(seen.record("k", None), Some(after(5)), "another replica");
        assert_eq!(seen.record("k", Some(after(2))), Some(after(5)));
    }

    #[test]
    fn the_master_keys_expiry_is_renewed_from_half_its_lifetime() {
        let now = at(WRITTEN);
        let in_days = |d| Some(now + time::Duration::days(d));
        assert!(expiry_due(None, 90, now));
        assert!(expiry_due(in_days(-1), 90, now), "already expired");
        assert!(expiry_due(in_days(44), 90, now));
        assert!(!expiry_due(in_days(46), 90, now));
        assert!(!expiry_due(in_days(90), 90, now));
    }

    #[test]
    fn the_limits_cover_every_wait() {
        let s = Duration::from_secs;
        let limits = WaitLimits::new(s(900), s(300), s(300), s(10));
        assert_eq!(limits.used, s(900));
        assert_eq!(limits.total(), s(900 + 13 + 900 + 1200));
        // A cache longer than the wait timeout lengthens "wait used" to cover it.
        assert_eq!(WaitLimits::new(s(60), s(5), s(300), s(2)).used, s(303));
    }
}
