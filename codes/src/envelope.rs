//! The queue message envelope: versioned JSON, UTF-8, base64 on the wire by default (what Azure
//! Functions queue triggers expect) or raw with `QUEUE_MESSAGE_ENCODING=none`.

use crate::Code;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};
use shared_auth::{ConfigError, EnvSource};
use time::OffsetDateTime;
use uuid::Uuid;

/// `base64` (default) or `none`.
pub const QUEUE_MESSAGE_ENCODING: &str = "QUEUE_MESSAGE_ENCODING";
/// The longest a code may be valid; a message claiming more is refused.
pub const MAX_CODE_TTL: std::time::Duration = std::time::Duration::from_secs(7 * 24 * 3600);
/// The envelope version this build writes and reads.
pub const ENVELOPE_VERSION: u32 = 1;

/// What a message asks the consumer to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MessageType {
    /// A code was issued: record it in the ledger (its expiry travels with the record).
    CodeIssued,
}

/// One queue message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodeEnvelope {
    /// What to do.
    #[serde(rename = "type")]
    pub kind: MessageType,
    /// Envelope version, [`ENVELOPE_VERSION`].
    pub version: u32,
    /// Unique message id (idempotency and tracing).
    pub id: Uuid,
    /// The code concerned (a message whose code does not parse is not an envelope).
    pub code: Code,
    /// When the code was issued (RFC 3339 UTC).
    #[serde(with = "time::serde::rfc3339")]
    pub issued_at: OffsetDateTime,
    /// When the code stops being valid (RFC 3339 UTC).
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// W3C trace context of the producer, when traced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
}

/// How envelopes are written to the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MessageEncoding {
    /// Base64 of the UTF-8 JSON, as Azure Functions expects.
    #[default]
    Base64,
    /// The JSON text itself.
    None,
}

impl MessageEncoding {
    /// Reads `QUEUE_MESSAGE_ENCODING`; unset means base64.
    pub fn from_env(env: &dyn EnvSource) -> Result<Self, ConfigError> {
        match env.var(QUEUE_MESSAGE_ENCODING).as_deref() {
            None => Ok(Self::Base64),
            Some(v) if v.eq_ignore_ascii_case("base64") => Ok(Self::Base64),
            Some(v) if v.eq_ignore_ascii_case("none") => Ok(Self::None),
            Some(_) => Err(ConfigError::new(
                QUEUE_MESSAGE_ENCODING,
                "must be `base64` or `none`",
            )),
        }
    }

    /// `json` as the queue message text this encoding writes.
    fn apply(self, json: String) -> String {
        match self {
            Self::Base64 => BASE64.encode(json),
            Self::None => json,
        }
    }
}

/// Why a message could not be read. Every variant means "poison at once": retrying cannot help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    /// The text is not valid base64.
    #[error("message is not valid base64")]
    Base64,
    /// The bytes are not UTF-8.
    #[error("message is not UTF-8")]
    Utf8,
    /// The text is not an envelope.
    #[error("message is not a valid envelope: {0}")]
    Json(String),
    /// The times are impossible: expiry before issue, or a lifetime over [`MAX_CODE_TTL`].
    #[error("the code's lifetime is impossible (expiry before issue, or longer than {} days)", MAX_CODE_TTL.as_secs() / 86400)]
    Lifetime,
    /// A readiness probe where a code envelope was expected.
    #[error("message is a readiness probe, not a code")]
    Probe,
    /// A version this build does not understand.
    #[error("envelope version {0} is not supported (this build reads version {ENVELOPE_VERSION})")]
    UnsupportedVersion(u64),
}

impl CodeEnvelope {
    /// The `code-issued` message for `code`, issued at `issued_at` (whole milliseconds kept) and
    /// valid for `ttl`, carrying the producer's `traceparent`.
    pub fn issued(
        code: Code,
        issued_at: OffsetDateTime,
        ttl: std::time::Duration,
        traceparent: Option<String>,
    ) -> Self {
        let issued_at = issued_at
            .replace_millisecond(issued_at.millisecond())
            .unwrap_or(issued_at);
        Self {
            kind: MessageType::CodeIssued,
            version: ENVELOPE_VERSION,
            id: Uuid::new_v4(),
            code,
            issued_at,
            expires_at: issued_at + ttl,
            traceparent,
        }
    }

    /// Encodes the envelope as queue message text.
    pub fn encode(&self, encoding: MessageEncoding) -> String {
        encoding.apply(serde_json::to_string(self).expect("an envelope always serialises"))
    }

    /// Decodes queue message text.
    pub fn decode(text: &str, encoding: MessageEncoding) -> Result<Self, EnvelopeError> {
        match Incoming::decode(text, encoding)? {
            Incoming::Code(envelope) => Ok(envelope),
            Incoming::Probe => Err(EnvelopeError::Probe),
        }
    }
}

/// The `type` of a readiness probe: a message a producer sends to prove it may, which the
/// consumer deletes unread.
pub const PROBE_TYPE: &str = "probe";

/// A message read from the queue: a code envelope or a producer's readiness probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    /// A code to act on.
    Code(CodeEnvelope),
    /// A readiness probe: nothing to do but delete it.
    Probe,
}

