//! The key store as a local file (for `cargo run -p third-party-api` alone): read without
//! following a symbolic link, written atomically with mode 0600.

use super::error::{KeyStoreError, LoadError, PersistError};
use super::{KeyDocument, KeyName, KeyValue};
use rand::RngCore;
use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Reads the store at `path`, or creates it from the seeds (a generated master key and one
/// generated `default` function key when none is given) when it does not exist.
pub(super) fn load_or_create(
    path: &Path,
    seed_master: Option<KeyValue>,
    seed_function_keys: Vec<(KeyName, KeyValue)>,
) -> Result<KeyDocument, KeyStoreError> {
    let location = path.display().to_string();
    let load_error = |reason: LoadError| KeyStoreError::Load {
        location: location.clone(),
        reason,
    };
    match open_existing(path) {
        Ok(mut existing) => {
            let mut bytes = Vec::new();
            existing
                .read_to_end(&mut bytes)
                .map_err(|e| load_error(LoadError::Io(e)))?;
            let document =
                KeyDocument::from_json(&bytes).map_err(|e| load_error(LoadError::Document(e)))?;
            if document.master_key().is_none() {
                return Err(load_error(LoadError::NoMasterKey));
            }
            tighten_permissions(path, &existing);
            if seed_master.is_some() || !seed_function_keys.is_empty() {
                tracing::info!(
                    path = %path.display(),
                    "key store exists; the seed variables only seed a new store"
                );
            }
            Ok(document)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut function_keys = seed_function_keys;
            if function_keys.is_empty() {
                function_keys.push((KeyName::default_key(), KeyValue::generate()));
            }
            let master = seed_master.unwrap_or_else(KeyValue::generate);
            let document = KeyDocument::new(Some(&master), &function_keys);
            let persist_error = |e: std::io::Error| KeyStoreError::Persist {
                location: location.clone(),
                reason: PersistError::Io(e),
            };
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(persist_error)?;
            }
            write_atomically(path, &document).map_err(persist_error)?;
            tracing::info!(path = %path.display(), "created a new key store");
            Ok(document)
        }
        Err(e) if e.raw_os_error() == Some(nix::libc::ELOOP) => {
            Err(load_error(LoadError::SymbolicLink))
        }
        Err(e) => Err(load_error(LoadError::Io(e))),
    }
}

/// How many random temporary names are tried before giving up (a clash is 1 in 2^64).
const TEMP_NAME_ATTEMPTS: usize = 8;

/// Writes `file` to a new temporary file beside `path` (random name, created exclusively with
/// mode 0600, never through a symbolic link), syncs it, renames it over `path`, syncs the
/// directory: a crash leaves either the old store or the new one, never half of one, and the
/// store is 0600 whatever mode the file it replaces had.
pub(super) fn write_atomically(path: &Path, document: &KeyDocument) -> std::io::Result<()> {
    let json = document.to_json();
    let (tmp, mut out) = create_temp_file(path)?;
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
    result
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
