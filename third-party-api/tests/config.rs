//! Property tests of the configuration parsers: any environment is either accepted or refused
//! with an error naming a variable, never a panic, and no error ever echoes a value.

use proptest::prelude::*;
use service_kit::service::settings::BIND_ADDRESS;
use service_kit::service::settings::PORT;
use shared_auth::MapEnv;
use third_party_api::config::{
    Settings, THIRD_PARTY_API_FUNCTION_KEY, THIRD_PARTY_API_FUNCTION_KEYS,
    THIRD_PARTY_API_KEYS_FILE, THIRD_PARTY_API_MASTER_KEY, VARIABLES,
};
use third_party_api::key_store::{KeyName, KeyValue};

/// Put inside every generated value: if an error shows it, a value was echoed.
const CANARY: &str = "Qx7Canary";

/// Text that looks like a key: key characters around the canary, any length.
fn key_like() -> impl Strategy<Value = String> {
    ("[A-Za-z0-9+/=_.-]{0,40}", "[A-Za-z0-9+/=_.-]{0,300}")
        .prop_map(|(before, after)| format!("{before}{CANARY}{after}"))
}

/// Anything at all around the canary: unicode, control characters, separators.
fn anything() -> impl Strategy<Value = String> {
    (any::<String>(), any::<String>()).prop_map(|(a, b)| format!("{a}{CANARY}{b}"))
}

/// `name=value,...` lists mixing plausible and broken entries, the canary in names or values.
fn key_list() -> impl Strategy<Value = String> {
    let name = prop_oneof![
        "[A-Za-z0-9._-]{1,20}",
        Just(CANARY.to_owned()),
        Just("default".to_owned()),
        any::<String>(),
    ];
    let value = prop_oneof![key_like(), anything(), Just(String::new())];
    let separator = prop_oneof![Just("="), Just(" = "), Just(""), Just("=="), Just(",")];
    prop::collection::vec((name, separator, value), 1..5).prop_map(|entries| {
        entries
            .into_iter()
            .map(|(n, s, v)| format!("{n}{s}{v}"))
            .collect::<Vec<_>>()
            .join(",")
    })
}

fn value_for(variable: &'static str) -> BoxedStrategy<String> {
    match variable {
        THIRD_PARTY_API_FUNCTION_KEYS => prop_oneof![key_list(), anything()].boxed(),
        THIRD_PARTY_API_MASTER_KEY | THIRD_PARTY_API_FUNCTION_KEY => {
            prop_oneof![key_like(), anything()].boxed()
        }
        _ => prop_oneof![anything(), key_like()].boxed(),
    }
}

/// Any subset of the variables, each with a value holding the canary.
fn environment() -> impl Strategy<Value = Vec<(&'static str, String)>> {
    let per_variable: Vec<_> = VARIABLES
        .iter()
        .filter(|v| **v != THIRD_PARTY_API_KEYS_FILE)
        .map(|v| prop::option::of(value_for(v).prop_map(move |value| (*v, value))))
        .collect();
    per_variable.prop_map(|set| set.into_iter().flatten().collect())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_environment_is_accepted_or_refused_by_name_without_echo(env in environment()) {
        let map: MapEnv = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        match Settings::from_env(&map) {
            Ok(settings) => {
                for (_, value) in &settings.seed_function_keys {
                    prop_assert!(KeyValue::parse(value.expose()).is_ok());
                }
            }
            Err(err) => {
                prop_assert!(
                    env.iter().any(|(k, _)| *k == err.variable),
                    "{} is not a variable that was set", err.variable
                );
                for text in [err.to_string(), format!("{err:?}")] {
                    prop_assert!(text.contains(&err.variable));
                    prop_assert!(!text.contains(CANARY), "a value was echoed: {}", text);
                }
            }
        }
    }

    #[test]
    fn a_repeated_name_is_refused_without_echoing_it(
        names in prop::collection::vec(prop_oneof![Just(CANARY), Just("a"), Just("b")], 2..6),
        value in "[A-Za-z0-9+/=_.-]{16,64}",
    ) {
        let list = names
            .iter()
            .map(|n| format!("{n}={value}"))
            .collect::<Vec<_>>()
            .join(",");
        let repeated = names.iter().enumerate().any(|(i, n)| names[..i].contains(n));
        match Settings::from_env(&MapEnv::new().with(THIRD_PARTY_API_FUNCTION_KEYS, list)) {
            Ok(_) => prop_assert!(!repeated),
            Err(err) => {
                prop_assert!(repeated);
                prop_assert!(err.problem.contains("earlier entry"), "{}", err);
                prop_assert!(!err.to_string().contains(CANARY), "a name was echoed: {}", err);
                prop_assert!(!err.to_string().contains(&value), "a value was echoed: {}", err);
            }
        }
    }

    #[test]
    fn any_single_value_never_panics(variable in prop::sample::select(VARIABLES.to_vec()), value in any::<String>()) {
        let _ = Settings::from_env(&MapEnv::new().with(variable, value));
    }

    #[test]
    fn well_formed_key_lists_round_trip(
        entries in prop::collection::btree_map("[A-Za-z0-9][A-Za-z0-9._-]{0,63}", "[A-Za-z0-9+/=_.-]{16,256}", 1..6)
    ) {
        let list = entries
            .iter()
            .map(|(n, v)| format!(" {n} = {v} "))
            .collect::<Vec<_>>()
            .join(",");
        let settings = Settings::from_env(&MapEnv::new().with(THIRD_PARTY_API_FUNCTION_KEYS, list));
        let names_are_valid = entries.keys().all(|n| KeyName::parse(n).is_ok());
        match settings {
            Ok(settings) => {
                prop_assert!(names_are_valid);
                let parsed: Vec<(String, String)> = settings
                    .seed_function_keys
                    .iter()
                    .map(|(n, v)| (n.as_str().to_owned(), v.expose().to_owned()))
                    .collect();
                let expected: Vec<(String, String)> = entries.into_iter().collect();
                prop_assert_eq!(parsed, expected);
            }
            // Only names starting with `.` are refused among these.
            Err(err) => {
                prop_assert!(!names_are_valid, "{}", err);
                prop_assert_eq!(err.variable, THIRD_PARTY_API_FUNCTION_KEYS);
            }
        }
    }

    #[test]
    fn ports_and_addresses_parse_or_are_named(port in any::<String>(), address in any::<String>()) {
        let env = MapEnv::new().with(PORT, port.clone()).with(BIND_ADDRESS, address.clone());
        match Settings::from_env(&env) {
            Ok(settings) => {
                if !port.trim().is_empty() {
                    prop_assert_eq!(Some(settings.port), port.trim().parse().ok());
                }
            }
            Err(err) => prop_assert!(err.variable == BIND_ADDRESS || err.variable == PORT),
        }
    }
}
