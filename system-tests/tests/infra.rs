//! `infra/` checked without an Azure account: every Bicep file parses (tree-sitter-bicep) and keeps
//! to the syntax checkov's parser reads, the role table is exactly what the system needs with the
//! right role ids at the narrowest scopes (compared with the role table and with a least-privilege
//! list written out here), the developer-access script (run against stand-in `azd`, `az` and
//! `curl`) grants exactly the operator roles or changes nothing, storage and vault are locked down
//! and private (public network access off unless opened to single developer addresses, private
//! endpoints with their DNS zones, the environment in its own subnet), no secret is written or
//! output, secrets expire, telemetry needs no key, the first revision is healthy (ingress, probes,
//! PORT and the image's EXPOSE agree), names soft delete holds are unique per deployment, every
//! checkov skip has a reason and is listed in docs/deploy.md, and the variables each Container App gets
//! are variables its service reads (and devstack gives it locally). The key lifecycle: both key
//! secrets are created only when absent (the preprovision hook asks ARM), with a placeholder no
//! service accepts and an expiry; third-party-api keeps its keys in its blob container and reads
//! its master key from the vault; the key-rotation job runs `keyless rotate` weekly (any schedule
//! main.bicep accepts runs at least weekly, simulated over two years) with an identity that holds
//! Secrets Officer on the two secrets and nothing else, and the postdeploy hook runs it once after
//! the first deployment.
//!
//! What the checks say about Bicep they assert on the files as parsed (`infra/tests/parse_bicep.py
//! --model`, tree-sitter-bicep: each file's params, vars, resources, modules and outputs as
//! data), so layout and whitespace do not matter; only syntax rules, comments and the absence
//! of a word anywhere are read as text.

use devstack::stack::Service;
use regex_lite::Regex;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use test_kit::start_stack;

fn infra() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../infra")
}

fn read(relative: &str) -> String {
    std::fs::read_to_string(infra().join(relative)).unwrap()
}

fn repo_file(relative: &str) -> String {
    std::fs::read_to_string(infra().join("..").join(relative)).unwrap()
}

/// Every Bicep file's text, with its path.
fn bicep_texts() -> Vec<(PathBuf, String)> {
    bicep_files()
        .into_iter()
        .map(|f| {
            let text = std::fs::read_to_string(&f).unwrap();
            (f, text)
        })
        .collect()
}

/// The module of resources.bicep that deploys `app` (its deployment `name`).
fn app_module(app: &str) -> &'static Value {
    model("resources.bicep")["modules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["body"]["name"] == app)
        .unwrap_or_else(|| panic!("no module for {app}"))
}

/// What `app`'s module passes as `param` (`Null` when it passes nothing).
fn app_param(app: &str, param: &str) -> &'static Value {
    &app_module(app)["body"]["params"][param]
}

/// `infra/tests/parse_bicep.py` (tree-sitter-bicep, pinned) run with `args` and `files`: one
/// JSON line per file.
fn parse_bicep(args: &[&str], files: &[PathBuf]) -> Vec<Value> {
    let python = test_kit::python::venv(
        "bicep-parser",
        &["tree-sitter==0.26.1", "tree-sitter-bicep==1.1.0"],
    )
    .unwrap();
    let output = std::process::Command::new(python)
        .arg(infra().join("tests/parse_bicep.py"))
        .args(args)
        .args(files)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines: Vec<Value> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), files.len());
    lines
}

/// Every Bicep file parsed into its declarations (`parse_bicep.py --model`), by path relative to
/// `infra/`: what the checks below assert on, instead of the files' text.
fn bicep() -> &'static BTreeMap<String, Value> {
    static MODEL: std::sync::OnceLock<BTreeMap<String, Value>> = std::sync::OnceLock::new();
    MODEL.get_or_init(|| {
        let files = bicep_files();
        let models = parse_bicep(&["--model"], &files);
        files
            .iter()
            .zip(models)
            .map(|(f, m)| (f.strip_prefix(infra()).unwrap().display().to_string(), m))
            .collect()
    })
}

/// The parsed file `relative` (to `infra/`).
fn model(relative: &str) -> &'static Value {
    bicep()
        .get(relative)
        .unwrap_or_else(|| panic!("no Bicep file {relative}"))
}

/// Every declared (not `existing`) resource of `kind`, with its file.
fn resources_of(kind: &str) -> Vec<(&'static str, &'static Value)> {
    bicep()
        .iter()
        .flat_map(|(file, m)| {
            m["resources"]
                .as_array()
                .unwrap()
                .iter()
                .map(move |r| (file.as_str(), r))
        })
        .filter(|(_, r)| r["type"] == kind && r["existing"] == false)
        .collect()
}

/// The one declared resource of `kind` in `relative`.
fn resource(relative: &str, kind: &str) -> &'static Value {
    let found: Vec<&Value> = model(relative)["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["type"] == kind && r["existing"] == false)
        .collect();
    assert_eq!(found.len(), 1, "{relative}: one {kind}");
    found[0]
}

/// `{"expr": text}`: a Bicep expression that is no literal.
fn expr(text: &str) -> Value {
    json!({ "expr": text })
}

/// `condition ? then : otherwise`, as parsed.
fn cond(condition: &str, then: Value, otherwise: Value) -> Value {
    json!({ "if": expr(condition), "then": then, "else": otherwise })
}

/// A Container App's ingress: none, or this object.
fn ingress() -> &'static Value {
    let app = resource("modules/container-app.bicep", "Microsoft.App/containerApps");
    let ingress = &app["body"]["properties"]["configuration"]["ingress"];
    assert_eq!(
        (&ingress["if"], &ingress["then"]),
        (&expr("ingress == 'none'"), &Value::Null)
    );
    &ingress["else"]
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
    let files = bicep_files();
    assert!(files.len() >= 10, "{files:?}");
    for line in parse_bicep(&[], &files) {
        assert_eq!(line["problems"], json!([]), "{}", line["file"]);
    }
}

#[test]
fn the_parser_reports_a_broken_file() {
    // The parse check above can fail: a truncated resource is reported.
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.bicep");
    std::fs::write(&broken, "resource x 'Microsoft.Storage/storageAccounts@2023-05-01' = {\n  name: 'a'\n  properties: {\n").unwrap();
    let lines = parse_bicep(&[], &[broken]);
    assert_ne!(lines[0]["problems"], json!([]));
}

/// The built-in roles infra grants, with their ids: the role table's (`ops::roles`, which doctor
/// names and devstack seeds from), checked there against Microsoft's built-in roles list.
fn role_ids() -> BTreeSet<(String, String)> {
    ops::roles::GRANTS
        .iter()
        .filter_map(|g| {
            g.role
                .id()
                .map(|id| (g.role.name().to_owned(), id.to_owned()))
        })
        .collect()
}

/// roles.bicep's built-in roles: (name, id).
fn built_in_roles() -> BTreeSet<(String, String)> {
    model("modules/roles.bicep")["vars"]["builtInRoles"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(name, id)| (name.clone(), id.as_str().unwrap().to_owned()))
        .collect()
}

/// roles.bicep's assignment rows: (principal, role, scope), in order.
fn assignments() -> Vec<(String, String, String)> {
    model("modules/roles.bicep")["vars"]["assignments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            let field = |k: &str| a[k].as_str().unwrap().to_owned();
            (field("principal"), field("role"), field("scope"))
        })
        .collect()
}

#[test]
fn role_ids_match_role_names() {
    assert_eq!(built_in_roles(), role_ids());
}

/// The declarations of `relative` named `symbol`, among its resources or modules.
fn declared(relative: &str, list: &str, symbol: &str) -> &'static Value {
    model(relative)[list]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["symbol"] == symbol)
        .unwrap_or_else(|| panic!("{relative}: no {list} {symbol}"))
}

