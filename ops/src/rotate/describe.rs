//! The plan in words, numbered as a run does its steps (`--dry-run`).

use super::decide::PROPAGATION_MARGIN;
use super::output::when;
use super::plan::{KeySource, MasterState, Plan};
use super::{RotateConfig, RotateSettings};
use time::OffsetDateTime;

/// When a key was last accepted, in words: never since the replica that answered started.
fn last_use(t: Option<OffsetDateTime>) -> String {
    match t {
        Some(_) => when(t),
        None => "not since third-party-api started".into(),
    }
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
        lines.push(match (self.used_at, &self.older) {
            (Some(t), _) if !self.write => format!(
                "3. wait used: main-app already uses {} (last accepted {})",
                self.key,
                when(Some(t))
            ),
            (_, Some(older)) if older.is_empty() => {
                "3. wait used: nothing to wait for: no older key exists".into()
            }
            _ => format!(
                "3. wait used: wait until main-app uses {}, or until its key cache ({} s) has \
                 expired with no older key accepted since the write (at most {} s)",
                self.key,
                settings.main_app_cache.as_secs(),
                settings.limits(config).used.as_secs()
            ),
        });
        lines.extend(self.describe_idle_and_revoke(settings));
        lines
    }

    fn describe_idle_and_revoke(&self, settings: &RotateSettings) -> [String; 2] {
        let prefix = &settings.key_prefix;
        match &self.older {
            None => [
                format!(
                    "4. wait idle: wait until every older {prefix} key has not been accepted for \
                     {} s (the key list is readable once the master key is accepted)",
                    settings.grace.as_secs(),
                ),
                format!("5. revoke: revoke every older {prefix} key"),
            ],
            Some(older) if older.is_empty() => [
                "4. wait idle: no older key to wait for".into(),
                "5. revoke: nothing to revoke".into(),
            ],
            Some(older) => {
                let names: Vec<String> = older
                    .iter()
                    .map(|k| format!("{} (last accepted {})", k.name, last_use(k.last_accepted)))
                    .collect();
                let revoke: Vec<&str> = older.iter().map(|k| k.name.as_str()).collect();
                [
                    format!(
                        "4. wait idle: wait until {} {} not been accepted for {} s (counted from \
                         the later of that and main-app's key cache lifetime, {} s, after the new \
                         version's creation)",
                        names.join(", "),
                        if older.len() == 1 { "has" } else { "have" },
                        settings.grace.as_secs(),
                        settings.main_app_cache.as_secs()
                    ),
                    format!("5. revoke: revoke {}", revoke.join(", ")),
                ]
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rotate::plan::tests::{NOW, P, at, key, observed};
    use crate::rotate::plan::{Observed, plan};
    use azure_core::http::Url;
    use std::time::Duration;

    fn settings_and_config() -> (RotateSettings, RotateConfig) {
        let settings = RotateSettings {
            dry_run: true,
            expires_in_days: 90,
            grace: Duration::from_secs(300),
            wait_timeout: Duration::from_secs(900),
            main_app_cache: Duration::from_secs(300),
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
        (settings, config)
    }

    #[test]
    fn the_plan_in_words_names_every_step() {
        let (settings, config) = settings_and_config();
        let o = observed(
            "2026-11-01T00:00:00Z",
            vec![key(P, true, Some("2026-11-20T09:30:00Z"))],
        );
        let lines = plan(&o, P, at(NOW)).describe(&settings, &config);
        assert_eq!(lines.len(), 5, "{lines:?}");
        assert!(lines[0].starts_with("1. add: add function key main-app-20261120093005"));
        assert!(lines[1].contains("12 s old") && lines[1].contains("expiring in 90 days"));
        assert!(lines[2].starts_with("3. wait used"));
        assert!(lines[2].contains("or until its key cache (300 s) has expired"));
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
        // From the placeholder with no key in the store: nothing to wait for.
        let lines = plan(&observed(NOW, vec![]), P, at(NOW)).describe(&settings, &config);
        assert_eq!(
            lines[2],
            "3. wait used: nothing to wait for: no older key exists"
        );
    }
}
