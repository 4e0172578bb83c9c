//! What rotate prints. Each message is one value, rendered as text (`Display`) or as a JSON line
//! (`Serialize`, `--json`): a [`Step`] per completed step (`done: ...`), the [`DryRun`] plan, the
//! [`Stopped`] report of missing roles and the [`Rotated`] summary. Progress of the waits and the
//! reason of a stop go to stderr. No key value is part of any of them.

use super::decide::Used;
use super::plan::KeySource;
use crate::azure_scope::MissingRole;
use crate::vault::SecretVersion;
use serde::{Serialize, Serializer};
use std::fmt::{self, Display, Formatter};
use std::io::Write;
use std::time::Duration;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// `t` as RFC 3339, or `unknown`.
pub fn when(t: Option<OffsetDateTime>) -> String {
    t.and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| "unknown".into())
}

/// Serializes a moment as RFC 3339 (`null` when unknown).
pub(super) fn rfc3339<S: Serializer>(t: &Option<OffsetDateTime>, s: S) -> Result<S::Ok, S::Error> {
    t.map(|t| when(Some(t))).serialize(s)
}

pub(super) fn rfc3339_at<S: Serializer>(t: &OffsetDateTime, s: S) -> Result<S::Ok, S::Error> {
    rfc3339(&Some(*t), s)
}

pub(super) fn seconds<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    d.as_secs().serialize(s)
}

/// A secret version as printed: its name, version and expiry, never its value.
#[derive(Debug, Clone, Serialize)]
pub(super) struct Version {
    pub(super) secret: String,
    pub(super) version: String,
    #[serde(serialize_with = "rfc3339")]
    pub(super) expires: Option<OffsetDateTime>,
}

impl From<&SecretVersion> for Version {
    fn from(v: &SecretVersion) -> Self {
        Self {
            secret: v.name.clone(),
            version: v.version.clone(),
            expires: v.expires,
        }
    }
}

/// An expiry in words: RFC 3339, or `never`.
pub(super) fn expiry(t: Option<OffsetDateTime>) -> String {
    t.map_or_else(|| "never".into(), |t| when(Some(t)))
}

impl Display for Version {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let expires = expiry(self.expires);
        write!(
            f,
            "version {} of {} (expires {expires})",
            self.version, self.secret
        )
    }
}

/// A completed step: `done: <step>: <what happened>`, or a JSON object with the step's name in
/// `done`, that sentence in `detail` and the step's fields.
#[derive(Debug, Serialize)]
#[serde(tag = "done", rename_all = "lowercase")]
pub(super) enum Step {
    /// Both secrets read and proven writable; nothing changed.
    Preflight {
        secret: String,
        master_secret: String,
    },
    /// The master key's expiry: renewed when it was due (`renewed`), else left as it is.
    #[serde(rename = "renew master")]
    RenewMaster {
        master: Version,
        renewed: Option<Version>,
    },
    /// A master key generated in place of the placeholder, accepted by the admin API.
    #[serde(rename = "master key")]
    MasterKey { written: Version },
    /// The key the vault is to hold: added now, or found where an earlier run left it.
    Add {
        key: String,
        source: KeySource,
        secret: String,
    },
    /// The key as the latest version of the apps' secret: written now, or already there.
    Write {
        key: String,
        version: Version,
        unchanged: bool,
    },
    /// main-app uses the new key, or provably will at its next call.
    #[serde(rename = "wait used")]
    WaitUsed {
        key: String,
        used: Used,
        #[serde(serialize_with = "seconds")]
        cache: Duration,
    },
    /// The older keys went unused for the grace period.
    #[serde(rename = "wait idle")]
    WaitIdle {
        older: Vec<String>,
        #[serde(serialize_with = "seconds")]
        grace: Duration,
    },
    /// The older keys that still existed, revoked.
    Revoke { revoked: Vec<String> },
}

