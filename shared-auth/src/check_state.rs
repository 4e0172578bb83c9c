//! How one dependency check stands (a secret loaded, a queue that takes messages): what the
//! secret cache reports and every service's `/readyz` is rendered from (`service_kit`).

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
