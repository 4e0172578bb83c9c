//! `auth-check`: which Azure credential would a service pick here, and does it work?
//!
//! `auth-check token <scope>` chooses the credential from the environment exactly as the services
//! do, gets a token and prints one JSON line: the credential, why, the expiry and a SHA-256
//! fingerprint of the token (never the token). `auth-check get <url>` sends a GET through the
//! shared transport (so `EXTRA_CA_CERTS` applies) and prints the status. Exit code 1 on failure,
//! with `{"error": ...}` on stderr.

use sha2::{Digest, Sha256};
use shared_auth::ProcessEnv;
use shared_auth::azure_error::error_chain;
use shared_auth::credential::credential_from_env;
use shared_auth::transport::http_client_from_env;

/// Which Azure credential would a service pick here, and does it work?
#[derive(Debug, clap::Parser)]
#[command(
    name = "auth-check",
    version,
    after_help = "The credential is chosen from the environment exactly as the services choose it (docs/configuration.md)."
)]
enum Cli {
    /// Get a token for SCOPE and print the credential, why, the expiry and the token's SHA-256
    /// fingerprint (never the token).
    Token {
        /// For example `https://vault.azure.net/.default`.
        scope: String,
    },
    /// GET URL through the shared transport (EXTRA_CA_CERTS applies) and print the status.
    Get {
        /// The URL asked.
        url: String,
    },
}

fn main() {
    let cli = <Cli as clap::Parser>::parse();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let outcome = runtime.block_on(async {
        match &cli {
            Cli::Token { scope } => token(scope).await,
            Cli::Get { url } => get(url).await,
        }
    });
    match outcome {
        Ok(line) => println!("{line}"),
        Err(message) => {
            eprintln!("{}", serde_json::json!({ "error": message }));
            std::process::exit(1);
        }
    }
}

async fn token(scope: &str) -> Result<String, String> {
    let http = http_client_from_env(&ProcessEnv).map_err(|e| e.to_string())?;
    let selected = credential_from_env(&ProcessEnv, &http).map_err(|e| e.to_string())?;
    let token = selected
        .credential
        .get_token(&[scope], None)
        .await
        .map_err(|e| error_chain(&e))?;
    let fingerprint = hex(&Sha256::digest(token.token.secret().as_bytes()));
    Ok(serde_json::json!({
        "credential": selected.choice.kind.name(),
        "reason": selected.choice.reason,
        "expires_on": token.expires_on.unix_timestamp(),
        "token_sha256": fingerprint,
    })
    .to_string())
}

async fn get(url: &str) -> Result<String, String> {
    let http = http_client_from_env(&ProcessEnv).map_err(|e| e.to_string())?;
    let response = http.get(url).send().await.map_err(|e| error_chain(&e))?;
    Ok(serde_json::json!({ "status": response.status().as_u16() }).to_string())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
