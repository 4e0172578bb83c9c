//! Every access the emulators judged, newest last: who, what, where, and allowed or why not. The
//! Key Vault emulator and the storage gates write it through their shared caller check; the
//! console reads it. A decision equal to the one before it (the worker polling its queue every
//! second) is counted on that entry rather than added. It keeps the last [`CAPACITY`] entries;
//! no token or secret is in it.

use crate::rbac::{DataAction, Scope};
use parking_lot::Mutex;
use std::collections::VecDeque;
use time::OffsetDateTime;

/// How many decisions are kept.
pub const CAPACITY: usize = 1000;

/// What the check answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The caller holds a role granting what the request needs.
    Allowed,
    /// A verified caller holds no role granting this action at the resource.
    Forbidden(DataAction),
    /// No token, or one that does not verify: why.
    Unauthenticated(String),
}

/// One judged request.
#[derive(Debug, Clone)]
pub struct Decision {
    /// Its place in the log (1, 2, ...): a reader asks for what came after the last it saw.
    pub seq: u64,
    /// When (the last time, for a repeated decision).
    pub at: OffsetDateTime,
    /// How many times in a row it was decided so.
    pub count: u64,
    /// The Azure service judged (`Key Vault`, `Queue Storage`, `Blob Storage`).
    pub service: &'static str,
    /// The caller's identity name, its object id for a principal the stack does not know, or
    /// `anonymous` without a verified token.
    pub identity: String,
    /// The operation (`Get Secret`, `Put Message`, ...).
    pub operation: String,
    /// The resource.
    pub resource: Scope,
    /// Allowed, or why not.
    pub outcome: Outcome,
}

/// The log itself.
#[derive(Debug, Default)]
pub struct AccessLog {
    entries: Mutex<(u64, VecDeque<Decision>)>,
}

impl AccessLog {
    /// Adds one decision, stamped now; the oldest goes past [`CAPACITY`].
    pub fn record(
        &self,
        service: &'static str,
        identity: &str,
        operation: &str,
        resource: &Scope,
        outcome: Outcome,
    ) {
        let mut entries = self.entries.lock();
        entries.0 += 1;
        let (seq, at) = (entries.0, OffsetDateTime::now_utc());
        if let Some(last) = entries.1.back_mut().filter(|last| {
            last.service == service
                && last.identity == identity
                && last.operation == operation
                && &last.resource == resource
                && last.outcome == outcome
        }) {
            last.count += 1;
            last.seq = seq;
            last.at = at;
            return;
        }
        let decision = Decision {
            seq,
            at,
            count: 1,
            service,
            identity: identity.to_owned(),
            operation: operation.to_owned(),
            resource: resource.clone(),
            outcome,
        };
        if entries.1.len() == CAPACITY {
            entries.1.pop_front();
        }
        entries.1.push_back(decision);
    }

    /// Up to `max` decisions, newest first.
    pub fn recent(&self, max: usize) -> Vec<Decision> {
        self.entries
            .lock()
            .1
            .iter()
            .rev()
            .take(max)
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_newest_first_and_forgets_past_its_capacity() {
        let log = AccessLog::default();
        for i in 0..CAPACITY + 5 {
            log.record(
                "Queue Storage",
                "main-app",
                &format!("op {i}"),
                &Scope::Queue("q".into()),
                Outcome::Allowed,
            );
        }
        let recent = log.recent(CAPACITY * 2);
        assert_eq!(recent.len(), CAPACITY);
        assert_eq!(recent[0].operation, format!("op {}", CAPACITY + 4));
        assert_eq!(recent[0].seq, (CAPACITY + 5) as u64);
        assert_eq!(recent.last().unwrap().operation, "op 5");
    }

    #[test]
    fn a_repeated_decision_is_counted_on_its_entry_and_a_different_one_is_not() {
        let log = AccessLog::default();
        let queue = Scope::Queue("q".into());
        for _ in 0..3 {
            log.record(
                "Queue Storage",
                "queue-worker",
                "Get Messages",
                &queue,
                Outcome::Allowed,
            );
        }
        log.record(
            "Queue Storage",
            "queue-worker",
            "Get Messages",
            &queue,
            Outcome::Forbidden(DataAction::QueueMessageRead),
        );
        log.record(
            "Queue Storage",
            "queue-worker",
            "Get Messages",
            &queue,
            Outcome::Allowed,
        );
        let recent = log.recent(10);
        let counts: Vec<u64> = recent.iter().map(|d| d.count).collect();
        assert_eq!(counts, [1, 1, 3]);
        assert_eq!(recent[0].seq, 5);
        assert_eq!(recent[2].seq, 3);
    }
}