#[test]
fn each_principal_has_exactly_its_roles_at_the_narrowest_scope() {
    let roles = model("modules/roles.bicep");
    let found: BTreeSet<(String, String, String)> = assignments().into_iter().collect();
    // The role table (`ops::roles`): what each service needs, plus AcrPull for image pulls, the
    // custom Message Updater (messages/write: visibility renewal) and Queue Data Reader (KEDA's
    // queue length) for the worker. No Contributor or Owner anywhere. The worker only sends to the
    // poison queue (requeueing poison is an operator's job): no Processor there.
    let expected: BTreeSet<(String, String, String)> = ops::roles::GRANTS
        .iter()
        .map(|g| {
            (
                g.identity.name().to_owned(),
                g.role.name().to_owned(),
                g.scope.bicep_name().to_owned(),
            )
        })
        .collect();
    assert_eq!(found, expected);

    // One assignment loop per scope kind, each at that resource, each a service principal whose
    // role is the custom role or a built-in one from the table (no literal role id elsewhere).
    let loops: Vec<&Value> = roles["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["type"] == "Microsoft.Authorization/roleAssignments")
        .collect();
    let mut scopes = BTreeSet::new();
    for l in &loops {
        let header = l["body"]["for"].as_str().unwrap();
        let kind = header
            .strip_prefix("for a in filter(assignments, a => a.scope == '")
            .and_then(|rest| rest.strip_suffix("')"))
            .unwrap_or_else(|| panic!("{header}"));
        let body = &l["body"]["body"];
        let scope = body["scope"]["expr"].as_str().unwrap();
        assert_eq!(
            body["properties"]["principalType"], "ServicePrincipal",
            "{kind}"
        );
        assert_eq!(
            body["properties"]["roleDefinitionId"],
            cond(
                "a.role == updaterRoleName",
                expr("updaterRoleId"),
                expr(
                    "subscriptionResourceId('Microsoft.Authorization/roleDefinitions', any(builtInRoles)[a.role])"
                )
            ),
            "{kind}"
        );
        scopes.insert((kind.to_owned(), scope.to_owned()));
    }
    let expected_scopes: BTreeSet<(String, String)> = [
        ("secret", "secret"),
        ("master-key-secret", "masterKeySecret"),
        ("queue", "queue"),
        ("poison-queue", "poisonQueue"),
        ("container", "container"),
        ("key-store-container", "keyStoreContainer"),
        ("registry", "registry"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(scopes, expected_scopes);
    assert_eq!(loops.len(), expected_scopes.len());
    // Every scope kind of the table has its loop (a new kind without one would grant nothing).
    for grant in ops::roles::GRANTS {
        assert!(
            scopes
                .iter()
                .any(|(kind, _)| kind == grant.scope.bicep_name()),
            "no assignment loop for {:?}",
            grant.scope
        );
    }
    // Each scope is the resource of that name, and resources.bicep names them as the services
    // and the rotation job do (THIRD_PARTY_API_SECRET_NAME, ..._MASTER_KEY_SECRET_NAME, the URLs).
    for (symbol, kind, name_param) in [
        ("secret", "Microsoft.KeyVault/vaults/secrets", "secretName"),
        (
            "masterKeySecret",
            "Microsoft.KeyVault/vaults/secrets",
            "masterKeySecretName",
        ),
        (
            "container",
            "Microsoft.Storage/storageAccounts/blobServices/containers",
            "containerName",
        ),
        (
            "keyStoreContainer",
            "Microsoft.Storage/storageAccounts/blobServices/containers",
            "keyStoreContainerName",
        ),
    ] {
        let r = declared("modules/roles.bicep", "resources", symbol);
        assert_eq!(
            (r["type"].as_str(), r["existing"].as_bool()),
            (Some(kind), Some(true))
        );
        assert_eq!(r["body"]["name"], expr(name_param), "{symbol}");
        assert!(
            r["body"]["parent"]["expr"].is_string(),
            "{symbol}: a child resource"
        );
    }
    let resources = model("resources.bicep");
    let roles_module = declared("resources.bicep", "modules", "roles");
    assert_eq!(roles_module["path"], "modules/roles.bicep");
    let params = &roles_module["body"]["params"];
    for (var, value) in [
        ("secretName", "third-party-api-key"),
        ("masterKeySecretName", "third-party-api-master-key"),
        ("containerName", "codes"),
        ("keyStoreContainerName", "third-party-api-keys"),
    ] {
        assert_eq!(resources["vars"][var], value, "{var}");
        assert_eq!(params[var], expr(var), "roles get {var}");
    }
    // The principals are the table's identities, each its own user-assigned identity.
    for identity in ops::roles::Identity::ALL {
        let name = identity.name();
        let symbol = match identity {
            ops::roles::Identity::MainApp => "mainAppIdentity",
            ops::roles::Identity::QueueWorker => "queueWorkerIdentity",
            ops::roles::Identity::ThirdPartyApi => "thirdPartyApiIdentity",
            ops::roles::Identity::Rotation => "rotationIdentity",
        };
        assert_eq!(
            params["principals"][name],
            expr(&format!("{symbol}.properties.principalId")),
            "{name}"
        );
        let r = declared("resources.bicep", "resources", symbol);
        assert_eq!(
            r["type"],
            "Microsoft.ManagedIdentity/userAssignedIdentities"
        );
    }
    // The assignments on the two secrets wait for them: the roles module takes the vault's name
    // from the vault module, which creates absent secrets.
    assert_eq!(params["vaultName"], expr("vault.outputs.name"));
    // The custom role is its own deployment, finished before the roles module (which takes its
    // id) assigns it; its name is unique in the tenant (a hash of the group's id) and its id is
    // the subscription-level one role assignments expect.
    assert_eq!(params["updaterRoleId"], expr("updaterRole.outputs.id"));
    assert_eq!(
        declared("resources.bicep", "modules", "updaterRole")["path"],
        "modules/custom-role.bicep"
    );
    let custom_role = model("modules/custom-role.bicep");
    assert_eq!(
        custom_role["vars"]["roleName"],
        expr("'${baseName} (${uniqueString(resourceGroup().id)})'")
    );
    assert_eq!(
        custom_role["outputs"]["id"]["value"],
        expr("subscriptionResourceId('Microsoft.Authorization/roleDefinitions', updater.name)")
    );
    let definitions = resources_of("Microsoft.Authorization/roleDefinitions");
    assert_eq!(definitions.len(), 1, "one custom role");
    let (file, definition) = definitions[0];
    assert_eq!(file, "modules/custom-role.bicep");
    let properties = &definition["body"]["properties"];
    assert_eq!(properties["roleName"], expr("roleName"));
    assert_eq!(
        properties["assignableScopes"],
        json!([expr("resourceGroup().id")])
    );
    assert_eq!(
        properties["permissions"],
        json!([{
            "actions": [],
            "notActions": [],
            "dataActions": ["Microsoft.Storage/storageAccounts/queueServices/queues/messages/write"],
            "notDataActions": [],
        }]),
        "the custom role grants one data action"
    );
    // Every row's role is a known one: a built-in by id, or the custom role.
    let known: BTreeSet<&str> = ops::roles::Role::ALL.iter().map(|r| r.name()).collect();
    for (_, role, _) in &found {
        assert!(known.contains(role.as_str()), "unknown role {role}");
    }
    // Role assignments live in roles.bicep only.
    for (file, _) in resources_of("Microsoft.Authorization/roleAssignments") {
        assert_eq!(
            file, "modules/roles.bicep",
            "role assignments belong in modules/roles.bicep"
        );
    }
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
fn each_identity_holds_exactly_the_least_privilege_written_out_here() {
    // Written out, not derived from the role table: the test above compares roles.bicep with
    // ops::roles::GRANTS, which a widening made in both places passes; this one fails on it.
    let least: BTreeSet<(&str, &str, &str)> = [
        // main-app: reads its key, sends code-issued, reads and marks the ledger.
        ("main-app", "Key Vault Secrets User", "secret"),
        ("main-app", "Storage Queue Data Message Sender", "queue"),
        ("main-app", "Storage Blob Data Contributor", "container"),
        ("main-app", "AcrPull", "registry"),
        // queue-worker: receives, deletes and renews visibility on its queue, KEDA reads the
        // length; sends only to the poison queue; records in the ledger.
        (
            "queue-worker",
            "Storage Queue Data Message Processor",
            "queue",
        ),
        (
            "queue-worker",
            "Storage Queue Data Message Updater",
            "queue",
        ),
        ("queue-worker", "Storage Queue Data Reader", "queue"),
        (
            "queue-worker",
            "Storage Queue Data Message Sender",
            "poison-queue",
        ),
        ("queue-worker", "Storage Blob Data Contributor", "container"),
        ("queue-worker", "AcrPull", "registry"),
        // third-party-api: reads its master key, keeps its keys in its own container.
        (
            "third-party-api",
            "Key Vault Secrets User",
            "master-key-secret",
        ),
        (
            "third-party-api",
            "Storage Blob Data Contributor",
            "key-store-container",
        ),
        ("third-party-api", "AcrPull", "registry"),
        // The key-rotation job: writes the two secrets; nothing on Storage.
        ("rotation", "Key Vault Secrets Officer", "secret"),
        ("rotation", "Key Vault Secrets Officer", "master-key-secret"),
        ("rotation", "AcrPull", "registry"),
    ]
    .into();
    let rows = assignments();
    let in_bicep: BTreeSet<(&str, &str, &str)> = rows
        .iter()
        .map(|(p, r, s)| (p.as_str(), r.as_str(), s.as_str()))
        .collect();
    assert_eq!(in_bicep.len(), rows.len(), "a row twice");
    let in_table: BTreeSet<(&str, &str, &str)> = ops::roles::GRANTS
        .iter()
        .map(|g| (g.identity.name(), g.role.name(), g.scope.bicep_name()))
        .collect();
    for (side, found) in [
        ("roles.bicep", &in_bicep),
        ("ops::roles::GRANTS", &in_table),
    ] {
        let wider: Vec<_> = found.difference(&least).collect();
        let missing: Vec<_> = least.difference(found).collect();
        assert!(
            wider.is_empty(),
            "{side} grants more than least privilege: {wider:?}"
        );
        assert!(missing.is_empty(), "{side} lacks {missing:?}");
    }
    // Spelled out, as the auditor asked: the worker never sends to its own queue, and does not
    // process poison (an operator requeues it); only the job writes a secret; nobody but
    // main-app reads main-app's key.
    for (principal, role, scope) in [
        ("queue-worker", "Storage Queue Data Message Sender", "queue"),
        (
            "queue-worker",
            "Storage Queue Data Message Processor",
            "poison-queue",
        ),
        (
            "queue-worker",
            "Storage Queue Data Message Updater",
            "poison-queue",
        ),
        ("third-party-api", "Key Vault Secrets User", "secret"),
        ("main-app", "Key Vault Secrets Officer", "secret"),
    ] {
        assert!(
            !in_bicep.contains(&(principal, role, scope)),
            "{principal} must not hold {role} on {scope}"
        );
    }
    // The role ids, written out (Microsoft's built-in roles list): a row cannot keep its name
    // and point at a wider role.
    let ids = built_in_roles();
    let known: BTreeSet<(String, String)> = [
        (
            "Key Vault Secrets User",
            "4633458b-17de-408a-b874-0445c86b69e6",
        ),
        (
            "Key Vault Secrets Officer",
            "b86a8fe4-44ce-4948-aee5-eccb2c155cd7",
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
    ]
    .iter()
    .map(|(n, i)| (n.to_string(), i.to_string()))
    .collect();
    assert_eq!(ids, known);
    assert_eq!(
        model("modules/roles.bicep")["vars"]["updaterRoleName"],
        "Storage Queue Data Message Updater"
    );
}

#[test]
fn storage_vault_and_registry_are_locked_down() {
    let account = &resource("modules/storage.bicep", "Microsoft.Storage/storageAccounts")["body"];
    for (setting, value) in [
        ("allowSharedKeyAccess", json!(false)),
        ("minimumTlsVersion", json!("TLS1_2")),
        ("allowBlobPublicAccess", json!(false)),
        ("supportsHttpsTrafficOnly", json!(true)),
    ] {
        assert_eq!(account["properties"][setting], value, "{setting}");
    }
    let containers = resources_of("Microsoft.Storage/storageAccounts/blobServices/containers");
    assert_eq!(containers.len(), 2, "the ledger and the key store");
    for (_, c) in containers {
        assert_eq!(
            c["body"]["properties"]["publicAccess"], "None",
            "{}",
            c["symbol"]
        );
    }
    let vault = &resource("modules/keyvault.bicep", "Microsoft.KeyVault/vaults")["body"];
    for setting in [
        "enableRbacAuthorization",
        "enableSoftDelete",
        "enablePurgeProtection",
    ] {
        assert_eq!(vault["properties"][setting], true, "{setting}");
    }
    let registry = &resource(
        "modules/registry.bicep",
        "Microsoft.ContainerRegistry/registries",
    )["body"];
    assert_eq!(registry["properties"]["adminUserEnabled"], false);
    assert_eq!(registry["properties"]["anonymousPullEnabled"], false);
    let app = &resource("modules/container-app.bicep", "Microsoft.App/containerApps")["body"];
    let configuration = &app["properties"]["configuration"];
    assert_eq!(ingress()["allowInsecure"], false);
    assert_eq!(
        configuration["registries"],
        json!([{ "server": expr("registryServer"), "identity": expr("identityId") }])
    );
}

#[test]
fn vault_and_storage_are_private_unless_opened_to_single_developer_addresses() {
    // Every vault and storage account declared anywhere (a later one included): public network
    // access is the module's parameter, 'Disabled' by default; the firewall denies by default
    // and admits single addresses only (anything after a '/' dropped).
    let mut declared = 0;
    for kind in [
        "Microsoft.KeyVault/vaults",
        "Microsoft.Storage/storageAccounts",
    ] {
        for (file, r) in resources_of(kind) {
            declared += 1;
            let properties = &r["body"]["properties"];
            assert_eq!(
                properties["publicNetworkAccess"],
                expr("publicNetworkAccess"),
                "{file}"
            );
            let acls = &properties["networkAcls"];
            assert_eq!(acls["defaultAction"], "Deny", "{file}");
            assert_eq!(acls["ipRules"]["for"], "for ip in developerIps", "{file}");
            assert_eq!(
                acls["ipRules"]["body"]["value"],
                expr("first(split(trim(ip), '/'))"),
                "{file}"
            );
            assert_eq!(acls["virtualNetworkRules"], json!([]), "{file}");
            let params = &model(file)["params"];
            assert_eq!(
                params["publicNetworkAccess"]["default"], "Disabled",
                "{file}"
            );
            assert!(
                params["publicNetworkAccess"]["decorators"]
                    .as_array()
                    .unwrap()
                    .contains(&json!("@allowed(['Disabled', 'Enabled'])")),
                "{file}"
            );
            assert_eq!(params["developerIps"]["default"], json!([]), "{file}");
        }
    }
    assert_eq!(declared, 2, "one vault, one storage account");
    let vault = resource("modules/keyvault.bicep", "Microsoft.KeyVault/vaults");
    assert_eq!(vault["body"]["properties"]["networkAcls"]["bypass"], "None");
    // resources.bicep opens them only when developer addresses are given.
    let opened: Vec<&Value> = model("resources.bicep")["modules"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["body"]["params"].get("developerIps").is_some())
        .collect();
    assert_eq!(opened.len(), 2, "the vault and the storage account");
    for m in opened {
        assert_eq!(m["body"]["params"]["developerIps"], expr("developerIps"));
        assert_eq!(
            m["body"]["params"]["publicNetworkAccess"],
            cond("empty(developerIps)", json!("Disabled"), json!("Enabled"))
        );
    }
    let main = model("main.bicep");
    assert_eq!(main["params"]["developerIpAddresses"]["default"], "");
    assert_eq!(
        main["vars"]["developerIps"],
        expr("filter(split(developerIpAddresses, ','), ip => !empty(trim(ip)))")
    );
    let parameters: Value = serde_json::from_str(&read("main.parameters.json")).unwrap();
    assert_eq!(
        parameters["parameters"]["developerIpAddresses"]["value"],
        "${DEVELOPER_IP_ADDRESSES=}"
    );
    // Nothing anywhere opens a network to all.
    let mut files = bicep_files();
    files.push(infra().join("main.parameters.json"));
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for open in [
            "defaultAction: 'Allow'",
            "publicNetworkAccess: 'Enabled'",
            "0.0.0.0",
            "allowBlobPublicAccess: true",
            "allowSharedKeyAccess: true",
            "anonymousPullEnabled: true",
            "adminUserEnabled: true",
            "allowInsecure: true",
        ] {
            assert!(!text.contains(open), "{file:?}: {open}");
        }
    }
    // The developer script adds one validated IPv4 address, never a range.
    let script = read("scripts/grant-developer-access.sh");
    assert!(script.contains(r"^([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})$"));
    assert!(script.contains("azd env set DEVELOPER_IP_ADDRESSES"));
}

#[test]
fn private_endpoints_dns_zones_and_the_environment_subnet() {
    let network = model("modules/network.bicep");
    assert_eq!(
        network["vars"]["links"],
        json!([
            { "name": "vault", "target": expr("vaultId"), "group": "vault",
              "zone": expr("'privatelink${replace(environment().suffixes.keyvaultDns, 'vault', 'vaultcore')}'") },
            { "name": "queue", "target": expr("storageId"), "group": "queue",
              "zone": expr("'privatelink.queue.${environment().suffixes.storage}'") },
            { "name": "blob", "target": expr("storageId"), "group": "blob",
              "zone": expr("'privatelink.blob.${environment().suffixes.storage}'") },
        ])
    );
    // Per link: a zone, its link to the network, an endpoint in the endpoints subnet, a zone group.
    let per_link = |kind: &str, header: &str| -> &'static Value {
        let r = resource("modules/network.bicep", kind);
        assert_eq!(r["body"]["for"], header, "{kind}: one per link");
        &r["body"]["body"]
    };
    assert_eq!(
        per_link("Microsoft.Network/privateDnsZones", "for link in links")["name"],
        expr("link.zone")
    );
    let zone_link = per_link(
        "Microsoft.Network/privateDnsZones/virtualNetworkLinks",
        "for (link, i) in links",
    );
    assert_eq!(zone_link["parent"], expr("zones[i]"));
    assert_eq!(
        zone_link["properties"],
        json!({ "registrationEnabled": false, "virtualNetwork": { "id": expr("vnet.id") } })
    );
    let endpoint = per_link("Microsoft.Network/privateEndpoints", "for link in links");
    assert_eq!(
        endpoint["properties"],
        json!({
            "subnet": { "id": expr("vnet.properties.subnets[1].id") },
            "privateLinkServiceConnections": [{
                "name": expr("link.name"),
                "properties": { "privateLinkServiceId": expr("link.target"), "groupIds": [expr("link.group")] },
            }],
        })
    );
    let group = per_link(
        "Microsoft.Network/privateEndpoints/privateDnsZoneGroups",
        "for (link, i) in links",
    );
    assert_eq!(group["parent"], expr("endpoints[i]"));
    assert_eq!(
        group["properties"]["privateDnsZoneConfigs"][0]["properties"]["privateDnsZoneId"],
        expr("zones[i].id")
    );
    // Network security: HTTPS only; from the Internet to the environment's subnet (main-app's
    // ingress), and to the endpoints from the environment's subnet alone.
    let rules = |symbol: &str| -> Vec<Value> {
        let nsg = declared("modules/network.bicep", "resources", symbol);
        assert_eq!(nsg["type"], "Microsoft.Network/networkSecurityGroups");
        nsg["body"]["properties"]["securityRules"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                let p = &r["properties"];
                json!([
                    r["name"],
                    p["priority"],
                    p["direction"],
                    p["access"],
                    p["protocol"],
                    p["sourceAddressPrefix"],
                    p["sourcePortRange"],
                    p["destinationAddressPrefix"],
                    p["destinationPortRange"]
                ])
            })
            .collect()
    };
    assert_eq!(
        rules("appsNsg"),
        [json!([
            "allow-https-from-internet",
            100,
            "Inbound",
            "Allow",
            "Tcp",
            "Internet",
            "*",
            expr("appsPrefix"),
            "443"
        ])]
    );
    assert_eq!(
        rules("endpointsNsg"),
        [
            json!([
                "allow-https-from-apps",
                100,
                "Inbound",
                "Allow",
                "Tcp",
                expr("appsPrefix"),
                "*",
                expr("endpointsPrefix"),
                "443"
            ]),
            json!([
                "deny-other-inbound",
                4000,
                "Inbound",
                "Deny",
                "*",
                "*",
                "*",
                "*",
                "*"
            ]),
        ]
    );
    // The claim matches what the environment enforces: the public ingress, not that rule, decides
    // what the Internet reaches, and it answers on 80 with a redirect only (no plain HTTP).
    assert_eq!(ingress()["external"], expr("ingress == 'external'"));
    assert_eq!(ingress()["allowInsecure"], false);
    let readme = repo_file("docs/deploy.md");
    assert!(readme.contains(
        "Port 80 is open too and answers only with a redirect to HTTPS (`allowInsecure: false`)"
    ));
    assert!(!readme.contains("only 443 from the Internet"));
    // Two subnets, each behind its security group: the environment's (delegated) and the
    // endpoints'.
    let vnet = resource("modules/network.bicep", "Microsoft.Network/virtualNetworks");
    let subnets = &vnet["body"]["properties"]["subnets"];
    assert_eq!(subnets.as_array().unwrap().len(), 2);
    assert_eq!(
        subnets[0]["properties"]["networkSecurityGroup"],
        json!({ "id": expr("appsNsg.id") })
    );
    assert_eq!(
        subnets[0]["properties"]["delegations"][0]["properties"]["serviceName"],
        "Microsoft.App/environments"
    );
    assert_eq!(
        subnets[1]["properties"]["networkSecurityGroup"],
        json!({ "id": expr("endpointsNsg.id") })
    );
    assert_eq!(
        subnets[1]["properties"]["privateEndpointNetworkPolicies"],
        "Enabled"
    );
    // The environment sits in the apps subnet, after the endpoints and zones exist.
    let env = resource(
        "modules/apps-env.bicep",
        "Microsoft.App/managedEnvironments",
    );
    assert_eq!(
        env["body"]["properties"]["vnetConfiguration"]["infrastructureSubnetId"],
        expr("subnetId")
    );
    assert_eq!(
        declared("resources.bicep", "modules", "environment")["body"]["params"]["subnetId"],
        expr("network.outputs.appsSubnetId")
    );
    assert_eq!(
        network["outputs"]["appsSubnetId"]["value"],
        expr("vnet.properties.subnets[0].id")
    );
}

/// The Dockerfile stage `stage`, from its `FROM` line to the next.
fn dockerfile_stage(stage: &str) -> String {
    let dockerfile = repo_file("Dockerfile");
    let start = dockerfile
        .find(&format!(" AS {stage}\n"))
        .unwrap_or_else(|| panic!("no stage {stage}"));
    let block = &dockerfile[start..];
    let end = block[1..].find("\nFROM ").map_or(block.len(), |e| e + 1);
    block[..end].to_owned()
}

/// The number after `key` in the Dockerfile stage `stage` (`EXPOSE ` or `PORT=`).
fn dockerfile_stage_number(stage: &str, key: &str) -> u16 {
    let block = dockerfile_stage(stage);
    let re = Regex::new(&format!(r"{}(\d+)", regex_lite::escape(key))).unwrap();
    let found: Vec<u16> = re
        .captures_iter(&block)
        .map(|c| c[1].parse().unwrap())
        .collect();
    assert_eq!(found.len(), 1, "{stage}: one {key}");
    found[0]
}

#[test]
fn the_first_revision_is_healthy_ingress_probes_port_and_image_agree() {
    let app = resource("modules/container-app.bicep", "Microsoft.App/containerApps");
    assert_eq!(ingress()["targetPort"], expr("port"));
    let container = &app["body"]["properties"]["template"]["containers"][0];
    let probes: Vec<(&Value, &Value)> = container["probes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (&p["type"], &p["httpGet"]))
        .collect();
    assert_eq!(
        probes,
        [
            (
                &json!("Liveness"),
                &json!({ "path": "/healthz", "port": expr("port") })
            ),
            (
                &json!("Readiness"),
                &json!({ "path": "/readyz", "port": expr("port") })
            ),
        ]
    );
    let resources = model("resources.bicep");
    // The placeholder listens on PORT and answers 200 on every path (Google's hello-app
    // sample), so ingress and both probes find it on the service's own port.
    assert_eq!(
        resources["vars"]["placeholderImage"],
        "us-docker.pkg.dev/google-samples/containers/gke/hello-app:1.0"
    );
    for (app, variable) in [
        ("third-party-api", "thirdPartyApiImage"),
        ("main-app", "mainAppImage"),
        ("queue-worker", "queueWorkerImage"),
    ] {
        assert_eq!(
            app_param(app, "image"),
            &cond(
                &format!("empty({variable})"),
                expr("placeholderImage"),
                expr(variable)
            ),
            "{app}"
        );
        let port = app_param(app, "port")
            .as_u64()
            .unwrap_or_else(|| panic!("{app}: no port"));
        let env = bicep_env_entries(app);
        let (_, env_port) = env
            .iter()
            .find(|(name, _)| name == "PORT")
            .unwrap_or_else(|| panic!("{app}: no PORT"));
        assert_eq!(
            port.to_string(),
            resolve(env_port),
            "{app}: ingress and probes vs PORT"
        );
        let port = u16::try_from(port).unwrap();
        assert_eq!(
            port,
            dockerfile_stage_number(app, "EXPOSE "),
            "{app}: vs EXPOSE"
        );
        assert_eq!(
            port,
            dockerfile_stage_number(app, " PORT="),
            "{app}: vs the image's PORT"
        );
        // The apps start once their roles exist and the network (endpoints, zones) is up.
        assert_eq!(
            app_module(app)["body"]["dependsOn"],
            json!([expr("roles")]),
            "{app}"
        );
    }
}

#[test]
fn the_vault_name_is_unique_per_deployment() {
    let vault = declared("resources.bicep", "modules", "vault");
    assert_eq!(
        vault["body"]["params"]["name"],
        expr("'kl-kv-${take(token, 11)}${deploymentSuffix}'")
    );
    let main = model("main.bicep");
    let param = &main["params"]["deploymentSuffix"];
    assert_eq!(param["default"], "");
    assert!(
        param["decorators"]
            .as_array()
            .unwrap()
            .contains(&json!("@maxLength(6)"))
    );
    assert_eq!(
        declared("main.bicep", "modules", "resources")["body"]["params"]["deploymentSuffix"],
        expr("suffix")
    );
    assert_eq!(
        main["outputs"]["AZURE_DEPLOYMENT_SUFFIX"]["value"],
        expr("suffix")
    );
    let parameters: Value = serde_json::from_str(&read("main.parameters.json")).unwrap();
    assert_eq!(
        parameters["parameters"]["deploymentSuffix"]["value"],
        "${AZURE_DEPLOYMENT_SUFFIX=}"
    );
    // azd keeps the suffix across provisions and renews it at `azd down`.
    let azure = repo_file("azure.yaml");
    let hooks = &azure[azure.find("\nhooks:\n").expect("azure.yaml hooks")..];
    assert!(hooks.contains("  preprovision:\n    posix:\n      shell: sh\n      run: infra/scripts/deployment-suffix.sh && infra/scripts/key-secrets.sh\n"));
    assert!(hooks.contains("  postdown:\n    posix:\n      shell: sh\n      run: infra/scripts/deployment-suffix.sh --new\n"));
    assert!(hooks.contains("    windows:\n      shell: pwsh\n      run: |\n        $ErrorActionPreference = 'Stop'\n        ./infra/scripts/deployment-suffix.ps1\n        ./infra/scripts/key-secrets.ps1\n"));
    assert!(hooks.contains("      run: ./infra/scripts/deployment-suffix.ps1 -New\n"));
    let script = read("scripts/deployment-suffix.sh");
    assert!(script.contains("azd env set AZURE_DEPLOYMENT_SUFFIX \"$suffix\""));
    // The PowerShell twin asks the same question of the same API (PowerShell is not on this
    // machine: its text is checked, the shell script runs).
    let twin = read("scripts/deployment-suffix.ps1");
    for text in [
        "azd env set AZURE_DEPLOYMENT_SUFFIX $suffix",
        "/providers/Microsoft.KeyVault/deletedVaults?api-version=$apiVersion",
        "$_.properties.vaultId",
        "/providers/Microsoft\\.KeyVault/vaults/kl-kv-[0-9a-z]{11}$current$",
        "$url = $page.nextLink",
    ] {
        assert!(twin.contains(text), "{text}");
    }
}

#[test]
fn the_deployment_suffix_hook_keeps_a_suffix_unless_a_deleted_vault_holds_it() {
    let suffix = |run: &HookRun| run.get("AZURE_DEPLOYMENT_SUFFIX").unwrap_or_default();
    let preprovision = |run: &HookRun| {
        let (ok, out) = run.run("scripts/deployment-suffix.sh");
        assert!(ok, "{out}");
        suffix(run)
    };
    // First provision: a new suffix, nothing asked of Azure.
    let run = HookRun::new(AZ_FOR_KEY_SECRETS);
    for (k, v) in [("AZURE_ENV_NAME", "dev"), ("AZURE_SUBSCRIPTION_ID", "s-1")] {
        run.set(k, v);
    }
    let first = preprovision(&run);
    assert!(
        Regex::new("^[0-9a-f]{6}$").unwrap().is_match(&first),
        "{first}"
    );
    assert!(run.az_calls().is_empty());

    // Kept across provisions while no deleted vault holds it: ARM's list of the subscription's
    // deleted vaults is read to its last page. Another group's deleted vault with this suffix,
    // or this group's with another, does not count.
    let vault_id = |group: &str, name: &str| {
        format!(
            "/subscriptions/s-1/resourceGroups/{group}/providers/Microsoft.KeyVault/vaults/{name}\n"
        )
    };
    run.stub(
        "deleted1.ids",
        &(vault_id("rg-other", &format!("kl-kv-abcdefghijk{first}"))
            + &vault_id("rg-dev", "kl-kv-abcdefghijk000000")),
    );
    run.stub(
        "deleted1.next",
        "https://management.azure.com/subscriptions/s-1/providers/Microsoft.KeyVault/deletedVaults?api-version=2023-07-01&$skiptoken=2\n",
    );
    assert_eq!(preprovision(&run), first, "kept across provisions");
    let asked = run.az_calls();
    assert_eq!(
        asked.len(),
        4,
        "two pages, each its ids and next link: {asked:?}"
    );
    assert!(asked.iter().all(|c| c.starts_with(
        "rest --method get --url https://management.azure.com/subscriptions/s-1/providers/Microsoft.KeyVault/deletedVaults?api-version="
    )));

    // The group was deleted some other way than `azd down`: its vault, soft-deleted, holds the
    // name (ARM spells the group in capitals here). A new suffix, so a new vault.
    run.stub(
        "deleted2.ids",
        &vault_id("RG-DEV", &format!("kl-kv-abcdefghijk{first}")),
    );
    let (ok, out) = run.run("scripts/deployment-suffix.sh");
    assert!(ok, "{out}");
    assert!(
        out.contains("a soft-deleted vault holds this deployment's vault name"),
        "{out}"
    );
    let renewed = suffix(&run);
    assert_ne!(renewed, first);
    // The key-secrets hook then sees a new vault: both secrets will be created.
    run.set("AZURE_KEY_VAULT_NAME", &format!("kl-kv-abcdefghijk{first}"));
    let (ok, out) = run.run("scripts/key-secrets.sh");
    assert!(ok, "{out}");
    assert_eq!(
        run.get("THIRD_PARTY_API_KEY_EXISTS").as_deref(),
        Some("false")
    );

    // Azure cannot be asked: the provision stops, the suffix unchanged.
    run.stub("fail", "");
    let (ok, out) = run.run("scripts/deployment-suffix.sh");
    assert!(!ok, "{out}");
    assert_eq!(suffix(&run), renewed);

    // `azd down` renews it, without asking.
    let (ok, out) = run.run_with("sh", "scripts/deployment-suffix.sh", &["--new"]);
    assert!(ok, "{out}");
    assert_ne!(suffix(&run), renewed, "renewed by azd down");
}

#[test]
fn secrets_expire_and_telemetry_needs_no_key() {
    // Every Key Vault secret written by the templates (a later one included) expires and says
    // what it is.
    let secrets = resources_of("Microsoft.KeyVault/vaults/secrets");
    assert!(!secrets.is_empty());
    for (file, r) in secrets {
        let body = if r["body"]["for"].is_string() {
            &r["body"]["body"]
        } else {
            &r["body"]
        };
        let properties = &body["properties"];
        assert_eq!(
            properties["attributes"]["exp"],
            expr("secretExpiresOn"),
            "{file}: expiry"
        );
        assert!(!properties["contentType"].is_null(), "{file}: content type");
    }
    assert_eq!(
        declared("main.bicep", "modules", "resources")["body"]["params"]["secretExpiresOn"],
        expr("dateTimeToEpoch(dateTimeAdd(deployedAt, 'P90D'))")
    );
    // Application Insights keeps local authentication, the one way the managed agent can send
    // (its connection string sits in the environment alone); logs reach Log Analytics through
    // diagnostic settings, not the workspace key.
    let insights = resource("modules/monitoring.bicep", "Microsoft.Insights/components");
    assert_eq!(insights["body"]["properties"]["DisableLocalAuth"], false);
    assert!(
        read("modules/monitoring.bicep").contains("must allow local authentication to receive")
    );
    let env = resource(
        "modules/apps-env.bicep",
        "Microsoft.App/managedEnvironments",
    );
    let properties = &env["body"]["properties"];
    assert_eq!(
        properties["appLogsConfiguration"]["destination"],
        "azure-monitor"
    );
    assert_eq!(
        properties["openTelemetryConfiguration"],
        json!({
            "tracesConfiguration": { "destinations": ["appInsights"] },
            "logsConfiguration": { "destinations": ["appInsights"] },
        })
    );
    assert_eq!(
        properties["appInsightsConfiguration"]["connectionString"],
        expr("insights.properties.ConnectionString")
    );
    let diagnostics = resources_of("Microsoft.Insights/diagnosticSettings");
    assert!(
        diagnostics
            .iter()
            .any(|(file, r)| *file == "modules/apps-env.bicep"
                && r["body"]["scope"] == expr("environment"))
    );
    // The agent takes OTLP over gRPC only: each app says so (the services honour it; the
    // protocol is proven against a gRPC receiver in system-tests/tests/trace.rs).
    for app in ["third-party-api", "main-app", "queue-worker"] {
        assert!(
            bicep_env_entries(app)
                .contains(&("OTEL_EXPORTER_OTLP_PROTOCOL".to_owned(), json!("grpc"))),
            "{app}"
        );
    }
    // The environment's managed agent is the only holder of the connection string: no app,
    // no secret, no key anywhere.
    for (file, text) in bicep_texts() {
        let lower = text.to_lowercase();
        for key in [
            "listkeys(",
            "sharedkey:",
            "primarysharedkey",
            "instrumentationkey",
        ] {
            assert!(!lower.contains(key), "{file:?}: {key}");
        }
        if !file.ends_with("modules/apps-env.bicep") {
            assert!(!lower.contains("connectionstring"), "{file:?}");
        }
        assert!(!text.contains("APPLICATIONINSIGHTS"), "{file:?}");
    }
    // No Container App gets a secret any more (each service reads the vault itself, at run time).
    for app in [
        "third-party-api",
        "main-app",
        "queue-worker",
        "key-rotation",
    ] {
        let secrets = app_param(app, "secrets");
        assert!(
            secrets.is_null() || secrets == &json!([]),
            "{app}: {secrets}"
        );
        assert!(
            bicep_env_entries(app)
                .iter()
                .all(|(_, v)| v.get("secretRef").is_none()),
            "{app}"
        );
    }
}

#[test]
fn bicep_stays_within_what_checkov_parses() {
    // checkov (pycep) rejects user-defined functions, lambdas other than filter, fail(), and an
    // expression continued on a line that starts with '?' or ':'; a file it cannot parse is a
    // file it does not check.
    for (file, text) in bicep_texts() {
        for (n, line) in text.lines().enumerate() {
            let t = line.trim_start();
            if t.starts_with("//") {
                continue;
            }
            assert!(!t.starts_with("func "), "{file:?}:{}: func", n + 1);
            assert!(
                !t.starts_with("? ") && !t.starts_with(": "),
                "{file:?}:{}: continued ternary",
                n + 1
            );
            for unknown in ["map(", "reduce(", "sort(", "toObject(", "groupBy(", "fail("] {
                assert!(!t.contains(unknown), "{file:?}:{}: {unknown}", n + 1);
            }
        }
    }
}

#[test]
fn every_checkov_skip_has_a_reason_and_is_listed_in_the_deploy_guide() {
    let mut files: Vec<PathBuf> = bicep_files();
    files.push(infra().join("../Dockerfile"));
    files.push(infra().join("../docker-compose.yml"));
    let skip = Regex::new(r"checkov:skip=([A-Z0-9_]+)(:\s*(.*))?").unwrap();
    let readme = repo_file("docs/deploy.md");
    let mut ids = BTreeSet::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for c in skip.captures_iter(&text) {
            let reason = c.get(3).map_or("", |m| m.as_str()).trim();
            assert!(reason.len() >= 20, "{file:?}: {} needs a reason", &c[1]);
            ids.insert(c[1].to_owned());
        }
    }
    assert!(!ids.is_empty());
    for id in &ids {
        assert!(
            readme.contains(&format!("`{id}`")),
            "docs/deploy.md does not list {id}"
        );
    }
    // And the guide's table lists no skip that is gone (CKV_AZURE_131 went with the generated key).
    let section = &readme[readme
        .find("### checkov")
        .expect("docs/deploy.md: ### checkov")..];
    let section = &section[..section[4..].find("\n### ").map_or(section.len(), |e| e + 4)];
    let listed: BTreeSet<String> = Regex::new(r"(?m)^\| `([A-Z0-9_]+)`")
        .unwrap()
        .captures_iter(section)
        .map(|c| c[1].to_owned())
        .collect();
    assert_eq!(listed, ids, "the guide's checkov table vs the inline skips");
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
    // No key is a parameter or generated per deployment (a newGuid() default wrote a new vault
    // version at every provision): the vault's keys are written by rotation alone.
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        for generated in ["newGuid(", "secretOrRandomPassword", "@secure()"] {
            assert!(!text.contains(generated), "{file:?}: {generated}");
        }
    }
}

/// The `env` entries of the module that deploys `app` in resources.bicep.
fn bicep_env(app: &str) -> BTreeSet<String> {
    bicep_env_entries(app)
        .into_iter()
        .map(|(name, _)| name)
        .collect()
}

fn reads(service: Service) -> BTreeSet<String> {
    let own: &[&str] = match service {
        Service::ThirdPartyApi => third_party_api::config::VARIABLES,
        Service::MainApp => main_app::config::VARIABLES,
        Service::QueueWorker => queue_worker::config::VARIABLES,
    };
    own.iter()
        .chain(shared_auth::variables::COMMON_VARIABLES)
        .chain(service_kit::telemetry::VARIABLES)
        .map(|s| s.to_string())
        .collect()
}

#[tokio::test]
async fn every_variable_set_in_azure_and_locally_is_one_the_service_reads() {
    let stack = start_stack(&[]).await;
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
    let rules = app_param("queue-worker", "scaleRules");
    assert_eq!(
        rules,
        &json!([{
            "name": "code-requests-length",
            "azureQueue": {
                "accountName": expr("storage.outputs.name"),
                "queueName": expr("queueName"),
                "queueLength": 5,
                "identity": expr("queueWorkerIdentity.id"),
            },
        }]),
        "KEDA azure-queue rule with the worker's identity"
    );
    for (app, ingress) in [
        ("third-party-api", "internal"),
        ("main-app", "external"),
        ("queue-worker", "none"),
    ] {
        assert_eq!(app_param(app, "ingress"), ingress, "{app}");
        let env: BTreeMap<String, Value> = bicep_env_entries(app).into_iter().collect();
        assert_eq!(
            env["AZURE_TOKEN_CREDENTIALS"], "ManagedIdentityCredential",
            "{app}"
        );
        assert!(
            env["AZURE_CLIENT_ID"]["expr"]
                .as_str()
                .is_some_and(|e| e.ends_with("Identity.properties.clientId")),
            "{app}: user-assigned identity"
        );
    }
}

// ---- The key lifecycle in Azure (issue 10): create-if-absent secrets, the key store, the job.

/// `app`'s environment in Azure, in order: each variable's name and value (a literal or a
/// Bicep expression).
fn bicep_env_entries(app: &str) -> Vec<(String, Value)> {
    app_param(app, "env")
        .as_array()
        .unwrap_or_else(|| panic!("{app}: no env"))
        .iter()
        .map(|e| (e["name"].as_str().unwrap().to_owned(), e["value"].clone()))
        .collect()
}

/// The value `value` (a literal or an expression of resources.bicep) has in a deployment, with
/// made-up resource outputs: string literals with their `${...}` interpolations, the file's
/// `var`s, outputs.
fn resolve(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => resolve_expr(value["expr"].as_str().expect("an expression")),
    }
}

