//! A doctor run's outcome: one line per check, for people or for `--json`.

use crate::azure_scope::MissingRole;
use crate::roles::Identity;

/// The outcome of one check.
#[derive(Debug, Clone)]
pub struct Check {
    /// What was checked.
    pub name: String,
    /// Whether it passed.
    pub ok: bool,
    /// What happened, in words safe to print.
    pub detail: String,
    /// The role whose absence made it fail, when that is the cause.
    pub missing: Option<MissingRole>,
}

/// Every check for one identity.
#[derive(Debug, Clone)]
pub struct Report {
    /// The identity checked.
    pub identity: Identity,
    /// The checks, in order.
    pub checks: Vec<Check>,
}

impl Report {
    /// Whether every check passed.
    pub fn ok(&self) -> bool {
        self.checks.iter().all(|c| c.ok)
    }

    /// The report for `--json`.
    pub fn to_json(&self) -> serde_json::Value {
        let checks: Vec<serde_json::Value> = self
            .checks
            .iter()
            .map(|c| {
                serde_json::json!({
                    "check": c.name,
                    "ok": c.ok,
                    "detail": c.detail,
                    "missing_role": c.missing.as_ref().map(MissingRole::to_json),
                })
            })
            .collect();
        serde_json::json!({ "identity": self.identity.name(), "ok": self.ok(), "checks": checks })
    }

    /// The report for people.
    pub fn render(&self) -> String {
        let mut out = format!("keyless doctor: checking as {}\n", self.identity.name());
        for c in &self.checks {
            let mark = if c.ok { "ok  " } else { "FAIL" };
            out.push_str(&format!("  {mark}  {}: {}\n", c.name, c.detail));
            if let Some(m) = &c.missing {
                out.push_str(&m.render("        "));
            }
        }
        let failed = self.checks.iter().filter(|c| !c.ok).count();
        if failed == 0 {
            out.push_str(&format!(
                "all {} checks passed for {}\n",
                self.checks.len(),
                self.identity.name()
            ));
        } else {
            out.push_str(&format!(
                "{failed} of {} checks failed for {}\n",
                self.checks.len(),
                self.identity.name()
            ));
        }
        out
    }
}
