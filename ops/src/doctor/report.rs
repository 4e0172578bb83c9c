//! A doctor run's outcome: one line per check, for people or for `--json`.

use crate::azure_scope::MissingRole;
use crate::roles::Identity;

/// The outcome of one check.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Check {
    /// What was checked.
    #[serde(rename = "check")]
    pub name: String,
    /// Whether it passed.
    pub ok: bool,
    /// What happened, in words safe to print.
    pub detail: String,
    /// The role whose absence made it fail, when that is the cause.
    #[serde(rename = "missing_role")]
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
}

impl serde::Serialize for Report {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut m = s.serialize_struct("Report", 3)?;
        m.serialize_field("identity", self.identity.name())?;
        m.serialize_field("ok", &self.ok())?;
        m.serialize_field("checks", &self.checks)?;
        m.end()
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = self.identity.name();
        writeln!(f, "keyless doctor: checking as {name}")?;
        for c in &self.checks {
            let mark = if c.ok { "ok  " } else { "FAIL" };
            writeln!(f, "  {mark}  {}: {}", c.name, c.detail)?;
            if let Some(m) = &c.missing {
                f.write_str(&m.render("        "))?;
            }
        }
        let (failed, all) = (
            self.checks.iter().filter(|c| !c.ok).count(),
            self.checks.len(),
        );
        if failed == 0 {
            writeln!(f, "all {all} checks passed for {name}")
        } else {
            writeln!(f, "{failed} of {all} checks failed for {name}")
        }
    }
}
