//! The names of the environment variables every service reads through this crate, in one place
//! that depends on nothing: the credential and transport ones, listed in [`COMMON_VARIABLES`]. Also
//! [`KEY_VAULT_URL`], which only the services with a vault read, so it is not common, and the
//! names more than one crate reads about the third-party API and its keys (the services read
//! them, `keyless` reads the same ones to act on what they hold), with the secrets' default names.

/// Chooses the credential: `dev`, `prod`, or one credential's name.
pub const AZURE_TOKEN_CREDENTIALS: &str = "AZURE_TOKEN_CREDENTIALS";
/// Entra tenant of a service principal or workload identity.
pub const AZURE_TENANT_ID: &str = "AZURE_TENANT_ID";
/// Client ID of a service principal, workload identity or user-assigned managed identity.
pub const AZURE_CLIENT_ID: &str = "AZURE_CLIENT_ID";
/// Client secret of a service principal.
pub const AZURE_CLIENT_SECRET: &str = "AZURE_CLIENT_SECRET";
/// File holding a federated token (Kubernetes workload identity).
pub const AZURE_FEDERATED_TOKEN_FILE: &str = "AZURE_FEDERATED_TOKEN_FILE";
/// Entra authority host (https), for sovereign clouds and local emulators.
pub const AZURE_AUTHORITY_HOST: &str = "AZURE_AUTHORITY_HOST";
/// Managed identity endpoint of App Service and Container Apps.
pub const IDENTITY_ENDPOINT: &str = "IDENTITY_ENDPOINT";
/// Shared secret header value for `IDENTITY_ENDPOINT`.
pub const IDENTITY_HEADER: &str = "IDENTITY_HEADER";

/// The Key Vault a service reads its secrets from (read by the services that have one, through
/// [`crate::secret_cache`]; named here once).
pub const KEY_VAULT_URL: &str = "KEY_VAULT_URL";

/// URL of the third-party function (`.../api/RandomNumber`); its admin API is at the same origin.
pub const THIRD_PARTY_API_ENDPOINT: &str = "THIRD_PARTY_API_ENDPOINT";
/// The secret holding main-app's function key for the third-party API.
pub const THIRD_PARTY_API_SECRET_NAME: &str = "THIRD_PARTY_API_SECRET_NAME";
/// The name of [`THIRD_PARTY_API_SECRET_NAME`]'s secret when it is unset, as in the walkthrough.
pub const DEFAULT_SECRET_NAME: &str = "third-party-api-key";
/// The secret holding the third-party API's master key.
pub const THIRD_PARTY_API_MASTER_KEY_SECRET_NAME: &str = "THIRD_PARTY_API_MASTER_KEY_SECRET_NAME";
/// The name of [`THIRD_PARTY_API_MASTER_KEY_SECRET_NAME`]'s secret when it is unset.
pub const DEFAULT_MASTER_KEY_SECRET_NAME: &str = "third-party-api-master-key";
/// The third-party API's key store: one blob shared by every replica.
pub const THIRD_PARTY_API_KEYS_URL: &str = "THIRD_PARTY_API_KEYS_URL";
/// Seconds between two reads of the key store (and of the master key) by each replica.
pub const THIRD_PARTY_API_KEYS_REFRESH_SECONDS: &str = "THIRD_PARTY_API_KEYS_REFRESH_SECONDS";
/// How long main-app uses the key read from Key Vault before it reads it again.
pub const SECRET_CACHE_TTL_SECONDS: &str = "SECRET_CACHE_TTL_SECONDS";

/// PEM file of CA certificates added to (not replacing) the system roots: local emulators only.
pub const EXTRA_CA_CERTS: &str = "EXTRA_CA_CERTS";

/// Variables every service reads through this crate: identity and transport (telemetry's are
/// `service_kit::telemetry::VARIABLES`).
pub const COMMON_VARIABLES: &[&str] = &[
    AZURE_TOKEN_CREDENTIALS,
    AZURE_TENANT_ID,
    AZURE_CLIENT_ID,
    AZURE_CLIENT_SECRET,
    AZURE_FEDERATED_TOKEN_FILE,
    AZURE_AUTHORITY_HOST,
    IDENTITY_ENDPOINT,
    IDENTITY_HEADER,
    EXTRA_CA_CERTS,
];
