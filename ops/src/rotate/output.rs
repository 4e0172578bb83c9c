//! What rotate prints: one `done: ` line per completed step (or a JSON line each, `--json`),
//! progress of the waits and the reason of a stop on stderr, the plan in words for `--dry-run`,
//! and the summary. No key value is ever part of it.

use super::decide::Used;
use super::plan::{Observed, Plan};
use super::{RotateConfig, RotateSettings};
use crate::azure_scope::MissingRole;
use crate::vault::SecretVersion;
use std::io::Write;
use std::time::{Duration, Instant};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// How often a wait reports progress on stderr.
pub const PROGRESS_INTERVAL: Duration = Duration::from_secs(10);

/// `t` as RFC 3339, or `unknown`.
pub fn when(t: Option<OffsetDateTime>) -> String {
    t.and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| "unknown".into())
}

/// An expiry in words: RFC 3339, or `never`.
pub(super) fn expiry(t: Option<OffsetDateTime>) -> String {
    t.map_or_else(|| "never".into(), |t| when(Some(t)))
}

/// Writes `done: ` lines (or JSON lines) to `out` (stdout), each flushed as it completes, and
/// progress and the reason of a stop to `err` (stderr).
pub(super) struct Reporter<'a> {
    out: &'a mut (dyn Write + Send),
    err: &'a mut (dyn Write + Send),
    json: bool,
}

impl<'a> Reporter<'a> {
    pub(super) fn new(
        out: &'a mut (dyn Write + Send),
        err: &'a mut (dyn Write + Send),
        json: bool,
    ) -> Self {
        Self { out, err, json }
    }

    /// Where progress goes.
    pub(super) fn err(&mut self) -> &mut (dyn Write + Send) {
        self.err
    }

    /// Step `step` is complete: `done: <step>: <detail>`.
    pub(super) fn done(&mut self, step: &str, detail: String) {
        let value = serde_json::json!({ "done": step, "detail": detail });
        self.line(value, format!("done: {step}: {detail}\n"));
    }

    /// `value` as a JSON line, or `text` as it is.
    pub(super) fn line(&mut self, value: serde_json::Value, text: String) {
        let _ = if self.json {
            writeln!(self.out, "{value}")
        } else {
            write!(self.out, "{text}")
        };
        let _ = self.out.flush();
    }

