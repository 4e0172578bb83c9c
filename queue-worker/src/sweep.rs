//! The ledger sweep, run beside the consumer: every interval it removes the records whose own
//! expiry has passed. A failed sweep is logged and tried again at the next interval; verify
//! never depends on it (it checks each record's expiry itself).

use crate::worker::Stats;
use codes::ledger::CodeLedger;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use time::OffsetDateTime;
use tokio::sync::watch;

/// Sweeps `ledger` every `interval` until `shutdown` turns true; a sweep under way is finished.
pub async fn sweep_until(
    ledger: CodeLedger,
    interval: Duration,
    stats: Arc<Stats>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut last_error = None;
    while !*shutdown.borrow() {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = shutdown.changed() => continue,
        }
        match ledger.sweep_expired(OffsetDateTime::now_utc()).await {
            Ok(swept) => {
                stats
                    .swept
                    .fetch_add(swept.removed as u64, Ordering::Relaxed);
                if swept.removed > 0 {
                    tracing::info!(
                        removed = swept.removed,
                        scanned = swept.scanned,
                        "expired codes swept from the ledger"
                    );
                }
                last_error = None;
            }
            Err(e) => {
                let reason = e.to_string();
                if last_error.as_ref() != Some(&reason) {
                    tracing::warn!(reason = %reason, "sweeping the ledger failed; tried again at the next interval");
                }
                last_error = Some(reason);
            }
        }
    }
}
