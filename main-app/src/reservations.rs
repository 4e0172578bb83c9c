//! Codes reserved in the ledger before getcode answers, and what that says about readiness:
//! every reservation's outcome counts; at start and while the last one failed, a read of one
//! record (Get Blob Properties, a 404 is an answer) proves the role and a storage that answers in
//! time. A ledger that answers costs no probe: the reservations themselves are the evidence.

use codes::Code;
use codes::ledger::{CodeLedger, LedgerError, Recorded};
use shared_auth::{CheckState, Health};
use std::time::Duration;
use time::OffsetDateTime;

/// How long a readiness read may take before the ledger counts as stalled.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(5);
/// How often a ledger that failed is read again.
pub const RETRY_INTERVAL: Duration = Duration::from_secs(1);

/// The ledger as getcode uses it, with its readiness.
#[derive(Clone)]
pub struct Reservations {
    ledger: CodeLedger,
    health: Health,
}

impl Reservations {
    /// Reservations in `ledger`, pending until the first answer.
    pub fn new(ledger: CodeLedger) -> Self {
        Self {
            ledger,
            health: Health::new(|state| match state {
                CheckState::Failing(reason) => {
                    tracing::warn!(reason = %reason, "readiness: cannot reserve codes in the ledger");
                }
                _ => tracing::info!("readiness: the ledger takes codes"),
            }),
        }
    }

    /// Records `code` for message `id` ([`CodeLedger::record`]); the outcome updates
    /// [`Reservations::health`].
    pub async fn reserve(
        &self,
        code: &Code,
        issued_at: OffsetDateTime,
        expires_at: OffsetDateTime,
        id: &str,
    ) -> Result<Recorded, LedgerError> {
        let recorded = self.ledger.record(code, issued_at, expires_at, id).await;
        self.health.note(recorded.as_ref().map(|_| ()));
        recorded
    }

    /// Notes a reservation that ran out of time.
    pub fn timed_out(&self, budget: Duration) {
        self.health.note(Err(&LedgerError::Unavailable(
            shared_auth::azure_error::AzureCall::new("reserve a code in", "the ledger")
                .timed_out(budget),
        )));
    }

    /// What the last reservation or read showed.
    pub fn health(&self) -> CheckState {
        self.health.get()
    }

    /// One read of a record, bounded by [`PROBE_TIMEOUT`]; the outcome updates the health.
    pub async fn probe(&self) -> CheckState {
        let any = Code::parse("RdY-1-PrB").expect("a code");
        match tokio::time::timeout(PROBE_TIMEOUT, self.ledger.lookup(&any)).await {
            Ok(read) => self.health.note(read.as_ref().map(|_| ())),
            Err(_) => self.timed_out(PROBE_TIMEOUT),
        }
        self.health()
    }

    /// Reads at start, then every [`RETRY_INTERVAL`] while the last answer was a failure.
    pub fn spawn_prober(&self) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        let probe = move || {
            let this = this.clone();
            async move { drop(this.probe().await) }
        };
        self.health.spawn_prober(RETRY_INTERVAL, probe)
    }
}
