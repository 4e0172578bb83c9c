//! The checks collected one by one: what a call did (done, refused for want of a role, failed)
//! and the line each outcome becomes.

use super::{CHECK_TIMEOUT, Check};
use crate::azure_scope::MissingRole;
use crate::connect;
use crate::roles::{Role, ScopeKind};
use shared_auth::EnvSource;
use shared_auth::azure_error::Failure;
use std::future::Future;

/// What a call did: success, refused for want of a role, or failed otherwise.
pub(super) enum Outcome<T> {
    /// It succeeded with this value.
    Done(T),
    /// Azure answered 403; how, in words safe to print.
    Forbidden(String),
    /// It failed otherwise; how, in words safe to print.
    Failed(String),
}

/// Runs one Azure call within [`CHECK_TIMEOUT`] and says what it did.
pub(super) async fn call<T>(fut: impl Future<Output = azure_core::Result<T>>) -> Outcome<T> {
    match tokio::time::timeout(CHECK_TIMEOUT, fut).await {
        Ok(Ok(v)) => Outcome::Done(v),
        Ok(Err(e)) if connect::is_forbidden(&e) => Outcome::Forbidden(connect::describe(&e)),
        Ok(Err(e)) => Outcome::Failed(connect::describe(&e)),
        Err(_) => Outcome::Failed(timed_out()),
    }
}

/// What a check that got no answer within [`CHECK_TIMEOUT`] says.
pub(super) fn timed_out() -> String {
    Failure::TimedOut(CHECK_TIMEOUT).to_string()
}

/// Collects checks; a refusal becomes a failure naming `role` on `scope`.
pub(super) struct Checks<'a> {
    env: &'a dyn EnvSource,
    list: Vec<Check>,
}

impl<'a> Checks<'a> {
    /// No check yet; missing roles are named with the resources `env` configures.
    pub(super) fn new(env: &'a dyn EnvSource) -> Self {
        Self {
            env,
            list: Vec::new(),
        }
    }

    /// The checks, in the order they ran.
    pub(super) fn into_list(self) -> Vec<Check> {
        self.list
    }

    /// Records the check `name` as `outcome` says; a refusal names `role`. The call's value
    /// when it succeeded.
    pub(super) fn record<T>(
        &mut self,
        name: String,
        outcome: Outcome<T>,
        role: (Role, ScopeKind),
        ok_detail: &str,
    ) -> Option<T> {
        let (ok, detail, missing, value) = match outcome {
            Outcome::Done(v) => (true, ok_detail.to_owned(), None, Some(v)),
            Outcome::Forbidden(d) => (
                false,
                d,
                Some(MissingRole::new(self.env, role.0, role.1)),
                None,
            ),
            Outcome::Failed(d) => (false, d, None, None),
        };
        self.list.push(Check {
            name,
            ok,
            detail,
            missing,
        });
        value
    }

    /// Records the check `name` as passed, with what happened.
    pub(super) fn passed(&mut self, name: String, detail: impl Into<String>) {
        self.push(name, true, detail.into());
    }

    /// Records the check `name` as failed for a reason no role explains.
    pub(super) fn failed(&mut self, name: String, detail: impl Into<String>) {
        self.push(name, false, detail.into());
    }

    fn push(&mut self, name: String, ok: bool, detail: String) {
        self.list.push(Check {
            name,
            ok,
            detail,
            missing: None,
        });
    }
}
