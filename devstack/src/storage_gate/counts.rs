//! How many requests the gate forwarded, by caller and operation: what Azure would bill.

/// Requests of one caller and one operation that the gate forwarded to Azurite.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct OperationCount {
    /// The identity that called (its name in the stack, or the token's object id).
    pub caller: String,
    /// The operation, as `operation` names it.
    pub operation: &'static str,
    /// How many requests.
    pub count: u64,
}

/// How many requests the gate forwarded to Azurite, by caller identity and operation.
#[derive(Debug, Default)]
pub struct OperationCounts(
    parking_lot::Mutex<std::collections::BTreeMap<(String, &'static str), u64>>,
);

impl OperationCounts {
    /// Counts one request of `caller` for `operation`.
    pub(super) fn add(&self, caller: String, operation: &'static str) {
        let mut counts = self.0.lock();
        *counts.entry((caller, operation)).or_default() += 1;
    }

    /// The counts so far, sorted by caller and operation.
    pub fn snapshot(&self) -> Vec<OperationCount> {
        let counts = self.0.lock();
        counts
            .iter()
            .map(|((caller, operation), count)| OperationCount {
                caller: caller.clone(),
                operation,
                count: *count,
            })
            .collect()
    }
}
