//! Property tests of what enters from outside: the code parser and the envelope decoder take any
//! text without panicking, accept exactly the documented shapes, and round-trip what they make.

use codes::envelope::{Incoming, MAX_CODE_TTL, probe_text};
use codes::{Code, CodeEnvelope, EnvelopeError, MessageEncoding};
use proptest::prelude::*;
use time::OffsetDateTime;

/// The documented shape of a code, as a second, independent reading.
fn is_code_shape(text: &str) -> bool {
    let parts: Vec<&str> = text.split('-').collect();
    let letters = |s: &str| s.len() == 3 && s.bytes().all(|b| b.is_ascii_alphabetic());
    parts.len() == 3
        && letters(parts[0])
        && letters(parts[2])
        && parts[1]
            .parse::<u32>()
            .is_ok_and(|n| (1..=999).contains(&n) && n.to_string() == parts[1])
}

fn encoding() -> impl Strategy<Value = MessageEncoding> {
    prop_oneof![Just(MessageEncoding::Base64), Just(MessageEncoding::None)]
}

fn envelope() -> impl Strategy<Value = CodeEnvelope> {
    (
        1u32..=999,
        0i64..4_000_000_000,
        1u64..=MAX_CODE_TTL.as_secs(),
        prop::option::of("[0-9a-f]{32}"),
    )
        .prop_map(|(number, issued, ttl, trace)| {
            let issued = OffsetDateTime::from_unix_timestamp(issued).unwrap();
            CodeEnvelope::issued(
                Code::generate(number),
                issued,
                std::time::Duration::from_secs(ttl),
                trace.map(|t| format!("00-{t}-00f067aa0ba902b7-01")),
            )
        })
}

proptest! {
    #[test]
    fn the_code_parser_accepts_exactly_the_documented_shape(text in any::<String>()) {
        let parsed = Code::parse(&text);
        prop_assert_eq!(parsed.is_ok(), is_code_shape(&text), "{:?}", text);
        if let Ok(code) = parsed {
            prop_assert_eq!(code.as_str(), text.as_str());
        }
    }

    #[test]
    fn near_codes_are_judged_like_the_shape(text in "[A-Za-z0-9./%-]{3}-[0-9]{0,4}-[A-Za-z./%]{2,4}") {
        prop_assert_eq!(Code::parse(&text).is_ok(), is_code_shape(&text), "{:?}", text);
    }

    #[test]
    fn generated_codes_parse_and_carry_their_number(number in 1u32..=999) {
        let code = Code::generate(number);
        prop_assert!(is_code_shape(code.as_str()));
        prop_assert_eq!(code.as_str().split('-').nth(1).unwrap(), number.to_string());
    }

    #[test]
    fn envelopes_round_trip_in_both_encodings(envelope in envelope(), encoding in encoding()) {
        let text = envelope.encode(encoding);
        prop_assert_eq!(CodeEnvelope::decode(&text, encoding), Ok(envelope.clone()));
        prop_assert_eq!(Incoming::decode(&text, encoding), Ok(Incoming::Code(envelope)));
    }

    #[test]
    fn any_text_decodes_or_is_refused_without_panic(text in any::<String>(), encoding in encoding()) {
        // Whatever a queue holds: an error, never a panic, and never taken for a probe by accident.
        if let Ok(incoming) = Incoming::decode(&text, encoding) {
            prop_assert!(matches!(incoming, Incoming::Probe) || matches!(incoming, Incoming::Code(_)));
        }
    }

    #[test]
    fn any_json_with_the_right_version_decodes_or_is_refused(
        kind in prop_oneof![
            Just("code-issued".to_owned()),
            Just("code-expire".to_owned()),
            Just("probe".to_owned()),
            any::<String>(),
        ],
        code in prop_oneof![Just("aBc-12-DeF".to_owned()), any::<String>()],
        issued in any::<i64>(),
        lifetime in any::<i64>(),
    ) {
        let issued_at = OffsetDateTime::from_unix_timestamp(issued.rem_euclid(4_000_000_000)).unwrap();
        let expires_at = issued_at + time::Duration::seconds(lifetime % 2_000_000);
        let fmt = |t: OffsetDateTime| t.format(&time::format_description::well_known::Rfc3339).unwrap();
        let json = serde_json::json!({
            "type": kind, "version": 1, "id": uuid::Uuid::nil(), "code": code,
            "issued_at": fmt(issued_at), "expires_at": fmt(expires_at),
        })
        .to_string();
        match Incoming::decode(&json, MessageEncoding::None) {
            Ok(Incoming::Probe) => prop_assert_eq!(kind, "probe"),
            Ok(Incoming::Code(envelope)) => {
                prop_assert!(is_code_shape(envelope.code.as_str()));
                prop_assert!(envelope.expires_at >= envelope.issued_at);
                prop_assert!(envelope.expires_at - envelope.issued_at <= MAX_CODE_TTL);
            }
            Err(EnvelopeError::Lifetime) => {
                let lifetime = expires_at - issued_at;
                prop_assert!(lifetime.is_negative() || lifetime > MAX_CODE_TTL);
            }
            Err(_) => prop_assert!(kind != "probe"),
        }
    }
}

#[test]
fn a_probe_is_a_probe_in_both_encodings() {
    for encoding in [MessageEncoding::Base64, MessageEncoding::None] {
        assert_eq!(
            Incoming::decode(&probe_text(encoding), encoding),
            Ok(Incoming::Probe)
        );
    }
}
