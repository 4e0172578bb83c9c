//! `keyless rotate --dry-run`: the state read, the plan derived from it, printed as text or
//! JSON; nothing is changed.

use super::decide::{self, PROPAGATION_MARGIN};
use super::plan::{KeySource, MasterState, Observed, Plan, plan};
use super::report::{Reporter, Version, list, seconds, when};
use super::{RotateConfig, RotateSettings, admin_failure, steps};
use crate::admin_client::AdminClient;
use crate::connect::Connection;
use crate::{EXIT_OK, OpsError};
use serde::Serialize;
use std::fmt::{self, Display, Formatter};
use std::time::Duration;
use time::OffsetDateTime;

/// `--dry-run`: the state the run read and the plan derived from it; nothing was changed.
#[derive(Debug, Serialize)]
pub(super) struct DryRun<'a> {
    pub(super) dry_run: bool,
    pub(super) secret: Version,
    /// What the apps' secret holds: `function key <name>`, or why not one.
    pub(super) holds: String,
    pub(super) master: Version,
    pub(super) renew_master: bool,
    pub(super) plan: &'a Plan,
    pub(super) expires_in_days: u32,
    /// How old a new key must be before it is written (every replica has loaded it).
    #[serde(serialize_with = "seconds")]
    pub(super) propagation: Duration,
    /// main-app's key cache lifetime, and how long "wait used" may take at most.
    #[serde(serialize_with = "seconds")]
    pub(super) cache: Duration,
    #[serde(serialize_with = "seconds")]
    pub(super) used_limit: Duration,
    #[serde(serialize_with = "seconds")]
    pub(super) grace: Duration,
}

/// When a key was last accepted, in words: never since the replica that answered started.
fn last_use(t: Option<OffsetDateTime>) -> String {
    t.map_or_else(
        || "not since third-party-api started".into(),
        |t| when(Some(t)),
    )
}

impl Display for DryRun<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let (plan, days) = (self.plan, self.expires_in_days);
        let master = match plan.master {
            MasterState::Accepted => "accepted by the admin API",
            MasterState::NotAccepted => "not accepted by the admin API yet: wait for it",
            MasterState::Placeholder => "the placeholder: generate one",
        };
        let renew = if self.renew_master { "due" } else { "not due" };
        let source = match plan.source {
            KeySource::New => "new: add it",
            KeySource::AddedEarlier => "added by an earlier run",
            KeySource::Resume => "in the vault already: finish that rotation",
        };
        let write = if plan.write {
            let age = self.propagation.as_secs();
            format!("as a new version expiring in {days} days, once it is {age} s old")
        } else {
            "nothing to write, the vault holds it".into()
        };
        let used = match (&plan.older, plan.used_at) {
            (_, Some(t)) if !plan.write => format!("main-app already uses it ({})", when(Some(t))),
            (Some(older), _) if older.is_empty() => "nothing to wait for: no older key".into(),
            _ => format!(
                "until main-app uses it, or its key cache ({} s) has expired with no older key \
                 accepted since the write (at most {} s)",
                self.cache.as_secs(),
                self.used_limit.as_secs()
            ),
        };
        let revoke = match &plan.older {
            None => "every older key of the family (the key list is not readable yet)".into(),
            Some(older) => list(
                &older
                    .iter()
                    .map(|k| format!("{} (last accepted {})", k.name, last_use(k.last_accepted)))
                    .collect::<Vec<_>>(),
            ),
        };
        writeln!(f, "keyless rotate --dry-run: the plan (nothing changed)")?;
        writeln!(
            f,
            "  preflight: read and proved write access to both secrets"
        )?;
        writeln!(f, "  secret: {}, holds {}", self.secret, self.holds)?;
        writeln!(
            f,
            "  master key: {}, {master}; renewal (to {days} days from now) {renew}",
            self.master
        )?;
        writeln!(f, "  key: {} ({source}); write: {write}", plan.key)?;
        writeln!(f, "  wait used: {used}")?;
        writeln!(
            f,
            "  revoke: {revoke}, once unused for {} s after main-app's key cache",
            self.grace.as_secs()
        )
    }
}

