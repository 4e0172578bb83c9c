//! `keyless rotate`: replaces main-app's function key for third-party-api without a failed
//! request, and can be interrupted and rerun at any point.
//!
//! 0. preflight (changes nothing): read both secrets and prove the right to write them (their
//!    latest version's attributes written back unchanged); a refusal stops the run naming Key
//!    Vault Secrets Officer, its id, the scope and the `az` line. A master key that is still the
//!    provisioning placeholder is replaced by a generated one, then the admin API must accept it.
//! 1. add a function key `<prefix>-<UTC yyyymmddHHMMSS>` (or reuse the one an interrupted run
//!    added: a family key newer than the one the vault holds);
//! 2. write it as a new version of the apps' secret with `exp`, once every third-party-api
//!    replica has loaded it (the key's age is more than the key store's refresh interval);
//! 3. wait until main-app uses it (its `lastAccepted` is set);
//! 4. wait until every older `<prefix>`/`<prefix>-*` key has not been accepted for the grace
//!    period, counted from the later of its `lastAccepted` and the new version's creation;
//! 5. revoke the older keys.
//!
//! Nothing is remembered between runs: the state is read back from the vault and the key store
//! each time ([`plan`] derives what is left to do from it). Each completed step prints one
//! `done: ` line on stdout; waits show progress on stderr. No key value is ever printed.

use crate::admin_client::{AdminClient, AdminError, FunctionKey};
use crate::azure_scope::MissingRole;
use crate::connect::{self, Connection, KEY_VAULT_URL};
use crate::roles::{Role, ScopeKind};
use crate::vault::{SecretVersion, Vault, WriteCheck};
use crate::{EXIT_FAILED, EXIT_OK, OpsError};
use azure_core::http::Url;
use shared_auth::{EnvSource, Secret};
use std::collections::HashMap;
use std::future::Future;
use std::io::Write;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// main-app's third-party-api endpoint; the admin API is at the same origin.
pub const THIRD_PARTY_API_ENDPOINT: &str = "THIRD_PARTY_API_ENDPOINT";
/// How often third-party-api replicas reload the shared key store (their variable, read here
/// to know how long a new key takes to reach every replica).
pub const THIRD_PARTY_API_KEYS_REFRESH_SECONDS: &str = "THIRD_PARTY_API_KEYS_REFRESH_SECONDS";
/// The key store's refresh interval when [`THIRD_PARTY_API_KEYS_REFRESH_SECONDS`] is unset.
pub const DEFAULT_KEYS_REFRESH: Duration = Duration::from_secs(10);
/// Added to the refresh interval before a new key is handed to main-app.
pub const PROPAGATION_MARGIN: Duration = Duration::from_secs(2);
/// How often a wait reads the key store again.
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// How often a wait reports progress on stderr.
pub const PROGRESS_INTERVAL: Duration = Duration::from_secs(10);
/// Default expiry of a new vault version, in days.
pub const DEFAULT_EXPIRES_IN_DAYS: u32 = 90;
/// Default grace period of an old key, in seconds.
pub const DEFAULT_GRACE_SECONDS: u64 = 300;
/// Default limit of each wait, in seconds.
pub const DEFAULT_WAIT_TIMEOUT_SECONDS: u64 = 900;
/// Default key-name prefix (main-app's keys).
pub const DEFAULT_KEY_PREFIX: &str = "main-app";
/// Length of the `-yyyymmddHHMMSS` suffix of a generated key name.
const STAMP_SUFFIX_LEN: usize = 15;
/// Longest key name third-party-api accepts.
const MAX_KEY_NAME_LEN: usize = 64;

/// What the command line asked for.
#[derive(Debug, Clone)]
pub struct RotateSettings {
    /// Print the plan, change nothing.
    pub dry_run: bool,
    /// Expiry of the new vault version, in days from now.
    pub expires_in_days: u32,
    /// How long an old key must have gone unused before it is revoked.
    pub grace: Duration,
    /// Limit of each wait.
    pub wait_timeout: Duration,
    /// The family of keys rotated: `<prefix>` and `<prefix>-*`.
    pub key_prefix: String,
    /// JSON lines instead of text.
    pub json: bool,
}

/// Checks a key prefix: a key name of third-party-api once the 15-character stamp is added.
pub fn validate_prefix(prefix: &str) -> Result<(), String> {
    let max = MAX_KEY_NAME_LEN - STAMP_SUFFIX_LEN;
    if prefix.is_empty() || prefix.len() > max {
        return Err(format!("--key-prefix must have 1 to {max} characters"));
    }
    if !prefix
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return Err("--key-prefix uses only letters, digits, `.`, `_` and `-`".into());
    }
    if prefix.starts_with('_') || prefix.starts_with('.') {
        return Err("--key-prefix does not start with `_` or `.`".into());
    }
    Ok(())
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
    /// `THIRD_PARTY_API_ENDPOINT`.
    pub endpoint: Url,
    /// `THIRD_PARTY_API_KEYS_REFRESH_SECONDS`.
    pub keys_refresh: Duration,
}

