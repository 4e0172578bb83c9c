//! The code a client receives: `AAA-N-BBB`, two runs of three ASCII letters from a CSPRNG around
//! the third-party number (1 to 999). A [`Code`] is valid once constructed: it is parsed once
//! wherever a code enters (a request body, a queue message, an operator's command line), so a
//! blob name or a log field built from one can never be `..` or carry a separator.

use rand::Rng;
use rand::distr::Alphabetic;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// An issued or presented code.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Code(String);

/// A text that is not a code; it never quotes the text (it may be anything a client sent).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a code looks like AAA-N-BBB: three letters, a number from 1 to 999, three letters")]
pub struct CodeError;

impl Code {
    /// A new code around `number` (1 to 999), letters from the thread's CSPRNG.
    pub fn generate(number: u32) -> Self {
        let mut rng = rand::rng();
        let mut letters =
            |n: usize| -> String { (0..n).map(|_| char::from(rng.sample(Alphabetic))).collect() };
        Self(format!("{}-{number}-{}", letters(3), letters(3)))
    }

    /// Parses a presented code; the error says what shape is expected.
    pub fn parse(text: &str) -> Result<Self, CodeError> {
        let expected = || CodeError;
        let mut parts = text.split('-');
        let (Some(a), Some(n), Some(b), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(expected());
        };
        let letters = |s: &str| s.len() == 3 && s.bytes().all(|c| c.is_ascii_alphabetic());
        let number_ok = !n.is_empty()
            && n.len() <= 3
            && !n.starts_with('0')
            && n.bytes().all(|c| c.is_ascii_digit());
        if letters(a) && letters(b) && number_ok {
            Ok(Self(text.to_owned()))
        } else {
            Err(expected())
        }
    }

    /// The code as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Serialize for Code {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Code {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Code::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn generated_codes_parse_and_vary() {
        let mut seen = HashSet::new();
        for n in [1, 42, 999] {
            for _ in 0..200 {
                let code = Code::generate(n);
                assert_eq!(Code::parse(code.as_str()), Ok(code.clone()));
                assert!(code.as_str().contains(&format!("-{n}-")));
                seen.insert(code);
            }
        }
        assert!(seen.len() > 590, "letters must come from a random source");
    }

    #[test]
    fn malformed_codes_are_refused() {
        for bad in [
            "",
            "abc",
            "abc-1",
            "abc-1-de",
            "ab1-1-def",
            "abc-0-def",
            "abc-1000-def",
            "abc-01-def",
            "abc-1-def-ghi",
            "abc--def",
            "äbc-1-def",
            "abc-+1-def",
        ] {
            assert!(Code::parse(bad).is_err(), "{bad}");
        }
        assert!(Code::parse("aBc-7-XyZ").is_ok());
    }
}
