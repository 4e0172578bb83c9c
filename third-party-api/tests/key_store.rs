//! The key store on disk: a random, exclusive, 0600 temporary file that never follows a symbolic
//! link; a store that ends 0600; load errors that name the file and never quote a key.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use third_party_api::key_store::{KeyName, KeyRef, KeyScope, KeyStore, KeyValue, MasterKeySource};

const MASTER: &str = "store-master-key-0123456789";
const DEFAULT: &str = "store-default-key-0123456789";
const ADDED: &str = "store-added-key-0123456789";

fn open(path: &Path) -> KeyStore {
    KeyStore::open(
        path,
        Some(KeyValue::parse(MASTER).unwrap()),
        vec![(
            KeyName::parse("default").unwrap(),
            KeyValue::parse(DEFAULT).unwrap(),
        )],
        MasterKeySource::Store,
    )
    .expect("the store opens")
}

async fn add_key(store: &KeyStore) {
    store
        .set(
            KeyRef::Named(KeyScope::Function, KeyName::parse("added").unwrap()),
            Some(KeyValue::parse(ADDED).unwrap()),
        )
        .await
        .expect("the change is written");
}

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path)
        .unwrap()
        .permissions()
        .mode()
        & 0o777
}

/// The names in `dir`, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// The fixed temporary name the store used to write through.
fn old_temp_name(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".tmp");
    name.into()
}

#[tokio::test]
async fn a_symlink_at_the_old_temporary_name_is_neither_followed_nor_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let victim = elsewhere.path().join("victim.txt");
    std::fs::write(&victim, "not yours").unwrap();
    std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o644)).unwrap();
    let path = dir.path().join("keys.json");
    std::os::unix::fs::symlink(&victim, old_temp_name(&path)).unwrap();

    let store = open(&path);
    add_key(&store).await;

    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "not yours");
    assert_eq!(mode(&victim), 0o644);
    assert!(
        std::fs::symlink_metadata(old_temp_name(&path))
            .unwrap()
            .file_type()
            .is_symlink(),
        "the planted link is left alone"
    );
    let meta = std::fs::symlink_metadata(&path).unwrap();
    assert!(meta.file_type().is_file(), "the store is a regular file");
    assert_eq!(mode(&path), 0o600);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(ADDED) && text.contains(DEFAULT));
    assert_eq!(listing(dir.path()), ["keys.json", "keys.json.tmp"]);
}

#[tokio::test]
async fn the_store_ends_0600_whatever_mode_the_old_file_or_a_stale_temporary_had() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.json");
    let store = open(&path);

    // A 0644 store (restored from a backup, say) is rewritten as 0600.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    add_key(&store).await;
    assert_eq!(mode(&path), 0o600);

    // A world-readable leftover at the old temporary name is not reused.
    let stale = old_temp_name(&path);
    std::fs::write(&stale, "stale").unwrap();
    std::fs::set_permissions(&stale, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    store
        .set(KeyRef::Master, Some(KeyValue::parse(MASTER).unwrap()))
        .await
        .unwrap();
    assert_eq!(mode(&path), 0o600);
    assert_eq!(std::fs::read_to_string(&stale).unwrap(), "stale");
    assert_eq!(listing(dir.path()), ["keys.json", "keys.json.tmp"]);

    // Reopening a 0644 store tightens it.
    drop(store);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let store = open(&path);
    assert_eq!(mode(&path), 0o600);
    assert_eq!(store.list(KeyScope::Function).await.len(), 2);
}

#[tokio::test]
async fn a_failed_write_leaves_no_temporary_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.json");
    let store = open(&path);
    let saved = dir.path().join("saved");
    std::fs::rename(&path, &saved).unwrap();
    // A directory where the store goes: the rename fails, even for root.
    std::fs::create_dir(&path).unwrap();
    let err = store
        .set(
            KeyRef::Named(KeyScope::Host, KeyName::parse("never").unwrap()),
            None,
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("keys.json"), "{err}");
    assert_eq!(listing(dir.path()), ["keys.json", "saved"]);
    assert!(store.list(KeyScope::Host).await.is_empty());
}