impl RotateConfig {
    /// Reads and checks every variable; a missing or malformed one is bad input naming it.
    pub fn from_env(env: &dyn EnvSource) -> Result<Self, OpsError> {
        let vault_url = connect::https_url(env, KEY_VAULT_URL)?;
        let raw = env.required(THIRD_PARTY_API_ENDPOINT)?;
        let endpoint = Url::parse(raw.trim()).map_err(|e| {
            OpsError::Usage(format!(
                "{THIRD_PARTY_API_ENDPOINT} is not a valid URL: {e}"
            ))
        })?;
        crate::admin_client::keys_url(&endpoint)
            .map_err(|why| OpsError::Usage(format!("{THIRD_PARTY_API_ENDPOINT} {why}")))?;
        let seconds: u64 = env.parsed_or(
            THIRD_PARTY_API_KEYS_REFRESH_SECONDS,
            DEFAULT_KEYS_REFRESH.as_secs(),
        )?;
        Ok(Self {
            vault_url,
            secret_name: connect::secret_name(env),
            master_secret_name: connect::master_key_secret_name(env),
            endpoint,
            keys_refresh: Duration::from_secs(seconds),
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Key names
// ---------------------------------------------------------------------------------------------

/// Whether `name` belongs to the rotated family: `<prefix>` or `<prefix>-*`.
pub fn in_family(prefix: &str, name: &str) -> bool {
    name == prefix
        || name
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with('-'))
}

/// The name of a key generated at `at`: `<prefix>-<UTC yyyymmddHHMMSS>`.
pub fn key_name(prefix: &str, at: OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    format!(
        "{prefix}-{:04}{:02}{:02}{:02}{:02}{:02}",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    )
}

/// When a key called `name` was generated, from its `<prefix>-<yyyymmddHHMMSS>` name; `None`
/// for any other name (the seed `<prefix>`, a hand-made `<prefix>-old`).
pub fn key_stamp(prefix: &str, name: &str) -> Option<OffsetDateTime> {
    let digits = name.strip_prefix(prefix)?.strip_prefix('-')?;
    if digits.len() != 14 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n = |range: std::ops::Range<usize>| digits[range].parse::<u32>().ok();
    let month = time::Month::try_from(u8::try_from(n(4..6)?).ok()?).ok()?;
    let date = time::Date::from_calendar_date(i32::try_from(n(0..4)?).ok()?, month, n(6..8)? as u8)
        .ok()?;
    let clock = time::Time::from_hms(n(8..10)? as u8, n(10..12)? as u8, n(12..14)? as u8).ok()?;
    Some(time::PrimitiveDateTime::new(date, clock).assume_utc())
}

/// A fresh key name at `now` that no key in `taken` has (a second later while it does).
pub fn fresh_key_name<'a>(
    prefix: &str,
    now: OffsetDateTime,
    taken: impl Iterator<Item = &'a str> + Clone,
) -> String {
    let mut at = now;
    loop {
        let name = key_name(prefix, at);
        if !taken.clone().any(|t| t == name) {
            return name;
        }
        at += time::Duration::seconds(1);
    }
}

// ---------------------------------------------------------------------------------------------
// The plan: what is left to do, from what the vault and the key store say
// ---------------------------------------------------------------------------------------------

/// The master key's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MasterState {
    /// In the vault and accepted by the admin API.
    Accepted,
    /// In the vault, not accepted yet (third-party-api has not reloaded it).
    NotAccepted,
    /// The placeholder or no usable value: a master key is to be generated.
    Placeholder,
}

/// A function key as the plan sees it: no value, whether the vault holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    /// The key's name.
    pub name: String,
    /// Whether the apps' secret's latest version holds this key's value.
    pub in_vault: bool,
    /// When it was last accepted (by the replica that answered).
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySource {
    /// A new key is to be added.
    New,
    /// An interrupted run added it and did not write it to the vault yet.
    AddedEarlier,
    /// The vault already holds it and older keys remain: an interrupted rotation to finish.
    Resume,
}

/// What is left to do.
#[derive(Debug, Clone, PartialEq, Eq)]
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

/// When a key was last accepted, in words: never since the replica that answered started.
fn last_use(t: Option<OffsetDateTime>) -> String {
    match t {
        Some(_) => when(t),
        None => "not since third-party-api started".into(),
    }
}

/// `t` as RFC 3339, or `unknown`.
pub fn when(t: Option<OffsetDateTime>) -> String {
    t.and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| "unknown".into())
}

