//! `infra/` checked without an Azure account: every Bicep file parses (tree-sitter-bicep) and
//! keeps to the syntax checkov's parser reads, the role table is exactly what the system needs
//! with the right role ids at the narrowest scopes, storage and vault are locked down and private
//! (public network access off unless opened to single developer addresses, private endpoints
//! with their DNS zones, the environment in its own subnet), no secret is written or output,
//! secrets expire, telemetry needs no key, the first revision is healthy (ingress, probes, PORT
//! and the image's EXPOSE agree), names soft delete holds are unique per deployment, every
//! checkov skip has a reason and is listed in the README, and the variables each Container App
//! gets are variables its service reads (and devstack gives it locally).

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

/// The block of each declared (not `existing`) resource of `kind` (e.g.
/// `Microsoft.KeyVault/vaults`), from its `resource` line to its closing brace at column 0.
fn resource_blocks(kind: &str) -> Vec<(PathBuf, String)> {
    let head = Regex::new(&format!(
        r"(?m)^resource \w+ '{}@[^']+' (existing )?=",
        regex_lite::escape(kind)
    ))
    .unwrap();
    let mut blocks = Vec::new();
    for (file, text) in bicep_texts() {
        for m in head.captures_iter(&text) {
            if m.get(1).is_some() {
                continue;
            }
            let start = m.get(0).unwrap().start();
            let rest = &text[start..];
            let end = [rest.find("\n}"), rest.find("\n]")]
                .into_iter()
                .flatten()
                .min()
                .map_or(text.len(), |e| start + e + 2);
            blocks.push((file.clone(), text[start..end].to_owned()));
        }
    }
    blocks
}