fn resolve_expr(expr: &str) -> String {
    let outputs = [
        (
            "storage.outputs.blobEndpoint",
            "https://klstexample.blob.core.windows.net/",
        ),
        (
            "storage.outputs.queueEndpoint",
            "https://klstexample.queue.core.windows.net/",
        ),
        (
            "vault.outputs.uri",
            "https://kl-kv-example.vault.azure.net/",
        ),
        (
            "thirdPartyApi.outputs.fqdn",
            "third-party-api.internal.example.westeurope.azurecontainerapps.io",
        ),
    ];
    if let Some((_, value)) = outputs.iter().find(|(k, _)| *k == expr) {
        return (*value).to_owned();
    }
    if expr.ends_with("Identity.properties.clientId") {
        return "00000000-0000-0000-0000-000000000001".to_owned();
    }
    if let Some(literal) = expr.strip_prefix('\'').and_then(|e| e.strip_suffix('\'')) {
        return Regex::new(r"\$\{([^}]+)\}")
            .unwrap()
            .replace_all(literal, |c: &regex_lite::Captures<'_>| resolve_expr(&c[1]))
            .into_owned();
    }
    let var = &model("resources.bicep")["vars"][expr];
    assert!(!var.is_null(), "cannot resolve {expr}");
    resolve(var)
}

#[test]
fn key_secrets_are_created_only_when_absent_with_a_placeholder_that_is_no_key() {
    // The placeholder is not a key: third-party-api's key alphabet has no `:`, so no service
    // ever accepts it, and rotation reads it as "no key yet".
    let vault = model("modules/keyvault.bicep");
    assert_eq!(vault["vars"]["placeholder"], "pending:first-rotation");
    assert!(function_keys::KeyValue::parse("pending:first-rotation").is_err());
    // One loop over the absent secrets (a loop, not `if`, so checkov reads expiry and content
    // type), each with the placeholder and an expiry; both secrets are in it, each with its flag.
    let secrets = resources_of("Microsoft.KeyVault/vaults/secrets");
    assert_eq!(secrets.len(), 1, "{secrets:?}");
    let body = &secrets[0].1["body"];
    assert_eq!(body["for"], "for s in absentSecrets");
    assert_eq!(body["body"]["name"], expr("s.name"));
    assert_eq!(
        body["body"]["properties"],
        json!({
            "value": expr("placeholder"),
            "contentType": expr("s.contentType"),
            "attributes": { "enabled": true, "exp": expr("secretExpiresOn") },
        })
    );
    assert_eq!(
        vault["vars"]["absentSecrets"],
        expr(
            "filter([ { name: secretName, contentType: 'third-party-api function key for main-app', create: createSecret } { name: masterKeySecretName, contentType: 'third-party-api master key', create: createMasterKeySecret } ], s => s.create)"
        )
    );
    let text = read("modules/keyvault.bicep");
    assert!(!text.contains("@secure()") && !text.contains("secretValue"));
    // The flags are the preprovision hook's answers, fed through main.parameters.json; with no
    // answer (no hook ran: the default, '') the deployment stops instead of overwriting a key.
    let vault_params = &declared("resources.bicep", "modules", "vault")["body"]["params"];
    assert_eq!(
        vault_params["createSecret"],
        expr("!thirdPartyApiKeyExists")
    );
    assert_eq!(
        vault_params["createMasterKeySecret"],
        expr("!thirdPartyApiMasterKeyExists")
    );
    let main = model("main.bicep");
    let passed = &declared("main.bicep", "modules", "resources")["body"]["params"];
    let parameters: Value = serde_json::from_str(&read("main.parameters.json")).unwrap();
    for (param, variable) in [
        ("thirdPartyApiKeyExists", "THIRD_PARTY_API_KEY_EXISTS"),
        (
            "thirdPartyApiMasterKeyExists",
            "THIRD_PARTY_API_MASTER_KEY_EXISTS",
        ),
    ] {
        let declared = &main["params"][param];
        assert_eq!(
            (
                &declared["type"],
                &declared["default"],
                &declared["decorators"][0]
            ),
            (
                &json!("string"),
                &json!(""),
                &json!("@allowed(['true', 'false', ''])")
            ),
            "{param}: 'true', 'false' or '' (not known), by default ''"
        );
        let known = &passed[param];
        assert_eq!(known["if"], expr(&format!("empty({param})")));
        let stop = known["then"]["expr"].as_str().unwrap();
        assert!(
            stop.starts_with(&format!(
                "any(refused)['{variable} is not set: provision with azd, "
            )),
            "{stop}"
        );
        assert_eq!(
            known["else"],
            expr(&format!("{param} == 'true'")),
            "{param}: known, or the deployment stops"
        );
        assert_eq!(
            parameters["parameters"][param]["value"],
            format!("${{{variable}=}}")
        );
        assert!(read("scripts/key-secrets.sh").contains(&format!("azd env set {variable} ")));
        assert!(read("scripts/key-secrets.ps1").contains(&format!("azd env set {variable} ")));
    }
    // The placeholder's expiry (like each rotated version's, 90 days) is later than the job's
    // next run (weekly by default): checked with the schedule in the job's test.
    assert_eq!(
        passed["secretExpiresOn"],
        expr("dateTimeToEpoch(dateTimeAdd(deployedAt, 'P90D'))")
    );
    // The hook runs after the suffix hook (it needs the vault's name) on both shells, and asks
    // the management plane only: ARM's view of the vault, never its data plane (`az keyvault
    // secret` needs data access and goes through the vault's firewall).
    let azure = repo_file("azure.yaml");
    assert!(azure.contains(
        "      run: infra/scripts/deployment-suffix.sh && infra/scripts/key-secrets.sh\n"
    ));
    assert!(azure.contains("        ./infra/scripts/key-secrets.ps1\n"));
    for script in ["scripts/key-secrets.sh", "scripts/key-secrets.ps1"] {
        let text = read(script);
        assert!(text.contains("https://management.azure.com$"), "{script}");
        assert!(text.contains("/secrets?api-version="), "{script}");
        assert!(!text.contains("keyvault secret") && !text.contains("vault.azure.net"));
        assert!(
            text.contains("third-party-api-key") && text.contains("third-party-api-master-key")
        );
    }
}

/// Stand-in `azd` (its environment in a file) and `az` (answers from files in a folder) in a
/// temporary folder put first on PATH, to run the hook scripts without Azure.
struct HookRun {
    dir: tempfile::TempDir,
}

impl HookRun {
    fn new(az: &str) -> Self {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("stub")).unwrap();
        std::fs::write(dir.path().join("env"), "").unwrap();
        // `azd provision` is logged with the `az` calls (one file, so their order shows) and
        // fails when stub/fail_provision exists.
        let azd = "#!/bin/sh\nf=\"$STUB/../env\"\ncase \"$1 $2\" in\n  'env get-value') v=$(grep \"^$3=\" \"$f\" | cut -d= -f2-); [ -n \"$v\" ] || exit 1; echo \"$v\" ;;\n  'env get-values') sed 's/^\\([^=]*\\)=\\(.*\\)$/\\1=\"\\2\"/' \"$f\" ;;\n  'env set') grep -v \"^$3=\" \"$f\" > \"$f.new\"; echo \"$3=$4\" >> \"$f.new\"; mv \"$f.new\" \"$f\" ;;\n  'provision ') printf 'azd\\tprovision\\n' >> \"$STUB/calls\"; [ ! -e \"$STUB/fail_provision\" ] ;;\n  *) exit 2 ;;\nesac\n";
        for (name, text) in [("azd", azd), ("az", az)] {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        Self { dir }
    }

    fn set(&self, name: &str, value: &str) {
        let path = self.dir.path().join("env");
        let mut env: String = std::fs::read_to_string(&path)
            .unwrap()
            .lines()
            .filter(|l| !l.starts_with(&format!("{name}=")))
            .map(|l| format!("{l}\n"))
            .collect();
        env.push_str(&format!("{name}={value}\n"));
        std::fs::write(path, env).unwrap();
    }

    /// The whole environment, as azd reloads it after a hook.
    fn env(&self) -> BTreeMap<String, String> {
        std::fs::read_to_string(self.dir.path().join("env"))
            .unwrap()
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }

    fn get(&self, name: &str) -> Option<String> {
        std::fs::read_to_string(self.dir.path().join("env"))
            .unwrap()
            .lines()
            .rev()
            .find_map(|l| l.strip_prefix(&format!("{name}=")).map(str::to_owned))
    }

    /// Another stand-in command (e.g. `curl`), first on PATH.
    fn tool(&self, name: &str, text: &str) {
        use std::os::unix::fs::PermissionsExt;
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    fn stub(&self, file: &str, text: &str) {
        std::fs::write(self.dir.path().join("stub").join(file), text).unwrap();
    }

    fn stub_exists(&self, file: &str) -> bool {
        self.dir.path().join("stub").join(file).exists()
    }

    /// Every `az` call, one line each.
    fn az_calls(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.path().join("stub/calls"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// Runs infra/`script` with sh; its success and its output (stdout, then stderr).
    fn run(&self, script: &str) -> (bool, String) {
        self.run_with("sh", script, &[])
    }

    /// Runs infra/`script` with `shell` and `args`; its success and its output.
    fn run_with(&self, shell: &str, script: &str, args: &[&str]) -> (bool, String) {
        let out = std::process::Command::new(shell)
            .arg(infra().join(script))
            .args(args)
            .env(
                "PATH",
                format!(
                    "{}:{}",
                    self.dir.path().display(),
                    std::env::var("PATH").unwrap_or_default()
                ),
            )
            .env("STUB", self.dir.path().join("stub"))
            .env("FIRST_ROTATION_WAIT_SECONDS", "0")
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }
}

/// `az` for the preprovision hooks: group exists, resource list (the vault's id), rest (pages
/// of the vault's secrets, or of the subscription's deleted vaults when the URL names
/// deletedVaults: page2 when the URL carries skiptoken=2).
const AZ_FOR_KEY_SECRETS: &str = r#"#!/bin/sh
s=$STUB
printf '%s\n' "$*" >> "$s/calls"
{ [ -e "$s/fail" ] || [ -e "$s/fail_$1" ]; } && { echo "ERROR: Please run 'az login' to setup account." >&2; exit 1; }
cmd="$1 $2"
url=; query=
while [ $# -gt 0 ]; do
  case "$1" in --url) url=$2; shift ;; --query) query=$2; shift ;; esac
  shift
done
case "$cmd" in
  "group exists") cat "$s/group_exists" ;;
  "resource list") cat "$s/vault_id" 2>/dev/null || true ;;
  "rest --method")
    case "$url" in
      */subscriptions/s-1/providers/Microsoft.KeyVault/deletedVaults\?api-version=*)
        case "$url" in *skiptoken=2*) page=deleted2 ;; *) page=deleted1 ;; esac
        case "$query" in
          "value[].properties.vaultId") cat "$s/$page.ids" 2>/dev/null || true ;;
          nextLink) cat "$s/$page.next" 2>/dev/null || true ;;
          *) echo "unexpected query $query" >&2; exit 2 ;;
        esac
        exit 0 ;;
    esac
    case "$url" in *skiptoken=2*) page=page2 ;; *) page=page1 ;; esac
    case "$query" in
      "value[].name") cat "$s/$page.names" ;;
      nextLink) cat "$s/$page.next" 2>/dev/null || true ;;
      *) echo "unexpected query $query" >&2; exit 2 ;;
    esac ;;
  *) echo "unexpected az $cmd" >&2; exit 2 ;;