impl Plan {
    /// The steps in words, numbered as the run does them (for `--dry-run`).
    pub fn describe(&self, settings: &RotateSettings, config: &RotateConfig) -> Vec<String> {
        let mut lines = Vec::new();
        let secret = &config.secret_name;
        match self.master {
            MasterState::Placeholder => lines.push(format!(
                "master key: {} holds no key yet (placeholder): generate one, write it as a new \
                 version (expires in {} days), wait until the admin API accepts it",
                config.master_secret_name, settings.expires_in_days
            )),
            MasterState::NotAccepted => lines.push(format!(
                "master key: wait until the admin API accepts the master key in {}",
                config.master_secret_name
            )),
            MasterState::Accepted => {}
        }
        let propagation = config.keys_refresh + PROPAGATION_MARGIN;
        lines.push(match self.source {
            KeySource::New => format!("1. add: add function key {}", self.key),
            KeySource::AddedEarlier => format!(
                "1. add: nothing to add: function key {} was added by an earlier run",
                self.key
            ),
            KeySource::Resume => format!(
                "1. add: nothing to add: {secret} already holds {}; finish that rotation",
                self.key
            ),
        });
        lines.push(if self.write {
            format!(
                "2. write: once {} is {} s old (every replica has loaded it), write it as a new \
                 version of {secret} expiring in {} days",
                self.key,
                propagation.as_secs(),
                settings.expires_in_days
            )
        } else {
            format!(
                "2. write: nothing to write: {secret} already holds {}",
                self.key
            )
        });
        lines.push(match self.used_at {
            Some(t) if !self.write => format!(
                "3. wait used: main-app already uses {} (last accepted {})",
                self.key,
                when(Some(t))
            ),
            _ => format!(
                "3. wait used: wait until main-app uses {} (at most {} s)",
                self.key,
                settings.wait_timeout.as_secs()
            ),
        });
        match &self.older {
            None => {
                lines.push(format!(
                    "4. wait idle: wait until every older {prefix} key has not been accepted for \
                     {} s (the key list is readable once the master key is accepted)",
                    settings.grace.as_secs(),
                    prefix = settings.key_prefix
                ));
                lines.push(format!(
                    "5. revoke: revoke every older {} key",
                    settings.key_prefix
                ));
            }
            Some(older) if older.is_empty() => {
                lines.push("4. wait idle: no older key to wait for".into());
                lines.push("5. revoke: nothing to revoke".into());
            }
            Some(older) => {
                let names: Vec<String> = older
                    .iter()
                    .map(|k| format!("{} (last accepted {})", k.name, last_use(k.last_accepted)))
                    .collect();
                lines.push(format!(
                    "4. wait idle: wait until {} {} not been accepted for {} s (counted from the \
                     later of that and the new version's creation)",
                    names.join(", "),
                    if older.len() == 1 { "has" } else { "have" },
                    settings.grace.as_secs()
                ));
                let names: Vec<&str> = older.iter().map(|k| k.name.as_str()).collect();
                lines.push(format!("5. revoke: revoke {}", names.join(", ")));
            }
        }
        lines
    }
}

// ---------------------------------------------------------------------------------------------
// Output
// ---------------------------------------------------------------------------------------------

/// Writes `done: ` lines (or JSON lines) on stdout, each flushed as it completes.
struct Reporter<'a> {
    out: &'a mut (dyn Write + Send),
    json: bool,
    done: Vec<serde_json::Value>,
}

impl Reporter<'_> {
    fn done(&mut self, step: &str, detail: String) {
        let value = serde_json::json!({ "done": step, "detail": detail });
        let _ = if self.json {
            writeln!(self.out, "{value}")
        } else {
            writeln!(self.out, "done: {step}: {detail}")
        };
        let _ = self.out.flush();
        self.done.push(value);
    }

    fn line(&mut self, value: serde_json::Value, text: String) {
        let _ = if self.json {
            writeln!(self.out, "{value}")
        } else {
            write!(self.out, "{text}")
        };
        let _ = self.out.flush();
    }
}

/// Progress of a wait on stderr: at the start, then every [`PROGRESS_INTERVAL`].
struct Progress {
    what: String,
    started: Instant,
    last: Option<Instant>,
}

impl Progress {
    fn new(what: String) -> Self {
        Self {
            what,
            started: Instant::now(),
            last: None,
        }
    }