    /// The preflight found roles missing: nothing was changed.
    pub(super) fn missing_roles(&mut self, missing: &[MissingRole]) {
        let mut text = String::from(
            "keyless rotate: stopped before changing anything: the identity lacks a role\n",
        );
        for m in missing {
            text.push_str(&m.render("  "));
        }
        let value = serde_json::json!({
            "ok": false,
            "changed": false,
            "missing_roles": missing.iter().map(MissingRole::to_json).collect::<Vec<_>>(),
        });
        self.line(value, text);
        let _ = writeln!(
            self.err,
            "keyless: rotate stopped before changing anything: missing {}",
            missing
                .iter()
                .map(|m| format!("{} on {}", m.role.name(), m.scope_name))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }

    /// `--dry-run`: the state, then the steps of `plan`; `renew` says what happens to the
    /// master key's expiry.
    pub(super) fn plan(
        &mut self,
        plan: &Plan,
        (settings, config): (&RotateSettings, &RotateConfig),
        preflight: String,
        state: String,
        renew: String,
    ) {
        let steps = plan.describe(settings, config);
        let mut text = String::from("keyless rotate --dry-run: the plan (nothing was changed)\n");
        text.push_str(&format!(
            "  preflight: {preflight}\n  {state}\n  renew master: {renew}\n"
        ));
        for s in &steps {
            text.push_str(&format!("  {s}\n"));
        }
        let value = serde_json::json!({
            "dry_run": true,
            "preflight": preflight,
            "secret": state,
            "renew_master": renew,
            "key": plan.key,
            "source": format!("{:?}", plan.source),
            "write": plan.write,
            "revoke": plan.older.as_ref().map(|o| o.iter().map(|k| k.name.clone()).collect::<Vec<_>>()),
            "steps": steps,
        });
        self.line(value, text);
    }
}

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

/// How "wait used" ended, for its `done: ` line.
pub(super) fn used_detail(used: &Used, key: &str, cache: Duration) -> String {
    let cache = cache.as_secs();
    match used {
        Used::Accepted(t) => format!("main-app used {key} at {}", when(Some(*t))),
        Used::NothingToProve => {
            "nothing to wait for: no older key exists (main-app held no other key)".into()
        }
        Used::CacheExpired {
            quiet,
            last_older: None,
        } => format!(
            "no traffic since the write for {} s; main-app's cache ({cache} s) has expired",
            quiet.as_secs()
        ),
        Used::CacheExpired {
            quiet,
            last_older: Some(t),
        } => format!(
            "no older key accepted since {} ({} s); main-app's cache ({cache} s) has expired",
            when(Some(*t)),
            quiet.as_secs()
        ),
        Used::NotYet(detail) => detail.clone(),
    }
}

/// The `done: master key` line: the generated master key's version, accepted by the admin API.
pub(super) fn generated_master(written: &SecretVersion) -> String {
    format!(
        "wrote a generated master key as version {} of {} (expires {}); the admin API accepts it",
        written.version,
        written.name,
        when(written.expires)
    )
}

/// The `done: wait idle` line.
pub(super) fn idle_detail(older: &[String], grace: Duration) -> String {
    if older.is_empty() {
        "no older key to wait for".into()
    } else {
        format!(
            "{} not accepted for {} s",
            older.join(", "),
            grace.as_secs()
        )
    }
}

/// The apps' secret as `--dry-run` shows it: version, dates, which key it holds.
pub(super) fn secret_state(secret: &SecretVersion, observed: &Observed) -> String {
    let holds = match (secret.key(), &observed.keys) {
        (None, _) => "no key yet (placeholder)".to_owned(),
        (Some(_), Some(keys)) => keys
            .iter()
            .find(|k| k.in_vault)
            .map(|k| format!("function key {}", k.name))
            .unwrap_or_else(|| "a value that is no function key".into()),
        (Some(_), None) => "a key (the key list is not readable yet)".into(),
    };
    format!(
        "{}: version {} created {}, expires {}, holds {holds}",
        secret.name,
        secret.version,
        when(secret.created),
        expiry(secret.expires),
    )
}

/// What a complete run did, for its summary.
pub(super) struct Rotated<'a> {
    pub(super) key: &'a str,
    pub(super) version: &'a SecretVersion,
    pub(super) used: &'a Used,
    pub(super) revoked: &'a [String],
    pub(super) master_key_generated: bool,
}

impl Reporter<'_> {
    /// The last line of a complete run.
    pub(super) fn summary(&mut self, done: &Rotated<'_>, config: &RotateConfig) {
        let revoked = if done.revoked.is_empty() {
            "none".to_owned()
        } else {
            done.revoked.join(", ")
        };
        let (used_at, uses) = match done.used {
            Used::Accepted(t) => (Some(*t), "main-app uses it"),
            _ => (None, "main-app reads it at its next call"),
        };
        let text = format!(
            "rotated: {} holds {} (version {}, expires {}); {uses}; revoked: {revoked}\n",
            config.secret_name,
            done.key,
            done.version.version,
            when(done.version.expires),
        );
        let value = serde_json::json!({
            "ok": true,
            "secret": config.secret_name,
            "key": done.key,
            "version": done.version.version,
            "expires": when(done.version.expires),
            "used_at": used_at.map(|t| when(Some(t))),
            "revoked": done.revoked,
            "master_key_generated": done.master_key_generated,
        });
        self.line(value, text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rotate::plan::tests::{NOW, at};

    #[test]
    fn wait_used_says_how_it_ended() {
        let cache = Duration::from_secs(300);
        let detail = |used| used_detail(&used, "main-app-20261120093005", cache);
        assert_eq!(
            detail(Used::Accepted(at(NOW))),
            "main-app used main-app-20261120093005 at 2026-11-20T09:30:05Z"
        );
        assert_eq!(
            detail(Used::CacheExpired {
                quiet: Duration::from_secs(302),
                last_older: None
            }),
            "no traffic since the write for 302 s; main-app's cache (300 s) has expired"
        );
        assert_eq!(
            detail(Used::CacheExpired {
                quiet: Duration::from_secs(302),
                last_older: Some(at(NOW))
            }),
            "no older key accepted since 2026-11-20T09:30:05Z (302 s); main-app's cache (300 s) \
             has expired"
        );
        assert!(detail(Used::NothingToProve).starts_with("nothing to wait for: no older key"));
    }

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
