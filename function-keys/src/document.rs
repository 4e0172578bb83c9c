//! The store's JSON document, the same in a file and in a blob. Errors say what is wrong and
//! where (line and column, or an entry's position), never quoting the input: any part of it may
//! be a key.

use crate::key::{KeyError, KeyName, KeyScope, KeyValue};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// Why bytes are not a valid key store.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DocumentError {
    /// Not JSON of the store's shape.
    #[error("not a key store: {0}")]
    Json(RedactedJsonError),
    /// A version this host does not read.
    #[error("unsupported version {0}")]
    Version(u32),
    /// The master key is not a valid key value.
    #[error("masterKey: {0}")]
    MasterKey(KeyError),
    /// An entry of a key map has an invalid name or value.
    #[error("{field} entry {entry}: {reason}")]
    Entry {
        /// `functionKeys` or `hostKeys`.
        field: &'static str,
        /// The entry's position, from 1.
        entry: usize,
        /// What is wrong with it.
        reason: KeyError,
    },
    /// An entry of a key map repeats an earlier entry's name.
    #[error("{field} entry {entry}: its name is used by an earlier entry")]
    DuplicateName {
        /// `functionKeys` or `hostKeys`.
        field: &'static str,
        /// The entry's position, from 1.
        entry: usize,
    },
}

/// A JSON error as its category and position only: serde's own message can quote the input
/// (`invalid type: string "..."`, `unknown field `...``), and the input may hold a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RedactedJsonError {
    what: &'static str,
    line: usize,
    column: usize,
}

impl From<&serde_json::Error> for RedactedJsonError {
    fn from(error: &serde_json::Error) -> Self {
        use serde_json::error::Category;
        let what = match error.classify() {
            Category::Io => "unreadable",
            Category::Syntax => "malformed JSON",
            Category::Data => "wrong fields or types",
            Category::Eof => "truncated JSON",
        };
        Self {
            what,
            line: error.line(),
            column: error.column(),
        }
    }
}

impl fmt::Display for RedactedJsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} at line {} column {}",
            self.what, self.line, self.column
        )
    }
}

/// `error` as its category and position only (see [`RedactedJsonError`]).
pub fn redact_json_error(error: &serde_json::Error) -> RedactedJsonError {
    error.into()
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
    /// Made by a replica that found no store, holding nothing anybody chose: a replica that
    /// holds keys puts them back over it (a deleted store is not an emptied one).
    #[serde(rename = "createdEmpty", skip_serializing_if = "std::ops::Not::not")]
    created_empty: bool,
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
    #[serde(rename = "createdEmpty", default)]
    created_empty: bool,
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
                .map(|(n, v)| (n.as_str().to_owned(), v.expose().to_owned()))
                .collect(),
            host_keys: BTreeMap::new(),
            created_empty: false,
        }
    }

    /// The document a replica writes where it found no store: no key anybody chose, marked so
    /// that a replica holding keys restores them over it.
    pub fn created_empty(master_key: Option<&KeyValue>) -> Self {
        Self {
            created_empty: true,
            ..Self::new(master_key, &[])
        }
    }

    /// Whether it is a store a replica made where it found none, unchanged since.
    pub fn is_created_empty(&self) -> bool {
        self.created_empty
    }

    /// Whether it holds any function or host key.
    pub fn has_keys(&self) -> bool {
        !self.function_keys.is_empty() || !self.host_keys.is_empty()
    }

    /// Marks a document somebody changed: its keys are chosen, an empty one included.
    pub fn mark_chosen(&mut self) {
        self.created_empty = false;
    }

    /// Reads and checks a document. The error says what is wrong and where (line and column,
    /// or the entry's position), never quoting the input: any part of it may be a key.
    pub fn from_json(bytes: &[u8]) -> Result<Self, DocumentError> {
        let stored: StoredFile =
            serde_json::from_slice(bytes).map_err(|e| DocumentError::Json((&e).into()))?;
        if stored.version != 1 {
            return Err(DocumentError::Version(stored.version));
        }
        if let Some(master) = &stored.master_key {
            KeyValue::parse(master).map_err(DocumentError::MasterKey)?;
        }
        Ok(Self {
            version: stored.version,
            master_key: stored.master_key,
            function_keys: checked_entries(KeyScope::Function, stored.function_keys)?,
            host_keys: checked_entries(KeyScope::Host, stored.host_keys)?,
            created_empty: stored.created_empty,
        })
    }

    /// The document as pretty JSON (what is written).
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).expect("maps of strings always serialise")
    }

    /// The master key kept in the document, if it is kept here.
    pub fn master_key(&self) -> Option<KeyValue> {
        self.master_key.as_deref().map(KeyValue::checked)
    }

    /// Sets the master key kept in the document.
    pub fn set_master_key(&mut self, value: &KeyValue) {
        self.master_key = Some(value.expose().to_owned());
    }

    /// The keys of `scope`, name to value, sorted by name.
    pub fn keys(&self, scope: KeyScope) -> impl Iterator<Item = (&str, KeyValue)> {
        let map = match scope {
            KeyScope::Function => &self.function_keys,
            KeyScope::Host => &self.host_keys,
        };
        map.iter().map(|(n, v)| (n.as_str(), KeyValue::checked(v)))
    }

    /// Sets a named key; true when it was created, false when replaced.
    pub fn insert(&mut self, scope: KeyScope, name: &KeyName, value: &KeyValue) -> bool {
        self.keys_mut(scope)
            .insert(name.as_str().to_owned(), value.expose().to_owned())
            .is_none()
    }

    /// Removes a named key; false when there was none.
    pub fn remove(&mut self, scope: KeyScope, name: &KeyName) -> bool {
        self.keys_mut(scope).remove(name.as_str()).is_some()
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
) -> Result<BTreeMap<String, String>, DocumentError> {
    let field = scope.field();
    let mut keys = BTreeMap::new();
    for (index, (name, value)) in entries.0.into_iter().enumerate() {
        let entry = index + 1;
        let invalid = |reason| DocumentError::Entry {
            field,
            entry,
            reason,
        };
        KeyName::parse(&name).map_err(invalid)?;
        KeyValue::parse(&value).map_err(invalid)?;
        if keys.insert(name, value).is_some() {
            return Err(DocumentError::DuplicateName { field, entry });
        }
    }
    Ok(keys)
}
