//! Credential selection: the decision table in-process, and real tokens through `azure_identity`
//! in a child process (`auth-check`) whose environment is exactly what each case sets.

use test_kit::servers::{TestCa, serve};

use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::Value;
use sha2::{Digest, Sha256};
use shared_auth::credential::{CredentialError, choose_credential};
use shared_auth::{CredentialKind, MapEnv};
use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const AUTH_CHECK: &str = env!("CARGO_BIN_EXE_auth-check");
const SCOPE: &str = "https://vault.azure.net/.default";
const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const CLIENT: &str = "11111111-2222-3333-4444-555555555555";

fn kind(env: &MapEnv) -> CredentialKind {
    choose_credential(env).expect("a credential").kind
}

fn config_error_variable(env: &MapEnv) -> String {
    match choose_credential(env) {
        Err(CredentialError::Config(e)) => e.variable,
        other => panic!("expected a configuration error, got {other:?}"),
    }
}

/// A directory holding executable stand-ins for `az` and/or `azd` that print a token.
fn tools_dir(tools: &[&str], token: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for tool in tools {
        let expires = time::OffsetDateTime::now_utc().unix_timestamp() + 3600;
        let body = match *tool {
            "az" => format!(
                r#"{{"accessToken":"{token}","expires_on":{expires},"tokenType":"Bearer"}}"#
            ),
            _ => format!(r#"{{"token":"{token}","expiresOn":"2099-01-01T00:00:00Z"}}"#),
        };
        let path = dir.path().join(tool);
        std::fs::write(&path, format!("#!/bin/sh\ncat <<'JSON'\n{body}\nJSON\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    dir
}

fn path_of(dir: &Path) -> String {
    format!("{}:/usr/bin:/bin", dir.display())
}

#[test]
fn unset_chain_takes_the_first_configured_credential_in_order() {
    let empty = tempfile::tempdir().unwrap();
    let token_file = tempfile::NamedTempFile::new().unwrap();
    let path = path_of(empty.path());
    let sp = MapEnv::new()
        .with("PATH", &path)
        .with("AZURE_TENANT_ID", TENANT)
        .with("AZURE_CLIENT_ID", CLIENT)
        .with("AZURE_CLIENT_SECRET", "not-a-real-secret")
        .with(
            "AZURE_FEDERATED_TOKEN_FILE",
            token_file.path().to_str().unwrap(),
        )
        .with("IDENTITY_ENDPOINT", "http://127.0.0.1:1/msi")
        .with("IDENTITY_HEADER", "h");
    assert_eq!(kind(&sp), CredentialKind::ClientSecret);

    let wi = sp.clone().with("AZURE_CLIENT_SECRET", "");
    assert_eq!(kind(&wi), CredentialKind::WorkloadIdentity);

    let mi = wi.clone().with("AZURE_FEDERATED_TOKEN_FILE", "");
    assert_eq!(kind(&mi), CredentialKind::ManagedIdentityEndpoint);

    let tools = tools_dir(&["az"], "t");
    let dev = MapEnv::new().with("PATH", path_of(tools.path()));
    assert_eq!(kind(&dev), CredentialKind::AzureCli);
}

#[test]
fn prod_never_picks_a_developer_credential_and_dev_never_a_deployed_one() {
    let tools = tools_dir(&["az", "azd"], "t");
    let path = path_of(tools.path());
    let prod = MapEnv::new()
        .with("PATH", &path)
        .with("AZURE_TOKEN_CREDENTIALS", "prod");
    match choose_credential(&prod) {
        Err(CredentialError::NothingAvailable { tried, .. }) => {
            assert!(!tried.contains("AzureCli"), "{tried}")
        }
        other => panic!("prod must not fall back to developer tools: {other:?}"),
    }
    let dev = MapEnv::new()
        .with("PATH", &path)
        .with("AZURE_TOKEN_CREDENTIALS", "dev")
        .with("IDENTITY_ENDPOINT", "http://127.0.0.1:1/msi")
        .with("IDENTITY_HEADER", "h");
    assert_eq!(kind(&dev), CredentialKind::DeveloperTools);
    assert!(kind(&dev).is_developer());

    let azd_only = tools_dir(&["azd"], "t");
    let dev_azd = MapEnv::new()
        .with("PATH", path_of(azd_only.path()))
        .with("AZURE_TOKEN_CREDENTIALS", "Dev");
    assert_eq!(kind(&dev_azd), CredentialKind::AzureDeveloperCli);
}

#[test]
fn a_named_credential_is_exactly_that_one() {
    let empty = tempfile::tempdir().unwrap();
    let path = path_of(empty.path());
    let named = |name: &str| {
        MapEnv::new()
            .with("PATH", &path)
            .with("AZURE_TOKEN_CREDENTIALS", name)
    };
    // Without IDENTITY_ENDPOINT a named managed identity means IMDS, and only then.
    assert_eq!(
        kind(&named("ManagedIdentityCredential")),
        CredentialKind::ManagedIdentityImds
    );
    assert_eq!(
        kind(
            &named("managedidentitycredential")
                .with("IDENTITY_ENDPOINT", "http://127.0.0.1:1/msi")
                .with("IDENTITY_HEADER", "h")
        ),
        CredentialKind::ManagedIdentityEndpoint
    );
    // A service principal is configured, yet the name wins.
    let with_sp = named("ManagedIdentityCredential")
        .with("AZURE_TENANT_ID", TENANT)
        .with("AZURE_CLIENT_ID", CLIENT)
        .with("AZURE_CLIENT_SECRET", "x");
    assert_eq!(kind(&with_sp), CredentialKind::ManagedIdentityImds);
    assert_eq!(
        kind(
            &with_sp
                .clone()
                .with("AZURE_TOKEN_CREDENTIALS", "EnvironmentCredential")
        ),
        CredentialKind::ClientSecret
    );
    assert!(matches!(
        choose_credential(&named("AzureCliCredential")),
        Err(CredentialError::NothingAvailable { .. })
    ));
    assert_eq!(
        config_error_variable(&named("WorkloadIdentityCredential")),
        "AZURE_FEDERATED_TOKEN_FILE"
    );
    assert_eq!(
        config_error_variable(&named("ClientSecretCredential")),
        "AZURE_CLIENT_SECRET"
    );
    assert_eq!(
        config_error_variable(&named("DefaultAzureCredential")),
        "AZURE_TOKEN_CREDENTIALS"
    );
}

#[test]
fn partial_configuration_names_the_missing_variable() {
    let secret_only = MapEnv::new().with("AZURE_CLIENT_SECRET", "x");
    assert_eq!(config_error_variable(&secret_only), "AZURE_TENANT_ID");
    let no_client = secret_only.clone().with("AZURE_TENANT_ID", TENANT);
    assert_eq!(config_error_variable(&no_client), "AZURE_CLIENT_ID");
    let endpoint_only = MapEnv::new().with("IDENTITY_ENDPOINT", "http://127.0.0.1:1/msi");
    assert_eq!(config_error_variable(&endpoint_only), "IDENTITY_HEADER");
    let bad_endpoint = endpoint_only.with("IDENTITY_ENDPOINT", "not a url");
    assert_eq!(config_error_variable(&bad_endpoint), "IDENTITY_ENDPOINT");
    let http_authority = no_client
        .with("AZURE_CLIENT_ID", CLIENT)
        .with("AZURE_AUTHORITY_HOST", "http://login.example");
    assert_eq!(
        config_error_variable(&http_authority),
        "AZURE_AUTHORITY_HOST"
    );
    let missing_file = MapEnv::new()
        .with("AZURE_FEDERATED_TOKEN_FILE", "/nonexistent/token")
        .with("AZURE_TENANT_ID", TENANT)
        .with("AZURE_CLIENT_ID", CLIENT);
    assert_eq!(
        config_error_variable(&missing_file),
        "AZURE_FEDERATED_TOKEN_FILE"
    );
}

#[test]
fn the_reason_never_holds_the_secret() {
    let secret = "very-secret-client-secret-value";
    let env = MapEnv::new()
        .with("AZURE_TENANT_ID", TENANT)
        .with("AZURE_CLIENT_ID", CLIENT)
        .with("AZURE_CLIENT_SECRET", secret);
    let choice = choose_credential(&env).unwrap();
    assert!(!choice.reason.contains(secret));
    assert!(!format!("{choice:?}").contains(secret));
}

/// Runs `auth-check token` with exactly `vars` (plus PATH) and returns (success, stdout JSON or
/// stderr JSON, elapsed).
async fn auth_check(vars: &[(&str, &str)]) -> (bool, Value, Duration) {
    let started = Instant::now();
    let mut command = tokio::process::Command::new(AUTH_CHECK);
    command.env_clear().args(["token", SCOPE]);
    for (k, v) in vars {
        command.env(k, v);
    }
    let output = tokio::time::timeout(Duration::from_secs(60), command.output())
        .await
        .expect("auth-check must not hang")
        .unwrap();
    let elapsed = started.elapsed();
    let text = if output.status.success() {
        output.stdout
    } else {
        output.stderr
    };
    let text = String::from_utf8(text).unwrap();
    let json = serde_json::from_str(text.lines().last().unwrap_or("null"))
        .unwrap_or_else(|_| panic!("auth-check printed no JSON: {text}"));
    (output.status.success(), json, elapsed)
}

fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// What a token endpoint saw: the query or form fields of each call.
type Calls = Arc<Mutex<Vec<HashMap<String, String>>>>;

/// The App Service managed identity protocol, as Container Apps serves it.
fn app_service_identity_endpoint(
    header: &'static str,
    token: &'static str,
    calls: Calls,
) -> String {
    serve(None, move |cfg| {
        let calls = calls.clone();
        cfg.route(
            "/msi/token",
            web::get().to(move |req: HttpRequest| {
                let calls = calls.clone();
                async move {
                    let query: HashMap<String, String> =
                        form_urlencoded::parse(req.query_string().as_bytes())
                            .into_owned()
                            .collect();
                    calls.lock().unwrap().push(query.clone());
                    let presented = req.headers().get("x-identity-header");
                    if presented.map(|v| v.as_bytes()) != Some(header.as_bytes()) {
                        return HttpResponse::Unauthorized().json(serde_json::json!({
                            "statusCode": 401, "message": "Unauthorized request"
                        }));
                    }
                    if query.get("api-version").map(String::as_str) != Some("2019-08-01") {
                        return HttpResponse::BadRequest().finish();
                    }
                    let expires = time::OffsetDateTime::now_utc().unix_timestamp() + 3600;
                    HttpResponse::Ok().json(serde_json::json!({
                        "access_token": token,
                        "expires_on": expires.to_string(),
                        "resource": query.get("resource"),
                        "token_type": "Bearer",
                    }))
                }
            }),
        );
    })
}

#[actix_web::test]
async fn managed_identity_gets_a_real_token_from_an_app_service_endpoint() {
    const HEADER: &str = "identity-header-value-9f8e7d";
    const TOKEN: &str = "eyJ0eXAiOiJKV1QifQ.managed-identity-token.sig";
    let calls = Calls::default();
    let base = app_service_identity_endpoint(HEADER, TOKEN, calls.clone());
    let endpoint = format!("{base}/msi/token");
    let empty = tempfile::tempdir().unwrap();
    let path = path_of(empty.path());

    for mode in ["", "prod", "ManagedIdentityCredential"] {
        let (ok, out, _) = auth_check(&[
            ("PATH", &path),
            ("AZURE_TOKEN_CREDENTIALS", mode),
            ("IDENTITY_ENDPOINT", &endpoint),
            ("IDENTITY_HEADER", HEADER),
        ])
        .await;
        assert!(ok, "mode {mode:?}: {out}");
        assert_eq!(out["credential"], "ManagedIdentityCredential");
        assert_eq!(out["token_sha256"], sha256_hex(TOKEN));
        assert!(out["expires_on"].as_i64().unwrap() > 0);
    }
    let seen = calls.lock().unwrap().clone();
    assert_eq!(seen.len(), 3);
    assert_eq!(seen[0]["resource"], "https://vault.azure.net");
    assert!(!seen[0].contains_key("client_id"));

    // A user-assigned identity is asked for by client id.
    let (ok, out, _) = auth_check(&[
        ("PATH", &path),
        ("IDENTITY_ENDPOINT", &endpoint),
        ("IDENTITY_HEADER", HEADER),
        ("AZURE_CLIENT_ID", CLIENT),
    ])
    .await;
    assert!(ok, "{out}");
    assert_eq!(calls.lock().unwrap().last().unwrap()["client_id"], CLIENT);

    // A wrong header is refused by the endpoint; the error does not echo the header value.
    let (ok, out, _) = auth_check(&[
        ("PATH", &path),
        ("IDENTITY_ENDPOINT", &endpoint),
        ("IDENTITY_HEADER", "wrong-header-value-123"),
    ])
    .await;
    assert!(!ok);
    let message = out["error"].as_str().unwrap();
    assert!(message.contains("ManagedIdentityCredential"), "{message}");
    assert!(!message.contains("wrong-header-value-123"), "{message}");
}

/// An Entra token endpoint (client credentials, with a secret or a federated assertion), HTTPS.
fn entra_token_endpoint(ca: &TestCa, token: &'static str, calls: Calls) -> String {
    serve(Some(ca), move |cfg| {
        let calls = calls.clone();
        cfg.route(
            "/{tenant}/oauth2/v2.0/token",
            web::post().to(move |tenant: web::Path<String>, form: web::Bytes| {
                let calls = calls.clone();
                async move {
                    let mut fields: HashMap<String, String> =
                        form_urlencoded::parse(&form).into_owned().collect();
                    fields.insert("tenant".into(), tenant.into_inner());
                    calls.lock().unwrap().push(fields);
                    HttpResponse::Ok().json(serde_json::json!({
                        "token_type": "Bearer",
                        "expires_in": 3600,
                        "ext_expires_in": 3600,
                        "access_token": token,
                    }))
                }
            }),
        );
    })
}

#[actix_web::test]
async fn service_principal_and_workload_identity_get_tokens_over_trusted_https() {
    const TOKEN: &str = "eyJ0eXAiOiJKV1QifQ.entra-token.sig";
    const SECRET: &str = "client-secret-value-never-printed";
    const ASSERTION: &str = "federated-assertion-jwt-value";
    let ca = TestCa::new();
    let calls = Calls::default();
    let authority = entra_token_endpoint(&ca, TOKEN, calls.clone());
    let empty = tempfile::tempdir().unwrap();
    let path = path_of(empty.path());
    let ca_path = ca.pem_path().to_str().unwrap();

    let (ok, out, _) = auth_check(&[
        ("PATH", &path),
        ("EXTRA_CA_CERTS", ca_path),
        ("AZURE_AUTHORITY_HOST", &authority),
        ("AZURE_TENANT_ID", TENANT),
        ("AZURE_CLIENT_ID", CLIENT),
        ("AZURE_CLIENT_SECRET", SECRET),
    ])
    .await;
    assert!(ok, "{out}");
    assert_eq!(out["credential"], "ClientSecretCredential");
    assert_eq!(out["token_sha256"], sha256_hex(TOKEN));
    assert!(!out.to_string().contains(SECRET));
    {
        let seen = calls.lock().unwrap();
        let call = seen.last().unwrap();
        assert_eq!(call["tenant"], TENANT);
        assert_eq!(call["client_id"], CLIENT);
        assert_eq!(call["client_secret"], SECRET);
        assert_eq!(call["scope"], SCOPE);
    }

    let token_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(token_file.path(), ASSERTION).unwrap();
    let (ok, out, _) = auth_check(&[
        ("PATH", &path),
        ("EXTRA_CA_CERTS", ca_path),
        ("AZURE_AUTHORITY_HOST", &authority),
        ("AZURE_TENANT_ID", TENANT),
        ("AZURE_CLIENT_ID", CLIENT),
        (
            "AZURE_FEDERATED_TOKEN_FILE",
            token_file.path().to_str().unwrap(),
        ),
    ])
    .await;
    assert!(ok, "{out}");
    assert_eq!(out["credential"], "WorkloadIdentityCredential");
    assert_eq!(
        calls.lock().unwrap().last().unwrap()["client_assertion"],
        ASSERTION
    );

    // Without the CA the same endpoint is not trusted: the TLS check is real.
    let (ok, out, _) = auth_check(&[
        ("PATH", &path),
        ("AZURE_AUTHORITY_HOST", &authority),
        ("AZURE_TENANT_ID", TENANT),
        ("AZURE_CLIENT_ID", CLIENT),
        ("AZURE_CLIENT_SECRET", SECRET),
    ])
    .await;
    assert!(!ok, "{out}");
    assert!(!out.to_string().contains(SECRET));
}

#[actix_web::test]
async fn developer_tools_are_run_for_a_token() {
    const TOKEN: &str = "developer-token-from-cli";
    for (tools, mode, expected) in [
        (&["az"][..], "dev", "AzureCliCredential"),
        (
            &["azd"][..],
            "AzureDeveloperCliCredential",
            "AzureDeveloperCliCredential",
        ),
        (&["az", "azd"][..], "", "DeveloperToolsCredential"),
    ] {
        let dir = tools_dir(tools, TOKEN);
        let (ok, out, _) = auth_check(&[
            ("PATH", &path_of(dir.path())),
            ("AZURE_TOKEN_CREDENTIALS", mode),
        ])
        .await;
        assert!(ok, "{tools:?}: {out}");
        assert_eq!(out["credential"], expected);
        assert_eq!(out["token_sha256"], sha256_hex(TOKEN));
    }
}

#[actix_web::test]
async fn nothing_available_fails_fast_and_says_what_to_set() {
    let empty = tempfile::tempdir().unwrap();
    let (ok, out, elapsed) = auth_check(&[("PATH", &path_of(empty.path()))]).await;
    assert!(!ok);
    let message = out["error"].as_str().unwrap();
    for expected in [
        "AZURE_CLIENT_SECRET",
        "AZURE_FEDERATED_TOKEN_FILE",
        "IDENTITY_ENDPOINT",
        "az login",
        "azd auth login",
    ] {
        assert!(
            message.contains(expected),
            "{expected} missing in: {message}"
        );
    }
    // The chain never probes IMDS: the answer is immediate, not a minute of retries.
    assert!(elapsed < Duration::from_secs(2), "took {elapsed:?}");
}
