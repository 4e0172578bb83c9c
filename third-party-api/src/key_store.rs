//! The key store: function keys, host keys and the master key, persisted as JSON (atomic write,
//! mode 0600) and mirrored into the API-key rings that guard the routes.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use shared_auth::{ApiKeyRing, Secret};
use std::collections::BTreeMap;
use std::fmt;
use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

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

    fn secret(&self) -> &Secret {
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
    fn label(self) -> &'static str {
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

/// The store's file format, as written.
#[derive(Clone, Serialize)]
struct KeyFile {
    version: u32,
    #[serde(rename = "masterKey")]
    master_key: String,
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
    #[serde(rename = "masterKey")]
    master_key: String,
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

impl KeyFile {
    /// Reads and checks a store. The error says what is wrong and where (line and column, or
    /// the entry's position), never quoting the file: any part of it may be a key.
    fn from_json(bytes: &[u8]) -> Result<Self, String> {
        let stored: StoredFile = serde_json::from_slice(bytes)
            .map_err(|e| format!("not a key store: {}", redact_json_error(&e)))?;
        if stored.version != 1 {
            return Err(format!("unsupported version {}", stored.version));
        }
        KeyValue::parse(&stored.master_key).map_err(|e| format!("masterKey: {e}"))?;
        Ok(Self {
            version: stored.version,
            master_key: stored.master_key,
            function_keys: checked_entries(KeyScope::Function, stored.function_keys)?,
            host_keys: checked_entries(KeyScope::Host, stored.host_keys)?,
        })
    }

    fn keys(&self, scope: KeyScope) -> &BTreeMap<String, String> {
        match scope {
            KeyScope::Function => &self.function_keys,
            KeyScope::Host => &self.host_keys,
        }
    }

    fn keys_mut(&mut self, scope: KeyScope) -> &mut BTreeMap<String, String> {
        match scope {
            KeyScope::Function => &mut self.function_keys,
            KeyScope::Host => &mut self.host_keys,
        }
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
pub(crate) fn redact_json_error(error: &serde_json::Error) -> String {
    use serde_json::error::Category;
    let what = match error.classify() {
        Category::Io => "unreadable",
        Category::Syntax => "malformed JSON",
        Category::Data => "wrong fields or types",
        Category::Eof => "truncated JSON",
    };
    format!("{what} at line {} column {}", error.line(), error.column())
}

/// Why the store could not be opened or changed. Messages never carry a key value.
#[derive(Debug, thiserror::Error)]
pub enum KeyStoreError {
    /// The file could not be read or parsed.
    #[error("the key store {path} cannot be loaded: {reason}")]
    Load {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The file could not be written; the keys in force are unchanged.
    #[error("the key store {path} cannot be written: {source}")]
    Persist {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// No key of that name in that scope.
    #[error("no {scope} key named `{name}`")]
    NotFound {
        /// `function` or `host`.
        scope: &'static str,
        /// The name asked for.
        name: String,
    },
}

/// Whether a set created a key or replaced one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetOutcome {
    /// The key did not exist.
    Created,
    /// The key existed and now has the new value.
    Replaced,
}

/// Which key a set or delete is about: a named key of a scope, or the master key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyRef {
    /// A function or host key.
    Named(KeyScope, KeyName),
    /// The master key (`_master` in the host-keys API).
    Master,
}

/// The keys of this host, on disk and in the rings.
pub struct KeyStore {
    path: PathBuf,
    file: tokio::sync::Mutex<KeyFile>,
    function_ring: Arc<ApiKeyRing>,
    master_ring: Arc<ApiKeyRing>,
}

impl KeyStore {
    /// Opens the store at `path`, creating it from the seeds when it does not exist.
    pub fn open(
        path: &Path,
        seed_master: Option<KeyValue>,
        seed_function_keys: Vec<(KeyName, KeyValue)>,
    ) -> Result<Self, KeyStoreError> {
        let load_error = |reason: String| KeyStoreError::Load {
            path: path.to_owned(),
            reason,
        };
        let file = match open_existing(path) {
            Ok(mut existing) => {
                let mut bytes = Vec::new();
                existing
                    .read_to_end(&mut bytes)
                    .map_err(|e| load_error(e.to_string()))?;
                let file = KeyFile::from_json(&bytes).map_err(load_error)?;
                tighten_permissions(path, &existing);
                if seed_master.is_some() || !seed_function_keys.is_empty() {
                    tracing::info!(
                        path = %path.display(),
                        "key store exists; the seed variables only seed a new store"
                    );
                }
                file
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut function_keys: BTreeMap<String, String> = seed_function_keys
                    .into_iter()
                    .map(|(n, v)| (n.0, v.expose().to_owned()))
                    .collect();
                if function_keys.is_empty() {
                    function_keys.insert("default".into(), KeyValue::generate().expose().into());
                }
                let file = KeyFile {
                    version: 1,
                    master_key: seed_master
                        .unwrap_or_else(KeyValue::generate)
                        .expose()
                        .to_owned(),
                    function_keys,
                    host_keys: BTreeMap::new(),
                };
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(|e| KeyStoreError::Persist {
                        path: path.to_owned(),
                        source: e,
                    })?;
                }
                write_atomically(path, &file)?;
                tracing::info!(path = %path.display(), "created a new key store");
                file
            }
            Err(e) if e.raw_os_error() == Some(nix::libc::ELOOP) => {
                return Err(load_error(
                    "it is a symbolic link; the store must be a regular file".into(),
                ));
            }
            Err(e) => return Err(load_error(e.to_string())),
        };
        let store = Self {
            path: path.to_owned(),
            function_ring: Arc::default(),
            master_ring: Arc::default(),
            file: tokio::sync::Mutex::new(file.clone()),
        };
        store.refresh_rings(&file);
        Ok(store)
    }

    /// The ring that opens `RandomNumber`: its function keys, every host key, the master key.
    pub fn function_ring(&self) -> Arc<ApiKeyRing> {
        self.function_ring.clone()
    }

    /// The ring that opens the admin API: the master key only.
    pub fn master_ring(&self) -> Arc<ApiKeyRing> {
        self.master_ring.clone()
    }

    /// Where the store lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The keys of `scope` (name, value), sorted by name. The master key is never listed.
    pub async fn list(&self, scope: KeyScope) -> Vec<(String, KeyValue)> {
        let file = self.file.lock().await;
        file.keys(scope)
            .iter()
            .map(|(n, v)| (n.clone(), KeyValue(Secret::new(v.as_str()))))
            .collect()
    }

    /// Sets a key to `value`, or to a generated value when `None`; persists, then swaps the
    /// rings. When the write fails nothing changes, on disk or in force.
    pub async fn set(
        &self,
        key: KeyRef,
        value: Option<KeyValue>,
    ) -> Result<(KeyValue, SetOutcome), KeyStoreError> {
        let value = value.unwrap_or_else(KeyValue::generate);
        let mut file = self.file.lock().await;
        let mut next = file.clone();
        let outcome = match &key {
            KeyRef::Master => {
                next.master_key = value.expose().to_owned();
                SetOutcome::Replaced
            }
            KeyRef::Named(scope, name) => {
                match next
                    .keys_mut(*scope)
                    .insert(name.0.clone(), value.expose().to_owned())
                {
                    Some(_) => SetOutcome::Replaced,
                    None => SetOutcome::Created,
                }
            }
        };
        self.commit(&mut file, next).await?;
        tracing::info!(key = %describe(&key), outcome = ?outcome, "key set");
        Ok((value, outcome))
    }

    /// Deletes a function or host key; persists, then swaps the rings.
    pub async fn delete(&self, scope: KeyScope, name: &KeyName) -> Result<(), KeyStoreError> {
        let mut file = self.file.lock().await;
        let mut next = file.clone();
        if next.keys_mut(scope).remove(&name.0).is_none() {
            return Err(KeyStoreError::NotFound {
                scope: scope.label(),
                name: name.0.clone(),
            });
        }
        self.commit(&mut file, next).await?;
        tracing::info!(key = %describe(&KeyRef::Named(scope, name.clone())), "key deleted");
        Ok(())
    }

    /// True when the store file is still readable (a restart would find the keys).
    pub fn is_persisted(&self) -> bool {
        std::fs::metadata(&self.path).is_ok_and(|m| m.is_file())
    }

    async fn commit(&self, current: &mut KeyFile, next: KeyFile) -> Result<(), KeyStoreError> {
        let path = self.path.clone();
        let to_write = next.clone();
        actix_web::web::block(move || write_atomically(&path, &to_write))
            .await
            .map_err(|e| KeyStoreError::Persist {
                path: self.path.clone(),
                source: std::io::Error::other(e.to_string()),
            })??;
        *current = next;
        self.refresh_rings(current);
        Ok(())
    }

    fn refresh_rings(&self, file: &KeyFile) {
        let master = KeyValue(Secret::new(file.master_key.as_str()));
        let mut entries: Vec<(String, KeyValue)> = Vec::new();
        for scope in [KeyScope::Function, KeyScope::Host] {
            for (name, value) in file.keys(scope) {
                entries.push((
                    format!("{}/{name}", scope.label()),
                    KeyValue(Secret::new(value.as_str())),
                ));
            }
        }
        entries.push(("master".into(), master.clone()));
        self.function_ring
            .replace(entries.iter().map(|(n, v)| (n.as_str(), v.secret())));
        self.master_ring.replace([("master", master.secret())]);
    }
}

fn describe(key: &KeyRef) -> String {
    match key {
        KeyRef::Master => "master".into(),
        KeyRef::Named(scope, name) => format!("{}/{name}", scope.label()),
    }
}

/// How many random temporary names are tried before giving up (a clash is 1 in 2^64).
const TEMP_NAME_ATTEMPTS: usize = 8;

/// Writes `file` to a new temporary file beside `path` (random name, created exclusively with
/// mode 0600, never through a symbolic link), syncs it, renames it over `path`, syncs the
/// directory: a crash leaves either the old store or the new one, never half of one, and the
/// store is 0600 whatever mode the file it replaces had.
fn write_atomically(path: &Path, file: &KeyFile) -> Result<(), KeyStoreError> {
    let persist_error = |source| KeyStoreError::Persist {
        path: path.to_owned(),
        source,
    };
    let json = serde_json::to_vec_pretty(file).map_err(|e| persist_error(e.into()))?;
    let (tmp, mut out) = create_temp_file(path).map_err(persist_error)?;
    let result = (|| {
        // The mode given at creation is filtered by the umask; set it exactly.
        out.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        out.write_all(&json)?;
        out.sync_all()?;
        drop(out);
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(parent_dir(path))?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(persist_error)
}

/// The directory holding `path` (`.` for a bare file name).
fn parent_dir(path: &Path) -> &Path {
    path.parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// Creates `.<name>.<16 random hex digits>.tmp` beside `path` with O_CREAT|O_EXCL|O_NOFOLLOW and
/// mode 0600: an existing file or symbolic link of that name is never opened, let alone
/// followed; another name is drawn instead.
fn create_temp_file(path: &Path) -> std::io::Result<(PathBuf, std::fs::File)> {
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::other("the key store path has no file name"))?;
    let mut last_error = None;
    for _ in 0..TEMP_NAME_ATTEMPTS {
        let mut tmp_name = std::ffi::OsString::from(".");
        tmp_name.push(name);
        tmp_name.push(format!(".{:016x}.tmp", rand::rng().next_u64()));
        let tmp = parent_dir(path).join(tmp_name);
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_CLOEXEC)
            .open(&tmp)
        {
            Ok(out) => return Ok((tmp, out)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last_error = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last_error.unwrap_or_else(|| std::io::Error::other("no temporary name was free")))
}

/// Opens an existing store for reading without following a symbolic link.
fn open_existing(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_CLOEXEC)
        .open(path)
}

/// A store readable by others is tightened to 0600 with a warning (through the open handle, so
/// the file changed is the one read).
fn tighten_permissions(path: &Path, file: &std::fs::File) {
    if let Ok(meta) = file.metadata()
        && meta.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(path = %path.display(), "key store was readable by others; setting mode 0600");
        let _ = file.set_permissions(std::fs::Permissions::from_mode(0o600));
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