    fn report(&mut self, detail: &str, limit: Duration) {
        if self.last.is_some_and(|l| l.elapsed() < PROGRESS_INTERVAL) {
            return;
        }
        self.last = Some(Instant::now());
        eprintln!(
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

/// Polls `look` every [`POLL_INTERVAL`] until it is ready; fails after `limit`.
async fn wait_for<T, F, Fut>(what: &str, limit: Duration, mut look: F) -> Result<T, OpsError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Look<T>, OpsError>>,
{
    let mut progress = Progress::new(what.to_owned());
    let deadline = Instant::now() + limit;
    loop {
        match look().await? {
            Look::Ready(value) => return Ok(value),
            Look::NotYet(detail) => {
                if Instant::now() >= deadline {
                    return Err(OpsError::Failed(format!(
                        "{what}: still not done after {} s ({detail}); nothing was revoked. Run \
                         `keyless rotate` again to continue where it stopped",
                        limit.as_secs()
                    )));
                }
                progress.report(&detail, limit);
            }
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

// ---------------------------------------------------------------------------------------------
// The run
// ---------------------------------------------------------------------------------------------

fn vault_failure(what: &str, error: &azure_core::Error) -> OpsError {
    OpsError::Failed(format!("{what}: {}", connect::describe(error)))
}

fn admin_failure(what: &str, error: &AdminError) -> OpsError {
    OpsError::Failed(format!(
        "{what}: {error}. Run `keyless rotate` again to continue where it stopped"
    ))
}

/// The latest versions of both secrets, each read and proven writable.
struct Preflight {
    secret: SecretVersion,
    master: SecretVersion,
}

/// Step 0: reads both secrets and proves the right to write each without changing it. Missing
/// roles are all collected before anything stops; nothing has been written at that point.
async fn preflight(
    env: &dyn EnvSource,
    vault: &Vault,
    config: &RotateConfig,
) -> Result<Result<Preflight, Vec<MissingRole>>, OpsError> {
    let mut missing = Vec::new();
    let mut found = Vec::new();
    for (name, scope) in [
        (&config.secret_name, ScopeKind::Secret),
        (&config.master_secret_name, ScopeKind::MasterKeySecret),
    ] {
        match vault.check_writable(name).await {
            WriteCheck::Writable(version) => found.push(version),
            WriteCheck::ReadForbidden(_) | WriteCheck::WriteForbidden(..) => {
                missing.push(MissingRole::new(env, Role::KeyVaultSecretsOfficer, scope));
            }
            WriteCheck::Absent => {
                return Err(OpsError::Failed(format!(
                    "secret {name} does not exist in the vault {}: provisioning creates it (with \
                     the placeholder {})",
                    vault.url(),
                    crate::vault::PLACEHOLDER
                )));
            }
            WriteCheck::Failed(why) => {
                return Err(OpsError::Failed(format!("secret {name}: {why}")));
            }
        }
    }
    if !missing.is_empty() {
        return Ok(Err(missing));
    }
    match (found.pop(), found.pop()) {
        (Some(master), Some(secret)) => Ok(Ok(Preflight { secret, master })),
        _ => Err(OpsError::Failed(
            "the preflight read fewer than two secrets".into(),
        )),
    }
}

/// A new master key: 32 random bytes from the operating system's CSPRNG, URL-safe base64.
fn generate_master_key() -> Secret {
    use base64::Engine;
    use rand::RngCore;
    let mut bytes = zeroize::Zeroizing::new([0u8; 32]);
    rand::rng().fill_bytes(bytes.as_mut());
    Secret::new(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes.as_ref()))
}

fn key_infos(keys: &[FunctionKey], vault_value: &Secret) -> Vec<KeyInfo> {
    keys.iter()
        .map(|k| KeyInfo {
            name: k.name.clone(),
            in_vault: k.value == *vault_value,
            last_accepted: k.last_accepted,
        })
        .collect()
}

/// Runs `keyless rotate` with `settings` against the deployment `env` describes; writes the
/// `done: ` lines (or the plan) to `out`. Returns the exit code.
pub async fn run(
    env: &dyn EnvSource,
    settings: &RotateSettings,
    out: &mut (dyn Write + Send),
) -> Result<i32, OpsError> {
    validate_prefix(&settings.key_prefix).map_err(OpsError::Usage)?;
    let config = RotateConfig::from_env(env)?;
    let conn = Connection::from_env(env)?;
    let vault = Vault::new(&conn, &config.vault_url)?;
    let mut report = Reporter {
        out,
        json: settings.json,
        done: Vec::new(),
    };

    // 0. Preflight: nothing changes before every permission is proven.
    let pre = match preflight(env, &vault, &config).await? {
        Ok(pre) => pre,
        Err(missing) => {
            let mut text = String::from(
                "keyless rotate: stopped before changing anything: the identity lacks a role\n",
            );
            for m in &missing {
                text.push_str(&m.render("  "));
            }
            let value = serde_json::json!({
                "ok": false,
                "changed": false,
                "missing_roles": missing.iter().map(MissingRole::to_json).collect::<Vec<_>>(),
            });
            report.line(value, text);
            eprintln!(
                "keyless: rotate stopped before changing anything: missing {}",
                missing
                    .iter()
                    .map(|m| format!("{} on {}", m.role.name(), m.scope_name))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            return Ok(EXIT_FAILED);
        }
    };
    let preflight_detail = format!(
        "read and proved write access to secrets {} and {} (nothing changed)",
        config.secret_name, config.master_secret_name
    );
    if !settings.dry_run {
        report.done("preflight", preflight_detail.clone());
    }

    // The master key: generated once when provisioning left the placeholder.
    let expires_in = time::Duration::days(i64::from(settings.expires_in_days));
    let (master_key, bootstrapped) = match pre.master.key() {
        Some(key) => (key.clone(), None),
        None if settings.dry_run => {
            let observed = Observed {
                secret_created: pre.secret.created,
                master: MasterState::Placeholder,
                keys: None,
            };
            print_plan(
                &mut report,
                settings,
                &config,
                &pre,
                &observed,
                preflight_detail,
            );
            return Ok(EXIT_OK);
        }
        None => {
            let key = generate_master_key();
            let written = vault
                .set(
                    &config.master_secret_name,
                    &key,
                    OffsetDateTime::now_utc() + expires_in,
                )
                .await
                .map_err(|e| vault_failure("writing the generated master key", &e))?;
            (key, Some(written))
        }
    };
    let admin = AdminClient::new(conn.http.clone(), &config.endpoint, master_key)?;
    let keys = if settings.dry_run {
        match admin.list().await {
            Ok(keys) => Some(keys),
            Err(e) if e.is_transient() => None,
            Err(e) => return Err(admin_failure("reading the function keys", &e)),
        }
    } else {
        Some(wait_for_master(&admin, &config, settings).await?)
    };
    if let Some(written) = &bootstrapped {
        report.done(
            "master key",
            format!(
                "wrote a generated master key as version {} of {} (expires {}); the admin API \
                 accepts it",
                written.version,
                config.master_secret_name,
                when(written.expires)
            ),
        );
    }

    let now = OffsetDateTime::now_utc();
    let observed = Observed {
        secret_created: pre.secret.created,
        master: if keys.is_some() {
            MasterState::Accepted
        } else {
            MasterState::NotAccepted
        },
        keys: keys.as_ref().map(|keys| key_infos(keys, &pre.secret.value)),
    };
    if settings.dry_run {
        print_plan(
            &mut report,
            settings,
            &config,
            &pre,
            &observed,
            preflight_detail,
        );
        return Ok(EXIT_OK);
    }
    let keys = keys.unwrap_or_default();
    let the_plan = plan(&observed, &settings.key_prefix, now);

    // 1. Add (or find the key an interrupted run added).
    let key: FunctionKey = match the_plan.source {
        KeySource::New => {
            let key = admin
                .generate(&the_plan.key)
                .await
                .map_err(|e| admin_failure(&format!("adding function key {}", the_plan.key), &e))?;
            report.done("add", format!("added function key {}", key.name));
            key
        }
        KeySource::AddedEarlier | KeySource::Resume => {
            let key = keys
                .into_iter()
                .find(|k| k.name == the_plan.key)
                .ok_or_else(|| {
                    OpsError::Failed(format!(
                        "function key {} is no longer in the key store; run `keyless rotate` again",
                        the_plan.key
                    ))
                })?;
            report.done(
                "add",
                if the_plan.source == KeySource::AddedEarlier {
                    format!(
                        "nothing to add: function key {} was added by an earlier run",
                        key.name
                    )
                } else {
                    format!(
                        "nothing to add: {} already holds {}; finishing that rotation",
                        config.secret_name, key.name
                    )
                },
            );
            key
        }
    };

    // 2. Write, once every replica has loaded the key.
    let new_version = if the_plan.write {
        wait_for_propagation(&settings.key_prefix, &key.name, config.keys_refresh).await;
        let written = vault
            .set(
                &config.secret_name,
                &key.value,
                OffsetDateTime::now_utc() + expires_in,
            )
            .await
            .map_err(|e| vault_failure(&format!("writing {} to the vault", key.name), &e))?;
        report.done(
            "write",
            format!(
                "{} is now version {} of {} (expires {})",
                key.name,
                written.version,
                config.secret_name,
                when(written.expires)
            ),
        );
        written
    } else {
        report.done(
            "write",
            format!(
                "nothing to write: version {} of {} already holds {}",
                pre.secret.version, config.secret_name, key.name
            ),
        );
        pre.secret.clone()
    };
    let since = new_version.created.unwrap_or(now);

    // 3. Wait until main-app uses it.
    let used_at = wait_for(
        &format!("waiting for main-app to use {}", key.name),
        settings.wait_timeout,
        || async {
            let keys = admin
                .list()
                .await
                .or_else(|e| {
                    if e.is_transient() {
                        Ok(Vec::new())
                    } else {
                        Err(e)
                    }
                })
                .map_err(|e| admin_failure("reading the function keys", &e))?;
            match keys.iter().find(|k| k.name == key.name) {
                Some(k) => Ok(match k.last_accepted {
                    Some(t) => Look::Ready(t),
                    None => Look::NotYet("not accepted yet".into()),
                }),
                None if keys.is_empty() => Ok(Look::NotYet("the admin API did not answer".into())),
                None => Err(OpsError::Failed(format!(
                    "function key {} is no longer in the key store: someone removed it; run \
                     `keyless rotate` again",
                    key.name
                ))),
            }
        },
    )
    .await?;
    report.done(
        "wait used",
        format!("main-app used {} at {}", key.name, when(Some(used_at))),
    );

    // 4. Wait until every older key has gone unused for the grace period.
    let grace = time::Duration::try_from(settings.grace).unwrap_or(time::Duration::MAX);
    let seen: Mutex<HashMap<String, OffsetDateTime>> = Mutex::default();
    let older: Vec<String> = wait_for(
        "waiting for the older keys to go unused",
        settings.wait_timeout + settings.grace,
        || {
            let seen = &seen;
            let admin = &admin;
            let key = &key;
            async move {
                let keys = match admin.list().await {
                    Ok(keys) => keys,
                    Err(e) if e.is_transient() => {
                        return Ok(Look::NotYet("the admin API did not answer".into()));
                    }
                    Err(e) => return Err(admin_failure("reading the function keys", &e)),
                };
                let now = OffsetDateTime::now_utc();
                let mut busy = Vec::new();
                let mut older = Vec::new();
                for k in keys
                    .iter()
                    .filter(|k| in_family(&settings.key_prefix, &k.name) && k.name != key.name)
                {
                    // The latest use any replica reported: replicas answer in turn.
                    let mut seen = seen.lock().unwrap_or_else(|p| p.into_inner());
                    let last = match (k.last_accepted, seen.get(&k.name).copied()) {
                        (Some(a), Some(b)) => Some(a.max(b)),
                        (a, b) => a.or(b),
                    };
                    if let Some(last) = last {
                        seen.insert(k.name.clone(), last);
                    }
                    let idle_since = last.map_or(since, |l| l.max(since));
                    let left = grace - (now - idle_since);
                    if left.is_positive() {
                        busy.push(format!(
                            "{} for {} s more",
                            k.name,
                            left.whole_seconds() + 1
                        ));
                    }
                    older.push(k.name.clone());
                }
                Ok(if busy.is_empty() {
                    Look::Ready(older)
                } else {
                    Look::NotYet(format!("waiting on {}", busy.join(", ")))
                })
            }
        },
    )
    .await?;
    report.done(
        "wait idle",
        if older.is_empty() {
            "no older key to wait for".into()
        } else {
            format!(
                "{} not accepted for {} s",
                older.join(", "),
                settings.grace.as_secs()
            )
        },
    );

    // 5. Revoke.
    let mut revoked = Vec::new();
    for name in &older {
        let existed = admin
            .delete(name)
            .await
            .map_err(|e| admin_failure(&format!("revoking function key {name}"), &e))?;
        if existed {
            revoked.push(name.clone());
        }
    }
    report.done(
        "revoke",
        if revoked.is_empty() {
            "nothing to revoke".into()
        } else {
            format!("revoked {}", revoked.join(", "))
        },
    );
    let summary = format!(
        "rotated: {} holds {} (version {}, expires {}); main-app uses it; revoked: {}\n",
        config.secret_name,
        key.name,
        new_version.version,
        when(new_version.expires),
        if revoked.is_empty() {
            "none".to_owned()
        } else {
            revoked.join(", ")
        }
    );
    let value = serde_json::json!({
        "ok": true,
        "secret": config.secret_name,
        "key": key.name,
        "version": new_version.version,
        "expires": when(new_version.expires),
        "used_at": when(Some(used_at)),
        "revoked": revoked,
        "master_key_generated": bootstrapped.is_some(),
    });
    report.line(value, summary);
    Ok(EXIT_OK)
}

/// Waits until the admin API accepts the vault's master key (third-party-api reloads it);
/// returns the function keys it then lists.
async fn wait_for_master(
    admin: &AdminClient,
    config: &RotateConfig,
    settings: &RotateSettings,
) -> Result<Vec<FunctionKey>, OpsError> {
    wait_for(
        &format!(
            "waiting for the admin API at {} to accept the master key in {}",
            admin.keys_url(),
            config.master_secret_name
        ),
        settings.wait_timeout,
        || async {
            match admin.list().await {
                Ok(keys) => Ok(Look::Ready(keys)),
                Err(e) if e.is_transient() => Ok(Look::NotYet(e.to_string())),
                Err(e) => Err(admin_failure("reading the function keys", &e)),
            }
        },
    )
    .await
}

/// Sleeps until key `name` is older than the key store's refresh interval plus a margin, so
/// every third-party-api replica accepts it before main-app may use it. The age comes from the
/// name's stamp, so a rerun waits only for what is left.
async fn wait_for_propagation(prefix: &str, name: &str, refresh: Duration) {
    let Some(stamp) = key_stamp(prefix, name) else {
        return;
    };
    // The stamp has whole seconds: count from the end of that second.
    let ready = stamp + time::Duration::seconds(1) + refresh + PROPAGATION_MARGIN;
    let left = ready - OffsetDateTime::now_utc();
    if left.is_positive() {
        let left = Duration::try_from(left).unwrap_or_default();
        eprintln!(
            "keyless rotate: waiting {} s until every third-party-api replica has loaded {name} \
             (key store refresh {} s)",
            left.as_secs() + 1,
            refresh.as_secs()
        );
        tokio::time::sleep(left).await;
    }
}

fn print_plan(
    report: &mut Reporter<'_>,
    settings: &RotateSettings,
    config: &RotateConfig,
    pre: &Preflight,
    observed: &Observed,
    preflight_detail: String,
) {
    let the_plan = plan(observed, &settings.key_prefix, OffsetDateTime::now_utc());
    let holds = match (pre.secret.key(), &observed.keys) {
        (None, _) => "no key yet (placeholder)".to_owned(),
        (Some(_), Some(keys)) => keys
            .iter()
            .find(|k| k.in_vault)
            .map(|k| format!("function key {}", k.name))
            .unwrap_or_else(|| "a value that is no function key".into()),
        (Some(_), None) => "a key (the key list is not readable yet)".into(),
    };
    let state = format!(
        "{}: version {} created {}, expires {}, holds {holds}",
        config.secret_name,
        pre.secret.version,
        when(pre.secret.created),
        pre.secret
            .expires
            .map_or_else(|| "never".into(), |t| when(Some(t))),
    );
    let steps = the_plan.describe(settings, config);
    let mut text = String::from("keyless rotate --dry-run: the plan (nothing was changed)\n");
    text.push_str(&format!("  preflight: {preflight_detail}\n  {state}\n"));
    for s in &steps {
        text.push_str(&format!("  {s}\n"));
    }
    let value = serde_json::json!({
        "dry_run": true,
        "preflight": preflight_detail,
        "secret": state,
        "key": the_plan.key,
        "source": format!("{:?}", the_plan.source),
        "write": the_plan.write,
        "revoke": the_plan.older.as_ref().map(|o| o.iter().map(|k| k.name.clone()).collect::<Vec<_>>()),
        "steps": steps,
    });
    report.line(value, text);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> OffsetDateTime {
        OffsetDateTime::parse(text, &Rfc3339).unwrap()
    }

    fn key(name: &str, in_vault: bool, last: Option<&str>) -> KeyInfo {
        KeyInfo {
            name: name.into(),
            in_vault,
            last_accepted: last.map(at),
        }
    }

    fn observed(created: &str, keys: Vec<KeyInfo>) -> Observed {
        Observed {
            secret_created: Some(at(created)),
            master: MasterState::Accepted,
            keys: Some(keys),
        }
    }

    const P: &str = "main-app";
    const NOW: &str = "2026-11-20T09:30:05Z";

    fn names(plan: &Plan) -> Vec<&str> {
        plan.older
            .as_ref()
            .unwrap()
            .iter()
            .map(|k| k.name.as_str())
            .collect()
    }

    #[test]
    fn names_carry_the_utc_stamp_and_read_back() {
        let t = at("2026-11-20T09:30:05.250+01:00");
        assert_eq!(key_name(P, t), "main-app-20261120083005");
        assert_eq!(
            key_stamp(P, "main-app-20261120083005"),
            Some(at("2026-11-20T08:30:05Z"))
        );
        for not_stamped in [
            "main-app",
            "main-app-old",
            "main-app-2026112008300",
            "main-app-20261320083005",
            "main-app-20261120253005",
            "other-20261120083005",
            "main-app-canary-20261120083005",
        ] {
            assert_eq!(key_stamp(P, not_stamped), None, "{not_stamped}");
        }
        assert!(in_family(P, "main-app"));
        assert!(in_family(P, "main-app-20261120083005"));
        assert!(!in_family(P, "main-application"));
        assert!(!in_family(P, "other"));
        let taken = ["main-app-20261120093005", "main-app-20261120093006"];
        assert_eq!(
            fresh_key_name(P, at(NOW), taken.iter().copied()),
            "main-app-20261120093007"
        );
    }

    #[test]
    fn prefixes_are_key_names() {
        assert!(validate_prefix("main-app").is_ok());
        assert!(validate_prefix("").is_err());
        assert!(validate_prefix("_x").is_err());
        assert!(validate_prefix(".x").is_err());
        assert!(validate_prefix("a b").is_err());
        assert!(validate_prefix(&"a".repeat(49)).is_ok());
        assert!(validate_prefix(&"a".repeat(50)).is_err());
    }

    #[test]
    fn a_first_rotation_from_the_seed_adds_writes_and_revokes_the_seed() {
        let o = observed(
            "2026-11-01T00:00:00Z",
            vec![
                key(P, true, Some("2026-11-20T09:30:00Z")),
                key("other-client", false, None),
            ],
        );
        let p = plan(&o, P, at(NOW));
        assert_eq!(p.key, "main-app-20261120093005");
        assert_eq!(p.source, KeySource::New);
        assert!(p.write);
        assert_eq!(p.used_at, None);
        assert_eq!(names(&p), vec![P], "never another client's key");
    }

    #[test]
    fn the_vault_holding_the_placeholder_gets_a_new_key_and_nothing_to_revoke() {
        let o = observed("2026-11-01T00:00:00Z", vec![]);
        let p = plan(&o, P, at(NOW));
        assert_eq!(p.source, KeySource::New);
        assert!(p.write);
        assert_eq!(names(&p), Vec::<&str>::new());
    }

    #[test]
    fn interrupted_after_add_reuses_the_added_key() {
        // The seed in the vault (created at provisioning), the new key added, not written.
        let o = observed(
            "2026-11-01T00:00:00Z",
            vec![
                key(P, true, Some("2026-11-20T09:29:00Z")),
                key("main-app-20261120092000", false, None),
            ],
        );
        let p = plan(&o, P, at(NOW));
        assert_eq!(p.key, "main-app-20261120092000");
        assert_eq!(p.source, KeySource::AddedEarlier);
        assert!(p.write);
        assert_eq!(names(&p), vec![P]);

        // Same after a completed rotation: the vault holds a stamped key.
        let o = observed(
            "2026-08-01T00:00:20Z",
            vec![
                key(
                    "main-app-20260801000000",
                    true,
                    Some("2026-11-20T09:29:00Z"),
                ),
                key("main-app-20261120092000", false, None),
            ],
        );
        let p = plan(&o, P, at(NOW));
        assert_eq!(p.key, "main-app-20261120092000");
        assert_eq!(p.source, KeySource::AddedEarlier);
        assert_eq!(names(&p), vec!["main-app-20260801000000"]);
    }

    #[test]
    fn interrupted_after_add_with_the_placeholder_in_the_vault_reuses_the_key() {
        let o = observed(
            "2026-11-01T00:00:00Z",
            vec![key("main-app-20261120092000", false, None)],
        );
        let p = plan(&o, P, at(NOW));
        assert_eq!(p.source, KeySource::AddedEarlier);
        assert_eq!(p.key, "main-app-20261120092000");
        assert_eq!(names(&p), Vec::<&str>::new());
    }

    #[test]
    fn a_key_older_than_the_vaults_version_is_not_reused() {
        // A stale stamped key from before the placeholder was written: a new key is added and
        // the stale one revoked with the rest.
        let o = observed(
            "2026-11-01T00:00:00Z",
            vec![key("main-app-20261031000000", false, None)],
        );
        let p = plan(&o, P, at(NOW));
        assert_eq!(p.source, KeySource::New);
        assert_eq!(names(&p), vec!["main-app-20261031000000"]);
    }

    #[test]
    fn interrupted_after_write_finishes_that_rotation_without_a_new_key() {
        for used in [None, Some("2026-11-20T09:29:30Z")] {
            let o = observed(
                "2026-11-20T09:20:15Z",
                vec![
                    key(P, false, Some("2026-11-20T09:29:00Z")),
                    key("main-app-20261120092000", true, used),
                ],
            );
            let p = plan(&o, P, at(NOW));
            assert_eq!(p.source, KeySource::Resume, "{used:?}");
            assert_eq!(p.key, "main-app-20261120092000");
            assert!(!p.write);
            assert_eq!(p.used_at, used.map(at));
            assert_eq!(names(&p), vec![P]);
        }
    }

    #[test]
    fn interrupted_during_revoke_finishes_with_the_keys_left() {
        let o = observed(
            "2026-11-20T09:20:15Z",
            vec![
                key("main-app-20260801000000", false, None),
                key(
                    "main-app-20261120092000",
                    true,
                    Some("2026-11-20T09:30:00Z"),
                ),
            ],
        );
        let p = plan(&o, P, at(NOW));
        assert_eq!(p.source, KeySource::Resume);
        assert_eq!(names(&p), vec!["main-app-20260801000000"]);
    }

    #[test]
    fn after_a_completed_rotation_the_next_run_rotates_again() {
        let o = observed(
            "2026-11-20T09:20:15Z",
            vec![key(
                "main-app-20261120092000",
                true,
                Some("2026-11-20T09:30:00Z"),
            )],
        );
        let p = plan(&o, P, at(NOW));
        assert_eq!(p.source, KeySource::New);
        assert_eq!(p.key, "main-app-20261120093005");
        assert_eq!(names(&p), vec!["main-app-20261120092000"]);
    }

    #[test]
    fn of_two_added_keys_the_newest_is_used_and_the_other_revoked() {
        let o = observed(
            "2026-11-01T00:00:00Z",
            vec![
                key(P, true, None),
                key("main-app-20261120091000", false, None),
                key("main-app-20261120092000", false, None),
            ],
        );
        let p = plan(&o, P, at(NOW));
        assert_eq!(p.key, "main-app-20261120092000");
        assert_eq!(names(&p), vec![P, "main-app-20261120091000"]);
    }

    #[test]
    fn a_vault_value_no_key_matches_gets_a_new_key() {
        let o = observed(
            "2026-11-20T09:20:15Z",
            vec![key("main-app-20261120092000", false, None)],
        );
        // Stamped before the version was created: not an interrupted add.
        let p = plan(&o, P, at(NOW));
        assert_eq!(p.source, KeySource::New);
        assert_eq!(names(&p), vec!["main-app-20261120092000"]);
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

    #[test]
    fn the_plan_in_words_names_every_step() {
        let settings = RotateSettings {
            dry_run: true,
            expires_in_days: 90,
            grace: Duration::from_secs(300),
            wait_timeout: Duration::from_secs(900),
            key_prefix: P.into(),
            json: false,
        };
        let config = RotateConfig {
            vault_url: Url::parse("https://kv.vault.azure.net").unwrap(),
            secret_name: "third-party-api-key".into(),
            master_secret_name: "third-party-api-master-key".into(),
            endpoint: Url::parse("https://api.example.net/api/RandomNumber").unwrap(),
            keys_refresh: Duration::from_secs(10),
        };
        let o = observed(
            "2026-11-01T00:00:00Z",
            vec![key(P, true, Some("2026-11-20T09:30:00Z"))],
        );
        let lines = plan(&o, P, at(NOW)).describe(&settings, &config);
        assert_eq!(lines.len(), 5, "{lines:?}");
        assert!(lines[0].starts_with("1. add: add function key main-app-20261120093005"));
        assert!(lines[1].contains("12 s old") && lines[1].contains("expiring in 90 days"));
        assert!(lines[2].starts_with("3. wait used"));
        assert!(lines[3].contains("main-app (last accepted 2026-11-20T09:30:00Z) has not"));
        assert_eq!(lines[4], "5. revoke: revoke main-app");
        let o = Observed {
            secret_created: None,
            master: MasterState::Placeholder,
            keys: None,
        };
        let lines = plan(&o, P, at(NOW)).describe(&settings, &config);
        assert!(lines[0].starts_with("master key: third-party-api-master-key holds no key yet"));
        assert_eq!(lines.len(), 6);
    }

    #[test]
    fn generated_master_keys_are_keys_and_distinct() {
        let a = generate_master_key();
        let b = generate_master_key();
        assert!(crate::vault::is_key_value(a.expose()));
        assert_eq!(a.expose().len(), 43);
        assert_ne!(a, b);
    }
}

#[cfg(test)]
mod send_check {
    /// The run can be spawned on a multi-threaded runtime (tests run it in a task).
    #[allow(dead_code)]
    fn run_is_send(env: &'static shared_auth::MapEnv, settings: &'static super::RotateSettings) {
        fn is_send<T: Send>(_: T) {}
        let out: &'static mut Vec<u8> = Box::leak(Box::default());
        is_send(super::run(env, settings, out));
    }
}
