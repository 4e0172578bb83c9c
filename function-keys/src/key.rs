//! Keys one by one: a key's name and value with their rules, and the scope a key opens. Errors
//! say what is wrong and never quote a value.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use shared_auth::Secret;
use std::fmt;

/// The one function this host serves.
pub const FUNCTION_NAME: &str = "RandomNumber";
/// The reserved name of the master key in the host-keys API.
pub const MASTER_KEY_NAME: &str = "_master";
/// Bytes of randomness in a generated key (43 characters of URL-safe base64).
const GENERATED_KEY_BYTES: usize = 32;
const MIN_KEY_LEN: usize = 16;
const MAX_KEY_LEN: usize = 256;
/// Longest key name the store accepts.
pub const MAX_NAME_LEN: usize = 64;
/// The function key a new store gets when no seed names one.
pub const DEFAULT_KEY_NAME: &str = "default";

/// Why a key name or value is refused; the message never quotes the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The name is empty or too long.
    #[error("a key name has 1 to {} characters", MAX_NAME_LEN)]
    NameLength,
    /// The name has a character outside `A-Z a-z 0-9 . _ -`.
    #[error("a key name uses only letters, digits, `.`, `_` and `-`")]
    NameCharacters,
    /// The name starts with `_`, kept for names like `_master`.
    #[error("key names starting with `_` are reserved")]
    NameReserved,
    /// The name starts with `.` (`.` and `..` read as path segments).
    #[error("a key name does not start with `.`")]
    NameLeadingDot,
    /// The value is too short or too long.
    #[error("a key value has {} to {} characters", MIN_KEY_LEN, MAX_KEY_LEN)]
    ValueLength,
    /// The value has a character outside base64 and `.`.
    #[error("a key value uses only letters, digits and `+ / = - _ .`")]
    ValueCharacters,
}

/// A valid key name: 1 to 64 of `A-Z a-z 0-9 . _ -`, not starting with `_` (reserved), not dots
/// only (`.` and `..` read as path segments).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct KeyName(String);

impl KeyName {
    /// Parses a name; the error says what is wrong.
    pub fn parse(name: &str) -> Result<Self, KeyError> {
        if name.is_empty() || name.len() > MAX_NAME_LEN {
            return Err(KeyError::NameLength);
        }
        if !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        {
            return Err(KeyError::NameCharacters);
        }
        if name.starts_with('_') {
            return Err(KeyError::NameReserved);
        }
        if name.starts_with('.') {
            return Err(KeyError::NameLeadingDot);
        }
        Ok(Self(name.to_owned()))
    }

    /// [`DEFAULT_KEY_NAME`], a valid name.
    pub fn default_key() -> Self {
        Self(DEFAULT_KEY_NAME.to_owned())
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A valid key value: 16 to 256 characters of base64 (standard or URL-safe) and `.`. Never printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue(Secret);

impl KeyValue {
    /// Parses a value; the error never quotes it.
    pub fn parse(value: &str) -> Result<Self, KeyError> {
        if !(MIN_KEY_LEN..=MAX_KEY_LEN).contains(&value.len()) {
            return Err(KeyError::ValueLength);
        }
        if !value.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=' | b'-' | b'_' | b'.')
        }) {
            return Err(KeyError::ValueCharacters);
        }
        Ok(Self(Secret::new(value)))
    }

    /// A value the store checked when it read it (every document is checked as a whole).
    pub fn checked(value: &str) -> Self {
        Self(Secret::new(value))
    }

    /// A fresh random value from a CSPRNG (ChaCha, seeded by the operating system); the raw
    /// bytes are wiped once encoded.
    pub fn generate() -> Self {
        let mut bytes = zeroize::Zeroizing::new([0u8; GENERATED_KEY_BYTES]);
        rand::rng().fill_bytes(bytes.as_mut());
        Self(Secret::new(URL_SAFE_NO_PAD.encode(bytes.as_ref())))
    }

    /// The value, to hand to an authorised caller or write to the store.
    pub fn expose(&self) -> &str {
        self.0.expose()
    }

    /// The value as a [`Secret`], for an API-key ring.
    pub fn secret(&self) -> &Secret {
        &self.0
    }
}

/// Function keys open one function; host keys open every function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyScope {
    /// Keys of the `RandomNumber` function.
    Function,
    /// Keys of the whole host.
    Host,
}

impl KeyScope {
    /// `function` or `host`: the prefix of the scope's keys in the ring.
    pub fn label(self) -> &'static str {
        match self {
            Self::Function => "function",
            Self::Host => "host",
        }
    }

    /// The document's field holding the scope's keys.
    pub fn field(self) -> &'static str {
        match self {
            Self::Function => "functionKeys",
            Self::Host => "hostKeys",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_values_parse_or_say_why() {
        assert!(KeyName::parse("default").is_ok());
        assert!(KeyName::parse("ops-2026.v1_a").is_ok());
        assert!(KeyName::parse("a..b").is_ok());
        for bad in [
            "",
            "_master",
            "a b",
            "ключ",
            ".",
            "..",
            "...",
            "../x",
            &"a".repeat(65),
        ] {
            assert!(KeyName::parse(bad).is_err(), "{bad}");
        }
        assert!(KeyValue::parse("abcdefghijklmnop").is_ok());
        assert!(KeyValue::parse("abc+/=-_.0123456789AB==").is_ok());
        for bad in [
            "short",
            "has space in it 0123",
            "null\0byte-0123456789",
            &"a".repeat(257),
        ] {
            let err = KeyValue::parse(bad).unwrap_err().to_string();
            assert!(!err.contains(bad), "the error must not quote the value");
        }
    }

    #[test]
    fn the_default_key_name_is_valid() {
        assert_eq!(KeyName::parse(DEFAULT_KEY_NAME), Ok(KeyName::default_key()));
    }

    #[test]
    fn messages_are_the_rules() {
        assert_eq!(
            KeyName::parse("").unwrap_err().to_string(),
            "a key name has 1 to 64 characters"
        );
        assert_eq!(
            KeyValue::parse("short").unwrap_err().to_string(),
            "a key value has 16 to 256 characters"
        );
    }

    #[test]
    fn generated_values_are_valid_and_distinct() {
        let a = KeyValue::generate();
        let b = KeyValue::generate();
        assert_ne!(a, b);
        assert!(KeyValue::parse(a.expose()).is_ok());
        assert_eq!(a.expose().len(), 43);
    }
}
