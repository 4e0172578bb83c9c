//! Unit tests of `compose init`: the files it writes into each volume, what a second run keeps,
//! and who owns them.

use super::init::init_as;
use super::volume::{Volume, file_owner, read_vault_seed, write_federated_tokens};
use super::{AZURITE_HOST, SERVICE_USER, WORKLOADS};
use crate::identity::IdentityProvider;
use crate::pki::write_file;
use crate::stack::{MASTER_KEY_SECRET_NAME, Principal, SECRET_NAME};
use function_keys::KeyValue;
use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::sync::Arc;

/// Every file under `dir`, relative to it, sorted.
fn files(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                out.push(path.strip_prefix(root).unwrap().display().to_string());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self").unwrap().uid() == 0
}

#[tokio::test]
async fn init_creates_every_file_private_and_a_second_run_keeps_the_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let volume = Volume::new(dir.path());
    init_as(&volume, None).await.unwrap();
    let ca = std::fs::read(volume.ca_cert()).unwrap();
    let key = std::fs::read(volume.signing_key()).unwrap();
    let seed = std::fs::read(volume.vault_seed()).unwrap();
    for path in [
        volume.signing_key(),
        volume.pki_dir().join("ca.key"),
        volume.vault_seed(),
        volume.azurite_key(),
    ]
    .into_iter()
    .chain(WORKLOADS.iter().map(|w| volume.federated_token(w)))
    {
        assert_eq!(mode(&path), 0o600, "{}", path.display());
    }
    assert_eq!(mode(&volume.ca_cert()), 0o644);
    // The vault holds main-app's function key and the master key: two distinct valid keys.
    let seed_json: BTreeMap<String, String> = serde_json::from_slice(&seed).unwrap();
    assert_eq!(
        seed_json.keys().map(String::as_str).collect::<Vec<_>>(),
        [SECRET_NAME, MASTER_KEY_SECRET_NAME]
    );
    for value in seed_json.values() {
        KeyValue::parse(value).unwrap();
    }
    assert_ne!(seed_json[SECRET_NAME], seed_json[MASTER_KEY_SECRET_NAME]);

    init_as(&volume, None).await.unwrap();
    assert_eq!(std::fs::read(volume.ca_cert()).unwrap(), ca);
    assert_eq!(std::fs::read(volume.signing_key()).unwrap(), key);
    assert_eq!(std::fs::read(volume.vault_seed()).unwrap(), seed);
}

#[tokio::test]
async fn init_keeps_each_secret_the_vault_has_and_adds_the_missing_one() {
    let dir = tempfile::tempdir().unwrap();
    let volume = Volume::new(dir.path());
    // What init wrote before the master key moved to the vault: main-app's key alone.
    let old_key = KeyValue::generate();
    let old = BTreeMap::from([(SECRET_NAME, old_key.expose())]);
    write_file(
        &volume.vault_seed(),
        &serde_json::to_vec(&old).unwrap(),
        0o600,
        None,
    )
    .unwrap();
    init_as(&volume, None).await.unwrap();
    let seed = read_vault_seed(&volume).unwrap().unwrap();
    assert_eq!(seed[SECRET_NAME], old_key.expose());
    let master = seed[MASTER_KEY_SECRET_NAME].clone();
    KeyValue::parse(&master).unwrap();
    init_as(&volume, None).await.unwrap();
    assert_eq!(read_vault_seed(&volume).unwrap().unwrap(), seed);
    assert_eq!(seed[MASTER_KEY_SECRET_NAME], master);
}

#[tokio::test]
async fn a_vault_seed_that_is_not_json_stops_init_without_quoting_it() {
    let dir = tempfile::tempdir().unwrap();
    let volume = Volume::new(dir.path());
    let value = KeyValue::generate();
    let broken = format!("{{\"{SECRET_NAME}\": {}}}", value.expose());
    write_file(&volume.vault_seed(), broken.as_bytes(), 0o600, None).unwrap();
    let error = format!("{:#}", init_as(&volume, None).await.unwrap_err());
    assert!(error.contains("secrets.json"), "{error}");
    assert!(
        !error.contains(value.expose()),
        "the error quotes the value"
    );
    // Nothing replaced it: the operator decides.
    assert_eq!(
        std::fs::read(volume.vault_seed()).unwrap(),
        broken.as_bytes()
    );
}

#[tokio::test]
async fn init_knows_every_identity_and_writes_tokens_for_the_workloads_only() {
    let dir = tempfile::tempdir().unwrap();
    let volume = Volume::new(dir.path());
    init_as(&volume, None).await.unwrap();
    let identities = volume.identities().unwrap();
    for name in Principal::names() {
        assert!(identities.get(name).is_some(), "{name}");
    }
    let tokens = files(&dir.path().join("workload-identity"));
    let expected: Vec<String> = {
        let mut names: Vec<String> = WORKLOADS.iter().map(|w| format!("{w}/token")).collect();
        names.sort();
        names
    };
    assert_eq!(tokens, expected);
    assert!(!tokens.iter().any(|t| t.starts_with("rotation/")));
}

