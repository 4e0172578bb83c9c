//! Reading configuration from environment variables, with errors that name the variable.

use std::collections::HashMap;
use std::fmt::Display;
use std::str::FromStr;

/// A misconfigured environment variable: its name and what is wrong with it (never its value).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("configuration error in {variable}: {problem}")]
pub struct ConfigError {
    /// The environment variable at fault.
    pub variable: String,
    /// What is wrong, in words a reader can act on.
    pub problem: String,
}

impl ConfigError {
    /// Builds an error for `variable`.
    pub fn new(variable: impl Into<String>, problem: impl Into<String>) -> Self {
        Self {
            variable: variable.into(),
            problem: problem.into(),
        }
    }
}

/// Where configuration comes from: the process environment, or a map in tests.
pub trait EnvSource: Send + Sync {
    /// The value of `name`, or `None` when unset. Empty values count as unset.
    fn var(&self, name: &str) -> Option<String>;

    /// The value of `name`, or an error naming it when unset.
    fn required(&self, name: &str) -> Result<String, ConfigError> {
        self.var(name)
            .ok_or_else(|| ConfigError::new(name, "is required but not set"))
    }
}

impl dyn EnvSource + '_ {
    /// Parses `name` when set; `Ok(None)` when unset; an error naming it when malformed.
    pub fn parsed<T>(&self, name: &str) -> Result<Option<T>, ConfigError>
    where
        T: FromStr,
        T::Err: Display,
    {
        self.var(name)
            .map(|raw| {
                raw.trim()
                    .parse::<T>()
                    .map_err(|e| ConfigError::new(name, format!("cannot be parsed: {e}")))
            })
            .transpose()
    }

    /// Parses `name`, or returns `default` when unset.
    pub fn parsed_or<T>(&self, name: &str, default: T) -> Result<T, ConfigError>
    where
        T: FromStr,
        T::Err: Display,
    {
        Ok(self.parsed(name)?.unwrap_or(default))
    }
}

/// The real process environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl EnvSource for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.trim().is_empty())
    }
}

/// An environment held in memory, for tests and for composing a child process's environment.
#[derive(Debug, Clone, Default)]
pub struct MapEnv(HashMap<String, String>);

impl MapEnv {
    /// An empty environment.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `name=value` and returns the environment (builder style).
    pub fn with(mut self, name: &str, value: impl Into<String>) -> Self {
        self.0.insert(name.to_owned(), value.into());
        self
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for MapEnv {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Self(
            iter.into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }
}

impl EnvSource for MapEnv {
    fn var(&self, name: &str) -> Option<String> {
        self.0.get(name).filter(|v| !v.trim().is_empty()).cloned()
    }
}

/// The required URL `name`, `https` only: tokens are never sent over plain http.
pub fn https_url(env: &dyn EnvSource, name: &str) -> Result<reqwest::Url, ConfigError> {
    let url = any_url(env, name)?;
    if url.scheme() != "https" {
        return Err(ConfigError::new(
            name,
            "must be an https URL (tokens are never sent over plain http)",
        ));
    }
    Ok(url)
}

/// The required URL `name`, `http` or `https` (for an endpoint that takes no token).
pub fn http_url(env: &dyn EnvSource, name: &str) -> Result<reqwest::Url, ConfigError> {
    let url = any_url(env, name)?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ConfigError::new(name, "must be an http(s) URL"));
    }
    Ok(url)
}

fn any_url(env: &dyn EnvSource, name: &str) -> Result<reqwest::Url, ConfigError> {
    reqwest::Url::parse(env.required(name)?.trim())
        .map_err(|e| ConfigError::new(name, format!("is not a URL: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_required_variable_is_named() {
        let err = MapEnv::new().required("KEY_VAULT_URL").unwrap_err();
        assert_eq!(err.variable, "KEY_VAULT_URL");
        assert!(err.to_string().contains("KEY_VAULT_URL"));
    }

    #[test]
    fn malformed_number_is_named_and_default_applies_when_unset() {
        let env = MapEnv::new().with("PORT", "eighty");
        let env: &dyn EnvSource = &env;
        let err = env.parsed::<u16>("PORT").unwrap_err();
        assert_eq!(err.variable, "PORT");
        let unset: &dyn EnvSource = &MapEnv::new();
        assert_eq!(unset.parsed_or("PORT", 7071u16).unwrap(), 7071);
        let spaced: &dyn EnvSource = &MapEnv::new().with("PORT", " 81 ");
        assert_eq!(spaced.parsed_or("PORT", 7071u16), Ok(81));
    }

    #[test]
    fn empty_value_counts_as_unset() {
        assert_eq!(MapEnv::new().with("X", "  ").var("X"), None);
    }

    #[test]
    fn urls_are_parsed_and_plain_http_refused_where_tokens_go() {
        let env = MapEnv::new()
            .with("A", "https://acct.queue.core.windows.net/q")
            .with("B", "http://127.0.0.1:7071/api/RandomNumber")
            .with("C", "not a url")
            .with("D", "ftp://host/x");
        assert_eq!(
            https_url(&env, "A").unwrap().host_str(),
            Some("acct.queue.core.windows.net")
        );
        assert!(http_url(&env, "A").is_ok() && http_url(&env, "B").is_ok());
        let refused = https_url(&env, "B").unwrap_err();
        assert!(refused.problem.contains("https"), "{refused}");
        for (name, err) in [
            ("C", https_url(&env, "C")),
            ("D", http_url(&env, "D")),
            ("E", http_url(&env, "E")),
        ] {
            assert_eq!(err.unwrap_err().variable, name);
        }
    }
}
