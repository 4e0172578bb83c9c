//! `keyless code status`: what the ledger says about one code, read-only (one Get Blob
//! Properties on the code's record).

use crate::OpsError;
use crate::connect::Connection;
use crate::roles::Role;
use azure_core::http::Url;
use codes::{Code, LedgerError, Record, RecordState};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// The role the ledger's users need on its container ([`codes::ledger::LEDGER_ROLE`]).
const LEDGER_ROLE: Role = Role::StorageBlobDataContributor;

/// What the ledger says about a code.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
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
    /// What `record` (`None`: no record) says about `code` at `now`.
    pub fn of(code: &Code, record: Option<&Record>, now: OffsetDateTime) -> Self {
        let time = |t: Option<OffsetDateTime>| t.and_then(|t| t.format(&Rfc3339).ok());
        Self {
            code: code.as_str().to_owned(),
            state: match record {
                None => "unknown",
                Some(r) if r.state == RecordState::Used => "used",
                Some(r) if r.expired_at(now) => "expired",
                Some(_) => "issued",
            },
            issued_at: record.and_then(|r| time(r.issued_at)),
            expires_at: record.and_then(|r| time(r.expires_at)),
            used_at: record.and_then(|r| time(r.used_at)),
        }
    }
}

impl std::fmt::Display for CodeStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.state)?;
        for (label, value) in [
            ("issued", &self.issued_at),
            ("expires", &self.expires_at),
            ("used", &self.used_at),
        ] {
            if let Some(v) = value {
                write!(f, ", {label} {v}")?;
            }
        }
        writeln!(f)
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

/// Reads the record of `code` in the ledger at `ledger` ([`codes::CodeLedger::lookup`]: one Get Blob
/// Properties, nothing written).
pub async fn status(conn: &Connection, ledger: &Url, code: &Code) -> Result<CodeStatus, OpsError> {
    let client = conn.ledger(ledger)?;
    let record = client.lookup(code).await.map_err(|e| match e {
        LedgerError::Forbidden(e) | LedgerError::Unavailable(e) => OpsError::azure(&e, LEDGER_ROLE),
        other => OpsError::Failed(other.to_string()),
    })?;
    Ok(CodeStatus::of(
        code,
        record.as_ref(),
        OffsetDateTime::now_utc(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::Duration;

    #[test]
    fn the_ledger_role_is_the_one_the_ledger_names() {
        assert_eq!(LEDGER_ROLE.name(), codes::ledger::LEDGER_ROLE);
    }

    #[test]
    fn a_record_reads_as_issued_used_expired_or_unknown() {
        let code = Code::parse("AbC-1-xYz").unwrap();
        let now = OffsetDateTime::parse("2026-11-01T12:00:00Z", &Rfc3339).unwrap();
        let issued = Record {
            state: RecordState::Issued,
            issued_at: Some(now - Duration::minutes(1)),
            expires_at: Some(now + Duration::minutes(9)),
            used_at: None,
        };
        let used = Record {
            state: RecordState::Used,
            used_at: Some(now + Duration::minutes(10)),
            ..issued.clone()
        };
        let state = |record: Option<&Record>, at| CodeStatus::of(&code, record, at).state;
        assert_eq!(state(Some(&issued), now), "issued");
        assert_eq!(state(Some(&issued), now + Duration::minutes(9)), "expired");
        assert_eq!(state(Some(&used), now + Duration::hours(1)), "used");
        assert_eq!(state(None, now), "unknown");
        let status = CodeStatus::of(&code, Some(&used), now);
        assert_eq!(
            status.to_string(),
            "AbC-1-xYz: used, issued 2026-11-01T11:59:00Z, expires 2026-11-01T12:09:00Z, \
             used 2026-11-01T12:10:00Z\n"
        );
        assert_eq!(
            CodeStatus::of(&code, None, now).to_string(),
            "AbC-1-xYz: unknown\n"
        );
    }
}