#[tokio::test]
async fn each_volume_holds_only_its_consumers_files_and_no_key_leaves_the_keys_volume() {
    let dir = tempfile::tempdir().unwrap();
    let volume = Volume::new(dir.path());
    init_as(&volume, None).await.unwrap();
    let mounts = volume.mount_points();
    assert_eq!(mounts[0], volume.keys_dir());
    let listing = |sub: &str| files(&dir.path().join(sub));
    assert_eq!(
        listing("keys"),
        [
            "identity/signing.pk8",
            "keyvault/secrets.json",
            "pki/ca.key",
            "pki/ca.pem",
            "pki/server.key",
            "pki/server.pem"
        ]
    );
    assert_eq!(listing("ca"), ["ca.pem"]);
    assert_eq!(listing("azurite-tls"), ["server.key", "server.pem"]);
    for workload in WORKLOADS {
        assert_eq!(listing(&format!("workload-identity/{workload}")), ["token"]);
    }
    assert!(!dir.path().join("third-party-api").exists());
    // Every directory of the tree is one mount point or holds only mount points.
    let mut all: Vec<String> = files(dir.path());
    for mount in &mounts {
        let prefix = mount.strip_prefix(dir.path()).unwrap();
        all.retain(|f| !Path::new(f).starts_with(prefix));
    }
    assert!(all.is_empty(), "files outside every volume: {all:?}");

    assert_eq!(
        std::fs::read(volume.ca_cert()).unwrap(),
        std::fs::read(volume.pki_dir().join("ca.pem")).unwrap()
    );
    let mut secrets = vec![
        std::fs::read(volume.pki_dir().join("ca.key")).unwrap(),
        std::fs::read(volume.pki_dir().join("server.key")).unwrap(),
        std::fs::read(volume.signing_key()).unwrap(),
    ];
    secrets.extend(
        read_vault_seed(&volume)
            .unwrap()
            .unwrap()
            .into_values()
            .map(String::into_bytes),
    );
    for mount in &mounts[1..] {
        for file in files(mount) {
            let bytes = std::fs::read(mount.join(&file)).unwrap();
            for secret in &secrets {
                assert!(
                    !bytes.windows(secret.len()).any(|w| w == secret.as_slice()),
                    "{}/{file} holds a private key of the keys volume",
                    mount.display()
                );
            }
        }
    }
}

#[tokio::test]
async fn azurites_certificate_is_valid_for_azurite_only() {
    use rustls::client::danger::ServerCertVerifier;
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
    let dir = tempfile::tempdir().unwrap();
    let volume = Volume::new(dir.path());
    init_as(&volume, None).await.unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_file(volume.ca_cert()).unwrap())
        .unwrap();
    let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
        Arc::new(roots),
        Arc::new(rustls::crypto::aws_lc_rs::default_provider()),
    )
    .build()
    .unwrap();
    let chain = CertificateDer::pem_file_iter(volume.azurite_cert())
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let verify = |name: &'static str| {
        verifier.verify_server_cert(
            &chain[0],
            &chain[1..],
            &ServerName::try_from(name).unwrap(),
            &[],
            UnixTime::now(),
        )
    };
    assert!(verify(AZURITE_HOST).is_ok());
    for other in ["local-azure", "main-app", "localhost"] {
        assert!(verify(other).is_err(), "{other}");
    }
}

#[tokio::test]
async fn run_as_root_init_gives_every_volume_to_the_services_user() {
    let dir = tempfile::tempdir().unwrap();
    let volume = Volume::new(dir.path());
    // Only root can give files away; otherwise this run gives them to their own user.
    let owner = if is_root() {
        assert_eq!(file_owner().unwrap(), Some(SERVICE_USER));
        SERVICE_USER
    } else {
        let me = std::fs::metadata(dir.path()).unwrap();
        (me.uid(), me.gid())
    };
    init_as(&volume, Some(owner)).await.unwrap();
    for mount in volume.mount_points() {
        let meta = std::fs::metadata(&mount).unwrap();
        assert_eq!((meta.uid(), meta.gid()), owner, "{}", mount.display());
        for file in files(&mount) {
            let meta = std::fs::metadata(mount.join(&file)).unwrap();
            assert_eq!(
                (meta.uid(), meta.gid()),
                owner,
                "{}/{file}",
                mount.display()
            );
        }
    }
    // The renewal `serve` does keeps them so.
    let identities = volume.identities().unwrap();
    write_federated_tokens(&volume, &identities, Some(owner)).unwrap();
    let token = std::fs::metadata(volume.federated_token("main-app")).unwrap();
    assert_eq!((token.uid(), token.gid()), owner);
    assert_eq!(mode(&volume.federated_token("main-app")), 0o600);
}

#[tokio::test]
async fn a_federated_token_from_the_volume_verifies_with_the_reloaded_key() {
    let dir = tempfile::tempdir().unwrap();
    let volume = Volume::new(dir.path());
    init_as(&volume, None).await.unwrap();
    let token = std::fs::read_to_string(volume.federated_token("queue-worker")).unwrap();
    let reloaded = volume.identities().unwrap();
    let claims = reloaded
        .verifier()
        .verify_from(
            &token,
            crate::identity::FEDERATION_ISSUER,
            &[crate::identity::TOKEN_EXCHANGE_AUDIENCE],
        )
        .unwrap();
    assert_eq!(
        claims.sub,
        crate::identity::federated_subject("queue-worker")
    );
    let fresh = IdentityProvider::new(&Principal::names()).unwrap();
    assert!(
        fresh
            .verifier()
            .verify_from(
                &token,
                crate::identity::FEDERATION_ISSUER,
                &[crate::identity::TOKEN_EXCHANGE_AUDIENCE]
            )
            .is_err()
    );
}
