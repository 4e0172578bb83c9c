//! Property tests of queue-worker's configuration parser: a complete environment with any one
//! variable set to anything is accepted or refused naming exactly that variable; never a panic.

use codes::variables::CODE_LEDGER_URL;
use codes::variables::STORAGE_QUEUE_URL;
use proptest::prelude::*;
use queue_worker::config::{Settings, VARIABLES};
use shared_auth::MapEnv;
use test_kit::strategies::env_value;

fn complete() -> MapEnv {
    MapEnv::new()
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
        if let Err(e) = Settings::from_env(&env) {
            prop_assert_eq!(e.variable.as_str(), variable, "{:?}: {}", value, e);
        }
    }

    #[test]
    fn accepted_settings_stay_within_their_documented_bounds(
        index in 0..VARIABLES.len(),
        value in "[0-9]{1,7}",
    ) {
        let env = complete().with(VARIABLES[index], value);
        if let Ok(settings) = Settings::from_env(&env) {
            prop_assert!((1..=32).contains(&settings.batch_size));
            prop_assert!(settings.max_dequeue_count >= 1);
            prop_assert!(!settings.visibility_timeout.is_zero());
        }
    }
}
