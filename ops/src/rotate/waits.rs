//! The waits of a run, each polling the key store through the admin API until the state says
//! it may go on, with progress (to the run's error writer, stderr) and a limit: the master key
//! accepted, a new key loaded by every replica, main-app using the new key (or its cache expired
//! without traffic), the older keys idle for the grace period. What each look means is decided
//! in [`super::decide`].

use super::decide::{POLL_INTERVAL, Sightings, Use, Used, still_busy, wait_used};
use super::names::{in_family, key_stamp};
use super::{RotateConfig, RotateSettings, admin_failure};
use crate::OpsError;
use crate::admin_client::{AdminClient, FunctionKey};
use parking_lot::Mutex;
use std::future::Future;
use std::io::Write;
use std::time::{Duration, Instant};
use time::OffsetDateTime;

/// How often a wait reports progress on stderr.
pub const PROGRESS_INTERVAL: Duration = Duration::from_secs(10);

/// Progress of a wait: at the start, then every [`PROGRESS_INTERVAL`].
pub(super) struct Progress {
    what: String,
    started: Instant,
    last: Option<Instant>,
}

impl Progress {
    pub(super) fn new(what: String) -> Self {
        Self {
            what,
            started: Instant::now(),
            last: None,
        }
    }

    /// Writes a progress line to `err` unless one was written less than
    /// [`PROGRESS_INTERVAL`] ago.
    pub(super) fn report(&mut self, err: &mut (dyn Write + Send), detail: &str, limit: Duration) {
        if self.last.is_some_and(|l| l.elapsed() < PROGRESS_INTERVAL) {
            return;
        }
        self.last = Some(Instant::now());
        let _ = writeln!(
            err,
            "keyless rotate: {}: {detail} ({} s of at most {} s)",
            self.what,
            self.started.elapsed().as_secs(),
            limit.as_secs()
        );
    }
}

/// What one look at the state says during a wait.
enum Look<T> {
    Ready(T),
    NotYet(String),
}

