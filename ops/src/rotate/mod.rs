//! `keyless rotate`: replaces main-app's function key for third-party-api without a failed
//! request, and can be interrupted and rerun at any point.
//!
//! 0. preflight (changes nothing): read both secrets and prove the right to write them (their
//!    latest version's attributes written back unchanged); a refusal stops the run naming Key
//!    Vault Secrets Officer, its id, the scope and the `az` line. A master key that is still the
//!    provisioning placeholder is replaced by a generated one, then the admin API must accept it;
//!    otherwise the master key's expiry is renewed when it has none or half of
//!    `--expires-in-days` is left (same value, no new version);
//! 1. add a function key `<prefix>-<UTC yyyymmddHHMMSS>` (or reuse the one an interrupted run
//!    added: a family key newer than the one the vault holds);
//! 2. write it as a new version of the apps' secret with `exp`, once every third-party-api
//!    replica has loaded it (the key's age is more than the key store's refresh interval);
//! 3. wait until main-app uses it (its `lastAccepted` is set), or until main-app's key cache
//!    lifetime has passed with no older key accepted since the write (no traffic: every replica
//!    reads the new value at its next call), or not at all when no older key exists;
//! 4. wait until every older `<prefix>`/`<prefix>-*` key has not been accepted for the grace
//!    period (15 s), counted from the later of its `lastAccepted` and the new version's creation
//!    plus main-app's key cache lifetime (every main-app replica has read the new value by then):
//!    a run ends one cache lifetime and the grace period after the write;
//! 5. revoke the older keys.
//!
//! Nothing is remembered between runs: the state is read back from the vault and the key store
//! each time ([`plan()`] derives what is left to do from it). Each completed step prints one
//! `done: ` line on stdout; waits show progress on stderr. No key value is ever printed.
//!
//! - [`names`]: key names and their stamps; [`mod@plan`]: state → plan; [`decide`]: what the waits
//!   and the renewal decide; `report`: what is printed; `dry_run`: the plan printed, nothing
//!   changed; `steps` and `waits`: the calls.

pub mod decide;
mod dry_run;
pub mod names;
pub mod plan;
mod report;
mod steps;
mod waits;

pub use decide::WaitLimits;
pub use names::in_family;

use decide::Used;
use names::validate_prefix;
use plan::{MasterState, Observed, plan};
use shared_auth::variables::KEY_VAULT_URL;

use crate::admin_client::{AdminClient, AdminError};
use crate::connect::{self, Connection};
use crate::vault::{Vault, VaultOptions};
use crate::{EXIT_FAILED, EXIT_OK, OpsError};
use azure_core::http::Url;
use report::{Reporter, Rotated, Step, Version};
use shared_auth::EnvSource;
use shared_auth::variables::{
    SECRET_CACHE_TTL_SECONDS, THIRD_PARTY_API_ENDPOINT, THIRD_PARTY_API_KEYS_REFRESH_SECONDS,
};
use std::io::Write;
use std::time::Duration;
use time::OffsetDateTime;

/// Every variable rotate reads besides the identity ones (`shared_auth::variables::COMMON_VARIABLES`).
pub const VARIABLES: &[&str] = &[
    KEY_VAULT_URL,
    shared_auth::variables::THIRD_PARTY_API_SECRET_NAME,
    shared_auth::variables::THIRD_PARTY_API_MASTER_KEY_SECRET_NAME,
    THIRD_PARTY_API_ENDPOINT,
    THIRD_PARTY_API_KEYS_REFRESH_SECONDS,
    SECRET_CACHE_TTL_SECONDS,
];
/// The key store's refresh interval when [`THIRD_PARTY_API_KEYS_REFRESH_SECONDS`] is unset.
pub const DEFAULT_KEYS_REFRESH: Duration = Duration::from_secs(10);
/// Default expiry of a new vault version, in days.
pub const DEFAULT_EXPIRES_IN_DAYS: u32 = 90;
/// Default grace period of an old key, in seconds: after main-app's key cache lifetime has
/// passed since the write, the time for requests already in flight with the old key (main-app's
/// 10 s request budget), the clocks of the vault and of this host, and a look at the key store.
pub const DEFAULT_GRACE_SECONDS: u64 = 15;
/// Default limit of each wait, in seconds.
pub const DEFAULT_WAIT_TIMEOUT_SECONDS: u64 = 900;
/// Default of main-app's key cache lifetime, in seconds (main-app's own default).
pub const DEFAULT_MAIN_APP_CACHE_SECONDS: u64 = 300;
/// Default key-name prefix (main-app's keys).
pub const DEFAULT_KEY_PREFIX: &str = "main-app";

