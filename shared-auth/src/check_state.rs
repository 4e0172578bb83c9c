//! How one dependency check stands (a secret loaded, a queue that takes messages): what the
//! secret cache reports and every service's `/readyz` is rendered from (`service_kit`), and a
//! [`Health`] that notes each outcome of one check and probes while it fails.

use parking_lot::RwLock;
use std::sync::Arc;
use std::time::Duration;

/// The state of one dependency check (a secret loaded, a queue that takes or gives messages), the
/// one vocabulary every service's `/readyz` is rendered from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckState {
    /// Nothing has answered yet; the words for it are the service's own, given when rendered.
    Pending,
    /// The last attempt succeeded.
    Passing,
    /// The last attempt failed; why, in an operator's words (logged, never answered).
    Failing(String),
}

impl CheckState {
    /// What `service_kit`'s `Readiness::check` takes: `Ok` when passing, otherwise `Err` with why, `pending`
    /// standing for the reason while nothing has answered yet.
    pub fn outcome<'a>(&'a self, pending: &'a str) -> Result<(), &'a str> {
        match self {
            Self::Passing => Ok(()),
            Self::Pending => Err(pending),
            Self::Failing(reason) => Err(reason),
        }
    }
}

/// One dependency's check as it stands, shared by its clones: every outcome noted, a change
/// reported once to the owner's `on_change` (which logs it under the owner's target).
#[derive(Debug, Clone)]
pub struct Health {
    state: Arc<RwLock<CheckState>>,
    on_change: fn(&CheckState),
}

impl Health {
    /// Pending until the first outcome; `on_change` hears each new state.
    pub fn new(on_change: fn(&CheckState)) -> Self {
        Self {
            state: Arc::new(RwLock::new(CheckState::Pending)),
            on_change,
        }
    }

    /// Notes an outcome: passing, or failing with the error's words.
    pub fn note(&self, outcome: Result<(), impl std::fmt::Display>) {
        let next = match outcome {
            Ok(()) => CheckState::Passing,
            Err(e) => CheckState::Failing(e.to_string()),
        };
        let mut state = self.state.write();
        if next != *state {
            (self.on_change)(&next);
        }
        *state = next;
    }

    /// The state now.
    pub fn get(&self) -> CheckState {
        self.state.read().clone()
    }

    /// Runs `probe` at once, then every `interval` while the state is not passing.
    pub fn spawn_prober<F, P>(&self, interval: Duration, probe: F) -> tokio::task::JoinHandle<()>
    where
        F: Fn() -> P + Send + 'static,
        P: Future<Output = ()> + Send,
    {
        let health = self.clone();
        tokio::spawn(async move {
            loop {
                if health.get() != CheckState::Passing {
                    probe().await;
                }
                tokio::time::sleep(interval).await;
            }
        })
    }
}
