//! Waiting out a failing ledger without spending any message's deliveries.
//!
//! A message's delivery count is its budget: on the last allowed delivery a failing message goes
//! to poison. That is right for a message that cannot be handled, and wrong when the ledger is
//! what fails (Storage down, throttling, a lost role, a network blip): every code in flight
//! would be poisoned while its holder already has a 200. So a dependency failure
//! ([`LedgerError::is_dependency_failure`]) never ends a delivery: the worker keeps the message
//! (its visibility renewed, so it stays hidden), retries it with a back-off that grows with the
//! failures, receives new messages only at that pace, and reports the ledger in `/readyz`. The
//! first success, of any message, clears the state and wakes every held message at once.

use codes::ledger::LedgerError;
use parking_lot::Mutex;
use shared_auth::CheckState;
use std::time::Duration;
use tokio::sync::Notify;

/// The first wait after a failure; doubled with each failure in a row.
pub const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// The longest wait between two tries while the ledger fails: the ledger is found again within
/// it, at a cost of one call per held message per wait.
pub const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Whether the ledger answers, and how long to wait before trying it again.
#[derive(Default)]
pub struct LedgerHealth {
    failing: Mutex<Option<Failing>>,
    answered: Notify,
}

/// A run of failures.
struct Failing {
    in_a_row: u32,
    reason: String,
}

impl LedgerHealth {
    /// Records a failure of the ledger; returns how long to wait before the next try.
    pub fn failed(&self, error: &LedgerError) -> Duration {
        let mut failing = self.failing.lock();
        let state = failing.get_or_insert_with(|| {
            tracing::warn!(reason = %error, "the ledger is failing: messages are kept and retried, none poisoned");
            Failing {
                in_a_row: 0,
                reason: String::new(),
            }
        });
        state.in_a_row = state.in_a_row.saturating_add(1);
        state.reason = error.to_string();
        backoff(state.in_a_row)
    }

    /// Records an answer of the ledger: held messages go on at once.
    pub fn answered(&self) {
        let recovered = self.failing.lock().take();
        if let Some(state) = recovered {
            tracing::info!(failures = state.in_a_row, "the ledger answers again");
            self.answered.notify_waiters();
        }
    }

    /// How long to wait before receiving more, while the ledger fails.
    pub fn receive_pause(&self) -> Option<Duration> {
        let failing = self.failing.lock();
        failing.as_ref().map(|state| backoff(state.in_a_row))
    }

    /// Waits `wait`, or less if the ledger answers meanwhile.
    pub async fn wait_or_answer(&self, wait: Duration) {
        let answered = self.answered.notified();
        if self.receive_pause().is_none() {
            return;
        }
        tokio::select! {
            () = tokio::time::sleep(crate::polling::jittered(wait)) => {}
            () = answered => {}
        }
    }

    /// `/readyz`'s view: passing, or failing with the last reason.
    pub fn state(&self) -> CheckState {
        match &*self.failing.lock() {
            None => CheckState::Passing,
            Some(state) => CheckState::Failing(state.reason.clone()),
        }
    }
}

/// The wait after `in_a_row` failures: [`FIRST_BACKOFF`] doubled, at most [`MAX_BACKOFF`].
pub fn backoff(in_a_row: u32) -> Duration {
    let doublings = in_a_row.saturating_sub(1).min(16);
    FIRST_BACKOFF
        .saturating_mul(1 << doublings)
        .min(MAX_BACKOFF)
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared_auth::azure_error::{AzureCall, Failure};

    fn unavailable() -> LedgerError {
        LedgerError::Unavailable(
            AzureCall::new("record a code in", "codes")
                .with(Failure::Unreachable("refused".into())),
        )
    }

    #[test]
    fn the_wait_doubles_to_its_cap() {
        assert_eq!(backoff(1), FIRST_BACKOFF);
        assert_eq!(backoff(2), FIRST_BACKOFF * 2);
        assert_eq!(backoff(4), FIRST_BACKOFF * 8);
        assert_eq!(backoff(5), MAX_BACKOFF);
        assert_eq!(backoff(1000), MAX_BACKOFF);
    }

    #[tokio::test]
    async fn failures_are_counted_until_an_answer_which_wakes_the_waiters() {
        let health = std::sync::Arc::new(LedgerHealth::default());
        assert_eq!(health.state(), CheckState::Passing);
        assert_eq!(health.receive_pause(), None);
        assert_eq!(health.failed(&unavailable()), FIRST_BACKOFF);
        assert_eq!(health.failed(&unavailable()), FIRST_BACKOFF * 2);
        assert!(
            matches!(health.state(), CheckState::Failing(reason) if reason.contains("refused"))
        );
        assert_eq!(health.receive_pause(), Some(FIRST_BACKOFF * 2));
        let waiting = {
            let health = health.clone();
            tokio::spawn(async move { health.wait_or_answer(Duration::from_secs(60)).await })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        health.answered();
        tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("an answer ends the wait at once")
            .unwrap();
        assert_eq!(health.state(), CheckState::Passing);
    }
}
