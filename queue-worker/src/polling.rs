//! How often an idle worker polls: exponential back-off, and jitter that only lengthens it.

#[cfg(test)]
use crate::config::MIN_POLL_INTERVAL;
use rand::Rng;
use std::time::Duration;

/// The idle polling interval after `current` found nothing: doubled, capped at `max`.
pub fn next_idle(current: Duration, max: Duration) -> Duration {
    (current * 2).min(max)
}

/// `interval` lengthened by up to 25 % at random, so idle replicas do not poll in step and never
/// poll more often than the interval allows.
pub fn jittered(interval: Duration) -> Duration {
    interval.mul_f64(rand::rng().random_range(1.0..1.25))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_polling_backs_off_exponentially_to_the_cap_with_jitter() {
        let max = Duration::from_secs(60);
        let mut interval = MIN_POLL_INTERVAL;
        let mut steps = vec![interval];
        while interval < max {
            interval = next_idle(interval, max);
            steps.push(interval);
        }
        assert_eq!(steps[1], Duration::from_millis(200));
        assert_eq!(*steps.last().unwrap(), max);
        assert_eq!(
            steps.len(),
            11,
            "100 ms doubled ten times reaches the 60 s cap"
        );
        for _ in 0..100 {
            let j = jittered(Duration::from_secs(10));
            assert!(j >= Duration::from_secs(10) && j < Duration::from_millis(12_500));
        }
    }
}
