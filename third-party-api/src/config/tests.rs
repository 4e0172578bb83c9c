//! Settings read from the environment: defaults, each malformed variable named.

use super::*;
use shared_auth::MapEnv;

const GOOD: &str = "abcdefghijklmnop0123456789";

#[test]
fn defaults_apply_when_nothing_is_set() {
    let settings = Settings::from_env(&MapEnv::new()).unwrap();
    assert_eq!(settings.port, DEFAULT_PORT);
    assert_eq!(
        settings.key_store,
        KeyStoreLocation::File(PathBuf::from(DEFAULT_KEYS_FILE))
    );
    assert_eq!(settings.keys_refresh, DEFAULT_KEYS_REFRESH);
    assert!(settings.master_key_secret.is_none());
    assert!(settings.seed_master_key.is_none());
    assert!(settings.seed_function_keys.is_empty());
}

#[test]
fn each_malformed_variable_is_named_without_its_value() {
    let cases = [
        (PORT, "70000"),
        (BIND_ADDRESS, "not-an-ip"),
        (THIRD_PARTY_API_MASTER_KEY, "short"),
        (THIRD_PARTY_API_FUNCTION_KEYS, "novalue"),
        (
            THIRD_PARTY_API_FUNCTION_KEYS,
            "bad name!=abcdefghijklmnop0123",
        ),
        (THIRD_PARTY_API_FUNCTION_KEYS, "a=tooshort-secret"),
        (THIRD_PARTY_API_KEYS_URL, "not a url"),
        (
            THIRD_PARTY_API_KEYS_URL,
            "http://a.blob.core.windows.net/c/keys.json",
        ),
        (
            THIRD_PARTY_API_KEYS_URL,
            "https://a.blob.core.windows.net/c/",
        ),
        (
            THIRD_PARTY_API_KEYS_URL,
            "https://a.blob.core.windows.net/keys.json",
        ),
        (
            THIRD_PARTY_API_KEYS_URL,
            "https://a.blob.core.windows.net/c/keys.json?sig=abc",
        ),
        (THIRD_PARTY_API_KEYS_REFRESH_SECONDS, "0"),
        (THIRD_PARTY_API_KEYS_REFRESH_SECONDS, "ten"),
        (KEY_VAULT_URL, "http://vault.example/"),
    ];
    for (variable, value) in cases {
        let err = Settings::from_env(&MapEnv::new().with(variable, value)).unwrap_err();
        assert_eq!(err.variable, variable, "{err}");
        let may_quote = [
            PORT,
            BIND_ADDRESS,
            THIRD_PARTY_API_KEYS_URL,
            THIRD_PARTY_API_KEYS_REFRESH_SECONDS,
            KEY_VAULT_URL,
        ];
        if !may_quote.contains(&variable) {
            assert!(!err.to_string().contains(value), "{err}");
        }
    }
    let twice = format!("a={GOOD},a={GOOD}");
    let err =
        Settings::from_env(&MapEnv::new().with(THIRD_PARTY_API_FUNCTION_KEYS, twice)).unwrap_err();
    assert!(err.problem.contains("entry 2") && err.problem.contains("earlier entry"));
}

#[test]
fn a_single_key_seeds_the_default_key() {
    let env = MapEnv::new().with(THIRD_PARTY_API_FUNCTION_KEY, GOOD);
    let settings = Settings::from_env(&env).unwrap();
    assert_eq!(settings.seed_function_keys.len(), 1);
    assert_eq!(settings.seed_function_keys[0].0.as_str(), "default");
    let clash = env.with(THIRD_PARTY_API_FUNCTION_KEYS, format!("default={GOOD}"));
    let err = Settings::from_env(&clash).unwrap_err();
    assert_eq!(err.variable, THIRD_PARTY_API_FUNCTION_KEY);
    let bad = MapEnv::new().with(THIRD_PARTY_API_FUNCTION_KEY, "short");
    assert_eq!(
        Settings::from_env(&bad).unwrap_err().variable,
        THIRD_PARTY_API_FUNCTION_KEY
    );
}

#[test]
fn a_blob_store_and_a_vault_master_key_are_read_and_conflicts_named() {
    let blob = "https://acct.blob.core.windows.net/third-party-api-keys/keys.json";
    let env = MapEnv::new()
        .with(THIRD_PARTY_API_KEYS_URL, blob)
        .with(THIRD_PARTY_API_KEYS_REFRESH_SECONDS, "3")
        .with(KEY_VAULT_URL, "https://kv.vault.azure.net/");
    let settings = Settings::from_env(&env).unwrap();
    assert_eq!(
        settings.key_store,
        KeyStoreLocation::Blob(azure_core::http::Url::parse(blob).unwrap())
    );
    assert_eq!(settings.keys_refresh, Duration::from_secs(3));
    assert_eq!(
        settings.master_key_secret.unwrap().secret_name,
        DEFAULT_MASTER_KEY_SECRET_NAME
    );
    let both = env.clone().with(THIRD_PARTY_API_KEYS_FILE, "keys.json");
    assert_eq!(
        Settings::from_env(&both).unwrap_err().variable,
        THIRD_PARTY_API_KEYS_URL
    );
    let seeded_master = env.with(THIRD_PARTY_API_MASTER_KEY, GOOD);
    let err = Settings::from_env(&seeded_master).unwrap_err();
    assert_eq!(err.variable, THIRD_PARTY_API_MASTER_KEY);
    assert!(!err.to_string().contains(GOOD));
}

#[test]
fn key_list_is_parsed() {
    let env = MapEnv::new().with(
        THIRD_PARTY_API_FUNCTION_KEYS,
        format!("default={GOOD}, ops = {GOOD}x"),
    );
    let settings = Settings::from_env(&env).unwrap();
    let names: Vec<&str> = settings
        .seed_function_keys
        .iter()
        .map(|(n, _)| n.as_str())
        .collect();
    assert_eq!(names, ["default", "ops"]);
    assert_eq!(
        settings.seed_function_keys[1].1.expose(),
        format!("{GOOD}x")
    );
}
