//! `infra/` checked without an Azure account: every Bicep file parses (tree-sitter-bicep), the
//! role table is exactly what the system needs with the right role ids at the narrowest scopes,
//! storage and vault are locked down, no secret is written or output, and the variables each
//! Container App gets are variables its service reads (and devstack gives it locally).

use devstack::stack::{DevStack, Service, StackOptions};
use regex_lite::Regex;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn infra() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../infra")
}

fn read(relative: &str) -> String {
    std::fs::read_to_string(infra().join(relative)).unwrap()
}

fn bicep_files() -> Vec<PathBuf> {
    let mut files = vec![infra().join("main.bicep"), infra().join("resources.bicep")];
    for entry in std::fs::read_dir(infra().join("modules")).unwrap() {
        files.push(entry.unwrap().path());
    }
    files.retain(|f| f.extension().is_some_and(|e| e == "bicep"));
    files.sort();
    files
}

#[test]
fn every_bicep_file_parses_without_error_nodes() {
    let python = devstack::python::venv(
        "bicep-parser",
        &["tree-sitter==0.26.1", "tree-sitter-bicep==1.1.0"],
    )
    .unwrap();
    let files = bicep_files();
    assert!(files.len() >= 9, "{files:?}");
    let output = std::process::Command::new(python)
        .arg(infra().join("tests/parse_bicep.py"))
        .args(&files)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines: Vec<serde_json::Value> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), files.len());
    for line in lines {
        assert_eq!(line["problems"], serde_json::json!([]), "{}", line["file"]);
    }
}

