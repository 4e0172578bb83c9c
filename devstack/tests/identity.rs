//! The identity emulator through `azure_identity`: managed identity over the App Service protocol
//! (in a child process, as a service runs it) and the client-secret flow; and the Key Vault
//! emulator's answers to bad tokens.

mod support;

use devstack::keyvault::VAULT_RESOURCE;
use devstack::stack::{Identity, Principal};
use devstack::stack::{SECRET_NAME, profile_dir};
use shared_auth::credential_from_env;
use support::start_stack;

/// `auth-check token <scope>` (shared-auth's tool, built by `cargo test --workspace`) with the
/// environment devstack gives a service.
async fn auth_check(env: &[(String, String)], scope: &str) -> (bool, serde_json::Value) {
    let binary = profile_dir().join("auth-check");
    assert!(
        binary.is_file(),
        "build it first: cargo build -p shared-auth --bins"
    );
    let output = tokio::process::Command::new(binary)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .args(["token", scope])
        .output()
        .await
        .unwrap();
    let text = if output.status.success() {
        output.stdout
    } else {
        output.stderr
    };
    (
        output.status.success(),
        serde_json::from_slice(&text).unwrap_or(serde_json::Value::Null),
    )
}

#[tokio::test]
async fn managed_identity_credential_gets_a_token_for_each_service() {
    let stack = start_stack(|_| {}).await;
    let env = stack.service_env(devstack::stack::Service::ThirdPartyApi);
    let (ok, out) = auth_check(&env, "https://vault.azure.net/.default").await;
    assert!(ok, "{out}");
    assert_eq!(out["credential"], "ManagedIdentityCredential");

    // A wrong header is refused; the error carries no header value.
    let wrong: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| {
            let v = if k == "IDENTITY_HEADER" {
                "wrong-header".to_owned()
            } else {
                v.clone()
            };
            (k.clone(), v)
        })
        .collect();
    let (ok, out) = auth_check(&wrong, "https://vault.azure.net/.default").await;
    assert!(!ok);
    assert!(!out.to_string().contains("wrong-header"));
}

#[tokio::test]
async fn client_secret_credential_gets_tokens_naming_the_identity() {
    let stack = start_stack(|_| {}).await;
    let env = stack.client_env(Principal::Developer).unwrap();
    let credential = credential_from_env(&env, stack.http()).unwrap().credential;
    let token = credential
        .get_token(&["https://storage.azure.com/.default"], None)
        .await
        .unwrap();
    let claims = stack
        .identities
        .verifier()
        .verify(token.token.secret(), &["https://storage.azure.com"])
        .unwrap();
    let developer = stack.identity(Principal::Developer);
    assert_eq!(claims.oid, developer.object_id);
    assert_eq!(claims.appid, developer.client_id);
    assert!(claims.iss.starts_with("https://sts.windows.net/"));

    // A wrong secret is refused by the token endpoint.
    let wrong = env.with("AZURE_CLIENT_SECRET", "not-the-secret");
    let credential = credential_from_env(&wrong, stack.http())
        .unwrap()
        .credential;
    let err = credential
        .get_token(&["https://storage.azure.com/.default"], None)
        .await
        .unwrap_err();
    assert!(
        shared_auth::azure_error::error_chain(&err).contains("AADSTS7000215"),
        "{err}"
    );
}

/// GET `url` with `token`; the status and JSON body.
async fn get_with(stack: &support::TestStack, url: &str, token: &str) -> (u16, serde_json::Value) {
    let res = stack
        .http()
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or_default())
}

