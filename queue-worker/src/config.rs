//! Settings of queue-worker, read once from the environment; a bad value is refused by name.

use codes::envelope::MessageEncoding;
use shared_auth::{ConfigError, EnvSource};
use std::net::IpAddr;
use std::time::Duration;

/// The queue to consume.
pub const STORAGE_QUEUE_URL: &str = "STORAGE_QUEUE_URL";
/// The poison queue; default `<STORAGE_QUEUE_URL>-poison`.
pub const POISON_QUEUE_URL: &str = "POISON_QUEUE_URL";
/// The ledger container.
pub const CODE_LEDGER_URL: &str = "CODE_LEDGER_URL";
/// Messages per receive, 1 to 32 (default 16); also the number handled at once.
pub const WORKER_BATCH_SIZE: &str = "WORKER_BATCH_SIZE";
/// Deliveries before a failing message goes to poison (default 5).
pub const WORKER_MAX_DEQUEUE_COUNT: &str = "WORKER_MAX_DEQUEUE_COUNT";
/// Visibility timeout of a received message in seconds (default 30), renewed at half of it.
pub const WORKER_VISIBILITY_TIMEOUT_SECONDS: &str = "WORKER_VISIBILITY_TIMEOUT_SECONDS";
/// Delay before a failed message is visible again, in seconds (default 0).
pub const WORKER_RETRY_DELAY_SECONDS: &str = "WORKER_RETRY_DELAY_SECONDS";
/// Longest idle polling interval in milliseconds (default 60000).
pub const WORKER_MAX_POLL_INTERVAL_MS: &str = "WORKER_MAX_POLL_INTERVAL_MS";
/// Time in-flight work gets after SIGTERM, in seconds (default 25).
pub const WORKER_SHUTDOWN_GRACE_SECONDS: &str = "WORKER_SHUTDOWN_GRACE_SECONDS";
/// Port of `/healthz`, `/readyz`, `/metrics` (default 8081).
pub const PORT: &str = "PORT";
/// Address of that port (default 0.0.0.0).
pub const BIND_ADDRESS: &str = "BIND_ADDRESS";

/// Every variable queue-worker reads itself (identity and telemetry: `shared_auth::config::COMMON_VARIABLES`).
pub const VARIABLES: &[&str] = &[
    STORAGE_QUEUE_URL,
    POISON_QUEUE_URL,
    CODE_LEDGER_URL,
    WORKER_BATCH_SIZE,
    WORKER_MAX_DEQUEUE_COUNT,
    WORKER_VISIBILITY_TIMEOUT_SECONDS,
    WORKER_RETRY_DELAY_SECONDS,
    WORKER_MAX_POLL_INTERVAL_MS,
    WORKER_SHUTDOWN_GRACE_SECONDS,
    PORT,
    BIND_ADDRESS,
    codes::envelope::QUEUE_MESSAGE_ENCODING,
];

/// Largest batch Queue Storage returns.
pub const MAX_BATCH: u32 = 32;
/// Shortest idle polling interval.
pub const MIN_POLL_INTERVAL: Duration = Duration::from_millis(100);

/// Everything queue-worker reads from its environment.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Queue to consume.
    pub queue_url: reqwest::Url,
    /// Where poison goes.
    pub poison_queue_url: reqwest::Url,
    /// The ledger.
    pub ledger_url: reqwest::Url,
    /// Message encoding.
    pub encoding: MessageEncoding,
    /// Messages per receive and at once.
    pub batch_size: u32,
    /// Deliveries before poison.
    pub max_dequeue_count: i64,
    /// Visibility timeout of a received message.
    pub visibility_timeout: Duration,
    /// Delay before a failed message is visible again.
    pub retry_delay: Duration,
    /// Longest idle polling interval.
    pub max_poll_interval: Duration,
    /// Time in-flight work gets after SIGTERM.
    pub shutdown_grace: Duration,
    /// Health port.
    pub port: u16,
    /// Health address.
    pub bind_address: IpAddr,
}

fn https(name: &str, raw: String) -> Result<reqwest::Url, ConfigError> {
    let url = reqwest::Url::parse(&raw)
        .map_err(|e| ConfigError::new(name, format!("is not a URL: {e}")))?;
    if url.scheme() != "https" {
        return Err(ConfigError::new(
            name,
            "must be an https URL (tokens are never sent over plain http)",
        ));
    }
    Ok(url)
}

fn in_range<T: PartialOrd + std::fmt::Display>(
    name: &str,
    value: T,
    min: T,
    max: T,
) -> Result<T, ConfigError> {
    if value < min || value > max {
        return Err(ConfigError::new(
            name,
            format!("must be between {min} and {max}"),
        ));
    }
    Ok(value)
}