/// What the command line asked for: `keyless rotate`'s options.
#[derive(Debug, Clone, clap::Args)]
pub struct RotateSettings {
    /// Print the plan and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Expiry (`exp`) of the new vault version, in days; the master key's is renewed to this
    /// when half of it is left.
    #[arg(long, default_value_t = DEFAULT_EXPIRES_IN_DAYS, value_parser = clap::value_parser!(u32).range(1..=3650))]
    pub expires_in_days: u32,
    /// How long an old key must have gone unused, once main-app's key cache lifetime has passed
    /// since the write, before it is revoked, in seconds.
    #[arg(long, default_value_t = DEFAULT_GRACE_SECONDS)]
    pub grace_seconds: u64,
    /// Limit of each wait (main-app using the new key, old keys going unused), in seconds; the
    /// wait for main-app lasts at least its key cache lifetime.
    #[arg(long, default_value_t = DEFAULT_WAIT_TIMEOUT_SECONDS, value_parser = clap::value_parser!(u64).range(1..))]
    pub wait_timeout_seconds: u64,
    /// How long main-app keeps the key it read, in seconds: without traffic, the new key counts
    /// as in use once this has passed since the write [default: SECRET_CACHE_TTL_SECONDS when
    /// set, else 300]
    #[arg(long, value_name = "SECONDS")]
    pub main_app_cache_seconds: Option<u64>,
    /// The rotated keys: `<prefix>` and `<prefix>-*`; new ones are `<prefix>-<UTC yyyymmddHHMMSS>`.
    #[arg(long, default_value = DEFAULT_KEY_PREFIX)]
    pub key_prefix: String,
    /// JSON lines instead of text (`keyless --json`).
    #[arg(skip)]
    pub json: bool,
}

impl RotateSettings {
    /// The grace period of an old key.
    pub fn grace(&self) -> Duration {
        Duration::from_secs(self.grace_seconds)
    }

    /// How long each wait of a run with these settings and `config` may take.
    pub fn limits(&self, config: &RotateConfig) -> WaitLimits {
        WaitLimits::new(
            Duration::from_secs(self.wait_timeout_seconds),
            self.grace(),
            config.main_app_cache,
            config.keys_refresh,
        )
    }
}

/// main-app's key cache lifetime: `--main-app-cache-seconds` when given, else
/// [`SECRET_CACHE_TTL_SECONDS`] when set, else [`DEFAULT_MAIN_APP_CACHE_SECONDS`].
pub fn main_app_cache(flag: Option<u64>, env: &dyn EnvSource) -> Result<Duration, OpsError> {
    let seconds = match flag {
        Some(seconds) => seconds,
        None => env.parsed_or(SECRET_CACHE_TTL_SECONDS, DEFAULT_MAIN_APP_CACHE_SECONDS)?,
    };
    Ok(Duration::from_secs(seconds))
}

