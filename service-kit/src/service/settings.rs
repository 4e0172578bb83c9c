//! The settings scaffolding every service has: where it listens, URLs that must be `https`,
//! numbers and seconds within a range; every error names the variable, never echoes its value.

use shared_auth::config::{ConfigError, EnvSource};
use std::fmt::Display;
use std::net::{IpAddr, Ipv4Addr};
use std::ops::{Bound, RangeBounds};
use std::str::FromStr;
use std::time::Duration;

/// The listening port.
pub const PORT: &str = "PORT";
/// The listening address (default [`ANY_ADDRESS`]).
pub const BIND_ADDRESS: &str = "BIND_ADDRESS";
/// Every interface: the default of [`BIND_ADDRESS`], what a container needs.
pub const ANY_ADDRESS: IpAddr = IpAddr::V4(Ipv4Addr::UNSPECIFIED);

/// [`BIND_ADDRESS`], or [`ANY_ADDRESS`] when unset.
pub fn bind_address(env: &dyn EnvSource) -> Result<IpAddr, ConfigError> {
    env.parsed_or(BIND_ADDRESS, ANY_ADDRESS)
}

/// [`PORT`], or `default` when unset.
pub fn port(env: &dyn EnvSource, default: u16) -> Result<u16, ConfigError> {
    env.parsed_or(PORT, default)
}

/// `name` parsed (`default` when unset) and within `allowed`.
pub fn parsed_in<T>(
    env: &dyn EnvSource,
    name: &str,
    default: T,
    allowed: impl RangeBounds<T>,
) -> Result<T, ConfigError>
where
    T: FromStr + PartialOrd + Display,
    T::Err: Display,
{
    let value = env.parsed_or(name, default)?;
    if allowed.contains(&value) {
        return Ok(value);
    }
    let problem = match (allowed.start_bound(), allowed.end_bound()) {
        (Bound::Included(min), Bound::Included(max)) => format!("must be between {min} and {max}"),
        (Bound::Included(min), _) => format!("must be at least {min}"),
        (_, Bound::Included(max)) => format!("must be at most {max}"),
        _ => "is out of range".to_owned(),
    };
    Err(ConfigError::new(name, problem))
}

/// [`parsed_in`] for a variable counted in seconds.
pub fn seconds(
    env: &dyn EnvSource,
    name: &str,
    default: Duration,
    allowed: impl RangeBounds<u64>,
) -> Result<Duration, ConfigError> {
    parsed_in(env, name, default.as_secs(), allowed).map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared_auth::config::MapEnv;

    #[test]
    fn listening_defaults_and_errors_name_the_variable() {
        let unset = MapEnv::new();
        assert_eq!(bind_address(&unset), Ok(ANY_ADDRESS));
        assert_eq!(port(&unset, 8080), Ok(8080));
        let bad = MapEnv::new()
            .with(PORT, "70000")
            .with(BIND_ADDRESS, "nowhere");
        assert_eq!(port(&bad, 8080).unwrap_err().variable, PORT);
        assert_eq!(bind_address(&bad).unwrap_err().variable, BIND_ADDRESS);
    }

    #[test]
    fn ranges_are_enforced_and_stated() {
        let env = MapEnv::new()
            .with("ZERO", "0")
            .with("BIG", "3601")
            .with("WORDS", "ten");
        let hour = 1..=3600;
        assert_eq!(
            seconds(&env, "UNSET", Duration::from_secs(25), hour.clone()),
            Ok(Duration::from_secs(25))
        );
        let err = seconds(&env, "BIG", Duration::ZERO, hour.clone()).unwrap_err();
        assert_eq!(
            (err.variable.as_str(), err.problem.as_str()),
            ("BIG", "must be between 1 and 3600")
        );
        let err = seconds(&env, "ZERO", Duration::ZERO, 1..).unwrap_err();
        assert_eq!(err.problem, "must be at least 1");
        assert_eq!(
            parsed_in(&env, "BIG", 0u32, ..=32).unwrap_err().problem,
            "must be at most 32"
        );
        assert_eq!(
            parsed_in(&env, "WORDS", 0u32, ..).unwrap_err().variable,
            "WORDS"
        );
    }
}
