//! `docker-compose.yml` checked against the code: the client ids are the ones the identity
//! emulator gives, each file a container is told about is one `compose init` writes into a
//! volume that container mounts, each container mounts only what it needs (the keys stay with
//! `init` and `local-azure`), Azurite is reachable from local-azure only and makes its account
//! key at start, third-party-api keeps its keys as in Azure (the blob store through the storage
//! gate, the master key in the vault, nothing on a volume), every variable a service gets is one
//! it reads, and no secret is in the file.

use devstack::compose::{DEFAULT_DIR, Volume, WORKLOADS};
use devstack::identity::client_id_of;
use devstack::stack::{
    CONTAINER, KEY_STORE_BLOB, KEY_STORE_CONTAINER, MASTER_KEY_SECRET_NAME, Ports, SECRET_NAME,
};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The YAML that `docker-compose.yml` uses: block maps and sequences, flow sequences of
/// scalars, quoted and plain scalars, literal block scalars, comments, anchors and `<<` merges.
/// Anything else fails the parse, so the file cannot slip past these checks.
#[derive(Debug, Clone, PartialEq)]
enum Yaml {
    Null,
    Str(String),
    Seq(Vec<Yaml>),
    Map(Vec<(String, Yaml)>),
}

impl Yaml {
    fn get(&self, key: &str) -> Option<&Yaml> {
        match self {
            Yaml::Map(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            other => panic!("looked up {key} in {other:?}"),
        }
    }

    fn at(&self, key: &str) -> &Yaml {
        self.get(key)
            .unwrap_or_else(|| panic!("no {key} in {self:?}"))
    }

    fn str(&self) -> &str {
        match self {
            Yaml::Str(s) => s,
            other => panic!("not a string: {other:?}"),
        }
    }

    fn strs(&self) -> Vec<&str> {
        match self {
            Yaml::Seq(items) => items.iter().map(Yaml::str).collect(),
            other => panic!("not a list: {other:?}"),
        }
    }

    fn keys(&self) -> Vec<&str> {
        match self {
            Yaml::Map(entries) => entries.iter().map(|(k, _)| k.as_str()).collect(),
            other => panic!("not a map: {other:?}"),
        }
    }
}

struct Parser<'a> {
    lines: Vec<&'a str>,
    pos: usize,
    anchors: BTreeMap<String, Yaml>,
}

fn indent_of(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

/// `s` up to a ` #` comment outside quotes.
fn strip_comment(s: &str) -> &str {
    let (mut single, mut double) = (false, false);
    let bytes = s.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'\'' if !double => single = !single,
            b'"' if !single => double = !double,
            b'#' if !single && !double && (i == 0 || bytes[i - 1] == b' ') => return &s[..i],
            _ => {}
        }
    }
    s
}

fn scalar(s: &str) -> Yaml {
    if let Some(inner) = s.strip_prefix('"') {
        let inner = inner.strip_suffix('"').expect("unterminated double quote");
        assert!(!inner.contains('\\'), "escapes are not supported: {s}");
        Yaml::Str(inner.to_owned())
    } else if let Some(inner) = s.strip_prefix('\'') {
        let inner = inner.strip_suffix('\'').expect("unterminated single quote");
        Yaml::Str(inner.replace("''", "'"))
    } else {
        assert!(
            !s.contains(": ") && !s.starts_with(['&', '*', '{', '!', '%', '@', '`']),
            "unsupported YAML: {s}"
        );
        Yaml::Str(s.to_owned())
    }
}