esac
"#;

#[test]
fn the_key_secrets_hook_asks_arm_and_never_guesses_absent() {
    let vault = "kl-kv-abcdefghijkab12cd";
    let vault_id = format!(
        "/subscriptions/s-1/resourceGroups/rg-dev/providers/Microsoft.KeyVault/vaults/{vault}"
    );
    let deployed = || {
        let run = HookRun::new(AZ_FOR_KEY_SECRETS);
        for (k, v) in [
            ("AZURE_ENV_NAME", "dev"),
            ("AZURE_SUBSCRIPTION_ID", "s-1"),
            ("AZURE_RESOURCE_GROUP", "rg-dev"),
            ("AZURE_KEY_VAULT_NAME", vault),
            ("AZURE_DEPLOYMENT_SUFFIX", "ab12cd"),
        ] {
            run.set(k, v);
        }
        run.stub("group_exists", "true\n");
        run.stub("vault_id", &format!("{vault_id}\n"));
        run
    };
    let answers = |run: &HookRun| {
        (
            run.get("THIRD_PARTY_API_KEY_EXISTS"),
            run.get("THIRD_PARTY_API_MASTER_KEY_EXISTS"),
        )
    };
    let both = |key: &str, master: &str| (Some(key.to_owned()), Some(master.to_owned()));

    // First provision: no vault yet, nothing to ask.
    let run = HookRun::new(AZ_FOR_KEY_SECRETS);
    run.set("AZURE_DEPLOYMENT_SUFFIX", "ab12cd");
    let (ok, out) = run.run("scripts/key-secrets.sh");
    assert!(ok, "{out}");
    assert_eq!(answers(&run), both("false", "false"));
    assert!(run.az_calls().is_empty());

    // After `azd down` the suffix is renewed: the vault of the last provision is not this one's.
    let run = deployed();
    run.set("AZURE_DEPLOYMENT_SUFFIX", "ff00ff");
    let (ok, out) = run.run("scripts/key-secrets.sh");
    assert!(ok, "{out}");
    assert_eq!(answers(&run), both("false", "false"));
    assert!(run.az_calls().is_empty());

    // The group or the vault is gone.
    let run = deployed();
    run.stub("group_exists", "false\n");
    assert!(run.run("scripts/key-secrets.sh").0);
    assert_eq!(answers(&run), both("false", "false"));
    let run = deployed();
    run.stub("vault_id", "");
    assert!(run.run("scripts/key-secrets.sh").0);
    assert_eq!(answers(&run), both("false", "false"));
    assert!(
        run.az_calls()
            .iter()
            .any(|c| c.contains("resource list") && c.contains(&format!("[?name=='{vault}']"))),
        "{:?}",
        run.az_calls()
    );

    // Both present, on two pages, among other secrets: every page is read.
    let run = deployed();
    run.stub("page1.names", "some-other-secret\nthird-party-api-key\n");
    run.stub(
        "page1.next",
        &format!(
            "https://management.azure.com{vault_id}/secrets?api-version=2023-07-01&$skiptoken=2\n"
        ),
    );
    run.stub("page2.names", "third-party-api-master-key\n");
    let (ok, out) = run.run("scripts/key-secrets.sh");
    assert!(ok, "{out}");
    assert_eq!(answers(&run), both("true", "true"));
    let rest: Vec<String> = run
        .az_calls()
        .into_iter()
        .filter(|c| c.starts_with("rest "))
        .collect();
    assert!(!rest.is_empty());
    for call in &rest {
        assert!(
            call.contains(&format!(
                "--url https://management.azure.com{vault_id}/secrets?api-version="
            )),
            "management plane only: {call}"
        );
    }
    assert!(
        rest.iter().any(|c| c.contains("skiptoken=2")),
        "page 2 read"
    );

    // Exact names: a secret whose name starts with another's does not count as it.
    let run = deployed();
    run.stub(
        "page1.names",
        "third-party-api-key-old\nthird-party-api-master-key\n",
    );
    assert!(run.run("scripts/key-secrets.sh").0);
    assert_eq!(answers(&run), both("false", "true"));

    // Azure cannot be asked (not signed in): the hook fails, so the provision stops, and no
    // answer is written; "absent" (which would write the placeholder over a key) is never guessed.
    for fail in ["fail", "fail_group", "fail_resource", "fail_rest"] {
        let run = deployed();
        run.stub(
            "page1.names",
            "third-party-api-key\nthird-party-api-master-key\n",
        );
        run.stub(fail, "");
        let (ok, out) = run.run("scripts/key-secrets.sh");
        assert!(!ok, "{fail}: {out}");
        assert!(out.contains("az login"), "{out}");
        assert_eq!(answers(&run), (None, None), "{fail}");
    }
}