/// The text of one readiness probe (`{"type":"probe","version":1,"id":...}`, encoded).
pub fn probe_text(encoding: MessageEncoding) -> String {
    let json = serde_json::json!({
        "type": PROBE_TYPE,
        "version": ENVELOPE_VERSION,
        "id": Uuid::new_v4(),
    })
    .to_string();
    encoding.apply(json)
}

impl Incoming {
    /// Decodes queue message text: a valid envelope, a probe, or why it is neither.
    pub fn decode(text: &str, encoding: MessageEncoding) -> Result<Self, EnvelopeError> {
        let json = match encoding {
            MessageEncoding::Base64 => {
                let bytes = BASE64
                    .decode(text.trim())
                    .map_err(|_| EnvelopeError::Base64)?;
                String::from_utf8(bytes).map_err(|_| EnvelopeError::Utf8)?
            }
            MessageEncoding::None => text.to_owned(),
        };
        let value: serde_json::Value =
            serde_json::from_str(&json).map_err(|e| EnvelopeError::Json(e.to_string()))?;
        match value.get("version").and_then(serde_json::Value::as_u64) {
            Some(v) if v == u64::from(ENVELOPE_VERSION) => {}
            Some(v) => return Err(EnvelopeError::UnsupportedVersion(v)),
            None => return Err(EnvelopeError::Json("`version` is missing".into())),
        }
        if value.get("type").and_then(serde_json::Value::as_str) == Some(PROBE_TYPE) {
            return Ok(Self::Probe);
        }
        let envelope: CodeEnvelope =
            serde_json::from_value(value).map_err(|e| EnvelopeError::Json(e.to_string()))?;
        let lifetime = envelope.expires_at - envelope.issued_at;
        if lifetime.is_negative() || lifetime > MAX_CODE_TTL {
            return Err(EnvelopeError::Lifetime);
        }
        Ok(Self::Code(envelope))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> CodeEnvelope {
        CodeEnvelope::issued(
            Code::parse("abc-42-XYZ").unwrap(),
            OffsetDateTime::now_utc(),
            std::time::Duration::from_secs(600),
            Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into()),
        )
    }

    #[test]
    fn round_trips_in_both_encodings() {
        let envelope = sample();
        for encoding in [MessageEncoding::Base64, MessageEncoding::None] {
            let text = envelope.encode(encoding);
            assert_eq!(CodeEnvelope::decode(&text, encoding).unwrap(), envelope);
        }
        let raw = envelope.encode(MessageEncoding::None);
        assert!(raw.contains(r#""type":"code-issued""#), "{raw}");
    }

    #[test]
    fn bad_messages_are_told_apart() {
        let b64 = MessageEncoding::Base64;
        assert_eq!(CodeEnvelope::decode("%%%", b64), Err(EnvelopeError::Base64));
        assert_eq!(
            CodeEnvelope::decode(&BASE64.encode([0xff, 0xfe]), b64),
            Err(EnvelopeError::Utf8)
        );
        assert!(matches!(
            CodeEnvelope::decode(&BASE64.encode("{not json"), b64),
            Err(EnvelopeError::Json(_))
        ));
        let mut v2 = serde_json::to_value(sample()).unwrap();
        v2["version"] = 2.into();
        assert_eq!(
            CodeEnvelope::decode(&v2.to_string(), MessageEncoding::None),
            Err(EnvelopeError::UnsupportedVersion(2))
        );
    }

    #[test]
    fn a_message_whose_code_is_not_a_code_is_not_an_envelope() {
        for bad in ["..", "../other", "abc-1-def/x", "", "abc%2f1-def"] {
            let mut value = serde_json::to_value(sample()).unwrap();
            value["code"] = bad.into();
            let err = CodeEnvelope::decode(&value.to_string(), MessageEncoding::None).unwrap_err();
            assert!(matches!(err, EnvelopeError::Json(_)), "{bad}: {err:?}");
            assert!(!err.to_string().contains(bad) || bad.is_empty(), "{err}");
        }
    }

    #[test]
    fn a_probe_is_told_apart_from_a_code_in_both_encodings() {
        for encoding in [MessageEncoding::Base64, MessageEncoding::None] {
            let text = probe_text(encoding);
            assert_eq!(Incoming::decode(&text, encoding), Ok(Incoming::Probe));
            assert_eq!(
                CodeEnvelope::decode(&text, encoding),
                Err(EnvelopeError::Probe)
            );
            let code = sample().encode(encoding);
            assert_eq!(
                Incoming::decode(&code, encoding),
                Ok(Incoming::Code(sample_like(&code, encoding)))
            );
        }
    }

    fn sample_like(text: &str, encoding: MessageEncoding) -> CodeEnvelope {
        CodeEnvelope::decode(text, encoding).unwrap()
    }

    #[test]
    fn an_impossible_lifetime_is_refused() {
        let mut long = sample();
        long.expires_at = long.issued_at + MAX_CODE_TTL + time::Duration::seconds(1);
        let mut backwards = sample();
        backwards.expires_at = backwards.issued_at - time::Duration::seconds(1);
        for envelope in [long, backwards] {
            let text = envelope.encode(MessageEncoding::None);
            assert_eq!(
                CodeEnvelope::decode(&text, MessageEncoding::None),
                Err(EnvelopeError::Lifetime)
            );
        }
    }
}
