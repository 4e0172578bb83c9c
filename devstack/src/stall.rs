//! A simulated hang for an emulator: while stalled, each request that asks waits, unanswered,
//! until the stall ends or its client gives up; the requests held are counted.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::web;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::watch;

/// Middleware for the routes a hang holds (`.wrap(from_fn(hold::<E>))`): each request waits
/// while the emulator `E` (from the app data; its [`Stall`] through `AsRef`) is stalled, then is
/// served.
pub async fn hold<E: AsRef<Stall> + 'static>(
    emulator: web::Data<E>,
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    emulator.get_ref().as_ref().wait().await;
    next.call(req).await
}

/// The stall switch of one emulator, and how many requests it held.
#[derive(Debug)]
pub struct Stall {
    stalled: watch::Sender<bool>,
    held: AtomicU64,
}

impl Default for Stall {
    fn default() -> Self {
        Self {
            stalled: watch::Sender::new(false),
            held: AtomicU64::new(0),
        }
    }
}

impl Stall {
    /// Starts (`true`) or ends the stall; ending it releases every held request.
    pub fn set(&self, stalled: bool) {
        self.stalled.send_replace(stalled);
    }

    /// How many requests arrived while stalled.
    pub fn held(&self) -> u64 {
        self.held.load(Ordering::SeqCst)
    }

    /// Waits while stalled (returns at once when not).
    pub async fn wait(&self) {
        let mut stalled = self.stalled.subscribe();
        if *stalled.borrow_and_update() {
            self.held.fetch_add(1, Ordering::SeqCst);
            // The sender lives as long as `self`, so this only returns once un-stalled.
            let _ = stalled.wait_for(|s| !*s).await;
        }
    }
}