impl Settings {
    /// Reads and validates the settings.
    pub fn from_env(env: &dyn EnvSource) -> Result<Self, ConfigError> {
        let queue_url = https(STORAGE_QUEUE_URL, env.required(STORAGE_QUEUE_URL)?)?;
        let queue_path = queue_url.path().trim_end_matches('/').to_owned();
        if queue_path.rsplit('/').next().unwrap_or_default().is_empty() {
            return Err(ConfigError::new(
                STORAGE_QUEUE_URL,
                "must name a queue: https://<account>.queue.core.windows.net/<queue>",
            ));
        }
        let poison_queue_url = match env.var(POISON_QUEUE_URL) {
            Some(raw) => https(POISON_QUEUE_URL, raw)?,
            None => {
                let mut url = queue_url.clone();
                url.set_path(&format!("{queue_path}-poison"));
                url
            }
        };
        let visibility: u64 = env.parsed_or(WORKER_VISIBILITY_TIMEOUT_SECONDS, 30)?;
        Ok(Self {
            queue_url,
            poison_queue_url,
            ledger_url: https(CODE_LEDGER_URL, env.required(CODE_LEDGER_URL)?)?,
            encoding: MessageEncoding::from_env(env)?,
            batch_size: in_range(
                WORKER_BATCH_SIZE,
                env.parsed_or(WORKER_BATCH_SIZE, 16)?,
                1,
                MAX_BATCH,
            )?,
            max_dequeue_count: in_range(
                WORKER_MAX_DEQUEUE_COUNT,
                env.parsed_or(WORKER_MAX_DEQUEUE_COUNT, 5)?,
                1,
                100,
            )?,
            visibility_timeout: Duration::from_secs(in_range(
                WORKER_VISIBILITY_TIMEOUT_SECONDS,
                visibility,
                2,
                7 * 24 * 3600,
            )?),
            retry_delay: Duration::from_secs(in_range(
                WORKER_RETRY_DELAY_SECONDS,
                env.parsed_or(WORKER_RETRY_DELAY_SECONDS, 0)?,
                0,
                3600,
            )?),
            max_poll_interval: Duration::from_millis(in_range(
                WORKER_MAX_POLL_INTERVAL_MS,
                env.parsed_or(WORKER_MAX_POLL_INTERVAL_MS, 60_000)?,
                100,
                600_000,
            )?),
            shutdown_grace: Duration::from_secs(in_range(
                WORKER_SHUTDOWN_GRACE_SECONDS,
                env.parsed_or(WORKER_SHUTDOWN_GRACE_SECONDS, 25)?,
                1,
                3600,
            )?),
            port: env.parsed_or(PORT, 8081)?,
            bind_address: env.parsed_or(BIND_ADDRESS, IpAddr::from([0, 0, 0, 0]))?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared_auth::MapEnv;

    fn complete() -> MapEnv {
        MapEnv::new()
            .with(
                STORAGE_QUEUE_URL,
                "https://acct.queue.core.windows.net/code-requests",
            )
            .with(CODE_LEDGER_URL, "https://acct.blob.core.windows.net/codes")
    }

    #[test]
    fn defaults_follow_the_functions_queue_trigger() {
        let s = Settings::from_env(&complete()).unwrap();
        assert_eq!(s.batch_size, 16);
        assert_eq!(s.max_dequeue_count, 5);
        assert_eq!(s.max_poll_interval, Duration::from_secs(60));
        assert_eq!(
            s.poison_queue_url.as_str(),
            "https://acct.queue.core.windows.net/code-requests-poison"
        );
    }

    #[test]
    fn bad_values_are_refused_by_name() {
        for (name, value) in [
            (WORKER_BATCH_SIZE, "33"),
            (WORKER_BATCH_SIZE, "0"),
            (WORKER_MAX_DEQUEUE_COUNT, "many"),
            (WORKER_VISIBILITY_TIMEOUT_SECONDS, "1"),
            (STORAGE_QUEUE_URL, "http://acct.queue.core.windows.net/q"),
            (STORAGE_QUEUE_URL, "https://acct.queue.core.windows.net/"),
            (STORAGE_QUEUE_URL, "https://_:"),
            (CODE_LEDGER_URL, ""),
            (POISON_QUEUE_URL, "not a url"),
            ("QUEUE_MESSAGE_ENCODING", "utf16"),
        ] {
            let err = Settings::from_env(&complete().with(name, value)).unwrap_err();
            assert_eq!(err.variable, name, "{value}");
        }
    }
}