/// Polls `look` every [`POLL_INTERVAL`] until it is ready, with progress to `err`; fails after
/// `limit`.
async fn wait_for<T, F, Fut>(
    what: &str,
    limit: Duration,
    err: &mut (dyn Write + Send),
    mut look: F,
) -> Result<T, OpsError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Look<T>, OpsError>>,
{
    let mut progress = Progress::new(what.to_owned());
    let deadline = std::time::Instant::now() + limit;
    loop {
        match look().await? {
            Look::Ready(value) => return Ok(value),
            Look::NotYet(detail) => {
                if std::time::Instant::now() >= deadline {
                    return Err(OpsError::Failed(format!(
                        "{what}: still not done after {} s ({detail}); nothing was revoked. Run \
                         `keyless rotate` again to continue where it stopped",
                        limit.as_secs()
                    )));
                }
                progress.report(err, &detail, limit);
            }
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// The function keys, or `None` when the admin API did not answer (worth another look).
async fn list(admin: &AdminClient) -> Result<Option<Vec<FunctionKey>>, OpsError> {
    match admin.list().await {
        Ok(keys) => Ok(Some(keys)),
        Err(e) if e.is_transient() => Ok(None),
        Err(e) => Err(admin_failure("reading the function keys", &e)),
    }
}

/// Waits until the admin API accepts the vault's master key (third-party-api reloads it);
/// returns the function keys it then lists.
pub(super) async fn master_accepted(
    admin: &AdminClient,
    config: &RotateConfig,
    limit: Duration,
    err: &mut (dyn Write + Send),
) -> Result<Vec<FunctionKey>, OpsError> {
    let what = format!(
        "waiting for the admin API at {} to accept the master key in {}",
        admin.keys_url(),
        config.master_secret_name
    );
    wait_for(&what, limit, err, || async {
        match admin.list().await {
            Ok(keys) => Ok(Look::Ready(keys)),
            Err(e) if e.is_transient() => Ok(Look::NotYet(e.to_string())),
            Err(e) => Err(admin_failure("reading the function keys", &e)),
        }
    })
    .await
}

/// Sleeps until key `name` is older than the key store's refresh interval plus a margin, so
/// every third-party-api replica accepts it before main-app may use it. The age comes from the
/// name's stamp, so a rerun waits only for what is left.
pub(super) async fn propagation(
    prefix: &str,
    name: &str,
    (refresh, limit): (Duration, Duration),
    err: &mut (dyn Write + Send),
) {
    let Some(stamp) = key_stamp(prefix, name) else {
        return;
    };
    // The stamp has whole seconds: the limit counts from the start of that second.
    let ready = stamp + limit;
    let left = ready - OffsetDateTime::now_utc();
    if left.is_positive() {
        let left = Duration::try_from(left).unwrap_or_default();
        let _ = writeln!(
            err,
            "keyless rotate: waiting {} s until every third-party-api replica has loaded {name} \
             (key store refresh {} s)",
            left.as_secs() + 1,
            refresh.as_secs()
        );
        tokio::time::sleep(left).await;
    }
}

/// What the waits after the write watch: the new key, when it was written, and the key store
/// through the admin API; `seen` merges what every look said.
pub(super) struct NewKey<'a> {
    pub(super) admin: &'a AdminClient,
    pub(super) settings: &'a RotateSettings,
    pub(super) config: &'a RotateConfig,
    pub(super) key: &'a str,
    pub(super) written: OffsetDateTime,
}

impl NewKey<'_> {
    /// One look at the key store: the latest known use of the new key and of each older family
    /// key, merged into `seen`; `None` when the admin API did not answer. Fails when the new key
    /// itself is gone.
    async fn look(
        &self,
        seen: &Mutex<Sightings>,
    ) -> Result<Look<(Option<OffsetDateTime>, Vec<Use>)>, OpsError> {
        let Some(keys) = list(self.admin).await? else {
            return Ok(Look::NotYet("the admin API did not answer".into()));
        };
        let key = self.key;
        if !keys.iter().any(|k| k.name == key) {
            return Err(OpsError::Failed(format!(
                "function key {key} is no longer in the key store: someone removed it; run \
                 `keyless rotate` again"
            )));
        }
        let mut seen = seen.lock();
        let mut current = None;
        let mut older = Vec::new();
        let prefix = &self.settings.key_prefix;
        for k in keys.iter().filter(|k| in_family(prefix, &k.name)) {
            let last = seen.record(&k.name, k.last_accepted);
            if k.name == key {
                current = last;
            } else {
                older.push((k.name.clone(), last));
            }
        }
        Ok(Look::Ready((current, older)))
    }

    /// Step 3: waits until main-app uses the new key, or its key cache has expired with no older
    /// key accepted since the write, or there is no older key at all; returns which.
    pub(super) async fn used(
        &self,
        limit: Duration,
        err: &mut (dyn Write + Send),
    ) -> Result<Used, OpsError> {
        let seen = Mutex::default();
        let what = format!("waiting for main-app to use {}", self.key);
        let cache = self.config.main_app_cache;
        wait_for(&what, limit, err, || async {
            let Look::Ready((current, older)) = self.look(&seen).await? else {
                return Ok(Look::NotYet("the admin API did not answer".into()));
            };
            let now = OffsetDateTime::now_utc();
            Ok(match wait_used(current, &older, self.written, cache, now) {
                Used::NotYet(detail) => Look::NotYet(detail),
                done => Look::Ready(done),
            })
        })
        .await
    }

    /// Step 4: waits until every older family key has not been accepted for the grace period,
    /// counted from the later of its last use and main-app's key cache lifetime after the write;
    /// returns their names.
    pub(super) async fn idle(
        &self,
        limit: Duration,
        err: &mut (dyn Write + Send),
    ) -> Result<Vec<String>, OpsError> {
        let seen = Mutex::default();
        let times = (self.config.main_app_cache, self.settings.grace());
        wait_for(
            "waiting for the older keys to go unused",
            limit,
            err,
            || async {
                let Look::Ready((_, older)) = self.look(&seen).await? else {
                    return Ok(Look::NotYet("the admin API did not answer".into()));
                };
                let busy = still_busy(&older, self.written, times, OffsetDateTime::now_utc());
                Ok(if busy.is_empty() {
                    Look::Ready(older.into_iter().map(|(name, _)| name).collect())
                } else {
                    let busy: Vec<String> = busy
                        .iter()
                        .map(|(name, left)| format!("{name} for {left} s more"))
                        .collect();
                    Look::NotYet(format!("waiting on {}", busy.join(", ")))
                })
            },
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_goes_to_the_error_writer_at_most_once_per_interval() {
        let mut err = Vec::new();
        let mut progress = Progress::new("waiting for main-app to use k".into());
        let limit = Duration::from_secs(600);
        progress.report(&mut err, "no use yet", limit);
        progress.report(&mut err, "still no use", limit);
        assert_eq!(
            String::from_utf8(err).unwrap(),
            "keyless rotate: waiting for main-app to use k: no use yet (0 s of at most 600 s)\n"
        );
    }
}