/// What rotate reads from the environment.
#[derive(Debug, Clone)]
pub struct RotateConfig {
    /// `KEY_VAULT_URL`.
    pub vault_url: Url,
    /// The apps' secret (`THIRD_PARTY_API_SECRET_NAME`).
    pub secret_name: String,
    /// The master key's secret (`THIRD_PARTY_API_MASTER_KEY_SECRET_NAME`).
    pub master_secret_name: String,
    /// The admin URL of the function's keys, from `THIRD_PARTY_API_ENDPOINT`.
    pub keys_url: Url,
    /// `THIRD_PARTY_API_KEYS_REFRESH_SECONDS`.
    pub keys_refresh: Duration,
    /// How long main-app keeps the key it read ([`main_app_cache`]).
    pub main_app_cache: Duration,
}

impl RotateConfig {
    /// Reads and checks every variable; a missing or malformed one is bad input naming it.
    /// `main_app_cache` is `--main-app-cache-seconds`.
    pub fn from_env(env: &dyn EnvSource, main_app_cache: Option<u64>) -> Result<Self, OpsError> {
        let vault_url = shared_auth::config::https_url(env, KEY_VAULT_URL)?;
        let raw = env.required(THIRD_PARTY_API_ENDPOINT)?;
        let endpoint = Url::parse(raw.trim()).map_err(|e| {
            OpsError::Usage(format!(
                "{THIRD_PARTY_API_ENDPOINT} is not a valid URL: {e}"
            ))
        })?;
        let keys_url = crate::admin_client::keys_url(&endpoint)
            .map_err(|why| OpsError::Usage(format!("{THIRD_PARTY_API_ENDPOINT} {why}")))?;
        let seconds: u64 = env.parsed_or(
            THIRD_PARTY_API_KEYS_REFRESH_SECONDS,
            DEFAULT_KEYS_REFRESH.as_secs(),
        )?;
        Ok(Self {
            vault_url,
            secret_name: connect::secret_name(env),
            master_secret_name: connect::master_key_secret_name(env),
            keys_url,
            keys_refresh: Duration::from_secs(seconds),
            main_app_cache: self::main_app_cache(main_app_cache, env)?,
        })
    }
}

fn vault_failure(what: &str, error: &azure_core::Error) -> OpsError {
    OpsError::Failed(format!("{what}: {}", connect::describe(error)))
}

fn admin_failure(what: &str, error: &AdminError) -> OpsError {
    OpsError::Failed(format!(
        "{what}: {error}. Run `keyless rotate` again to continue where it stopped"
    ))
}