/// `names` joined with commas, or `none`.
pub(super) fn list(names: &[String]) -> String {
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

impl Display for Step {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Step::Preflight {
                secret,
                master_secret,
            } => write!(
                f,
                "preflight: read and proved write access to secrets {secret} and {master_secret} \
                 (nothing changed)"
            ),
            Step::RenewMaster {
                master,
                renewed: None,
            } => write!(f, "renew master: nothing to renew: {master}"),
            Step::RenewMaster {
                master,
                renewed: Some(renewed),
            } => write!(
                f,
                "renew master: version {} of {} now expires {} (was {})",
                master.version,
                master.secret,
                expiry(renewed.expires),
                expiry(master.expires)
            ),
            Step::MasterKey { written } => write!(
                f,
                "master key: wrote a generated master key as {written}; the admin API accepts it"
            ),
            Step::Add {
                key,
                source,
                secret,
            } => match source {
                KeySource::New => write!(f, "add: added function key {key}"),
                KeySource::AddedEarlier => write!(
                    f,
                    "add: nothing to add: function key {key} was added by an earlier run"
                ),
                KeySource::Resume => write!(
                    f,
                    "add: nothing to add: {secret} already holds {key}; finishing that rotation"
                ),
            },
            Step::Write {
                key,
                version,
                unchanged: true,
            } => write!(f, "write: nothing to write: {version} already holds {key}"),
            Step::Write { key, version, .. } => write!(f, "write: {key} is now {version}"),
            Step::WaitUsed { key, used, cache } => {
                let cache = cache.as_secs();
                match used {
                    Used::Accepted(t) => {
                        write!(f, "wait used: main-app used {key} at {}", when(Some(*t)))
                    }
                    Used::NothingToProve => write!(
                        f,
                        "wait used: nothing to wait for: no older key exists (main-app held no \
                         other key)"
                    ),
                    Used::CacheExpired { quiet, last_older } => write!(
                        f,
                        "wait used: {} for {} s; main-app's cache ({cache} s) has expired",
                        last_older.map_or_else(
                            || "no traffic since the write".to_owned(),
                            |t| format!("no older key accepted since {}", when(Some(t)))
                        ),
                        quiet.as_secs()
                    ),
                    Used::NotYet(detail) => write!(f, "wait used: {detail}"),
                }
            }
            Step::WaitIdle { older, .. } if older.is_empty() => {
                write!(f, "wait idle: no older key to wait for")
            }
            Step::WaitIdle { older, grace } => write!(
                f,
                "wait idle: {} not accepted for {} s",
                older.join(", "),
                grace.as_secs()
            ),
            Step::Revoke { revoked } if revoked.is_empty() => {
                write!(f, "revoke: nothing to revoke")
            }
            Step::Revoke { revoked } => write!(f, "revoke: revoked {}", revoked.join(", ")),
        }
    }
}

/// The preflight found roles missing: nothing was changed.
#[derive(Debug)]
pub(super) struct Stopped<'a>(pub(super) &'a [MissingRole]);

impl Serialize for Stopped<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        serde_json::json!({ "ok": false, "changed": false, "missing_roles": self.0 }).serialize(s)
    }
}

impl Display for Stopped<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "keyless rotate: stopped before changing anything: the identity lacks a role"
        )?;
        self.0.iter().try_for_each(|m| f.write_str(&m.render("  ")))
    }
}

/// What a complete run did: its last line.
#[derive(Debug, Serialize)]
pub(super) struct Rotated {
    pub(super) ok: bool,
    pub(super) key: String,
    #[serde(flatten)]
    pub(super) version: Version,
    #[serde(serialize_with = "rfc3339")]
    pub(super) used_at: Option<OffsetDateTime>,
    pub(super) revoked: Vec<String>,
    pub(super) master_key_generated: bool,
}

