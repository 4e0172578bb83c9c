//! Property tests of main-app's configuration parser: a complete environment with any one
//! variable set to anything is accepted or refused naming exactly that variable; never a panic.

use codes::variables::CODE_LEDGER_URL;
use codes::variables::STORAGE_QUEUE_URL;
use main_app::config::{Settings, VARIABLES};
use proptest::prelude::*;
use shared_auth::MapEnv;
use shared_auth::variables::KEY_VAULT_URL;
use shared_auth::variables::THIRD_PARTY_API_ENDPOINT;
use test_kit::strategies::env_value;

fn complete() -> MapEnv {
    MapEnv::new()
        .with(
            THIRD_PARTY_API_ENDPOINT,
            "http://127.0.0.1:7071/api/RandomNumber",
        )
        .with(KEY_VAULT_URL, "https://myvault.vault.azure.net")
        .with(
            STORAGE_QUEUE_URL,
            "https://acct.queue.core.windows.net/code-requests",
        )
        .with(CODE_LEDGER_URL, "https://acct.blob.core.windows.net/codes")
}

proptest! {
    #[test]
    fn one_bad_variable_is_named_and_nothing_panics(
        index in 0..VARIABLES.len(),
        value in env_value(),
    ) {
        let variable = VARIABLES[index];
        let env = complete().with(variable, value.clone());
        match Settings::from_env(&env) {
            Ok(_) => {}
            Err(e) => prop_assert_eq!(e.variable.as_str(), variable, "{:?}: {}", value, e),
        }
    }

    #[test]
    fn any_subset_of_variables_is_accepted_or_refused_by_name(
        values in prop::collection::vec(prop::option::of(env_value()), VARIABLES.len()),
    ) {
        let mut env = MapEnv::new();
        for (variable, value) in VARIABLES.iter().zip(values) {
            if let Some(value) = value {
                env = env.with(variable, value);
            }
        }
        if let Err(e) = Settings::from_env(&env) {
            prop_assert!(VARIABLES.contains(&e.variable.as_str()), "{}", e);
        }
    }
}