/// `--dry-run` after the preflight: reads the key store if the master key allows it and
/// prints the plan; changes nothing.
pub(super) async fn run(
    conn: &Connection,
    (settings, config): (&RotateSettings, &RotateConfig),
    pre: &steps::Preflight,
    report: &mut Reporter<'_>,
) -> Result<i32, OpsError> {
    let (master, keys) = match pre.master.key() {
        None => (MasterState::Placeholder, None),
        Some(master_key) => {
            let admin = AdminClient::new(
                conn.http.clone(),
                config.keys_url.clone(),
                master_key.clone(),
            );
            match admin.list().await {
                Ok(keys) => (MasterState::Accepted, Some(keys)),
                Err(e) if e.is_transient() => (MasterState::NotAccepted, None),
                Err(e) => return Err(admin_failure("reading the function keys", &e)),
            }
        }
    };
    let observed = Observed {
        secret_created: pre.secret.created,
        master,
        keys: keys
            .as_ref()
            .map(|keys| steps::key_infos(keys, &pre.secret.value)),
    };
    let now = OffsetDateTime::now_utc();
    let the_plan = plan(&observed, &settings.key_prefix, now);
    let holds = match (pre.secret.key(), &observed.keys) {
        (None, _) => "no key yet (placeholder)".to_owned(),
        (Some(_), Some(keys)) => keys
            .iter()
            .find(|k| k.in_vault)
            .map(|k| format!("function key {}", k.name))
            .unwrap_or_else(|| "a value that is no function key".into()),
        (Some(_), None) => "a key (the key list is not readable yet)".into(),
    };
    report.print(&DryRun {
        dry_run: true,
        secret: Version::from(&pre.secret),
        holds,
        master: Version::from(&pre.master),
        renew_master: master != MasterState::Placeholder
            && decide::expiry_due(pre.master.expires, settings.expires_in_days, now),
        plan: &the_plan,
        expires_in_days: settings.expires_in_days,
        propagation: config.keys_refresh + PROPAGATION_MARGIN,
        cache: config.main_app_cache,
        used_limit: settings.limits(config).used,
        grace: settings.grace(),
    });
    Ok(EXIT_OK)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rotate::plan::tests::{NOW, P, at, key, observed};

    fn json(message: &impl Serialize) -> serde_json::Value {
        serde_json::to_value(message).unwrap()
    }

    #[test]
    fn the_dry_run_prints_the_plan() {
        let o = observed(
            "2026-11-01T00:00:00Z",
            vec![key(P, true, Some("2026-11-20T09:30:00Z"))],
        );
        let the_plan = plan(&o, P, at(NOW));
        let version = |secret: &str| Version {
            secret: secret.into(),
            version: "v1".into(),
            expires: None,
        };
        let dry = DryRun {
            dry_run: true,
            secret: version("third-party-api-key"),
            holds: "function key main-app".into(),
            master: version("third-party-api-master-key"),
            renew_master: true,
            plan: &the_plan,
            expires_in_days: 90,
            propagation: Duration::from_secs(12),
            cache: Duration::from_secs(300),
            used_limit: Duration::from_secs(900),
            grace: Duration::from_secs(15),
        };
        let text = dry.to_string();
        assert!(text.contains("(nothing changed)"), "{text}");
        for line in [
            "  secret: version v1 of third-party-api-key (expires never), holds function key main-app\n",
            "  key: main-app-20261120093005 (new: add it); write: as a new version expiring in 90 days, once it is 12 s old\n",
            "  wait used: until main-app uses it, or its key cache (300 s) has expired with no older key accepted since the write (at most 900 s)\n",
            "  revoke: main-app (last accepted 2026-11-20T09:30:00Z), once unused for 15 s after main-app's key cache\n",
        ] {
            assert!(text.contains(line), "{line}{text}");
        }
        let value = json(&dry);
        assert_eq!(value["plan"]["key"], "main-app-20261120093005");
        assert_eq!(value["plan"]["source"], "new");
        assert_eq!(value["plan"]["older"][0]["name"], "main-app");
        assert_eq!(value["renew_master"], true);
    }
}