/// Splits `a, "b", 'c'` at the commas outside quotes.
fn flow_items(s: &str) -> Vec<Yaml> {
    let (mut items, mut current) = (Vec::new(), String::new());
    let (mut single, mut double) = (false, false);
    for c in s.chars() {
        match c {
            '\'' if !double => single = !single,
            '"' if !single => double = !double,
            ',' if !single && !double => {
                items.push(scalar(current.trim()));
                current.clear();
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    if !current.trim().is_empty() {
        items.push(scalar(current.trim()));
    }
    items
}

impl<'a> Parser<'a> {
    fn parse(text: &'a str) -> Yaml {
        let mut parser = Parser {
            lines: text.lines().collect(),
            pos: 0,
            anchors: BTreeMap::new(),
        };
        let doc = parser.block(0);
        assert!(parser.peek().is_none(), "unparsed line {}", parser.pos + 1);
        doc
    }

    /// The next line that is neither blank nor a comment: (indent, trimmed text).
    fn peek(&mut self) -> Option<(usize, &'a str)> {
        while let Some(line) = self.lines.get(self.pos) {
            let trimmed = line.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                self.pos += 1;
            } else {
                assert!(
                    !line.starts_with('\t'),
                    "tab indent at line {}",
                    self.pos + 1
                );
                return Some((indent_of(line), trimmed));
            }
        }
        None
    }

    fn is_item(text: &str) -> bool {
        text == "-" || text.starts_with("- ")
    }

    fn block(&mut self, indent: usize) -> Yaml {
        match self.peek() {
            Some((_, text)) if Self::is_item(text) => self.seq(indent),
            _ => self.map(indent),
        }
    }

    fn seq(&mut self, indent: usize) -> Yaml {
        let mut items = Vec::new();
        while let Some((ind, text)) = self.peek() {
            if ind != indent || !Self::is_item(text) {
                assert!(ind < indent, "bad indent at line {}", self.pos + 1);
                break;
            }
            self.pos += 1;
            items.push(self.value(text[1..].trim_start(), indent));
        }
        Yaml::Seq(items)
    }

    fn map(&mut self, indent: usize) -> Yaml {
        let mut entries: Vec<(String, Yaml)> = Vec::new();
        while let Some((ind, text)) = self.peek() {
            if ind != indent || Self::is_item(text) {
                assert!(ind < indent, "bad indent at line {}", self.pos + 1);
                break;
            }
            self.pos += 1;
            let (key, rest) = match text.split_once(": ") {
                Some((key, rest)) => (key, rest.trim()),
                None => (
                    text.strip_suffix(':')
                        .unwrap_or_else(|| panic!("not a key at line {}: {text}", self.pos)),
                    "",
                ),
            };
            let key = match scalar(key) {
                Yaml::Str(key) => key,
                _ => unreachable!(),
            };
            assert!(
                !entries.iter().any(|(k, _)| *k == key),
                "duplicate key {key} at line {}",
                self.pos
            );
            if key == "<<" {
                let name = strip_comment(rest)
                    .trim()
                    .strip_prefix('*')
                    .expect("<< *anchor");
                match self.anchors.get(name).cloned() {
                    Some(Yaml::Map(merged)) => entries.extend(merged),
                    other => panic!("<< of {other:?}"),
                }
                continue;
            }
            let value = match rest.strip_prefix('&') {
                Some(anchored) => {
                    let (name, rest) = anchored.split_once(' ').unwrap_or((anchored, ""));
                    let value = self.value(rest, indent);
                    self.anchors.insert(name.to_owned(), value.clone());
                    value
                }
                None => self.value(rest, indent),
            };
            entries.push((key, value));
        }
        Yaml::Map(entries)
    }

    /// The value after `key:` or `-` on a line indented by `indent`.
    fn value(&mut self, rest: &str, indent: usize) -> Yaml {
        let rest = strip_comment(rest).trim();
        if rest.is_empty() {
            return match self.peek() {
                Some((ind, _)) if ind > indent => self.block(ind),
                _ => Yaml::Null,
            };
        }
        if rest == "|" || rest == "|-" {
            let mut body: Vec<&str> = Vec::new();
            let mut block_indent = None;
            while let Some(line) = self.lines.get(self.pos) {
                if !line.trim().is_empty() && indent_of(line) <= indent {
                    break;
                }
                let at = *block_indent.get_or_insert_with(|| indent_of(line));
                body.push(line.get(at..).unwrap_or(""));
                self.pos += 1;
            }
            while body.last() == Some(&"") {
                body.pop();
            }
            let mut text = body.join("\n");
            if rest == "|" {
                text.push('\n');
            }
            return Yaml::Str(text);
        }
        if let Some(flow) = rest.strip_prefix('[') {
            return Yaml::Seq(flow_items(flow.strip_suffix(']').expect("unterminated [")));
        }
        if let Some(name) = rest.strip_prefix('*') {
            return self.anchors[name].clone();
        }
        scalar(rest)
    }
}

fn compose_text() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../docker-compose.yml"))
        .unwrap()
}

fn compose() -> Yaml {
    Parser::parse(&compose_text())
}

/// `service -> variable -> value`, from the `environment:` maps (anchors merged).
fn environments() -> BTreeMap<String, BTreeMap<String, String>> {
    let doc = compose();
    let services = doc.at("services");
    let mut out = BTreeMap::new();
    for name in services.keys() {
        if let Some(Yaml::Map(env)) = services.at(name).get("environment") {
            out.insert(
                name.to_owned(),
                env.iter()
                    .map(|(k, v)| (k.clone(), v.str().to_owned()))
                    .collect(),
            );
        }
    }
    out
}

/// `service -> {"volume:/path[:ro]"}`.
fn mounts() -> BTreeMap<String, BTreeSet<String>> {
    let doc = compose();
    let services = doc.at("services");
    services
        .keys()
        .into_iter()
        .map(|name| {
            let volumes = services
                .at(name)
                .get("volumes")
                .map(|v| v.strs().into_iter().map(str::to_owned).collect())
                .unwrap_or_default();
            (name.to_owned(), volumes)
        })
        .collect()
}

/// The directories `service` mounts (read-only or not).
fn mount_points(service: &str) -> Vec<PathBuf> {
    mounts()[service]
        .iter()
        .map(|m| PathBuf::from(m.split(':').nth(1).unwrap()))
        .collect()
}

fn is_mounted_in(service: &str, file: &Path) -> bool {
    mount_points(service)
        .iter()
        .any(|dir| file.starts_with(dir))
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[test]
fn the_parser_reads_what_the_file_uses() {
    let doc = Parser::parse(
        "x: &a\n  k: v # c\ns:\n  one:\n    <<: *a\n    l: [\"p\", q]\n    b:\n      - |\n        l1 $$x\n          l2\n\n      - 'it''s'\n    n:\n",
    );
    let one = doc.at("s").at("one");
    assert_eq!(one.at("k").str(), "v");
    assert_eq!(one.at("l").strs(), ["p", "q"]);
    assert_eq!(one.at("b").strs(), ["l1 $$x\n  l2\n", "it's"]);
    assert_eq!(one.at("n"), &Yaml::Null);
}

#[test]
fn workload_identities_in_the_compose_file_are_the_emulators_and_the_volumes() {
    let envs = environments();
    let volume = Volume::new(DEFAULT_DIR);
    for workload in WORKLOADS {
        let env = &envs[*workload];
        assert_eq!(env["AZURE_CLIENT_ID"], client_id_of(workload), "{workload}");
        assert_eq!(
            Path::new(&env["AZURE_FEDERATED_TOKEN_FILE"]),
            volume.federated_token(workload),
            "{workload}"
        );
        assert_eq!(Path::new(&env["EXTRA_CA_CERTS"]), volume.ca_cert());
        assert_eq!(env["AZURE_TOKEN_CREDENTIALS"], "WorkloadIdentityCredential");
        assert_eq!(env["AZURE_TENANT_ID"], devstack::jwt::TENANT_ID);
        assert_eq!(
            env["AZURE_AUTHORITY_HOST"],
            format!("https://local-azure:{}/", Ports::DEFAULT.identity)
        );
    }
    // Every service of the compose file runs with its own identity.
    assert_eq!(
        WORKLOADS.iter().copied().collect::<BTreeSet<_>>(),
        envs.keys().map(String::as_str).collect::<BTreeSet<_>>()
    );
}

#[test]
fn third_party_api_keeps_its_keys_in_the_blob_store_and_its_master_key_in_the_vault() {
    let envs = environments();
    let api = &envs["third-party-api"];
    let main_app = &envs["main-app"];
    // The blob through local-azure's storage gate, beside the ledger main-app writes.
    let blob_service = format!(
        "https://local-azure:{}/{}",
        Ports::DEFAULT.blob,
        devstack::azurite::ACCOUNT
    );
    assert_eq!(
        main_app["CODE_LEDGER_URL"],
        format!("{blob_service}/{CONTAINER}")
    );
    assert_eq!(
        api["THIRD_PARTY_API_KEYS_URL"],
        format!("{blob_service}/{KEY_STORE_CONTAINER}/{KEY_STORE_BLOB}")
    );
    assert_eq!(
        api["THIRD_PARTY_API_KEYS_URL"],
        devstack::compose::key_store_url(&blob_service)
    );
    // The master key from the vault main-app reads its key from, by the secret's name.
    assert_eq!(
        api["KEY_VAULT_URL"],
        format!("https://local-azure:{}/", Ports::DEFAULT.key_vault)
    );
    assert_eq!(api["KEY_VAULT_URL"], main_app["KEY_VAULT_URL"]);
    assert_eq!(
        api["THIRD_PARTY_API_MASTER_KEY_SECRET_NAME"],
        MASTER_KEY_SECRET_NAME
    );
    assert_eq!(main_app["THIRD_PARTY_API_SECRET_NAME"], SECRET_NAME);
    assert_eq!(
        devstack::compose::VAULT_SECRETS,
        [SECRET_NAME, MASTER_KEY_SECRET_NAME]
    );
    // No file store, and no key seeded from the environment.
    for variable in [
        "THIRD_PARTY_API_KEYS_FILE",
        "THIRD_PARTY_API_MASTER_KEY",
        "THIRD_PARTY_API_FUNCTION_KEY",
        "THIRD_PARTY_API_FUNCTION_KEYS",
    ] {
        assert!(!api.contains_key(variable), "third-party-api: {variable}");
    }
    // The settings third-party-api itself reads from this environment: the blob, the vault.
    let env: shared_auth::MapEnv = api.clone().into_iter().collect();
    let settings = third_party_api::config::Settings::from_env(&env).unwrap();
    assert_eq!(
        settings.key_store,
        third_party_api::config::KeyStoreLocation::Blob(
            api["THIRD_PARTY_API_KEYS_URL"].parse().unwrap()
        )
    );
    let secret = settings
        .master_key_secret
        .expect("the master key from the vault");
    assert_eq!(secret.secret_name, MASTER_KEY_SECRET_NAME);
    assert!(settings.seed_master_key.is_none() && settings.seed_function_keys.is_empty());
    // It starts once local-azure is healthy: the key store blob exists from then on.
    let doc = compose();
    let depends = doc.at("services").at("third-party-api").at("depends_on");
    assert_eq!(depends.keys(), ["local-azure"]);
    assert_eq!(
        depends.at("local-azure").at("condition").str(),
        "service_healthy"
    );
}

#[test]
fn each_container_mounts_exactly_what_it_needs_and_the_keys_stay_with_init_and_local_azure() {
    let expected: BTreeMap<&str, BTreeSet<String>> = BTreeMap::from([
        (
            "init",
            set(&[
                "devstack-keys:/devstack/keys",
                "ca-public:/devstack/ca",
                "azurite-tls:/devstack/azurite-tls",
                "token-main-app:/devstack/workload-identity/main-app",
                "token-queue-worker:/devstack/workload-identity/queue-worker",
                "token-third-party-api:/devstack/workload-identity/third-party-api",
            ]),
        ),
        (
            "azurite",
            set(&["azurite-tls:/devstack/azurite-tls:ro", "azurite-data:/data"]),
        ),
        (
            "local-azure",
            set(&[
                "devstack-keys:/devstack/keys",
                "token-main-app:/devstack/workload-identity/main-app",
                "token-queue-worker:/devstack/workload-identity/queue-worker",
                "token-third-party-api:/devstack/workload-identity/third-party-api",
            ]),
        ),
        (
            "third-party-api",
            set(&[
                "ca-public:/devstack/ca:ro",
                "token-third-party-api:/devstack/workload-identity/third-party-api:ro",
            ]),
        ),
        (
            "main-app",
            set(&[
                "ca-public:/devstack/ca:ro",
                "token-main-app:/devstack/workload-identity/main-app:ro",
            ]),
        ),
        (
            "queue-worker",
            set(&[
                "ca-public:/devstack/ca:ro",
                "token-queue-worker:/devstack/workload-identity/queue-worker:ro",
            ]),
        ),
    ]);
    let mounts = mounts();
    assert_eq!(
        mounts.keys().map(String::as_str).collect::<Vec<_>>(),
        expected.keys().copied().collect::<Vec<_>>()
    );
    for (service, volumes) in &mounts {
        assert_eq!(volumes, &expected[service.as_str()], "{service}");
        let names: Vec<&str> = volumes
            .iter()
            .map(|m| m.split(':').next().unwrap())
            .collect();
        // The rules behind the table.
        assert_eq!(
            names.contains(&"devstack-keys"),
            ["init", "local-azure"].contains(&service.as_str()),
            "{service}: only init and local-azure mount the keys"
        );
        for workload in WORKLOADS {
            let token = format!("token-{workload}");
            assert_eq!(
                names.contains(&token.as_str()),
                ["init", "local-azure", workload].contains(&service.as_str()),
                "{service}: {token}"
            );
        }
        assert!(
            !names.iter().any(|n| n.contains("third-party-api-keys")),
            "{service}: the key store is a blob, on no volume"
        );
    }
    for workload in WORKLOADS {
        assert!(
            mounts[*workload].iter().all(|m| m.ends_with(":ro")),
            "{workload} mounts something writable"
        );
    }

    // Every named volume is declared, and each is one directory `compose init` writes.
    let doc = compose();
    let declared: BTreeSet<&str> = doc.at("volumes").keys().into_iter().collect();
    let used: BTreeSet<&str> = expected
        .values()
        .flatten()
        .map(|m| m.split(':').next().unwrap())
        .collect();
    assert_eq!(declared, used);
    let volume = Volume::new(DEFAULT_DIR);
    let written: BTreeSet<PathBuf> = volume.mount_points().into_iter().collect();
    assert_eq!(
        mount_points("init").into_iter().collect::<BTreeSet<_>>(),
        written
    );
    assert_eq!(mount_points("local-azure")[0], volume.keys_dir());
}

#[test]
fn every_file_a_container_is_told_about_is_in_a_volume_it_mounts() {
    let envs = environments();
    for (service, env) in &envs {
        for (variable, value) in env {
            if value.starts_with(DEFAULT_DIR) {
                assert!(
                    is_mounted_in(service, Path::new(value)),
                    "{service}: {variable}={value} is in no volume it mounts"
                );
            }
        }
    }
    let volume = Volume::new(DEFAULT_DIR);
    for workload in WORKLOADS {
        assert!(is_mounted_in(workload, &volume.ca_cert()));
        assert!(is_mounted_in(workload, &volume.federated_token(workload)));
        for other in WORKLOADS.iter().filter(|w| *w != workload) {
            assert!(!is_mounted_in(workload, &volume.federated_token(other)));
        }
        assert!(!is_mounted_in(workload, &volume.keys_dir()));
    }
    let doc = compose();
    let command = doc.at("services").at("azurite").at("command").strs();
    for (flag, file) in [
        ("--cert", volume.azurite_cert()),
        ("--key", volume.azurite_key()),
    ] {
        let at = command.iter().position(|a| *a == flag).unwrap();
        assert_eq!(Path::new(command[at + 1]), file, "{flag}");
        assert!(is_mounted_in("azurite", &file));
    }
}

#[test]
fn azurite_is_only_on_an_internal_network_shared_with_local_azure_alone() {
    let doc = compose();
    let services = doc.at("services");
    let networks = |service: &str| -> Vec<String> {
        services
            .at(service)
            .get("networks")
            .unwrap_or_else(|| panic!("{service} names no network (tools differ on the default)"))
            .strs()
            .into_iter()
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(services.at("init").at("network_mode").str(), "none");
    assert!(services.at("init").get("networks").is_none());
    assert_eq!(networks("azurite"), ["storage"]);
    assert_eq!(networks("local-azure"), ["default", "storage"]);
    for service in ["third-party-api", "main-app", "queue-worker"] {
        assert_eq!(networks(service), ["default"], "{service}");
    }
    // Every container: a read-only root, no privilege gain, every capability dropped but the
    // few a root-run emulator or init uses (each named in the file with why).
    for service in services.keys() {
        let hardened = services.at(service);
        assert_eq!(hardened.at("read_only").str(), "true", "{service}");
        assert_eq!(hardened.at("cap_drop").strs(), ["ALL"], "{service}");
        assert_eq!(
            hardened.at("security_opt").strs(),
            ["no-new-privileges:true"],
            "{service}"
        );
        let kept: Vec<&str> = hardened.get("cap_add").map(Yaml::strs).unwrap_or_default();
        let allowed: &[&str] = match service {
            "init" => &["CHOWN", "DAC_OVERRIDE", "FOWNER"],
            "azurite" => &["DAC_READ_SEARCH"],
            _ => &[],
        };
        assert_eq!(kept, allowed, "{service}");
    }
    assert_eq!(
        services.at("main-app").at("ports").strs(),
        ["127.0.0.1:8080:8080"],
        "published on this machine only"
    );
    for service in services.keys() {
        assert!(
            services.at(service).get("network_mode").is_none() || service == "init",
            "{service}: network_mode"
        );
        assert!(
            services.at(service).get("ports").is_none() || service == "main-app",
            "{service} publishes a port"
        );
    }
    let declared = doc.at("networks");
    assert_eq!(declared.keys(), ["default", "storage"]);
    assert_eq!(declared.at("storage").at("internal").str(), "true");
    assert_eq!(declared.at("default"), &Yaml::Null);
    // local-azure's gates reach Azurite by its service name, the one its certificate names.
    let serve = services.at("local-azure").at("command").strs();
    assert_eq!(
        serve,
        ["serve", "--azurite", devstack::compose::AZURITE_HOST]
    );
}

/// The Azurite entrypoint as the container's shell gets it (`$$` is compose's escape for `$`).
fn azurite_entrypoint() -> Vec<String> {
    let doc = compose();
    let azurite = doc.at("services").at("azurite");
    assert!(
        azurite.get("environment").is_none(),
        "Azurite's environment is set at start only"
    );
    azurite
        .at("entrypoint")
        .strs()
        .iter()
        .map(|s| s.replace("$$", "$"))
        .collect()
}

#[test]
fn azurite_makes_a_random_account_key_at_each_start_and_keeps_it_in_its_process() {
    let entrypoint = azurite_entrypoint();
    assert_eq!(entrypoint[..2], ["/bin/sh", "-c"]);
    assert_eq!(entrypoint[3], "azurite");
    let script = &entrypoint[2];
    assert!(script.contains("exec azurite \"$@\""));

    // Run it with a stand-in `azurite` that reports its environment and arguments.
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("azurite");
    std::fs::write(
        &fake,
        "#!/bin/sh\nprintf '%s\\n' \"$AZURITE_ACCOUNTS\" \"$*\"\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        dir.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let run = || {
        let out = std::process::Command::new(&entrypoint[0])
            .args(&entrypoint[1..])
            .args(["--oauth", "basic"])
            .env("PATH", &path)
            .env_remove("AZURITE_ACCOUNTS")
            .output()
            .expect("/bin/sh runs");
        assert!(
            out.status.success(),
            "the entrypoint failed (is node installed?): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = String::from_utf8(out.stdout).unwrap();
        let lines: Vec<String> = out.lines().map(str::to_owned).collect();
        assert_eq!(lines[1], "--oauth basic", "arguments are passed on");
        lines[0].clone()
    };
    let (first, second) = (run(), run());
    for accounts in [&first, &second] {
        let key = accounts
            .strip_prefix("devstoreaccount1:")
            .expect("AZURITE_ACCOUNTS=devstoreaccount1:<key>");
        use base64::Engine;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(key)
            .expect("a base64 key");
        assert_eq!(bytes.len(), 64);
        assert!(!compose_text().contains(key));
    }
    assert_ne!(first, second, "a new key at each start");

    // Without node there is no key, and Azurite does not start.
    let out = std::process::Command::new(&entrypoint[0])
        .args(&entrypoint[1..])
        .env("PATH", dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
}

#[test]
fn every_variable_is_one_the_service_reads_and_none_is_a_secret() {
    let reads = |service: &str| -> Vec<&'static str> {
        let own = match service {
            "main-app" => main_app::config::VARIABLES,
            "queue-worker" => queue_worker::config::VARIABLES,
            "third-party-api" => third_party_api::config::VARIABLES,
            other => panic!("unexpected service {other} with an environment"),
        };
        own.iter()
            .chain(shared_auth::variables::COMMON_VARIABLES)
            .chain(service_kit::telemetry::VARIABLES)
            .copied()
            .collect()
    };
    let envs = environments();
    assert_eq!(
        envs.keys().collect::<Vec<_>>(),
        ["main-app", "queue-worker", "third-party-api"]
    );
    for (service, env) in &envs {
        for variable in env.keys() {
            assert!(
                reads(service).contains(&variable.as_str()),
                "{service} does not read {variable}"
            );
            assert!(
                ![
                    "AZURE_CLIENT_SECRET",
                    "IDENTITY_HEADER",
                    "THIRD_PARTY_API_MASTER_KEY",
                    "THIRD_PARTY_API_FUNCTION_KEY",
                    "THIRD_PARTY_API_FUNCTION_KEYS",
                    "AZURITE_ACCOUNTS",
                ]
                .contains(&variable.as_str()),
                "{service}: {variable} would put a secret in the file"
            );
        }
    }
}

#[test]
fn no_secret_literal_is_in_the_file() {
    let text = compose_text();
    // Keys, signatures and connection strings; Azurite's public well-known key among them.
    for marker in [
        "PRIVATE KEY",
        "AccountKey",
        "SharedAccessSignature",
        "sig=",
        "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq",
        "AZURITE_ACCOUNTS:",
        "AZURITE_ACCOUNTS=devstoreaccount1:",
    ] {
        assert!(!text.contains(marker), "the file holds {marker}");
    }
    assert!(text.contains("AZURITE_ACCOUNTS=\"devstoreaccount1:$$key\""));
    // Nothing that looks like a key: a long run of base64 or hex.
    let long_run = regex_lite::Regex::new(r"[A-Za-z0-9+/=]{32,}").unwrap();
    let runs: Vec<&str> = long_run.find_iter(&text).map(|m| m.as_str()).collect();
    assert!(runs.is_empty(), "key-like strings: {runs:?}");
}