#[test]
fn a_symlinked_store_is_refused_and_its_target_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let real = dir.path().join("real.json");
    drop(open(&real));
    std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o644)).unwrap();
    let link = dir.path().join("keys.json");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let err = KeyStore::open(&link, None, Vec::new(), MasterKeySource::Store)
        .err()
        .expect("a symlink is refused");
    let text = err.to_string();
    assert!(
        text.contains("keys.json") && text.contains("symbolic link"),
        "{text}"
    );
    assert_eq!(mode(&real), 0o644, "the link's target is not touched");
}

/// A key value nobody would write by accident: any trace of it in an error is a leak.
const DISTINCTIVE: &str = "Zq7LeakCanaryKeyValue0123456789xyz";

#[test]
fn load_errors_name_the_file_and_never_quote_key_material() {
    let good_entry = format!(r#""default":"{DEFAULT}""#);
    let cases: Vec<(String, &str)> = vec![
        // A key where a number belongs: serde says `invalid type: string "..."`.
        (
            format!(
                r#"{{"version":"{DISTINCTIVE}","masterKey":"{MASTER}","functionKeys":{{}},"hostKeys":{{}}}}"#
            ),
            "wrong fields or types",
        ),
        // A key as a field name: serde says `unknown field `...``.
        (
            format!(
                r#"{{"version":1,"{DISTINCTIVE}":1,"masterKey":"{MASTER}","functionKeys":{{}},"hostKeys":{{}}}}"#
            ),
            "wrong fields or types",
        ),
        // Name and value swapped: the name is a key, the value is no key.
        (
            format!(
                r#"{{"version":1,"masterKey":"{MASTER}","functionKeys":{{{good_entry},"{DISTINCTIVE}":"default"}},"hostKeys":{{}}}}"#
            ),
            "functionKeys entry 2",
        ),
        // A key too long to be a name.
        (
            format!(
                r#"{{"version":1,"masterKey":"{MASTER}","functionKeys":{{}},"hostKeys":{{"{DISTINCTIVE}{DISTINCTIVE}{DISTINCTIVE}":"{DEFAULT}"}}}}"#
            ),
            "hostKeys entry 1",
        ),
        // Malformed right after the key.
        (
            format!(
                r#"{{"version":1,"masterKey":"{DISTINCTIVE}" "functionKeys":{{}},"hostKeys":{{}}}}"#
            ),
            "malformed JSON at line 1",
        ),
        // A control character inside the key.
        (
            format!(
                "{{\"version\":1,\"masterKey\":\"{}\u{1}{}\",\"functionKeys\":{{}},\"hostKeys\":{{}}}}",
                &DISTINCTIVE[..10],
                &DISTINCTIVE[10..]
            ),
            "malformed JSON",
        ),
        // Cut off inside the key.
        (
            format!(r#"{{"version":1,"masterKey":"{DISTINCTIVE}"#),
            "truncated JSON",
        ),
        // A key as the value of a key: invalid characters.
        (
            format!(
                r#"{{"version":1,"masterKey":"{MASTER}","functionKeys":{{"default":"{DISTINCTIVE} !"}},"hostKeys":{{}}}}"#
            ),
            "functionKeys entry 1",
        ),
        // The same name twice (JSON objects allow it; the store does not).
        (
            format!(
                r#"{{"version":1,"masterKey":"{MASTER}","functionKeys":{{{good_entry},"default":"{DISTINCTIVE}"}},"hostKeys":{{}}}}"#
            ),
            "used by an earlier entry",
        ),
    ];
    for (content, why) in cases {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.json");
        std::fs::write(&path, &content).unwrap();
        let err = KeyStore::open(&path, None, Vec::new(), MasterKeySource::Store)
            .err()
            .expect("a bad store is refused");
        for text in [err.to_string(), format!("{err:?}")] {
            assert!(text.contains("keys.json"), "names the file: {text}");
            assert!(text.contains(why), "says {why}: {text}");
            assert!(!text.contains(&DISTINCTIVE[..12]), "quotes a key: {text}");
            assert!(!text.contains(&DISTINCTIVE[20..]), "quotes a key: {text}");
            assert!(!text.contains(MASTER) && !text.contains(DEFAULT), "{text}");
        }
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            content,
            "not overwritten"
        );
    }
}
