//! `docker-compose.yml` checked against the code: the client ids are the ones the identity
//! emulator gives, each federated token file is one `compose init` writes, every variable a
//! service gets is one it reads, and no secret is written in the file.

use devstack::compose::{DEFAULT_DIR, Volume, WORKLOADS};
use devstack::identity::client_id_of;
use std::collections::BTreeMap;
use std::path::Path;

/// `service -> variable -> value`, from the `environment:` maps (anchors resolved by hand: the
/// `x-workload-identity` block is merged where a service says `<<: *workload-identity`).
fn environments() -> BTreeMap<String, BTreeMap<String, String>> {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../docker-compose.yml"),
    )
    .unwrap();
    let mut anchor = BTreeMap::new();
    let mut out: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let (mut section, mut service, mut in_env) = (String::new(), String::new(), false);
    for line in text.lines() {
        let indent = line.len() - line.trim_start().len();
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let (key, value) = trimmed.split_once(':').unwrap_or((trimmed, ""));
        let value = value.trim().to_owned();
        match indent {
            0 => {
                section = key.to_owned();
                in_env = false;
            }
            2 if section == "x-workload-identity" => {
                anchor.insert(key.to_owned(), value);
            }
            2 if section == "services" => {
                service = key.to_owned();
                in_env = false;
            }
            4 if section == "services" => in_env = key == "environment",
            6 if in_env && key == "<<" => {
                assert_eq!(value, "*workload-identity");
                out.entry(service.clone())
                    .or_default()
                    .extend(anchor.clone());
            }
            6 if in_env => {
                out.entry(service.clone())
                    .or_default()
                    .insert(key.to_owned(), value);
            }
            _ => {}
        }
    }
    out
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
        assert_eq!(env["AZURE_TOKEN_CREDENTIALS"], "WorkloadIdentityCredential");
        assert_eq!(env["AZURE_TENANT_ID"], devstack::jwt::TENANT_ID);
    }
    assert_eq!(
        Path::new(&envs["third-party-api"]["THIRD_PARTY_API_KEYS_FILE"]),
        volume.key_store()
    );
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
            .chain(shared_auth::config::COMMON_VARIABLES)
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
                ]
                .contains(&variable.as_str()),
                "{service}: {variable} would put a secret in the file"
            );
        }
    }
}
