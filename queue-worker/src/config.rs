//! Settings of queue-worker, read once from the environment; a bad value is refused by name.

use codes::envelope::MessageEncoding;
use service_kit::service::SHUTDOWN_GRACE;
use service_kit::service::settings::{bind_address, parsed_in, port, seconds};
use shared_auth::config::https_url;
use shared_auth::{ConfigError, EnvSource};
use std::net::IpAddr;
use std::time::Duration;

use codes::variables::{CODE_LEDGER_URL, POISON_QUEUE_URL, STORAGE_QUEUE_URL};
use service_kit::service::settings::{BIND_ADDRESS, PORT};

/// Messages per receive, 1 to 32 (default 16); also the number handled at once.
pub const WORKER_BATCH_SIZE: &str = "WORKER_BATCH_SIZE";
/// Deliveries before a failing message goes to poison (default 5).
pub const WORKER_MAX_DEQUEUE_COUNT: &str = "WORKER_MAX_DEQUEUE_COUNT";
/// Visibility timeout of a received message in seconds (default 30), renewed at half of it.
pub const WORKER_VISIBILITY_TIMEOUT_SECONDS: &str = "WORKER_VISIBILITY_TIMEOUT_SECONDS";
/// Delay before a failed message is visible again, in seconds (default 0).
pub const WORKER_RETRY_DELAY_SECONDS: &str = "WORKER_RETRY_DELAY_SECONDS";
/// Longest idle polling interval in milliseconds (default 1000: a code is verifiable about a
/// second after it is issued, at one receive per second per idle worker).
pub const WORKER_MAX_POLL_INTERVAL_MS: &str = "WORKER_MAX_POLL_INTERVAL_MS";
/// Seconds between two sweeps of expired ledger records (default 60; 0 turns the sweep off, for
/// a deployment whose Storage lifecycle rule deletes them).
pub const WORKER_SWEEP_INTERVAL_SECONDS: &str = "WORKER_SWEEP_INTERVAL_SECONDS";
/// Time in-flight work gets after SIGTERM, in seconds (default [`SHUTDOWN_GRACE`], 25).
pub const WORKER_SHUTDOWN_GRACE_SECONDS: &str = "WORKER_SHUTDOWN_GRACE_SECONDS";
/// Default of [`PORT`], the port of `/healthz`, `/readyz`, `/metrics`.
pub const DEFAULT_PORT: u16 = 8081;

/// Every variable queue-worker reads itself (identity: `shared_auth::variables::COMMON_VARIABLES`; telemetry:
/// `service_kit::telemetry::VARIABLES`).
pub const VARIABLES: &[&str] = &[
    STORAGE_QUEUE_URL,
    POISON_QUEUE_URL,
    CODE_LEDGER_URL,
    WORKER_BATCH_SIZE,
    WORKER_MAX_DEQUEUE_COUNT,
    WORKER_VISIBILITY_TIMEOUT_SECONDS,
    WORKER_RETRY_DELAY_SECONDS,
    WORKER_MAX_POLL_INTERVAL_MS,
    WORKER_SWEEP_INTERVAL_SECONDS,
    WORKER_SHUTDOWN_GRACE_SECONDS,
    PORT,
    BIND_ADDRESS,
    codes::envelope::QUEUE_MESSAGE_ENCODING,
];

/// Largest batch Queue Storage returns.
pub const MAX_BATCH: u32 = 32;
/// Shortest idle polling interval.
pub const MIN_POLL_INTERVAL: Duration = Duration::from_millis(100);
/// Default of [`WORKER_MAX_POLL_INTERVAL_MS`].
pub const DEFAULT_MAX_POLL_INTERVAL: Duration = Duration::from_secs(1);
/// Default of [`WORKER_SWEEP_INTERVAL_SECONDS`].
pub const DEFAULT_SWEEP_INTERVAL: Duration = Duration::from_secs(60);

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
    /// Time between two ledger sweeps; `None`: no sweep.
    pub sweep_interval: Option<Duration>,
    /// Time in-flight work gets after SIGTERM.
    pub shutdown_grace: Duration,
    /// Health port.
    pub port: u16,
    /// Health address.
    pub bind_address: IpAddr,
}

impl Settings {
    /// Reads and validates the settings.
    pub fn from_env(env: &dyn EnvSource) -> Result<Self, ConfigError> {
        let queue_url = codes::queues::queue_url(env)?;
        let poison_queue_url = codes::queues::poison_queue_url(env)?;
        Ok(Self {
            queue_url,
            poison_queue_url,
            ledger_url: https_url(env, CODE_LEDGER_URL)?,
            encoding: MessageEncoding::from_env(env)?,
            batch_size: parsed_in(env, WORKER_BATCH_SIZE, 16, 1..=MAX_BATCH)?,
            max_dequeue_count: parsed_in(env, WORKER_MAX_DEQUEUE_COUNT, 5, 1..=100)?,
            visibility_timeout: seconds(
                env,
                WORKER_VISIBILITY_TIMEOUT_SECONDS,
                Duration::from_secs(30),
                2..=7 * 24 * 3600,
            )?,
            retry_delay: seconds(env, WORKER_RETRY_DELAY_SECONDS, Duration::ZERO, 0..=3600)?,
            max_poll_interval: Duration::from_millis(parsed_in(
                env,
                WORKER_MAX_POLL_INTERVAL_MS,
                DEFAULT_MAX_POLL_INTERVAL.as_millis() as u64,
                100..=600_000,
            )?),
            sweep_interval: Some(seconds(
                env,
                WORKER_SWEEP_INTERVAL_SECONDS,
                DEFAULT_SWEEP_INTERVAL,
                0..=24 * 3600,
            )?)
            .filter(|interval| !interval.is_zero()),
            shutdown_grace: seconds(env, WORKER_SHUTDOWN_GRACE_SECONDS, SHUTDOWN_GRACE, 1..=3600)?,
            port: port(env, DEFAULT_PORT)?,
            bind_address: bind_address(env)?,
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
        assert_eq!(s.max_poll_interval, Duration::from_secs(1));
        assert_eq!(s.sweep_interval, Some(Duration::from_secs(60)));
        let off = complete().with(WORKER_SWEEP_INTERVAL_SECONDS, "0");
        assert_eq!(Settings::from_env(&off).unwrap().sweep_interval, None);
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
            (WORKER_SWEEP_INTERVAL_SECONDS, "-1"),
            (WORKER_SWEEP_INTERVAL_SECONDS, "86401"),
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