#[test]
fn the_parser_reports_a_broken_file() {
    // The parse check above can fail: a truncated resource is reported.
    let python = devstack::python::venv(
        "bicep-parser",
        &["tree-sitter==0.26.1", "tree-sitter-bicep==1.1.0"],
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.bicep");
    std::fs::write(&broken, "resource x 'Microsoft.Storage/storageAccounts@2023-05-01' = {\n  name: 'a'\n  properties: {\n").unwrap();
    let output = std::process::Command::new(python)
        .arg(infra().join("tests/parse_bicep.py"))
        .arg(&broken)
        .output()
        .unwrap();
    let line: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_ne!(line["problems"], serde_json::json!([]));
}

/// Microsoft's built-in role ids, checked against the built-in roles list.
const ROLE_IDS: &[(&str, &str)] = &[
    (
        "Key Vault Secrets User",
        "4633458b-17de-408a-b874-0445c86b69e6",
    ),
    (
        "Storage Queue Data Message Sender",
        "c6a89b2d-59bc-44d0-9896-0f6e12d7b80a",
    ),
    (
        "Storage Queue Data Message Processor",
        "8a0f0c08-91a1-4084-bc3d-661d67233fed",
    ),
    (
        "Storage Queue Data Reader",
        "19e7f393-937e-4f77-808e-94535e297925",
    ),
    (
        "Storage Blob Data Contributor",
        "ba92f5b4-2d11-453d-a403-e96b0029c9fe",
    ),
    ("AcrPull", "7f951dda-4ed3-4680-a7ca-43fe172d538d"),
];

#[test]
fn role_ids_match_role_names() {
    let roles = read("modules/roles.bicep");
    let map = Regex::new(r"(?m)^\s+'?([A-Za-z ]+?)'?: '([0-9a-f-]{36})'").unwrap();
    let found: BTreeSet<(String, String)> = map
        .captures_iter(&roles)
        .map(|c| (c[1].to_owned(), c[2].to_owned()))
        .collect();
    let expected: BTreeSet<(String, String)> = ROLE_IDS
        .iter()
        .map(|(n, i)| (n.to_string(), i.to_string()))
        .collect();
    assert_eq!(found, expected);
}

#[test]
fn each_principal_has_exactly_its_roles_at_the_narrowest_scope() {
    let roles = read("modules/roles.bicep");
    let row = Regex::new(r"\{ principal: '([^']+)', role: '([^']+)', scope: '([^']+)' \}").unwrap();
    let found: BTreeSet<(String, String, String)> = row
        .captures_iter(&roles)
        .map(|c| (c[1].to_owned(), c[2].to_owned(), c[3].to_owned()))
        .collect();
    // SYSTEM.md's table, plus: AcrPull for image pulls, the custom Message Updater
    // (messages/write: visibility renewal) and Queue Data Reader (KEDA's queue length) for the
    // worker. No Contributor or Owner anywhere.
    let expected: BTreeSet<(String, String, String)> = [
        ("main-app", "Key Vault Secrets User", "secret"),
        ("main-app", "Storage Queue Data Message Sender", "queue"),
        ("main-app", "Storage Blob Data Contributor", "container"),
        ("main-app", "AcrPull", "registry"),
        (
            "queue-worker",
            "Storage Queue Data Message Processor",
            "queue",
        ),
        ("queue-worker", "Storage Queue Data Message Sender", "queue"),
        (
            "queue-worker",
            "Storage Queue Data Message Updater",
            "queue",
        ),
        ("queue-worker", "Storage Queue Data Reader", "queue"),
        (
            "queue-worker",
            "Storage Queue Data Message Processor",
            "poison-queue",
        ),
        (
            "queue-worker",
            "Storage Queue Data Message Sender",
            "poison-queue",
        ),
        ("queue-worker", "Storage Blob Data Contributor", "container"),
        ("queue-worker", "AcrPull", "registry"),
        ("third-party-api", "Key Vault Secrets User", "secret"),
        ("third-party-api", "AcrPull", "registry"),
    ]
    .iter()
    .map(|(p, r, s)| (p.to_string(), r.to_string(), s.to_string()))
    .collect();
    assert_eq!(found, expected);

    // One assignment loop per scope kind, each at that resource, each a service principal.
    let loops = Regex::new(r"(?s)resource \w+ 'Microsoft.Authorization/roleAssignments@[^']+' = \[\s*for a in filter\(assignments, a => a.scope == '([a-z-]+)'\): \{.*?scope: (\w+)\s").unwrap();
    let scopes: BTreeSet<(String, String)> = loops
        .captures_iter(&roles)
        .map(|c| (c[1].to_owned(), c[2].to_owned()))
        .collect();
    let expected_scopes: BTreeSet<(String, String)> = [
        ("secret", "secret"),
        ("queue", "queue"),
        ("poison-queue", "poisonQueue"),
        ("container", "container"),
        ("registry", "registry"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(scopes, expected_scopes);
    assert_eq!(
        roles.matches("principalType: 'ServicePrincipal'").count(),
        5
    );
    let custom = Regex::new(r"dataActions: \[([^\]]*)\]").unwrap();
    let actions: Vec<String> = custom
        .captures_iter(&roles)
        .map(|c| c[1].to_owned())
        .collect();
    assert_eq!(
        actions,
        ["'Microsoft.Storage/storageAccounts/queueServices/queues/messages/write'"],
        "the custom role grants one data action"
    );
    for file in bicep_files() {
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(!text.contains("accessPolicies"), "{file:?}: RBAC only");
        for broad in ["Contributor'", "Owner'"] {
            assert!(
                !text.contains(&format!("'{broad}"))
                    && !text.contains(&format!("Storage Account {broad}")),
                "{file:?}"
            );
        }
    }
}

#[test]
fn storage_vault_and_registry_are_locked_down() {
    let storage = read("modules/storage.bicep");
    for setting in [
        "allowSharedKeyAccess: false",
        "minimumTlsVersion: 'TLS1_2'",
        "allowBlobPublicAccess: false",
        "supportsHttpsTrafficOnly: true",
        "publicAccess: 'None'",
    ] {
        assert!(storage.contains(setting), "{setting}");
    }
    let vault = read("modules/keyvault.bicep");
    for setting in [
        "enableRbacAuthorization: true",
        "enableSoftDelete: true",
        "enablePurgeProtection: true",
    ] {
        assert!(vault.contains(setting), "{setting}");
    }
    assert!(read("modules/registry.bicep").contains("adminUserEnabled: false"));
    let app = read("modules/container-app.bicep");
    assert!(app.contains("allowInsecure: false"));
    assert!(app.contains("registries: [{ server: registryServer, identity: identityId }]"));
}

#[test]
fn no_secret_is_written_down_or_output() {
    let literal =
        Regex::new(r"(?i)(AccountKey=|SharedAccessSignature|sig=|password\s*[:=]\s*'|-----BEGIN)")
            .unwrap();
    let long_token = Regex::new(r"'[A-Za-z0-9+/=_-]{40,}'").unwrap();
    let mut files = bicep_files();
    files.push(infra().join("main.parameters.json"));
    files.push(infra().join("../azure.yaml"));
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        assert!(
            !literal.is_match(&text),
            "{file:?} holds a credential literal"
        );
        assert!(
            !long_token.is_match(&text),
            "{file:?} holds a long token literal"
        );
        for line in text
            .lines()
            .filter(|l| l.trim_start().starts_with("output "))
        {
            let lower = line.to_lowercase();
            for word in [
                "secretvalue",
                "thirdpartyapikey",
                "listkeys",
                "connectionstring",
                "sharedkey",
            ] {
                assert!(
                    !lower.contains(word),
                    "{file:?}: secret in an output: {line}"
                );
            }
        }
    }
    let main = read("main.bicep");
    assert!(
        Regex::new(r"@secure\(\)\s*\n@description\([^)]*\)\s*\nparam thirdPartyApiKey string = replace\('\$\{newGuid\(\)\}\$\{newGuid\(\)\}'")
            .unwrap()
            .is_match(&main),
        "the key is a secure parameter generated at deploy time"
    );
    let resources = read("resources.bicep");
    assert!(
        resources.contains("{ name: 'THIRD_PARTY_API_FUNCTION_KEY', secretRef: 'function-key' }")
    );
    assert!(resources.contains("keyVaultUrl: '${vault.outputs.uri}secrets/${secretName}'"));
}

/// The `env` entries of the module that deploys `app` in resources.bicep.
fn bicep_env(app: &str) -> BTreeSet<String> {
    let resources = read("resources.bicep");
    let start = resources
        .find(&format!("name: '{app}'\n"))
        .unwrap_or_else(|| panic!("no module for {app}"));
    let block = &resources[start..];
    let env_start = block.find("env: [").unwrap();
    let env_end = env_start + block[env_start..].find("\n    ]").unwrap();
    Regex::new(r"\{ name: '([A-Z0-9_]+)'")
        .unwrap()
        .captures_iter(&block[env_start..env_end])
        .map(|c| c[1].to_owned())
        .collect()
}

fn reads(service: Service) -> BTreeSet<String> {
    let own: &[&str] = match service {
        Service::ThirdPartyApi => third_party_api::config::VARIABLES,
        Service::MainApp => main_app::config::VARIABLES,
        Service::QueueWorker => queue_worker::config::VARIABLES,
    };
    own.iter()
        .chain(shared_auth::config::COMMON_VARIABLES)
        .map(|s| s.to_string())
        .collect()
}

#[tokio::test]
async fn every_variable_set_in_azure_and_locally_is_one_the_service_reads() {
    let dir = tempfile::tempdir().unwrap();
    let stack = DevStack::start(StackOptions::for_tests(dir.path()))
        .await
        .unwrap();
    let required = |service| -> &[&str] {
        match service {
            Service::ThirdPartyApi => &["PORT"],
            Service::MainApp => &[
                "THIRD_PARTY_API_ENDPOINT",
                "KEY_VAULT_URL",
                "STORAGE_QUEUE_URL",
                "CODE_LEDGER_URL",
                "PORT",
            ],
            Service::QueueWorker => &["STORAGE_QUEUE_URL", "CODE_LEDGER_URL", "PORT"],
        }
    };
    for service in Service::ALL {
        let reads = reads(*service);
        let azure = bicep_env(service.name());
        let local: BTreeSet<String> = stack
            .service_env(*service)
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        for (side, names) in [("infra", &azure), ("devstack", &local)] {
            let unknown: Vec<_> = names.difference(&reads).collect();
            assert!(
                unknown.is_empty(),
                "{side} sets {unknown:?} which {} never reads",
                service.name()
            );
            for name in required(*service) {
                assert!(
                    names.contains(*name),
                    "{side} does not set {name} for {}",
                    service.name()
                );
            }
            assert!(names.contains("AZURE_TOKEN_CREDENTIALS"));
        }
    }
    stack.stop().await;
}

#[test]
fn the_worker_scales_on_queue_length_with_its_identity_and_ingress_is_as_designed() {
    let resources = read("resources.bicep");
    let keda = Regex::new(r"(?s)azureQueue: \{\s*accountName: storage.outputs.name\s*queueName: queueName\s*queueLength: 5\s*identity: queueWorkerIdentity.id\s*\}").unwrap();
    assert!(
        keda.is_match(&resources),
        "KEDA azure-queue rule with the worker's identity"
    );
    assert!(!resources.contains("connectionString"));
    for (app, ingress) in [
        ("third-party-api", "internal"),
        ("main-app", "external"),
        ("queue-worker", "none"),
    ] {
        let start = resources.find(&format!("name: '{app}'\n")).unwrap();
        let block = &resources[start..];
        let end = block.find("\n}\n").unwrap_or(block.len());
        assert!(
            block[..end].contains(&format!("ingress: '{ingress}'")),
            "{app}"
        );
        assert!(
            block[..end].contains("value: 'ManagedIdentityCredential'"),
            "{app}"
        );
        assert!(
            block[..end].contains("{ name: 'AZURE_CLIENT_ID', value:"),
            "{app}: user-assigned identity"
        );
    }
    let app = read("modules/container-app.bicep");
    assert!(app.contains("path: '/healthz'") && app.contains("path: '/readyz'"));
}