/// How azd's Bicep provider (azd 1.23, `ensureParameters` and `armParameterFileValue`) settles
/// one parameter of main.bicep from the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
enum AzdParameter {
    /// main.parameters.json resolves to this (non-empty) value.
    Value(String),
    /// Empty or absent, and main.bicep has a default: azd passes nothing, the default applies.
    Default,
    /// Empty or absent with no default: azd asks (and `--no-prompt` fails).
    Prompt,
}

/// main.bicep's parameters, each settled from `env` the way azd does it: `${VAR}` is the
/// variable's value or empty, `${VAR=fallback}` the fallback when the variable is unset.
fn azd_parameters(env: &BTreeMap<String, String>) -> BTreeMap<String, AzdParameter> {
    let file: serde_json::Value = serde_json::from_str(&read("main.parameters.json")).unwrap();
    let reference = Regex::new(r"\$\{([A-Z0-9_]+)(=([^}]*))?\}").unwrap();
    model("main.bicep")["params"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(name, param)| {
            let name = name.clone();
            let has_default = param.get("default").is_some();
            let value = file["parameters"][&name]["value"].as_str().map(|text| {
                reference
                    .replace_all(text, |r: &regex_lite::Captures| {
                        match (env.get(&r[1]), r.get(3)) {
                            (Some(v), _) => v.clone(),
                            (None, Some(fallback)) => fallback.as_str().to_owned(),
                            (None, None) => String::new(),
                        }
                    })
                    .into_owned()
            });
            let settled = match value {
                Some(v) if !v.is_empty() => AzdParameter::Value(v),
                _ if has_default => AzdParameter::Default,
                _ => AzdParameter::Prompt,
            };
            (name, settled)
        })
        .collect()
}

