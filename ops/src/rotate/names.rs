//! The names of the rotated keys: the family `<prefix>` / `<prefix>-*`, and the
//! `<prefix>-<UTC yyyymmddHHMMSS>` stamp a generated key carries and a rerun reads back.

use time::OffsetDateTime;

/// Length of the `-yyyymmddHHMMSS` suffix of a generated key name.
const STAMP_SUFFIX_LEN: usize = 15;
/// Longest prefix: a key name once the stamp is added.
const MAX_PREFIX_LEN: usize = function_keys::MAX_NAME_LEN - STAMP_SUFFIX_LEN;

/// Why a `--key-prefix` is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PrefixError {
    /// Empty, or too long for the stamp to fit in a key name.
    #[error("--key-prefix must have 1 to {MAX_PREFIX_LEN} characters")]
    Length,
    /// Not the start of a key name third-party-api accepts.
    #[error("--key-prefix: {0}")]
    Name(function_keys::KeyError),
}

/// Checks a key prefix: a key name of third-party-api once the 15-character stamp is added.
pub fn validate_prefix(prefix: &str) -> Result<(), PrefixError> {
    if prefix.is_empty() || prefix.len() > MAX_PREFIX_LEN {
        return Err(PrefixError::Length);
    }
    function_keys::KeyName::parse(prefix)
        .map(drop)
        .map_err(PrefixError::Name)
}

/// Whether `name` belongs to the rotated family: `<prefix>` or `<prefix>-*`.
pub fn in_family(prefix: &str, name: &str) -> bool {
    name == prefix
        || name
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with('-'))
}

/// The name of a key generated at `at`: `<prefix>-<UTC yyyymmddHHMMSS>`.
pub fn key_name(prefix: &str, at: OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    format!(
        "{prefix}-{:04}{:02}{:02}{:02}{:02}{:02}",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    )
}

/// When a key called `name` was generated, from its `<prefix>-<yyyymmddHHMMSS>` name; `None`
/// for any other name (the seed `<prefix>`, a hand-made `<prefix>-old`).
pub fn key_stamp(prefix: &str, name: &str) -> Option<OffsetDateTime> {
    let digits = name.strip_prefix(prefix)?.strip_prefix('-')?;
    if digits.len() != 14 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n = |range: std::ops::Range<usize>| digits[range].parse::<u32>().ok();
    let month = time::Month::try_from(u8::try_from(n(4..6)?).ok()?).ok()?;
    let date = time::Date::from_calendar_date(i32::try_from(n(0..4)?).ok()?, month, n(6..8)? as u8)
        .ok()?;
    let clock = time::Time::from_hms(n(8..10)? as u8, n(10..12)? as u8, n(12..14)? as u8).ok()?;
    Some(time::PrimitiveDateTime::new(date, clock).assume_utc())
}

/// A fresh key name at `now` that no key in `taken` has (a second later while it does).
pub fn fresh_key_name<'a>(
    prefix: &str,
    now: OffsetDateTime,
    taken: impl Iterator<Item = &'a str> + Clone,
) -> String {
    let mut at = now;
    loop {
        let name = key_name(prefix, at);
        if !taken.clone().any(|t| t == name) {
            return name;
        }
        at += time::Duration::seconds(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::format_description::well_known::Rfc3339;

    const P: &str = "main-app";

    fn at(text: &str) -> OffsetDateTime {
        OffsetDateTime::parse(text, &Rfc3339).unwrap()
    }

    #[test]
    fn names_carry_the_utc_stamp_and_read_back() {
        let t = at("2026-11-20T09:30:05.250+01:00");
        assert_eq!(key_name(P, t), "main-app-20261120083005");
        assert_eq!(
            key_stamp(P, "main-app-20261120083005"),
            Some(at("2026-11-20T08:30:05Z"))
        );
        for not_stamped in [
            "main-app",
            "main-app-old",
            "main-app-2026112008300",
            "main-app-20261320083005",
            "main-app-20261120253005",
            "other-20261120083005",
            "main-app-canary-20261120083005",
        ] {
            assert_eq!(key_stamp(P, not_stamped), None, "{not_stamped}");
        }
        assert!(in_family(P, "main-app"));
        assert!(in_family(P, "main-app-20261120083005"));
        assert!(!in_family(P, "main-application"));
        assert!(!in_family(P, "other"));
        let taken = ["main-app-20261120093005", "main-app-20261120093006"];
        assert_eq!(
            fresh_key_name(P, at("2026-11-20T09:30:05Z"), taken.iter().copied()),
            "main-app-20261120093007"
        );
    }

    #[test]
    fn prefixes_are_key_names() {
        assert!(validate_prefix("main-app").is_ok());
        assert!(validate_prefix("").is_err());
        assert!(validate_prefix("_x").is_err());
        assert!(validate_prefix(".x").is_err());
        assert!(validate_prefix("a b").is_err());
        assert!(validate_prefix(&"a".repeat(49)).is_ok());
        assert!(validate_prefix(&"a".repeat(50)).is_err());
    }
}
