//! `keyless code status`: what the ledger says about one code, read-only (one Get Blob
//! Properties on the code's record).

use crate::OpsError;
use crate::connect::{self, Connection};
use crate::roles::Role;
use azure_core::http::{StatusCode, Url};
use azure_storage_blob::models::BlobClientGetPropertiesResultHeaders;
use codes::Code;
use codes::ledger::{EXPIRES_AT, ISSUED_AT, STATE, USED_AT};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// What the ledger says about a code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeStatus {
    /// The code asked about.
    pub code: String,
    /// `issued`, `used`, `expired` or `unknown`.
    pub state: &'static str,
    /// When it was issued, when recorded.
    pub issued_at: Option<String>,
    /// When it expires (or expired), when recorded.
    pub expires_at: Option<String>,
    /// When it was used, when it was.
    pub used_at: Option<String>,
}

impl CodeStatus {
    /// The status for `--json`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "code": self.code,
            "state": self.state,
            "issued_at": self.issued_at,
            "expires_at": self.expires_at,
            "used_at": self.used_at,
        })
    }

    /// The status for people.
    pub fn render(&self) -> String {
        let mut out = format!("{}: {}", self.code, self.state);
        for (label, value) in [
            ("issued", &self.issued_at),
            ("expires", &self.expires_at),
            ("used", &self.used_at),
        ] {
            if let Some(v) = value {
                out.push_str(&format!(", {label} {v}"));
            }
        }
        out.push('\n');
        out
    }
}

/// Parses `text` as a code; anything else is bad input.
pub fn parse_code(text: &str) -> Result<Code, OpsError> {
    Code::parse(text).map_err(|_| {
        OpsError::Usage(format!(
            "`{}` is not a code (AAA-N-BBB: three letters, a number from 1 to 999, three letters)",
            text.escape_debug()
        ))
    })
}

/// Reads the record of `code` in the ledger at `ledger`.
pub async fn status(conn: &Connection, ledger: &Url, code: &Code) -> Result<CodeStatus, OpsError> {
    let container = conn.ledger(ledger)?;
    let mut status = CodeStatus {
        code: code.as_str().to_owned(),
        state: "unknown",
        issued_at: None,
        expires_at: None,
        used_at: None,
    };
    let properties = match container
        .blob_client(code.as_str())
        .get_properties(None)
        .await
    {
        Ok(p) => p,
        Err(e) if e.http_status() == Some(StatusCode::NotFound) => return Ok(status),
        Err(e) => {
            let mut text = format!("cannot read the ledger: {}", connect::describe(&e));
            if connect::is_forbidden(&e) {
                let role = Role::StorageBlobDataContributor;
                text.push_str(&format!(
                    "; it needs {} ({}) on container {} (run `keyless doctor`)",
                    role.name(),
                    role.id().unwrap_or_default(),
                    connect::resource_name(ledger)
                ));
            }
            return Err(OpsError::Failed(text));
        }
    };
    let metadata = properties
        .metadata()
        .map_err(|e| OpsError::Failed(format!("the ledger record is unreadable: {e}")))?;
    status.issued_at = metadata.get(ISSUED_AT).cloned();
    status.expires_at = metadata.get(EXPIRES_AT).cloned();
    status.used_at = metadata.get(USED_AT).cloned();
    let expired = status
        .expires_at
        .as_deref()
        .and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok())
        .is_some_and(|t| t <= OffsetDateTime::now_utc());
    status.state = match metadata.get(STATE).map(String::as_str) {
        Some("used") => "used",
        _ if expired => "expired",
        _ => "issued",
    };
    Ok(status)
}