/// The `module` block of resources.bicep that deploys `app`.
fn app_module(app: &str) -> String {
    let resources = read("resources.bicep");
    let start = resources
        .find(&format!("name: '{app}'\n"))
        .unwrap_or_else(|| panic!("no module for {app}"));
    let block = &resources[start..];
    let end = block.find("\n}\n").unwrap_or(block.len());
    block[..end].to_owned()
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
    assert!(files.len() >= 10, "{files:?}");
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

#[test]
fn role_ids_match_role_names() {
    let roles = read("modules/roles.bicep");
    let map = Regex::new(r"(?m)^\s+'?([A-Za-z ]+?)'?: '([0-9a-f-]{36})'").unwrap();
    let found: BTreeSet<(String, String)> = map
        .captures_iter(&roles)
        .map(|c| (c[1].to_owned(), c[2].to_owned()))
        .collect();
    assert_eq!(found, role_ids());
}

#[test]
fn each_principal_has_exactly_its_roles_at_the_narrowest_scope() {
    let roles = read("modules/roles.bicep");
    let row = Regex::new(r"\{ principal: '([^']+)', role: '([^']+)', scope: '([^']+)' \}").unwrap();
    let found: BTreeSet<(String, String, String)> = row
        .captures_iter(&roles)
        .map(|c| (c[1].to_owned(), c[2].to_owned(), c[3].to_owned()))
        .collect();
    // The role table (`ops::roles`): SYSTEM.md's table, plus AcrPull for image pulls, the custom
    // Message Updater (messages/write: visibility renewal) and Queue Data Reader (KEDA's queue
    // length) for the worker. No Contributor or Owner anywhere. The worker only sends to the
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
    // Every row's role is a known one: a built-in by id, or the custom role.
    let known: BTreeSet<&str> = ops::roles::Role::ALL.iter().map(|r| r.name()).collect();
    for (_, role, _) in &found {
        assert!(known.contains(role.as_str()), "unknown role {role}");
    }
    // Role assignments live in roles.bicep only, each loop's definition is the custom role or a
    // built-in one from the table (no literal role id elsewhere).
    for (file, text) in bicep_texts() {
        let assigns = text.contains("Microsoft.Authorization/roleAssignments@");
        assert_eq!(
            assigns,
            file.ends_with("modules/roles.bicep"),
            "{file:?}: role assignments belong in modules/roles.bicep"
        );
    }
    assert_eq!(
        roles.matches("roleDefinitionId: a.role == updaterRoleName ? updaterRole.id : subscriptionResourceId('Microsoft.Authorization/roleDefinitions', any(builtInRoles)[a.role])").count(),
        5
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
fn the_developer_script_grants_the_operator_roles_of_the_role_table() {
    let script = read("scripts/grant-developer-access.sh");
    let scope = |var: &str, rest: &str| match (var, rest) {
        ("vault", "/secrets/third-party-api-key") => "secret",
        ("queue", "") => "queue",
        ("poison", "") => "poison-queue",
        ("container", "") => "container",
        other => panic!("unexpected scope {other:?}"),
    };
    let role = |r: &str| r.trim_end_matches(" ($AZURE_RESOURCE_GROUP)").to_owned();
    let mut found = BTreeSet::new();
    let top = Regex::new(r#"(?m)^grant "([^"]+)" "\$(\w+)([^"]*)""#).unwrap();
    for c in top.captures_iter(&script) {
        found.insert((role(&c[1]), scope(&c[2], &c[3]).to_owned()));
    }
    let loops = Regex::new(r#"(?s)for q in ([^;]+); do(.*?)done"#).unwrap();
    let inner = Regex::new(r#"grant "([^"]+)" "\$q""#).unwrap();
    for c in loops.captures_iter(&script) {
        for var in c[1].split_whitespace() {
            let var = var.trim_matches('"').trim_start_matches('$');
            for g in inner.captures_iter(&c[2]) {
                found.insert((role(&g[1]), scope(var, "").to_owned()));
            }
        }
    }
    let expected: BTreeSet<(String, String)> = ops::roles::operator_grants()
        .into_iter()
        .map(|(r, s)| (r.name().to_owned(), s.bicep_name().to_owned()))
        .collect();
    assert_eq!(found, expected);
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
    assert!(read("modules/registry.bicep").contains("anonymousPullEnabled: false"));
    let app = read("modules/container-app.bicep");
    assert!(app.contains("allowInsecure: false"));
    assert!(app.contains("registries: [{ server: registryServer, identity: identityId }]"));
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
        for (file, block) in resource_blocks(kind) {
            declared += 1;
            for setting in [
                "publicNetworkAccess: publicNetworkAccess",
                "defaultAction: 'Deny'",
                "ipRules: [for ip in developerIps: { value: first(split(trim(ip), '/'))",
                "virtualNetworkRules: []",
            ] {
                assert!(block.contains(setting), "{file:?} {kind}: {setting}");
            }
            let text = std::fs::read_to_string(&file).unwrap();
            assert!(
                text.contains("@allowed(['Disabled', 'Enabled'])")
                    && text.contains("param publicNetworkAccess string = 'Disabled'")
                    && text.contains("param developerIps array = []"),
                "{file:?}: private by default"
            );
        }
    }
    assert_eq!(declared, 2, "one vault, one storage account");
    assert!(read("modules/keyvault.bicep").contains("bypass: 'None'"));
    // resources.bicep opens them only when developer addresses are given.
    let resources = read("resources.bicep");
    assert_eq!(
        resources
            .matches("publicNetworkAccess: empty(developerIps) ? 'Disabled' : 'Enabled'")
            .count(),
        2
    );
    assert_eq!(resources.matches("developerIps: developerIps").count(), 2);
    let main = read("main.bicep");
    assert!(main.contains("param developerIpAddresses string = ''"));
    assert!(main.contains(
        "var developerIps = filter(split(developerIpAddresses, ','), ip => !empty(trim(ip)))"
    ));
    assert!(
        read("main.parameters.json")
            .contains(r#""developerIpAddresses": { "value": "${DEVELOPER_IP_ADDRESSES=}" }"#)
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
    let network = read("modules/network.bicep");
    let row = Regex::new(
        r"(?s)\{\s*name: '(\w+)'\s*target: (\w+)\s*group: '(\w+)'\s*zone: '([^\n]*)'\n\s*\}",
    )
    .unwrap();
    let links: BTreeSet<(String, String, String, String)> = row
        .captures_iter(&network)
        .map(|c| {
            (
                c[1].to_owned(),
                c[2].to_owned(),
                c[3].to_owned(),
                c[4].to_owned(),
            )
        })
        .collect();
    let expected: BTreeSet<(String, String, String, String)> = [
        (
            "vault",
            "vaultId",
            "vault",
            "privatelink${replace(environment().suffixes.keyvaultDns, 'vault', 'vaultcore')}",
        ),
        (
            "queue",
            "storageId",
            "queue",
            "privatelink.queue.${environment().suffixes.storage}",
        ),
        (
            "blob",
            "storageId",
            "blob",
            "privatelink.blob.${environment().suffixes.storage}",
        ),
    ]
    .iter()
    .map(|(a, b, c, d)| (a.to_string(), b.to_string(), c.to_string(), d.to_string()))
    .collect();
    assert_eq!(links, expected);
    // Per link: a zone, its link to the network, an endpoint in the endpoints subnet, a zone group.
    for (kind, header) in [
        ("Microsoft.Network/privateDnsZones", "for link in links: {"),
        (
            "Microsoft.Network/privateDnsZones/virtualNetworkLinks",
            "for (link, i) in links: {",
        ),
        ("Microsoft.Network/privateEndpoints", "for link in links: {"),
        (
            "Microsoft.Network/privateEndpoints/privateDnsZoneGroups",
            "for (link, i) in links: {",
        ),
    ] {
        let blocks = resource_blocks(kind);
        assert_eq!(blocks.len(), 1, "{kind}");
        assert!(blocks[0].1.contains(header), "{kind}: one per link");
    }
    assert!(network.contains("registrationEnabled: false"));
    assert!(network.contains("virtualNetwork: { id: vnet.id }"));
    assert!(network.contains("subnet: { id: vnet.properties.subnets[1].id }"));
    assert!(network
        .contains("privateLinkServiceConnections: [\n        {\n          name: link.name\n          properties: { privateLinkServiceId: link.target, groupIds: [link.group] }"));
    assert!(network.contains("privateDnsZoneId: zones[i].id"));
    // Network security: HTTPS only; from the Internet to the environment's subnet (main-app's
    // ingress), and to the endpoints from the environment's subnet alone.
    let rule = Regex::new(r"(?s)name: '([a-z-]+)'\s*properties: \{\s*priority: (\d+)\s*direction: 'Inbound'\s*access: '(\w+)'\s*protocol: '([^']+)'\s*sourceAddressPrefix: ([^\n]+)\s*sourcePortRange: '\*'\s*destinationAddressPrefix: ([^\n]+)\s*destinationPortRange: '([^']+)'").unwrap();
    let rules: Vec<Vec<String>> = rule
        .captures_iter(&network)
        .map(|c| (1..=7).map(|i| c[i].to_owned()).collect())
        .collect();
    let expected_rules: Vec<Vec<String>> = [
        [
            "allow-https-from-internet",
            "100",
            "Allow",
            "Tcp",
            "'Internet'",
            "appsPrefix",
            "443",
        ],
        [
            "allow-https-from-apps",
            "100",
            "Allow",
            "Tcp",
            "appsPrefix",
            "endpointsPrefix",
            "443",
        ],
        ["deny-other-inbound", "4000", "Deny", "*", "'*'", "'*'", "*"],
    ]
    .iter()
    .map(|r| r.iter().map(|s| s.to_string()).collect())
    .collect();
    assert_eq!(rules, expected_rules);
    assert_eq!(network.matches("securityRules:").count(), 2);
    assert_eq!(network.matches("networkSecurityGroup: { id:").count(), 2);
    assert!(network.contains("serviceName: 'Microsoft.App/environments'"));
    assert!(network.contains("privateEndpointNetworkPolicies: 'Enabled'"));
    // The environment sits in the apps subnet, after the endpoints and zones exist.
    let env = read("modules/apps-env.bicep");
    assert!(env.contains("infrastructureSubnetId: subnetId"));
    assert!(read("resources.bicep").contains("subnetId: network.outputs.appsSubnetId"));
    assert!(network.contains("output appsSubnetId string = vnet.properties.subnets[0].id"));
}

/// The number after `key` in the Dockerfile stage `stage` (`EXPOSE ` or `PORT=`).
fn dockerfile_stage_number(stage: &str, key: &str) -> u16 {
    let dockerfile = repo_file("Dockerfile");
    let start = dockerfile
        .find(&format!(" AS {stage}\n"))
        .unwrap_or_else(|| panic!("no stage {stage}"));
    let block = &dockerfile[start..];
    let end = block[1..].find("\nFROM ").map_or(block.len(), |e| e + 1);
    let re = Regex::new(&format!(r"{}(\d+)", regex_lite::escape(key))).unwrap();
    let found: Vec<u16> = re
        .captures_iter(&block[..end])
        .map(|c| c[1].parse().unwrap())
        .collect();
    assert_eq!(found.len(), 1, "{stage}: one {key}");
    found[0]
}

#[test]
fn the_first_revision_is_healthy_ingress_probes_port_and_image_agree() {
    let app = read("modules/container-app.bicep");
    for needle in [
        "targetPort: port",
        "httpGet: { path: '/healthz', port: port }",
        "httpGet: { path: '/readyz', port: port }",
    ] {
        assert!(app.contains(needle), "{needle}");
    }
    assert_eq!(app.matches("port: port").count(), 2, "both probes");
    let resources = read("resources.bicep");
    // The placeholder listens on PORT and answers 200 on every path (Google's hello-app
    // sample), so ingress and both probes find it on the service's own port.
    assert!(resources.contains(
        "var placeholderImage = 'us-docker.pkg.dev/google-samples/containers/gke/hello-app:1.0'"
    ));
    assert!(!resources.contains("containerapps-helloworld"));
    for (app, variable) in [
        ("third-party-api", "thirdPartyApiImage"),
        ("main-app", "mainAppImage"),
        ("queue-worker", "queueWorkerImage"),
    ] {
        let block = app_module(app);
        assert!(
            block.contains(&format!(
                "image: empty({variable}) ? placeholderImage : {variable}"
            )),
            "{app}"
        );
        let port: u16 = Regex::new(r"\n    port: (\d+)\n")
            .unwrap()
            .captures(&block)
            .unwrap_or_else(|| panic!("{app}: no port"))[1]
            .parse()
            .unwrap();
        let env_port: u16 = Regex::new(r"\{ name: 'PORT', value: '(\d+)' \}")
            .unwrap()
            .captures(&block)
            .unwrap_or_else(|| panic!("{app}: no PORT"))[1]
            .parse()
            .unwrap();
        assert_eq!(port, env_port, "{app}: ingress and probes vs PORT");
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
        assert!(block.contains("dependsOn: [roles]"), "{app}");
    }
}

#[test]
fn the_vault_name_is_unique_per_deployment() {
    let resources = read("resources.bicep");
    assert!(resources.contains("name: 'kl-kv-${take(token, 11)}${deploymentSuffix}'"));
    let main = read("main.bicep");
    assert!(main.contains("@maxLength(6)\n"));
    assert!(main.contains("param deploymentSuffix string = ''"));
    assert!(main.contains("deploymentSuffix: suffix"));
    assert!(main.contains("output AZURE_DEPLOYMENT_SUFFIX string = suffix"));
    assert!(
        read("main.parameters.json")
            .contains(r#""deploymentSuffix": { "value": "${AZURE_DEPLOYMENT_SUFFIX=}" }"#)
    );
    // azd keeps the suffix across provisions and renews it at `azd down`.
    let azure = repo_file("azure.yaml");
    let hooks = &azure[azure.find("\nhooks:\n").expect("azure.yaml hooks")..];
    assert!(hooks.contains("  preprovision:\n    posix:\n      shell: sh\n      run: infra/scripts/deployment-suffix.sh\n"));
    assert!(hooks.contains("  postdown:\n    posix:\n      shell: sh\n      run: infra/scripts/deployment-suffix.sh --new\n"));
    assert_eq!(
        hooks.matches("azd env set AZURE_DEPLOYMENT_SUFFIX").count(),
        2
    );
    let script = read("scripts/deployment-suffix.sh");
    assert!(script.contains("azd env set AZURE_DEPLOYMENT_SUFFIX \"$suffix\""));
}

#[test]
fn the_deployment_suffix_hook_keeps_a_suffix_and_renews_it_at_teardown() {
    // The hook against a stand-in `azd` that keeps its environment in a file.
    let dir = tempfile::tempdir().unwrap();
    let env_file = dir.path().join("env");
    let azd = dir.path().join("azd");
    std::fs::write(
        &azd,
        format!(
            "#!/bin/sh\nf={}\ncase \"$1 $2\" in\n  'env get-value') v=$(grep \"^$3=\" $f 2>/dev/null | cut -d= -f2-); [ -n \"$v\" ] || exit 1; echo \"$v\" ;;\n  'env set') grep -v \"^$3=\" $f > $f.new 2>/dev/null; echo \"$3=$4\" >> $f.new; mv $f.new $f ;;\nesac\n",
            env_file.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&azd, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        dir.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let run = |args: &[&str]| -> String {
        let out = std::process::Command::new("sh")
            .arg(infra().join("scripts/deployment-suffix.sh"))
            .args(args)
            .env("PATH", &path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let env = std::fs::read_to_string(&env_file).unwrap();
        env.trim()
            .strip_prefix("AZURE_DEPLOYMENT_SUFFIX=")
            .unwrap()
            .to_owned()
    };
    let first = run(&[]);
    assert!(
        Regex::new("^[0-9a-f]{6}$").unwrap().is_match(&first),
        "{first}"
    );
    assert_eq!(run(&[]), first, "kept across provisions");
    let renewed = run(&["--new"]);
    assert_ne!(renewed, first, "renewed by azd down");
    assert_eq!(run(&[]), renewed);
}

#[test]
fn secrets_expire_and_telemetry_needs_no_key() {
    // Every Key Vault secret written by the templates (a later one included) expires and says
    // what it is.
    let secrets = resource_blocks("Microsoft.KeyVault/vaults/secrets");
    assert!(!secrets.is_empty());
    for (file, block) in secrets {
        assert!(block.contains("exp: secretExpiresOn"), "{file:?}: expiry");
        assert!(block.contains("contentType: "), "{file:?}: content type");
    }
    assert!(
        read("main.bicep")
            .contains("secretExpiresOn: dateTimeToEpoch(dateTimeAdd(deployedAt, 'P1Y'))")
    );
    // Application Insights takes Entra-authenticated telemetry only; logs reach Log Analytics
    // through diagnostic settings, not the workspace key.
    let monitoring = read("modules/monitoring.bicep");
    assert!(monitoring.contains("DisableLocalAuth: true"));
    let env = read("modules/apps-env.bicep");
    assert!(env.contains("destination: 'azure-monitor'"));
    assert!(env.contains("resource logs 'Microsoft.Insights/diagnosticSettings@"));
    assert!(env.contains("tracesConfiguration: { destinations: ['appInsights'] }"));
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
    assert_eq!(
        env.matches("connectionString: insights.properties.ConnectionString")
            .count(),
        1
    );
    // Container App secrets are Key Vault references only (read with the app's identity).
    let resources = read("resources.bicep");
    let secret_blocks = Regex::new(r"(?s)\n    secrets: \[(.*?)\n    \]").unwrap();
    let mut references = 0;
    for c in secret_blocks.captures_iter(&resources) {
        let entries = &c[1];
        assert!(!entries.contains("value:"), "a secret value in an app");
        references += entries.matches("keyVaultUrl:").count();
        assert_eq!(
            entries.matches("keyVaultUrl:").count(),
            entries.matches("identity:").count()
        );
    }
    assert_eq!(references, 1);
}

#[test]
fn bicep_stays_within_what_checkov_parses() {
    // checkov (pycep) rejects user-defined functions, lambdas other than filter, and an
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
            for unknown in ["map(", "reduce(", "sort(", "toObject(", "groupBy("] {
                assert!(!t.contains(unknown), "{file:?}:{}: {unknown}", n + 1);
            }
        }
    }
}

#[test]
fn every_checkov_skip_has_a_reason_and_is_listed_in_the_readme() {
    let mut files: Vec<PathBuf> = bicep_files();
    files.push(infra().join("../Dockerfile"));
    files.push(infra().join("../docker-compose.yml"));
    let skip = Regex::new(r"checkov:skip=([A-Z0-9_]+)(:\s*(.*))?").unwrap();
    let readme = repo_file("README.md");
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
            "README does not list {id}"
        );
    }
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
        Regex::new(r"@secure\(\)\s*\n(// checkov:skip=CKV_AZURE_131: [^\n]+\n)?@description\([^)]*\)\s*\nparam thirdPartyApiKey string = replace\('\$\{newGuid\(\)\}\$\{newGuid\(\)\}'")
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
