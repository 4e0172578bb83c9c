//! Where the code queue and its poison queue are: [`STORAGE_QUEUE_URL`] and [`POISON_QUEUE_URL`],
//! read the one way main-app, queue-worker and `keyless` all read them.

use crate::variables::{POISON_QUEUE_URL, STORAGE_QUEUE_URL};
use reqwest::Url;
use shared_auth::azure_error::resource_name;
use shared_auth::config::{ConfigError, EnvSource, https_url};

/// [`STORAGE_QUEUE_URL`]: an `https` URL whose path names a queue.
pub fn queue_url(env: &dyn EnvSource) -> Result<Url, ConfigError> {
    let url = https_url(env, STORAGE_QUEUE_URL)?;
    if resource_name(&url).is_empty() {
        return Err(ConfigError::new(
            STORAGE_QUEUE_URL,
            "must name a queue: https://<account>.queue.core.windows.net/<queue>",
        ));
    }
    Ok(url)
}

/// [`POISON_QUEUE_URL`], or the code queue's URL with `-poison` after its name: where the worker
/// moves a message it cannot handle.
pub fn poison_queue_url(env: &dyn EnvSource) -> Result<Url, ConfigError> {
    if env.var(POISON_QUEUE_URL).is_some() {
        return https_url(env, POISON_QUEUE_URL);
    }
    let mut url = queue_url(env)?;
    let path = format!("{}-poison", url.path().trim_end_matches('/'));
    url.set_path(&path);
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared_auth::MapEnv;

    #[test]
    fn the_poison_queue_is_named_or_follows_the_queue() {
        let env = MapEnv::new().with(STORAGE_QUEUE_URL, "https://a.queue.core.windows.net/q/");
        assert_eq!(resource_name(&queue_url(&env).unwrap()), "q");
        assert_eq!(
            poison_queue_url(&env).unwrap().as_str(),
            "https://a.queue.core.windows.net/q-poison"
        );
        let named = env.with(
            POISON_QUEUE_URL,
            "https://a.queue.core.windows.net/elsewhere",
        );
        assert_eq!(
            resource_name(&poison_queue_url(&named).unwrap()),
            "elsewhere"
        );
        let no_queue = MapEnv::new().with(STORAGE_QUEUE_URL, "https://a.queue.core.windows.net/");
        assert_eq!(
            queue_url(&no_queue).unwrap_err().variable,
            STORAGE_QUEUE_URL
        );
        let plain = MapEnv::new().with(STORAGE_QUEUE_URL, "http://a.queue.core.windows.net/q");
        assert_eq!(queue_url(&plain).unwrap_err().variable, STORAGE_QUEUE_URL);
    }
}