impl Display for Rotated {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let uses = match self.used_at {
            Some(_) => "main-app uses it",
            None => "main-app reads it at its next call",
        };
        writeln!(
            f,
            "rotated: {} holds {}; {uses}; revoked: {}",
            self.version,
            self.key,
            list(&self.revoked)
        )
    }
}

/// Writes each message to `out` (stdout) as text or as a JSON line, flushed at once, and
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

    /// A completed step: `done: <step>`.
    pub(super) fn done(&mut self, step: Step) {
        let text = step.to_string();
        if self.json {
            let mut value = serde_json::to_value(&step).unwrap_or_default();
            let detail = text.split_once(": ").map_or(text.as_str(), |(_, d)| d);
            value["detail"] = detail.into();
            let _ = writeln!(self.out, "{value}");
        } else {
            let _ = writeln!(self.out, "done: {text}");
        }
        let _ = self.out.flush();
    }

    /// `message` as a JSON line, or as its text.
    pub(super) fn print(&mut self, message: &(impl Display + Serialize)) {
        crate::output::print(self.out, self.json, message);
    }

    /// The preflight found roles missing: the report on stdout, one line on stderr.
    pub(super) fn stopped(&mut self, missing: &[MissingRole]) {
        self.print(&Stopped(missing));
        let roles: Vec<String> = missing
            .iter()
            .map(|m| format!("{} on {}", m.role.name(), m.scope_name))
            .collect();
        let _ = writeln!(
            self.err,
            "keyless: rotate stopped before changing anything: missing {}",
            roles.join(", ")
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rotate::plan::tests::{NOW, at};

    fn json(message: &impl Serialize) -> serde_json::Value {
        serde_json::to_value(message).unwrap()
    }

    #[test]
    fn a_step_is_one_value_rendered_as_text_or_json() {
        let cache = Duration::from_secs(300);
        let key = "main-app-20261120093005".to_owned();
        let step = |used| Step::WaitUsed {
            key: key.clone(),
            used,
            cache,
        };
        let accepted = step(Used::Accepted(at(NOW)));
        assert_eq!(
            accepted.to_string(),
            "wait used: main-app used main-app-20261120093005 at 2026-11-20T09:30:05Z"
        );
        assert_eq!(
            json(&accepted),
            serde_json::json!({"done": "wait used", "key": key, "cache": 300,
                "used": {"accepted": "2026-11-20T09:30:05Z"}})
        );
        let quiet = step(Used::CacheExpired {
            quiet: Duration::from_secs(302),
            last_older: Some(at(NOW)),
        });
        assert_eq!(
            quiet.to_string(),
            "wait used: no older key accepted since 2026-11-20T09:30:05Z for 302 s; main-app's \
             cache (300 s) has expired"
        );
        assert_eq!(json(&quiet)["used"]["cache_expired"]["quiet"], 302);
        let no_traffic = step(Used::CacheExpired {
            quiet: Duration::from_secs(302),
            last_older: None,
        });
        assert_eq!(
            no_traffic.to_string(),
            "wait used: no traffic since the write for 302 s; main-app's cache (300 s) has expired"
        );
        assert!(
            step(Used::NothingToProve)
                .to_string()
                .starts_with("wait used: nothing to wait for: no older key exists")
        );
        // A `done` JSON line: the step's name as the text has it, its sentence, its fields.
        let (mut out, mut err) = (Vec::new(), Vec::new());
        Reporter::new(&mut out, &mut err, true).done(step(Used::Accepted(at(NOW))));
        let line: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(line["done"], "wait used");
        assert_eq!(
            line["detail"],
            "main-app used main-app-20261120093005 at 2026-11-20T09:30:05Z"
        );
        assert_eq!(line["cache"], 300);
        let revoke = Step::Revoke { revoked: vec![] };
        assert_eq!(revoke.to_string(), "revoke: nothing to revoke");
        assert_eq!(
            json(&revoke),
            serde_json::json!({"done": "revoke", "revoked": []})
        );
    }
}