#[test]
fn azd_up_asks_nothing_on_a_fresh_environment_and_on_a_second_run() {
    // What `azd up --no-prompt` needs from the person: the environment's name, location and
    // subscription (`azd env new`, or AZURE_* in a pipeline). Nothing else may be asked.
    let fresh: BTreeMap<String, String> = [
        ("AZURE_ENV_NAME", "dev"),
        ("AZURE_LOCATION", "swedencentral"),
        ("AZURE_SUBSCRIPTION_ID", "s-1"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let prompts = |env: &BTreeMap<String, String>| -> Vec<String> {
        azd_parameters(env)
            .into_iter()
            .filter(|(_, p)| *p == AzdParameter::Prompt)
            .map(|(name, _)| name)
            .collect()
    };
    // 1. Before any hook (azd's EnsureEnv): nothing to ask.
    assert_eq!(
        prompts(&fresh),
        Vec::<String>::new(),
        "asked before the hooks"
    );

    // 2. The preprovision hooks of azure.yaml, in order, then azd reloads the environment and
    // settles the parameters again for the deployment: the hooks' answers are what it gets.
    let azure = repo_file("azure.yaml");
    let posix = "      run: infra/scripts/deployment-suffix.sh && infra/scripts/key-secrets.sh\n";
    assert!(azure.contains(posix));
    let preprovision = |run: &HookRun| {
        for script in ["scripts/deployment-suffix.sh", "scripts/key-secrets.sh"] {
            let (ok, out) = run.run(script);
            assert!(ok, "{script}: {out}");
        }
        let env = run.env();
        assert_eq!(prompts(&env), Vec::<String>::new(), "asked after the hooks");
        azd_parameters(&env)
    };
    let run = HookRun::new(AZ_FOR_KEY_SECRETS);
    for (k, v) in &fresh {
        run.set(k, v);
    }
    let first = preprovision(&run);
    let flags = |settled: &BTreeMap<String, AzdParameter>| {
        (
            settled["thirdPartyApiKeyExists"].clone(),
            settled["thirdPartyApiMasterKeyExists"].clone(),
        )
    };
    let value = |v: &str| AzdParameter::Value(v.to_owned());
    assert_eq!(
        flags(&first),
        (value("false"), value("false")),
        "a new vault"
    );
    let AzdParameter::Value(suffix) = first["deploymentSuffix"].clone() else {
        panic!("the suffix is set by the hook: {first:?}")
    };

    // 3. The provision's outputs go to the environment (main.bicep's outputs), as azd writes
    // them; the vault now holds both secrets.
    let vault = format!("kl-kv-abcdefghijk{suffix}");
    run.set("AZURE_RESOURCE_GROUP", "rg-dev");
    run.set("AZURE_KEY_VAULT_NAME", &vault);
    run.stub("group_exists", "true\n");
    run.stub(
        "vault_id",
        &format!(
            "/subscriptions/s-1/resourceGroups/rg-dev/providers/Microsoft.KeyVault/vaults/{vault}\n"
        ),
    );
    run.stub(
        "page1.names",
        "third-party-api-key\nthird-party-api-master-key\n",
    );

    // 4. A second `azd up`: still nothing asked, and the deployment keeps both secrets.
    assert_eq!(prompts(&run.env()), Vec::<String>::new());
    let second = preprovision(&run);
    assert_eq!(flags(&second), (value("true"), value("true")), "keys kept");
    assert_eq!(second["deploymentSuffix"], value(&suffix), "the same vault");

    // Without the hook (a deployment by hand from the parameters file), the flags fall back to
    // main.bicep's default, '', and the deployment stops rather than overwrite a key (checked
    // in key_secrets_are_created_only_when_absent_with_a_placeholder_that_is_no_key).
    assert_eq!(
        flags(&azd_parameters(&fresh)),
        (AzdParameter::Default, AzdParameter::Default)
    );
}

#[test]
fn third_party_api_keeps_its_keys_in_its_container_and_its_master_key_in_the_vault() {
    use third_party_api::config as c;
    // Its variables in Azure: the blob store, the vault's master key, identity; no key, no file.
    let entries = bicep_env_entries("third-party-api");
    let names: BTreeSet<&str> = entries.iter().map(|(n, _)| n.as_str()).collect();
    let expected: BTreeSet<&str> = [
        service_kit::service::settings::PORT,
        shared_auth::variables::THIRD_PARTY_API_KEYS_URL,
        shared_auth::variables::KEY_VAULT_URL,
        shared_auth::variables::THIRD_PARTY_API_MASTER_KEY_SECRET_NAME,
        "AZURE_TOKEN_CREDENTIALS",
        "AZURE_CLIENT_ID",
        "RUST_LOG",
        "OTEL_EXPORTER_OTLP_PROTOCOL",
    ]
    .into();
    assert_eq!(names, expected);
    for gone in [
        c::THIRD_PARTY_API_FUNCTION_KEY,
        c::THIRD_PARTY_API_FUNCTION_KEYS,
        c::THIRD_PARTY_API_MASTER_KEY,
        c::THIRD_PARTY_API_KEYS_FILE,
    ] {
        assert!(!names.contains(gone), "third-party-api still gets {gone}");
    }
    assert!(app_param("third-party-api", "secrets").is_null());
    let value = |name: &str| {
        let (_, expr) = entries.iter().find(|(n, _)| n == name).unwrap();
        resolve(expr)
    };
    assert_eq!(
        value(shared_auth::variables::THIRD_PARTY_API_KEYS_URL),
        "https://klstexample.blob.core.windows.net/third-party-api-keys/keys.json"
    );
    assert_eq!(
        value(shared_auth::variables::THIRD_PARTY_API_MASTER_KEY_SECRET_NAME),
        "third-party-api-master-key"
    );
    // The container exists, private, and its role is at its scope (the role-table test).
    let container = declared("modules/storage.bicep", "resources", "keyStoreContainer");
    assert_eq!(
        container["body"],
        json!({
            "parent": expr("blobService"),
            "name": expr("keyStoreContainerName"),
            "properties": { "publicAccess": "None" },
        })
    );
    assert_eq!(
        declared("resources.bicep", "modules", "storage")["body"]["params"]["keyStoreContainerName"],
        expr("keyStoreContainerName")
    );
    // Its image with these variables configures: the image sets no key-store variable that
    // THIRD_PARTY_API_KEYS_URL excludes, and the app reads the blob and the vault's secret.
    let stage = dockerfile_stage("third-party-api");
    let mut env: Vec<(String, String)> = stage
        .lines()
        .filter_map(|l| l.strip_prefix("ENV "))
        .flat_map(|l| l.split_whitespace())
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    assert!(
        env.iter()
            .any(|(k, _)| k == service_kit::service::settings::PORT),
        "{stage}"
    );
    env.extend(entries.iter().map(|(n, e)| (n.clone(), resolve(e))));
    let env: shared_auth::config::MapEnv = env.into_iter().collect();
    let settings = c::Settings::from_env(&env).expect("third-party-api's configuration in Azure");
    assert_eq!(
        settings.key_store,
        c::KeyStoreLocation::Blob(
            "https://klstexample.blob.core.windows.net/third-party-api-keys/keys.json"
                .parse()
                .unwrap()
        )
    );
    let master = settings
        .master_key_secret
        .expect("master key from the vault");
    assert_eq!(master.secret_name, "third-party-api-master-key");
    assert!(
        master
            .vault_url
            .as_str()
            .starts_with("https://kl-kv-example.vault.azure.net")
    );
    // main-app keeps reading its key from the vault (Secrets User on that secret alone).
    let main_app = bicep_env_entries("main-app");
    let main_value = |name: &str| {
        let (_, expr) = main_app.iter().find(|(n, _)| n == name).unwrap();
        resolve(expr)
    };
    assert_eq!(
        main_value("THIRD_PARTY_API_SECRET_NAME"),
        "third-party-api-key"
    );
    assert_eq!(
        main_value("KEY_VAULT_URL"),
        "https://kl-kv-example.vault.azure.net/"
    );
}

#[test]
fn the_rotation_job_runs_keyless_rotate_weekly_with_only_its_roles() {
    // A scheduled Container Apps job in the apps' environment, with its own identity, pulling
    // its image with it; deployed by azd like an app (azd-service-name).
    let jobs = resources_of("Microsoft.App/jobs");
    assert_eq!(jobs.len(), 1);
    let job = &jobs[0].1["body"];
    assert_eq!(
        job["tags"],
        expr("union(tags, { 'azd-service-name': name })")
    );
    assert_eq!(
        job["identity"],
        json!({ "type": "UserAssigned", "userAssignedIdentities": { "'${identityId}'": {} } })
    );
    let properties = &job["properties"];
    assert_eq!(properties["environmentId"], expr("environmentId"));
    let configuration = &properties["configuration"];
    assert_eq!(
        configuration["scheduleTriggerConfig"],
        cond(
            "placeholder",
            Value::Null,
            json!({ "cronExpression": expr("cronExpression"), "parallelism": 1, "replicaCompletionCount": 1 })
        )
    );
    assert_eq!(configuration["replicaTimeout"], expr("replicaTimeout"));
    assert_eq!(
        configuration["replicaRetryLimit"],
        expr("replicaRetryLimit")
    );
    assert_eq!(
        configuration["registries"],
        json!([{ "server": expr("registryServer"), "identity": expr("identityId") }])
    );
    let container = &properties["template"]["containers"][0];
    for field in ["image", "args", "env"] {
        assert_eq!(container[field], expr(field), "job: {field}");
    }
    let module = app_module("key-rotation");
    assert_eq!(module["symbol"], "keyRotation");
    assert_eq!(module["path"], "modules/job.bicep");
    assert_eq!(module["body"]["dependsOn"], json!([expr("roles")]));
    for (param, value) in [
        ("environmentId", expr("environment.outputs.id")),
        ("identityId", expr("rotationIdentity.id")),
        (
            "image",
            cond(
                "empty(keyRotationImage)",
                expr("placeholderImage"),
                expr("keyRotationImage"),
            ),
        ),
        ("args", json!(["rotate"])),
        ("cronExpression", expr("keyRotationSchedule")),
        // Long enough for its waits (bounded below from rotate's defaults); one retry.
        ("replicaTimeout", json!(3600)),
        ("replicaRetryLimit", json!(1)),
    ] {
        assert_eq!(
            app_param("key-rotation", param),
            &value,
            "key-rotation: {param}"
        );
    }
    // What `keyless rotate` reads: the vault, the two secrets' names, third-party-api's endpoint
    // as main-app has it (the admin API is at its origin), its identity.
    let entries = bicep_env_entries("key-rotation");
    let names: Vec<&str> = entries.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            shared_auth::variables::KEY_VAULT_URL,
            "THIRD_PARTY_API_SECRET_NAME",
            "THIRD_PARTY_API_MASTER_KEY_SECRET_NAME",
            shared_auth::variables::THIRD_PARTY_API_ENDPOINT,
            "AZURE_TOKEN_CREDENTIALS",
            "AZURE_CLIENT_ID",
        ]
    );
    // Its timeout covers every wait of rotate at their defaults (the job's arguments and
    // variables above override none of them): the master key's, a new key reaching every
    // replica (the key store's refresh), main-app using the new key or its key cache expiring,
    // the old keys idle for the grace period; computed by rotate itself, so the two cannot
    // disagree. main-app keeps its default key cache lifetime, the one rotate assumes.
    let replica_timeout = app_param("key-rotation", "replicaTimeout")
        .as_u64()
        .unwrap();
    let seconds = std::time::Duration::from_secs;
    let longest = ops::rotate::WaitLimits::new(
        seconds(ops::rotate::DEFAULT_WAIT_TIMEOUT_SECONDS),
        seconds(ops::rotate::DEFAULT_GRACE_SECONDS),
        seconds(ops::rotate::DEFAULT_MAIN_APP_CACHE_SECONDS),
        ops::rotate::DEFAULT_KEYS_REFRESH,
    )
    .total();
    assert!(
        seconds(replica_timeout) >= longest,
        "replicaTimeout {replica_timeout} s < rotate's longest run {longest:?}"
    );
    assert!(
        bicep_env_entries("main-app")
            .iter()
            .all(|(n, _)| n != shared_auth::variables::SECRET_CACHE_TTL_SECONDS)
    );
    let value = |module: &str, name: &str| {
        let entries = bicep_env_entries(module);
        let (_, expr) = entries.iter().find(|(n, _)| n == name).unwrap();
        (expr.clone(), resolve(expr))
    };
    for shared in [
        "THIRD_PARTY_API_ENDPOINT",
        "KEY_VAULT_URL",
        "THIRD_PARTY_API_SECRET_NAME",
    ] {
        assert_eq!(
            value("key-rotation", shared),
            value("main-app", shared),
            "{shared}"
        );
    }
    assert_eq!(
        value("key-rotation", "THIRD_PARTY_API_MASTER_KEY_SECRET_NAME"),
        value("third-party-api", "THIRD_PARTY_API_MASTER_KEY_SECRET_NAME")
    );
    assert_eq!(
        value("key-rotation", "THIRD_PARTY_API_ENDPOINT").1,
        "https://third-party-api.internal.example.westeurope.azurecontainerapps.io/api/RandomNumber"
    );
    assert_eq!(
        value("key-rotation", "AZURE_TOKEN_CREDENTIALS").1,
        "ManagedIdentityCredential"
    );
    assert_eq!(
        value("key-rotation", "AZURE_CLIENT_ID").0,
        expr("rotationIdentity.properties.clientId")
    );
    // Its identity holds Secrets Officer on the two secrets and AcrPull, nothing else (no
    // Storage): in roles.bicep, as in the role table.
    let rows: BTreeSet<(String, String)> = assignments()
        .into_iter()
        .filter(|(principal, _, _)| principal == "rotation")
        .map(|(_, role, scope)| (role, scope))
        .collect();
    let expected: BTreeSet<(String, String)> = [
        ("Key Vault Secrets Officer", "secret"),
        ("Key Vault Secrets Officer", "master-key-secret"),
        ("AcrPull", "registry"),
    ]
    .iter()
    .map(|(r, s)| (r.to_string(), s.to_string()))
    .collect();
    assert_eq!(rows, expected);
    // Weekly by default (minute, hour, any day of the month, any month, one day of the week),
    // overridable by KEY_ROTATION_SCHEDULE; each rotation's key expires after 90 days (keyless
    // rotate's default, not overridden by the job's arguments) and the placeholder after 90
    // days: always later than the next run.
    // (Any other schedule must run at least weekly: the schedule's own test below.)
    assert_eq!(model("main.bicep")["vars"]["weekly"], "0 3 * * 1");
    let weekly: Vec<&str> = "0 3 * * 1".split(' ').collect();
    assert_eq!(weekly.len(), 5);
    assert!(weekly[0].parse::<u8>().unwrap() < 60 && weekly[1].parse::<u8>().unwrap() < 24);
    assert_eq!((weekly[2], weekly[3]), ("*", "*"));
    assert!(weekly[4].parse::<u8>().unwrap() <= 6, "one day a week");
    let period_days = 7;
    let expiry =
        declared("main.bicep", "modules", "resources")["body"]["params"]["secretExpiresOn"]["expr"]
            .as_str()
            .unwrap();
    let expiry_days: u32 = Regex::new(r"^dateTimeToEpoch\(dateTimeAdd\(deployedAt, 'P(\d+)D'\)\)$")
        .unwrap()
        .captures(expiry)
        .unwrap_or_else(|| panic!("{expiry}"))[1]
        .parse()
        .unwrap();
    assert!(expiry_days > period_days);
    assert!(ops::rotate::DEFAULT_EXPIRES_IN_DAYS > period_days);
    assert_eq!(expiry_days, ops::rotate::DEFAULT_EXPIRES_IN_DAYS);
    assert_eq!(
        app_param("key-rotation", "args"),
        &json!(["rotate"]),
        "no --expires-in-days"
    );
    assert!(
        read("main.parameters.json")
            .contains(r#""keyRotationSchedule": { "value": "${KEY_ROTATION_SCHEDULE=}" }"#)
    );
    // The image: the Dockerfile's `keyless` target, the ops crate's binary, as user 65532 like
    // every runtime image; azd builds it for the job (service key-rotation, host containerapp,
    // which deploys Container Apps jobs since azd 1.23.13) and passes it back on provision.
    assert!(repo_file("ops/Cargo.toml").contains("[[bin]]\nname = \"keyless\"\n"));
    let stage = dockerfile_stage("keyless");
    assert!(repo_file("Dockerfile").contains("FROM runtime AS keyless\n"));
    assert!(stage.contains("COPY --from=builder /out/bin/keyless /usr/local/bin/keyless\n"));
    assert!(stage.contains("ENTRYPOINT [\"/usr/local/bin/keyless\"]\n"));
    let builder = dockerfile_stage("builder");
    assert!(builder.contains(" -p ops ") && builder.contains("target/release/keyless "));
    let azure = repo_file("azure.yaml");
    assert!(azure.contains("  key-rotation:\n    project: .\n    language: docker\n    host: containerapp\n    docker:\n      path: ./Dockerfile\n      target: keyless\n      context: .\n"));
    assert!(azure.contains("requiredVersions:\n  azd: \">= 1.23.13\"\n"));
    assert!(
        read("main.parameters.json")
            .contains(r#""keyRotationImage": { "value": "${SERVICE_KEY_ROTATION_IMAGE_NAME=}" }"#)
    );
    assert_eq!(
        model("main.bicep")["params"]["keyRotationImage"]["default"],
        ""
    );
    // CI builds and runs it.
    let ci = repo_file(".ci/containers");
    assert!(
        ci.contains("for target in third-party-api main-app queue-worker devstack keyless; do")
    );
    assert!(ci.contains("\"$prefix/keyless:$tag\" --help"));
    // The first run, after the first deployment: postdeploy starts the job when it has never
    // succeeded (the hook's own test runs it).
    assert_eq!(
        model("main.bicep")["outputs"]["KEY_ROTATION_JOB_NAME"]["value"],
        expr("resources.outputs.keyRotationJobName")
    );
    assert!(azure.contains("  postdeploy:\n    posix:\n      shell: sh\n      run: infra/scripts/first-rotation.sh\n    windows:\n      shell: pwsh\n      run: ./infra/scripts/first-rotation.ps1\n"));
    for script in ["scripts/first-rotation.sh", "scripts/first-rotation.ps1"] {
        let text = read(script);
        for needle in [
            "containerapp job execution list",
            "containerapp job start",
            "Succeeded",
        ] {
            assert!(text.contains(needle), "{script}: {needle}");
        }
    }
}

/// main.bicep's check of KEY_ROTATION_SCHEDULE: its default and the numbers and pattern of its
/// test, read from the file, so a weakened check is simulated as it is written.
struct ScheduleCheck {
    default: String,
    count: usize,
    skip: usize,
    take: usize,
    pattern: String,
}

impl ScheduleCheck {
    fn read() -> Self {
        let main = model("main.bicep");
        let vars = &main["vars"];
        let default = vars["weekly"].as_str().expect("var weekly").to_owned();
        assert_eq!(
            vars["rotationSchedule"],
            cond(
                "empty(trim(keyRotationSchedule))",
                expr("weekly"),
                expr("trim(keyRotationSchedule)")
            )
        );
        assert_eq!(
            vars["rotationFields"],
            expr("filter(split(rotationSchedule, ' '), f => !empty(f))")
        );
        assert_eq!(vars["refused"], json!({}));
        // One expression to the parser (tree-sitter-bicep reads `a ? b : c[d]` as `(a ? b : c)[d]`,
        // Bicep as `a ? b : (c[d])`): its text, then.
        let passed =
            declared("main.bicep", "modules", "resources")["body"]["params"]["keyRotationSchedule"]
                ["expr"]
                .as_str()
                .unwrap();
        assert!(
            passed.starts_with(
                "rotationAtLeastWeekly ? join(rotationFields, ' ') : any(refused)['KEY_ROTATION_SCHEDULE must run at least weekly, "
            ),
            "{passed}"
        );
        let at_least_weekly = vars["rotationAtLeastWeekly"]["expr"]
            .as_str()
            .expect("main.bicep checks the schedule (var rotationAtLeastWeekly)");
        let check = Regex::new(r"^length\(rotationFields\) == (\d+) && join\(take\(skip\(rotationFields, (\d+)\), (\d+)\), ' '\) == '([^']*)'$")
            .unwrap()
            .captures(at_least_weekly)
            .unwrap_or_else(|| panic!("{at_least_weekly}"));
        let number = |i: usize| check[i].parse::<usize>().unwrap();
        Self {
            default,
            count: number(1),
            skip: number(2),
            take: number(3),
            pattern: check[4].to_owned(),
        }
    }

    /// What main.bicep makes of KEY_ROTATION_SCHEDULE `value`: the job's cron expression, or
    /// None when the deployment stops.
    fn apply(&self, value: &str) -> Option<String> {
        let schedule = if value.trim().is_empty() {
            self.default.as_str()
        } else {
            value.trim()
        };
        let fields: Vec<&str> = schedule.split(' ').filter(|f| !f.is_empty()).collect();
        let middle: Vec<&str> = fields
            .iter()
            .skip(self.skip)
            .take(self.take)
            .copied()
            .collect();
        (fields.len() == self.count && middle.join(" ") == self.pattern).then(|| fields.join(" "))
    }
}

/// The minutes (counted from 2027-01-01 00:00 UTC, over 2027 and the leap year 2028) at which a
/// five-field cron expression runs: numbers, ranges, steps, lists and `*`; with both day fields
/// restricted a day matching either runs, as cron does.
fn cron_runs(cron: &str) -> Vec<u32> {
    let f: Vec<&str> = cron.split(' ').collect();
    assert_eq!(f.len(), 5, "{cron}");
    let set = |field: &str, lo: usize, hi: usize| -> Vec<bool> {
        let mut on = vec![false; hi + 1];
        for part in field.split(',') {
            let (range, step) = part
                .split_once('/')
                .map_or((part, 1), |(r, s)| (r, s.parse().unwrap()));
            let (a, b) = match range.split_once('-') {
                _ if range == "*" => (lo, hi),
                Some((a, b)) => (a.parse().unwrap(), b.parse().unwrap()),
                None => {
                    let a = range.parse().unwrap();
                    (a, if step > 1 { hi } else { a })
                }
            };
            for v in (a..=b).step_by(step) {
                on[v] = true;
            }
        }
        on
    };
    let (minute, hour, dom, month) = (
        set(f[0], 0, 59),
        set(f[1], 0, 23),
        set(f[2], 1, 31),
        set(f[3], 1, 12),
    );
    let mut dow = set(f[4], 0, 7);
    dow[0] |= dow[7];
    let either = f[2] != "*" && f[4] != "*";
    let mut runs = Vec::new();
    let (mut day, mut weekday) = (0u32, 5usize); // 2027-01-01 is a Friday
    for year in [2027, 2028] {
        for (m, &month_runs) in month.iter().enumerate().skip(1) {
            let days = match m {
                2 if year % 4 == 0 => 29,
                2 => 28,
                4 | 6 | 9 | 11 => 30,
                _ => 31,
            };
            for &dom_runs in &dom[1..=days] {
                let day_runs = if either {
                    dom_runs || dow[weekday]
                } else {
                    dom_runs && dow[weekday]
                };
                if month_runs && day_runs {
                    for (h, mi) in (0..24).flat_map(|h| (0..60).map(move |mi| (h, mi))) {
                        if hour[h] && minute[mi] {
                            runs.push(day * 1440 + h as u32 * 60 + mi as u32);
                        }
                    }
                }
                day += 1;
                weekday = (weekday + 1) % 7;
            }
        }
    }
    runs
}

/// The longest time between two runs of `cron`, in days; None when it runs less than twice in
/// two years.
fn longest_gap_days(cron: &str) -> Option<f64> {
    let runs = cron_runs(cron);
    runs.windows(2)
        .map(|w| w[1] - w[0])
        .max()
        .map(|m| f64::from(m) / 1440.0)
}

#[test]
fn the_rotation_schedule_runs_at_least_weekly_or_the_deployment_stops() {
    let check = ScheduleCheck::read();
    // Accepted: the job gets the schedule (spaces normalised), and it runs at least weekly.
    for (value, cron) in [
        ("", "0 3 * * 1"),
        ("   ", "0 3 * * 1"),
        ("0 3 * * 1", "0 3 * * 1"),
        (" 0  3 * *  1 ", "0 3 * * 1"),
        ("30 2 * * 1-5", "30 2 * * 1-5"),
        ("0 0 * * *", "0 0 * * *"),
        ("15 4 * * 0,3", "15 4 * * 0,3"),
        ("0 23 * * 7", "0 23 * * 7"),
    ] {
        assert_eq!(check.apply(value).as_deref(), Some(cron), "{value:?}");
        let gap = longest_gap_days(cron).unwrap();
        assert!(gap <= 7.0, "{cron}: {gap} days between runs");
    }
    // Refused, so the deployment stops: each runs less often than weekly (or never), or is no
    // five-field expression.
    for value in [
        "0 3 1 * *",    // monthly
        "0 3 1 */3 *",  // quarterly
        "0 3 1 1 *",    // yearly
        "0 3 31 2 *",   // never
        "0 3 * 1 *",    // every day of January, then eleven months of nothing
        "0 3 */14 * *", // every 14 days
        "0 3 1,15 * 1", // Mondays or two days a month: weekly, refused all the same (a day of the month is named)
    ] {
        assert_eq!(check.apply(value), None, "{value}");
        if value != "0 3 1,15 * 1" {
            assert!(
                longest_gap_days(value).is_none_or(|gap| gap > 7.0),
                "{value} runs weekly: the test's example is wrong"
            );
        }
    }
    for value in [
        "0 3 * *",
        "0 3 * * 1 2027",
        "weekly",
        "@weekly",
        "0\t3\t*\t*\t1",
    ] {
        assert_eq!(check.apply(value), None, "{value:?}");
    }
    // At least weekly leaves a dozen runs before a key expires (each rotation's version, and
    // the placeholder, expire after 90 days).
    let expiry =
        declared("main.bicep", "modules", "resources")["body"]["params"]["secretExpiresOn"]["expr"]
            .as_str()
            .unwrap();
    let expiry_days: u32 = Regex::new(r"^dateTimeToEpoch\(dateTimeAdd\(deployedAt, 'P(\d+)D'\)\)$")
        .unwrap()
        .captures(expiry)
        .unwrap_or_else(|| panic!("{expiry}"))[1]
        .parse()
        .unwrap();
    assert_eq!(expiry_days, ops::rotate::DEFAULT_EXPIRES_IN_DAYS);
    assert!(expiry_days >= 12 * 7, "{expiry_days} days");
    // The refusing branch reads a property of an empty object: ARM stops with the message as
    // the property's name (Bicep's fail() is not used: checkov's parser cannot read it, which
    // bicep_stays_within_what_checkov_parses checks).
    // Documented where it is set.
    let readme = repo_file("docs/deploy.md");
    assert!(readme.contains("KEY_ROTATION_SCHEDULE"));
    assert!(readme.contains("`<minute> <hour> * * <days of the week>`"));
}

/// `az` for first-rotation.sh: the job's executions (statuses, the running one), start, show.
const AZ_FOR_FIRST_ROTATION: &str = r#"#!/bin/sh
s=$STUB
printf '%s\n' "$*" >> "$s/calls"
query=; prev=
for a in "$@"; do [ "$prev" = --query ] && query=$a; prev=$a; done
case "$1 $2 $3 $4" in
  "containerapp job execution list")
    case "$query" in
      *Running*) cat "$s/running" 2>/dev/null || true ;;
      *) cat "$s/statuses" 2>/dev/null || true ;;
    esac ;;
  "containerapp job execution show") cat "$s/status" ;;
  "containerapp job start "*) touch "$s/started"; echo key-rotation-x1y2z3 ;;
  "containerapp job show "*)
    case "$query" in
      properties.configuration.triggerType) cat "$s/trigger" 2>/dev/null || echo Schedule ;;
      id) echo /subscriptions/s-1/resourceGroups/rg-dev/providers/Microsoft.App/jobs/key-rotation ;;
      *) echo "unexpected query $query" >&2; exit 2 ;;
    esac ;;
  "rest --method patch "*) touch "$s/patched" ;;
  *) echo "unexpected az $*" >&2; exit 2 ;;
