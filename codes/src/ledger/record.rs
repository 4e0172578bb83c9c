//! One code's record: the metadata of its blob (names below) and what they say.

use std::collections::HashMap;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Metadata: when the code was issued (RFC 3339).
pub(crate) const ISSUED_AT: &str = "issued_at";
/// Metadata: when the code stops being valid (RFC 3339).
pub(crate) const EXPIRES_AT: &str = "expires_at";
/// Metadata: `issued` or `used`.
pub(crate) const STATE: &str = "state";
/// Metadata: when the code was used (RFC 3339).
pub(crate) const USED_AT: &str = "used_at";
/// Metadata: the id of the message that recorded the code.
pub(crate) const MESSAGE_ID: &str = "message_id";
/// Metadata: a random id of the verify that used the code, so that verify can tell its own
/// write from another's when the answer to it was lost.
pub(crate) const USED_BY: &str = "used_by";

/// A record's state as stored in its metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordState {
    /// Recorded, not used yet.
    Issued,
    /// Consumed by a verify.
    Used,
}

/// What the ledger holds about one code; a time it cannot read is `None`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Issued or used.
    pub state: RecordState,
    /// When the code was issued.
    pub issued_at: Option<OffsetDateTime>,
    /// When it stops being valid.
    pub expires_at: Option<OffsetDateTime>,
    /// When it was used.
    pub used_at: Option<OffsetDateTime>,
}

impl Record {
    /// The record its blob's metadata describes.
    pub fn from_metadata(metadata: &HashMap<String, String>) -> Self {
        let time = |key: &str| {
            metadata
                .get(key)
                .and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok())
        };
        Self {
            state: match metadata.get(STATE).map(String::as_str) {
                Some("used") => RecordState::Used,
                _ => RecordState::Issued,
            },
            issued_at: time(ISSUED_AT),
            expires_at: time(EXPIRES_AT),
            used_at: time(USED_AT),
        }
    }

    /// Whether a verify at `now` may use the code: not used, and before a readable expiry.
    pub fn usable_at(&self, now: OffsetDateTime) -> bool {
        self.state == RecordState::Issued && self.expires_at.is_some_and(|expires| now < expires)
    }

    /// Whether the record's own expiry is at or before `now` (unreadable: never).
    pub fn expired_at(&self, now: OffsetDateTime) -> bool {
        self.expires_at.is_some_and(|expires| now >= expires)
    }
}
