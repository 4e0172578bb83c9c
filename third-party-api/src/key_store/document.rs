//! What the store holds and how it is written: key names and values with their rules, and the
//! JSON document (the same in a file and in a blob). Errors never quote a value.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use shared_auth::Secret;
use std::collections::BTreeMap;
use std::fmt;

/// The one function this host serves.
pub const FUNCTION_NAME: &str = "RandomNumber";
/// The reserved name of the master key in the host-keys API.
pub const MASTER_KEY_NAME: &str = "_master";
/// Bytes of randomness in a generated key (43 characters of URL-safe base64).
const GENERATED_KEY_BYTES: usize = 32;
const MIN_KEY_LEN: usize = 16;
const MAX_KEY_LEN: usize = 256;
const MAX_NAME_LEN: usize = 64;

/// A valid key name: 1 to 64 of `A-Z a-z 0-9 . _ -`, not starting with `_` (reserved), not dots
/// only (`.` and `..` read as path segments).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct KeyName(String);

impl KeyName {
    /// Parses a name; the error says what is wrong.
    pub fn parse(name: &str) -> Result<Self, String> {
        if name.is_empty() || name.len() > MAX_NAME_LEN {
            return Err(format!("a key name has 1 to {MAX_NAME_LEN} characters"));
        }
        if !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        {
            return Err("a key name uses only letters, digits, `.`, `_` and `-`".into());
        }
        if name.starts_with('_') {
            return Err("key names starting with `_` are reserved".into());
        }
        if name.starts_with('.') {
            return Err("a key name does not start with `.`".into());
        }
        Ok(Self(name.to_owned()))
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
    pub fn parse(value: &str) -> Result<Self, String> {
        if !(MIN_KEY_LEN..=MAX_KEY_LEN).contains(&value.len()) {
            return Err(format!(
                "a key value has {MIN_KEY_LEN} to {MAX_KEY_LEN} characters"
            ));
        }
        if !value.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=' | b'-' | b'_' | b'.')
        }) {
            return Err("a key value uses only letters, digits and `+ / = - _ .`".into());
        }
        Ok(Self(Secret::new(value)))
    }

    /// A fresh random value from a CSPRNG (ChaCha, seeded by the operating system).
    pub fn generate() -> Self {
        let mut bytes = [0u8; GENERATED_KEY_BYTES];
        rand::rng().fill_bytes(&mut bytes);
        Self(Secret::new(URL_SAFE_NO_PAD.encode(bytes)))
    }

    /// The value, to hand to an authorised caller or write to the store.
    pub fn expose(&self) -> &str {
        self.0.expose()
    }

    pub(crate) fn secret(&self) -> &Secret {
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

    fn field(self) -> &'static str {
        match self {
            Self::Function => "functionKeys",
            Self::Host => "hostKeys",
        }
    }
}

/// The store's document: the same JSON in a file and in a blob. `masterKey` is absent when the
/// master key lives in Key Vault.
#[derive(Clone, Serialize)]
pub struct KeyDocument {
    version: u32,
    #[serde(rename = "masterKey", skip_serializing_if = "Option::is_none")]
    master_key: Option<String>,
    #[serde(rename = "functionKeys")]
    function_keys: BTreeMap<String, String>,
    #[serde(rename = "hostKeys")]
    host_keys: BTreeMap<String, String>,
}

/// The store's file format, as read: the key maps keep the file's order, so that an error can
/// point at an entry by its position instead of quoting its name or value.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredFile {
    version: u32,
    #[serde(rename = "masterKey", default)]
    master_key: Option<String>,
    #[serde(rename = "functionKeys")]
    function_keys: OrderedEntries,
    #[serde(rename = "hostKeys")]
    host_keys: OrderedEntries,
}

/// A JSON object of name to value, in the file's order, duplicates kept.
struct OrderedEntries(Vec<(String, String)>);

impl<'de> Deserialize<'de> for OrderedEntries {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Entries;
        impl<'de> serde::de::Visitor<'de> for Entries {
            type Value = OrderedEntries;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of key names to key values")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Self::Value, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry::<String, String>()? {
                    entries.push(entry);
                }
                Ok(OrderedEntries(entries))
            }
        }
        deserializer.deserialize_map(Entries)
    }
}