esac
"#;

#[test]
fn the_postdeploy_hook_runs_the_rotation_once_until_it_succeeded() {
    let deployed = || {
        let run = HookRun::new(AZ_FOR_FIRST_ROTATION);
        run.set("KEY_ROTATION_JOB_NAME", "key-rotation");
        run.set("AZURE_RESOURCE_GROUP", "rg-dev");
        run.set("AZURE_SUBSCRIPTION_ID", "s-1");
        run
    };
    // A run succeeded before: later deployments leave rotation to the schedule.
    let run = deployed();
    run.stub("statuses", "Failed\nSucceeded\n");
    let (ok, out) = run.run("scripts/first-rotation.sh");
    assert!(ok, "{out}");
    assert!(!run.stub_exists("started"), "{out}");

    // Never ran: started once, waited for, done.
    let run = deployed();
    run.stub("status", "Succeeded\n");
    let (ok, out) = run.run("scripts/first-rotation.sh");
    assert!(ok, "{out}");
    assert!(run.stub_exists("started"));
    let calls = run.az_calls();
    assert!(
        calls.iter().any(|c| c.starts_with(
            "containerapp job start --name key-rotation --resource-group rg-dev --subscription s-1"
        )),
        "{calls:?}"
    );
    assert!(
        calls.iter().any(|c| c.contains("execution show")
            && c.contains("--job-execution-name key-rotation-x1y2z3"))
    );

    // Only failed runs so far: started again; a failed run fails the hook, saying how to rerun.
    let run = deployed();
    run.stub("statuses", "Failed\n");
    run.stub("status", "Failed\n");
    let (ok, out) = run.run("scripts/first-rotation.sh");
    assert!(!ok, "{out}");
    assert!(run.stub_exists("started"));
    assert!(out.contains("azd hooks run postdeploy"), "{out}");

    // One is running (the schedule's, or an earlier deploy's): waited for, not doubled.
    let run = deployed();
    run.stub("statuses", "Running\n");
    run.stub("running", "key-rotation-x1y2z3\n");
    run.stub("status", "Succeeded\n");
    let (ok, out) = run.run("scripts/first-rotation.sh");
    assert!(ok, "{out}");
    assert!(!run.stub_exists("started"), "{out}");

    // Still running when the wait ends: it goes on in Azure; the hook says how to check.
    let run = deployed();
    run.stub("status", "Running\n");
    let (ok, out) = run.run("scripts/first-rotation.sh");
    assert!(ok, "{out}");
    assert!(out.contains("az containerapp job execution show"), "{out}");
    assert!(
        !run.stub_exists("patched"),
        "a scheduled job is left as it is"
    );

    // The first deployment: the job still has the placeholder's manual trigger. It gets the
    // schedule main.bicep checked (KEY_ROTATION_CRON), then the first rotation runs.
    let run = deployed();
    run.stub("trigger", "Manual\n");
    run.set("KEY_ROTATION_CRON", "0 3 * * 1");
    run.stub("status", "Succeeded\n");
    let (ok, out) = run.run("scripts/first-rotation.sh");
    assert!(ok, "{out}");
    assert!(
        run.stub_exists("patched") && run.stub_exists("started"),
        "{out}"
    );
    let calls = run.az_calls();
    let patch = calls
        .iter()
        .find(|c| c.starts_with("rest --method patch"))
        .expect("the patch");
    assert!(patch.contains(
        "--url https://management.azure.com/subscriptions/s-1/resourceGroups/rg-dev/providers/Microsoft.App/jobs/key-rotation?api-version="
    ));
    let body: serde_json::Value =
        serde_json::from_str(patch.split("--body ").nth(1).expect("a body")).expect("JSON");
    assert_eq!(
        body,
        serde_json::json!({"properties": {"configuration": {
            "triggerType": "Schedule",
            "manualTriggerConfig": null,
            "scheduleTriggerConfig": {"cronExpression": "0 3 * * 1", "parallelism": 1, "replicaCompletionCount": 1}
        }}})
    );
    let patched_at = calls
        .iter()
        .position(|c| c.starts_with("rest --method patch"));
    let started_at = calls
        .iter()
        .position(|c| c.starts_with("containerapp job start"));
    assert!(patched_at < started_at, "{calls:?}");
    // Without the schedule in the environment (no provision output), it stops and says so.
    let run = deployed();
    run.stub("trigger", "Manual\n");
    let (ok, out) = run.run("scripts/first-rotation.sh");
    assert!(!ok && out.contains("KEY_ROTATION_CRON"), "{out}");
    // main.bicep outputs the schedule it checked; the job is manual while its image is the
    // placeholder, scheduled otherwise.
    assert_eq!(
        model("main.bicep")["outputs"]["KEY_ROTATION_CRON"]["value"],
        expr("join(rotationFields, ' ')")
    );
    let job = &resource("modules/job.bicep", "Microsoft.App/jobs")["body"];
    let configuration = &job["properties"]["configuration"];
    assert_eq!(
        configuration["triggerType"],
        cond("placeholder", json!("Manual"), json!("Schedule"))
    );
    assert_eq!(
        (
            &configuration["scheduleTriggerConfig"]["if"],
            &configuration["scheduleTriggerConfig"]["then"]
        ),
        (&expr("placeholder"), &Value::Null)
    );
    assert_eq!(
        app_param("key-rotation", "placeholder"),
        &expr("empty(keyRotationImage)")
    );
    let twin = read("scripts/first-rotation.ps1");
    for text in [
        "triggerType = 'Schedule'",
        "Get-AzdValue KEY_ROTATION_CRON",
        "--method patch",
    ] {
        assert!(twin.contains(text), "{text}");
    }
}

/// `az` for grant-developer-access.sh: who is signed in (stub/me), role assignments (logged
/// only). Each call is one line of tab-separated arguments; stub/fail_<first argument> fails it
/// as a signed-out CLI does.
const AZ_FOR_DEVELOPER_ACCESS: &str = r#"#!/bin/sh
s=$STUB
{ printf '%s\t' "$@"; printf '\n'; } >> "$s/calls"
[ -e "$s/fail_$1" ] && { echo "ERROR: Please run 'az login' to setup account." >&2; exit 1; }
case "$1 $2 $3" in
  "ad signed-in-user show") cat "$s/me" ;;
  "role assignment create") ;;
  *) echo "unexpected az $*" >&2; exit 2 ;;
esac
"#;

/// `curl` for grant-developer-access.sh: api.ipify.org's answer from stub/ip, or a failure.
const CURL_FOR_DEVELOPER_ACCESS: &str = r#"#!/bin/sh
printf '%s\n' "$*" >> "$STUB/curl_calls"
cat "$STUB/ip" 2>/dev/null || { echo "curl: (6) Could not resolve host: api.ipify.org" >&2; exit 6; }
"#;