/// Runs `keyless rotate` with `settings` against the deployment `env` describes; writes the
/// `done: ` lines (or the plan) to `out`, progress and the reason of a stop to `err`. Returns
/// the exit code.
pub async fn run(
    env: &dyn EnvSource,
    settings: &RotateSettings,
    out: &mut (dyn Write + Send),
    err: &mut (dyn Write + Send),
) -> Result<i32, OpsError> {
    validate_prefix(&settings.key_prefix).map_err(|e| OpsError::Usage(e.to_string()))?;
    let config = RotateConfig::from_env(env, settings.main_app_cache_seconds)?;
    let conn = Connection::from_env(env)?;
    let vault = Vault::new(
        config.vault_url.clone(),
        conn.credential.credential.clone(),
        Some(VaultOptions::from(&conn)),
    )?;
    let limits = settings.limits(&config);
    let mut report = Reporter::new(out, err, settings.json);

    // 0. Preflight: nothing changes before every permission is proven.
    let pre = match steps::preflight(env, &vault, &config).await? {
        Ok(pre) => pre,
        Err(missing) => {
            report.stopped(&missing);
            return Ok(EXIT_FAILED);
        }
    };
    if settings.dry_run {
        return dry_run::run(&conn, (settings, &config), &pre, &mut report).await;
    }
    report.done(Step::Preflight {
        secret: config.secret_name.clone(),
        master_secret: config.master_secret_name.clone(),
    });

    // The master key: generated once when provisioning left the placeholder, else its expiry
    // renewed when due.
    let (master_key, generated) = match pre.master.key() {
        Some(key) => {
            steps::renew_master(&vault, &pre.master, settings, &mut report).await?;
            (key.clone(), None)
        }
        None => {
            let (key, written) = steps::generate_master(&vault, &config, settings).await?;
            (key, Some(written))
        }
    };
    let admin = AdminClient::new(conn.http.clone(), config.keys_url.clone(), master_key);
    let keys = waits::master_accepted(&admin, &config, limits.master, report.err()).await?;
    if let Some(written) = &generated {
        report.done(Step::MasterKey {
            written: Version::from(written),
        });
    }

    let now = OffsetDateTime::now_utc();
    let observed = Observed {
        secret_created: pre.secret.created,
        master: MasterState::Accepted,
        keys: Some(steps::key_infos(&keys, &pre.secret.value)),
    };
    let the_plan = plan(&observed, &settings.key_prefix, now);

    // 1. Add (or find the key an interrupted run added).
    let key = steps::add(&admin, keys, &the_plan, &config.secret_name, &mut report).await?;

    // 2. Write, once every replica has loaded the key.
    if the_plan.write {
        let prefix = &settings.key_prefix;
        let times = (config.keys_refresh, limits.propagation);
        waits::propagation(prefix, &key.name, times, report.err()).await;
    }
    let unchanged = (!the_plan.write).then_some(&pre.secret);
    let new_version =
        steps::write(&vault, &key, unchanged, (settings, &config), &mut report).await?;
    let since = new_version.created.unwrap_or(now);

    // 3. Wait until main-app uses it, or provably will at its next call.
    let new_key = waits::NewKey {
        admin: &admin,
        settings,
        config: &config,
        key: &key.name,
        written: since,
    };
    let used = new_key.used(limits.used, report.err()).await?;
    let used_at = match used {
        Used::Accepted(t) => Some(t),
        _ => None,
    };
    report.done(Step::WaitUsed {
        key: key.name.clone(),
        used,
        cache: config.main_app_cache,
    });

    // 4. Wait until every older key has gone unused for the grace period after main-app's cache.
    let older = new_key.idle(limits.idle, report.err()).await?;
    report.done(Step::WaitIdle {
        older: older.clone(),
        grace: settings.grace(),
    });

    // 5. Revoke.
    let revoked = steps::revoke(&admin, &older, &mut report).await?;
    report.print(&Rotated {
        ok: true,
        key: key.name,
        version: Version::from(&new_version),
        used_at,
        revoked,
        master_key_generated: generated.is_some(),
    });
    Ok(EXIT_OK)
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared_auth::MapEnv;

    #[test]
    fn main_apps_cache_is_the_flag_else_its_variable_else_its_default() {
        let set = MapEnv::new().with(SECRET_CACHE_TTL_SECONDS, "120");
        let cache = |flag, env: &MapEnv| main_app_cache(flag, env).map(|d| d.as_secs());
        assert_eq!(cache(Some(3), &set), Ok(3));
        assert_eq!(cache(None, &set), Ok(120));
        assert_eq!(
            cache(None, &MapEnv::new()),
            Ok(DEFAULT_MAIN_APP_CACHE_SECONDS)
        );
        let bad = MapEnv::new().with(SECRET_CACHE_TTL_SECONDS, "soon");
        assert!(
            matches!(cache(None, &bad), Err(OpsError::Usage(m)) if m.contains(SECRET_CACHE_TTL_SECONDS))
        );
    }
}

#[cfg(test)]
mod send_check {
    /// The run can be spawned on a multi-threaded runtime (tests run it in a task).
    #[allow(dead_code)]
    fn run_is_send(env: &'static shared_auth::MapEnv, settings: &'static super::RotateSettings) {
        fn is_send<T: Send>(_: T) {}
        let out: &'static mut Vec<u8> = Box::leak(Box::default());
        let err: &'static mut Vec<u8> = Box::leak(Box::default());
        is_send(super::run(env, settings, out, err));
    }
}