impl KeyDocument {
    /// A new document: these function keys, no host key, and the master key if it lives here.
    pub fn new(master_key: Option<&KeyValue>, function_keys: &[(KeyName, KeyValue)]) -> Self {
        Self {
            version: 1,
            master_key: master_key.map(|k| k.expose().to_owned()),
            function_keys: function_keys
                .iter()
                .map(|(n, v)| (n.0.clone(), v.expose().to_owned()))
                .collect(),
            host_keys: BTreeMap::new(),
        }
    }

    /// Reads and checks a document. The error says what is wrong and where (line and column,
    /// or the entry's position), never quoting the input: any part of it may be a key.
    pub fn from_json(bytes: &[u8]) -> Result<Self, String> {
        let stored: StoredFile = serde_json::from_slice(bytes)
            .map_err(|e| format!("not a key store: {}", redact_json_error(&e)))?;
        if stored.version != 1 {
            return Err(format!("unsupported version {}", stored.version));
        }
        if let Some(master) = &stored.master_key {
            KeyValue::parse(master).map_err(|e| format!("masterKey: {e}"))?;
        }
        Ok(Self {
            version: stored.version,
            master_key: stored.master_key,
            function_keys: checked_entries(KeyScope::Function, stored.function_keys)?,
            host_keys: checked_entries(KeyScope::Host, stored.host_keys)?,
        })
    }

    /// The document as pretty JSON (what is written).
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).expect("maps of strings always serialise")
    }

    /// The master key kept in the document, if it is kept here.
    pub fn master_key(&self) -> Option<KeyValue> {
        self.master_key.as_deref().map(|v| KeyValue(Secret::new(v)))
    }

    /// Sets the master key kept in the document.
    pub(crate) fn set_master_key(&mut self, value: &KeyValue) {
        self.master_key = Some(value.expose().to_owned());
    }

    /// The keys of `scope`, name to value, sorted by name.
    pub fn keys(&self, scope: KeyScope) -> impl Iterator<Item = (&str, KeyValue)> {
        let map = match scope {
            KeyScope::Function => &self.function_keys,
            KeyScope::Host => &self.host_keys,
        };
        map.iter()
            .map(|(n, v)| (n.as_str(), KeyValue(Secret::new(v.as_str()))))
    }

    /// Sets a named key; true when it was created, false when replaced.
    pub(crate) fn insert(&mut self, scope: KeyScope, name: &KeyName, value: &KeyValue) -> bool {
        self.keys_mut(scope)
            .insert(name.0.clone(), value.expose().to_owned())
            .is_none()
    }

    /// Removes a named key; false when there was none.
    pub(crate) fn remove(&mut self, scope: KeyScope, name: &KeyName) -> bool {
        self.keys_mut(scope).remove(&name.0).is_some()
    }

    fn keys_mut(&mut self, scope: KeyScope) -> &mut BTreeMap<String, String> {
        match scope {
            KeyScope::Function => &mut self.function_keys,
            KeyScope::Host => &mut self.host_keys,
        }
    }
}

impl fmt::Debug for KeyDocument {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyDocument")
            .field("function_keys", &self.function_keys.keys())
            .field("host_keys", &self.host_keys.keys())
            .field(
                "master_key",
                &self.master_key.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// Checks every entry of one key map; an error names the map and the entry's position only.
fn checked_entries(
    scope: KeyScope,
    entries: OrderedEntries,
) -> Result<BTreeMap<String, String>, String> {
    let field = scope.field();
    let mut keys = BTreeMap::new();
    for (index, (name, value)) in entries.0.into_iter().enumerate() {
        let entry = index + 1;
        KeyName::parse(&name).map_err(|e| format!("{field} entry {entry}: {e}"))?;
        KeyValue::parse(&value).map_err(|e| format!("{field} entry {entry}: {e}"))?;
        if keys.insert(name, value).is_some() {
            return Err(format!(
                "{field} entry {entry}: its name is used by an earlier entry"
            ));
        }
    }
    Ok(keys)
}

/// A JSON error as its category and position only: serde's own message can quote the input
/// (`invalid type: string "..."`, `unknown field `...``), and the input may hold a key.
pub fn redact_json_error(error: &serde_json::Error) -> String {
    use serde_json::error::Category;
    let what = match error.classify() {
        Category::Io => "unreadable",
        Category::Syntax => "malformed JSON",
        Category::Data => "wrong fields or types",
        Category::Eof => "truncated JSON",
    };
    format!("{what} at line {} column {}", error.line(), error.column())
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
            let err = KeyValue::parse(bad).unwrap_err();
            assert!(!err.contains(bad), "the error must not quote the value");
        }
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