#[test]
fn the_developer_access_script_grants_exactly_its_roles_or_changes_nothing() {
    let script = "scripts/grant-developer-access.sh";
    let rg = "/subscriptions/s-1/resourceGroups/rg-dev";
    let vault = format!("{rg}/providers/Microsoft.KeyVault/vaults/kl-kv-abcdefghijkab12cd");
    let account =
        format!("{rg}/providers/Microsoft.Storage/storageAccounts/klstabcdefghijklmnopqr");
    // The azd environment after `azd up` (main.bicep's outputs and azd's own values).
    let deployed_env = [
        ("AZURE_ENV_NAME", "dev"),
        ("AZURE_SUBSCRIPTION_ID", "s-1"),
        ("AZURE_RESOURCE_GROUP", "rg-dev"),
        ("AZURE_KEY_VAULT_NAME", "kl-kv-abcdefghijkab12cd"),
        ("AZURE_STORAGE_ACCOUNT", "klstabcdefghijklmnopqr"),
        (
            "KEY_VAULT_URL",
            "https://kl-kv-abcdefghijkab12cd.vault.azure.net/",
        ),
        (
            "STORAGE_QUEUE_URL",
            "https://klstabcdefghijklmnopqr.queue.core.windows.net/code-requests",
        ),
        (
            "CODE_LEDGER_URL",
            "https://klstabcdefghijklmnopqr.blob.core.windows.net/codes",
        ),
        (
            "QUEUE_MESSAGE_UPDATER_ROLE",
            "Storage Queue Data Message Updater (q4tg5wnxjbsnk)",
        ),
    ];
    let deployed = |without: Option<&str>| {
        let run = HookRun::new(AZ_FOR_DEVELOPER_ACCESS);
        run.tool("curl", CURL_FOR_DEVELOPER_ACCESS);
        for (k, v) in deployed_env {
            if Some(k) != without {
                run.set(k, v);
            }
        }
        run.stub("me", "00000000-0000-0000-0000-0000000000aa\n");
        run
    };
    let calls = |run: &HookRun| -> Vec<Vec<String>> {
        run.az_calls()
            .iter()
            .map(|l| {
                l.trim_end_matches('\t')
                    .split('\t')
                    .map(str::to_owned)
                    .collect()
            })
            .collect()
    };
    // The grants, as (role, scope), from the `az role assignment create` calls; every call is
    // for the signed-in user, as a User, and nothing else.
    let grants = |run: &HookRun| -> Vec<(String, String)> {
        let mut grants: Vec<(String, String)> = calls(run)
            .into_iter()
            .filter(|c| c.starts_with(&["role".into(), "assignment".into(), "create".into()]))
            .map(|c| {
                let [_, _, _, a, me, t, user, r, role, sc, scope, quiet] = &c[..] else {
                    panic!("unexpected arguments: {c:?}");
                };
                assert_eq!(
                    [a, me, t, user, r, sc, quiet].map(String::as_str),
                    [
                        "--assignee-object-id",
                        "00000000-0000-0000-0000-0000000000aa",
                        "--assignee-principal-type",
                        "User",
                        "--role",
                        "--scope",
                        "--only-show-errors"
                    ],
                    "{c:?}"
                );
                (role.clone(), scope.clone())
            })
            .collect();
        grants.sort();
        grants
    };
    let queue = format!("{account}/queueServices/default/queues/code-requests");
    let poison = format!("{account}/queueServices/default/queues/code-requests-poison");
    let secret = format!("{vault}/secrets/third-party-api-key");
    let master = format!("{vault}/secrets/third-party-api-master-key");
    let codes = format!("{account}/blobServices/default/containers/codes");
    let keys = format!("{account}/blobServices/default/containers/third-party-api-keys");
    // Written out: the apps' and the rotation job's data roles, each once, at the same single
    // resources as theirs (no vault, account or group scope, no AcrPull, no Queue Data Reader),
    // plus Message Processor on the poison queue (requeueing poison is an operator's job).
    let mut expected: Vec<(String, String)> = [
        ("Key Vault Secrets User", &secret),
        ("Key Vault Secrets User", &master),
        ("Key Vault Secrets Officer", &secret),
        ("Key Vault Secrets Officer", &master),
        ("Storage Queue Data Message Sender", &queue),
        ("Storage Queue Data Message Processor", &queue),
        ("Storage Queue Data Message Updater (q4tg5wnxjbsnk)", &queue),
        ("Storage Queue Data Message Sender", &poison),
        ("Storage Queue Data Message Processor", &poison),
        ("Storage Blob Data Contributor", &codes),
        ("Storage Blob Data Contributor", &keys),
    ]
    .iter()
    .map(|(r, s)| (r.to_string(), s.to_string()))
    .collect();
    expected.sort();
    // The same rows as the role table's operator grants (ops::roles), the custom role named as
    // roles.bicep names it in this group.
    let kind = |scope: &str| -> &str {
        [
            (&secret, "secret"),
            (&master, "master-key-secret"),
            (&queue, "queue"),
            (&poison, "poison-queue"),
            (&codes, "container"),
            (&keys, "key-store-container"),
        ]
        .iter()
        .find(|(s, _)| s.as_str() == scope)
        .map(|(_, k)| *k)
        .unwrap_or_else(|| panic!("unexpected scope {scope}"))
    };
    let operator: BTreeSet<(String, String)> = ops::roles::operator_grants()
        .into_iter()
        .map(|(r, s)| (r.name().to_owned(), s.bicep_name().to_owned()))
        .collect();
    let as_kinds: BTreeSet<(String, String)> = expected
        .iter()
        .map(|(r, s)| {
            (
                r.trim_end_matches(" (q4tg5wnxjbsnk)").to_owned(),
                kind(s).to_owned(),
            )
        })
        .collect();
    assert_eq!(as_kinds, operator);
    // The name main.bicep outputs for azd's environment is the one the role has.
    assert_eq!(
        model("main.bicep")["outputs"]["QUEUE_MESSAGE_UPDATER_ROLE"]["value"],
        expr("resources.outputs.updaterRoleName")
    );
    assert_eq!(
        model("resources.bicep")["outputs"]["updaterRoleName"]["value"],
        expr("updaterRole.outputs.roleName")
    );

    // First run: the address is added, the firewalls opened by a provision, then the roles.
    let run = deployed(None);
    let (ok, out) = run.run_with("bash", script, &["203.0.113.7"]);
    assert!(ok, "{out}");
    assert_eq!(
        run.get("DEVELOPER_IP_ADDRESSES").as_deref(),
        Some("203.0.113.7")
    );
    assert_eq!(grants(&run), expected, "{out}");
    let order = order_of(&calls(&run));
    let first_grant = order.iter().position(|c| c == "role assignment").unwrap();
    assert_eq!(
        order[..first_grant],
        ["ad signed-in-user", "azd provision"],
        "who you are, then the provision, then the grants"
    );
    assert!(
        out.contains("export AZURE_TOKEN_CREDENTIALS=dev KEY_VAULT_URL=https://kl-kv-abcdefghijkab12cd.vault.azure.net/"),
        "{out}"
    );
    assert!(!run.stub_exists("curl_calls"), "the address given is used");

    // Another developer's address is kept; the list grows by one.
    let run = deployed(None);
    run.set("DEVELOPER_IP_ADDRESSES", "198.51.100.1");
    let (ok, out) = run.run_with("bash", script, &["203.0.113.7"]);
    assert!(ok, "{out}");
    assert_eq!(
        run.get("DEVELOPER_IP_ADDRESSES").as_deref(),
        Some("198.51.100.1,203.0.113.7")
    );
    assert_eq!(grants(&run), expected);

    // Already open to this address: no provision, the grants again (they are idempotent).
    let run = deployed(None);
    run.set("DEVELOPER_IP_ADDRESSES", "198.51.100.1,203.0.113.7");
    let (ok, out) = run.run_with("bash", script, &["203.0.113.7"]);
    assert!(ok, "{out}");
    assert!(
        out.contains("203.0.113.7 is already in DEVELOPER_IP_ADDRESSES"),
        "{out}"
    );
    assert_eq!(
        run.get("DEVELOPER_IP_ADDRESSES").as_deref(),
        Some("198.51.100.1,203.0.113.7")
    );
    assert!(!order_of(&calls(&run)).contains(&"azd provision".to_owned()));
    assert_eq!(grants(&run), expected);

    // No address given: asked of api.ipify.org.
    let run = deployed(None);
    run.stub("ip", "203.0.113.9\n");
    let (ok, out) = run.run_with("bash", script, &[]);
    assert!(ok, "{out}");
    assert_eq!(
        run.get("DEVELOPER_IP_ADDRESSES").as_deref(),
        Some("203.0.113.9")
    );
    assert_eq!(grants(&run), expected);

    // Nothing changes (no address added, no provision, no role) when a value is missing or wrong.
    let unchanged = |run: &HookRun, out: &str, what: &str| {
        assert_eq!(run.get("DEVELOPER_IP_ADDRESSES"), None, "{what}: {out}");
        let order = order_of(&calls(run));
        assert!(
            !order
                .iter()
                .any(|c| c == "azd provision" || c == "role assignment"),
            "{what}: {order:?}"
        );
    };
    // A value of the azd environment (no `azd up` yet, or an older one): named.
    for (name, _) in deployed_env.iter().filter(|(k, _)| *k != "AZURE_ENV_NAME") {
        let run = deployed(Some(name));
        let (ok, out) = run.run_with("bash", script, &["203.0.113.7"]);
        assert!(!ok, "{name}: {out}");
        assert!(out.contains(&format!("{name} is not set")), "{out}");
        unchanged(&run, &out, name);
        assert!(run.az_calls().is_empty(), "{name}: az asked nothing");
    }
    let run = deployed(None);
    run.set("AZURE_STORAGE_ACCOUNT", "");
    let (ok, out) = run.run_with("bash", script, &["203.0.113.7"]);
    assert!(
        !ok && out.contains("AZURE_STORAGE_ACCOUNT is not set"),
        "{out}"
    );
    unchanged(&run, &out, "empty");
    // Signed out of az: stops before opening anything.
    let run = deployed(None);
    run.stub("fail_ad", "");
    let (ok, out) = run.run_with("bash", script, &["203.0.113.7"]);
    assert!(!ok && out.contains("az login"), "{out}");
    unchanged(&run, &out, "signed out");
    // No address: api.ipify.org unreachable, or not one single IPv4 address (a range, all
    // networks, an octet over 255, too few parts, empty).
    let run = deployed(None);
    let (ok, out) = run.run_with("bash", script, &[]);
    assert!(!ok && out.contains("pass it as the argument"), "{out}");
    unchanged(&run, &out, "no ipify");
    for bad in [
        "203.0.113.0/24",
        "0.0.0.0/0",
        "300.1.2.3",
        "203.0.113",
        "",
        "203.0.113.7,198.51.100.1",
    ] {
        let run = deployed(None);
        let (ok, out) = run.run_with("bash", script, &[bad]);
        assert!(
            !ok && out.contains("ranges are never opened"),
            "{bad}: {out}"
        );
        unchanged(&run, &out, bad);
    }
    // The provision fails: no role is granted.
    let run = deployed(None);
    run.stub("fail_provision", "");
    let (ok, out) = run.run_with("bash", script, &["203.0.113.7"]);
    assert!(!ok, "{out}");
    assert!(grants(&run).is_empty(), "{out}");
}

/// The first two arguments of each logged call (`az role assignment ...` as "role assignment").
fn order_of(calls: &[Vec<String>]) -> Vec<String> {
    calls.iter().map(|c| c[..2].join(" ")).collect()
}

#[test]
fn expired_codes_go_by_a_lifecycle_rule_in_azure_not_by_the_worker_sweep() {
    let policies = resources_of("Microsoft.Storage/storageAccounts/managementPolicies");
    assert_eq!(policies.len(), 1, "one lifecycle policy");
    let (file, policy) = policies[0];
    assert_eq!(file, "modules/storage.bicep");
    assert_eq!(policy["body"]["parent"], expr("account"));
    assert_eq!(policy["body"]["name"], "default");
    let rule = lifecycle_rule("expired-codes");
    assert_eq!(rule["filters"]["blobTypes"], json!(["blockBlob"]));
    assert_eq!(
        rule["filters"]["prefixMatch"],
        json!([expr("'${containerName}/'")]),
        "the ledger only"
    );
    let days = rule["actions"]["baseBlob"]["delete"]["daysAfterModificationGreaterThan"]
        .as_u64()
        .expect("a delete after some days");
    let longest_code_days = main_app::config::MAX_CODE_TTL.as_secs().div_ceil(86_400);
    assert!(
        days > longest_code_days,
        "the rule must never delete a record that can still be valid ({days} days)"
    );
    let worker = bicep_env_entries("queue-worker");
    let sweep = worker
        .iter()
        .find(|(name, _)| name == queue_worker::config::WORKER_SWEEP_INTERVAL_SECONDS)
        .expect("the worker's sweep is set in Azure");
    assert_eq!(sweep.1, "0", "the rule deletes, not the worker");
}

/// The definition of the storage account's lifecycle rule `name`.
fn lifecycle_rule(name: &str) -> &'static Value {
    let (_, policy) = resources_of("Microsoft.Storage/storageAccounts/managementPolicies")[0];
    &policy["body"]["properties"]["policy"]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == name && r["enabled"] == true && r["type"] == "Lifecycle")
        .unwrap_or_else(|| panic!("no lifecycle rule {name}"))["definition"]
}

#[test]
fn a_deleted_or_overwritten_key_store_can_be_restored_and_versions_are_bounded() {
    let blob_service = declared("modules/storage.bicep", "resources", "blobService");
    assert_eq!(
        blob_service["body"]["properties"],
        json!({
            "isVersioningEnabled": true,
            "deleteRetentionPolicy": { "enabled": true, "days": 7 },
            "containerDeleteRetentionPolicy": { "enabled": true, "days": 7 },
        })
    );
    assert_eq!(
        lifecycle_rule("expired-codes")["actions"]["version"],
        json!({ "delete": { "daysAfterCreationGreaterThan": 8 } }),
        "the ledger's versions go with its records"
    );
    let store = lifecycle_rule("old-key-store-versions");
    assert_eq!(
        store["filters"]["prefixMatch"],
        json!([expr("'${keyStoreContainerName}/'")])
    );
    assert_eq!(
        store["actions"],
        json!({ "version": { "delete": { "daysAfterCreationGreaterThan": 90 } } }),
        "the key store's versions are kept 90 days, then go"
    );
}

#[test]
fn key_vault_and_storage_send_their_audit_logs_to_log_analytics() {
    // Who read the master key, who changed keys.json or a ledger record: each audited resource
    // has one diagnostic setting to the workspace, with the categories that say so.
    let settings = resources_of("Microsoft.Insights/diagnosticSettings");
    for (file, scope, categories) in [
        ("modules/keyvault.bicep", "vault", &["AuditEvent"][..]),
        (
            "modules/storage.bicep",
            "blobService",
            &["StorageWrite", "StorageDelete"][..],
        ),
        (
            "modules/storage.bicep",
            "queueService",
            &["StorageWrite", "StorageDelete"][..],
        ),
    ] {
        let on: Vec<&Value> = settings
            .iter()
            .filter(|(f, r)| *f == file && r["body"]["scope"] == expr(scope))
            .map(|(_, r)| &r["body"]["properties"])
            .collect();
        assert_eq!(on.len(), 1, "{file}: one diagnostic setting on {scope}");
        assert_eq!(on[0]["workspaceId"], expr("workspaceId"), "{file} {scope}");
        let logs: Vec<Value> = categories
            .iter()
            .map(|c| json!({ "category": c, "enabled": true }))
            .collect();
        assert_eq!(on[0]["logs"], json!(logs), "{file} {scope}");
    }
    // The workspace is the monitoring module's, passed to both modules.
    for module in ["vault", "storage"] {
        assert_eq!(
            declared("resources.bicep", "modules", module)["body"]["params"]["workspaceId"],
            expr("monitoring.outputs.workspaceId"),
            "{module}"
        );
    }
    assert_eq!(
        model("modules/monitoring.bicep")["outputs"]["workspaceId"]["value"],
        expr("workspace.id")
    );
}