#[tokio::test]
async fn the_vault_answers_bad_tokens_with_401_and_unknown_callers_with_403() {
    let stack = start_stack(|_| {}).await;
    let url = format!(
        "{}/secrets/{SECRET_NAME}/?api-version=2025-07-01",
        stack.urls.key_vault
    );
    let main_app = stack.identity(Identity::MainApp);

    let res = stack.http().get(&url).send().await.unwrap();
    assert_eq!(res.status(), 401);
    let challenge = res.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        challenge.contains("resource=\"https://vault.azure.net\""),
        "{challenge}"
    );

    let wrong_audience = stack
        .identities
        .issue(&main_app, "https://storage.azure.com", 3600);
    let expired = stack.identities.issue(&main_app, VAULT_RESOURCE, -3600);
    for (token, code) in [
        (wrong_audience.as_str(), "AKV10022"),
        (expired.as_str(), "AKV10023"),
        ("a.b.c", "AKV10001"),
    ] {
        let (status, body) = get_with(&stack, &url, token).await;
        assert_eq!(status, 401);
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(code), "{body}");
    }
    let forged = devstack::identity::IdentityProvider::new(&["main-app"]).unwrap();
    let token = forged.issue(&forged.get("main-app").unwrap(), VAULT_RESOURCE, 3600);
    assert_eq!(get_with(&stack, &url, &token).await.0, 401);

    // A valid token of an identity without a role: 403 ForbiddenByRbac.
    let worker = stack.identity(Identity::QueueWorker);
    let token = stack.identities.issue(&worker, VAULT_RESOURCE, 3600);
    let (status, body) = get_with(&stack, &url, &token).await;
    assert_eq!(status, 403);
    assert_eq!(body["error"]["innererror"]["code"], "ForbiddenByRbac");

    // Missing or unknown api-version: 400.
    let token = stack.identities.issue(&main_app, VAULT_RESOURCE, 3600);
    for bad in ["", "?api-version=1999-01-01"] {
        let url = format!("{}/secrets/{SECRET_NAME}/{bad}", stack.urls.key_vault);
        assert_eq!(get_with(&stack, &url, &token).await.0, 400, "{bad}");
    }
}

#[tokio::test]
async fn workload_identity_exchanges_a_federated_token_file_for_the_services_own_tokens() {
    let stack = start_stack(|_| {}).await;
    let main_app = stack.identity(Identity::MainApp);
    let worker = stack.identity(Identity::QueueWorker);
    let token_file = stack.dir.path().join("federated-token");
    let env_with_file = |assertion: &str| {
        std::fs::write(&token_file, assertion).unwrap();
        stack
            .client_env(Identity::MainApp)
            .unwrap()
            .with("AZURE_TOKEN_CREDENTIALS", "WorkloadIdentityCredential")
            .with("AZURE_CLIENT_SECRET", "")
            .with(
                "AZURE_FEDERATED_TOKEN_FILE",
                token_file.display().to_string(),
            )
    };

    // The service's own federated token: a Key Vault token naming main-app, and the secret.
    let env = env_with_file(&stack.identities.issue_federated(&main_app, 600));
    let chosen = credential_from_env(&env, stack.http()).unwrap();
    assert_eq!(chosen.choice.kind.name(), "WorkloadIdentityCredential");
    let token = chosen
        .credential
        .get_token(&[&format!("{VAULT_RESOURCE}/.default")], None)
        .await
        .unwrap();
    let claims = stack
        .identities
        .verifier()
        .verify(token.token.secret(), &[VAULT_RESOURCE])
        .unwrap();
    assert_eq!(claims.oid, main_app.object_id);
    let (status, _) = get_with(
        &stack,
        &format!(
            "{}/secrets/{SECRET_NAME}?api-version=2025-07-01",
            stack.urls.key_vault.trim_end_matches('/')
        ),
        token.token.secret(),
    )
    .await;
    assert_eq!(status, 200);

    // Another workload's token, an expired one, or one signed elsewhere: no federated match.
    let foreign = devstack::identity::IdentityProvider::new(&["main-app"]).unwrap();
    for assertion in [
        stack.identities.issue_federated(&worker, 600),
        stack.identities.issue_federated(&main_app, -600),
        foreign.issue_federated(&foreign.get("main-app").unwrap(), 600),
    ] {
        let env = env_with_file(&assertion);
        let credential = credential_from_env(&env, stack.http()).unwrap().credential;
        let err = credential
            .get_token(&[&format!("{VAULT_RESOURCE}/.default")], None)
            .await
            .unwrap_err();
        assert!(
            shared_auth::azure_error::error_chain(&err).contains("AADSTS700213"),
            "{err}"
        );
    }
}
