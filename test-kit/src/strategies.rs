//! proptest strategies the configuration property tests of the services share.

use proptest::prelude::*;

/// A value for any configuration variable: anything at all, digits, signed numbers, URL-like
/// text, or empty.
pub fn env_value() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[0-9]{0,12}",
        "-?[0-9]{1,4}",
        "https?://[a-z0-9.:/_-]{0,40}",
        Just(String::new()),
    ]
}
