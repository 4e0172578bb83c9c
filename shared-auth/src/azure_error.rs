//! Azure errors in an operator's words: one sentence per failed call, naming what was being done
//! to which resource and how it failed (the HTTP status and Azure's error code, the transport
//! failure, or the time it waited), and for a 403 the role the caller says it needs on which
//! scope. Never a response body, a token or a secret: the SDK's error message can quote the body,
//! so only the status and a well-formed error code are taken from an HTTP error.

use azure_core::error::ErrorKind;
use azure_core::http::{StatusCode, Url};
use std::fmt;
use std::time::Duration;

/// The longest error code shown; anything longer (or not a plain identifier) is not Azure's code.
const MAX_CODE_LEN: usize = 64;

/// How an Azure call failed, keeping only what is safe to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// Azure answered with an error status, and its error code when it gave a well-formed one.
    Status {
        /// The HTTP status.
        status: StatusCode,
        /// Azure's error code (`AuthorizationPermissionMismatch`, `ForbiddenByRbac`, ...).
        code: Option<String>,
    },
    /// No token could be had: the credential failed; its error chain.
    NoToken(String),
    /// No answer: connection, TLS or I/O; the error chain.
    Unreachable(String),
    /// The request or the answer could not be converted (its content is not quoted).
    Malformed,
    /// No answer within this long.
    TimedOut(Duration),
}

impl Failure {
    /// What `error` says, reduced to what is safe to show.
    pub fn of(error: &azure_core::Error) -> Self {
        match error.kind() {
            ErrorKind::HttpResponse {
                status, error_code, ..
            } => Self::Status {
                status: *status,
                code: error_code
                    .as_deref()
                    .filter(|code| is_error_code(code, *status))
                    .map(str::to_owned),
            },
            ErrorKind::Credential => Self::NoToken(one_line(&error_chain(error))),
            ErrorKind::Connection | ErrorKind::Io | ErrorKind::Other => {
                Self::Unreachable(one_line(&error_chain(error)))
            }
            ErrorKind::DataConversion => Self::Malformed,
        }
    }

    /// The HTTP status Azure answered, if it answered one.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Self::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// `403 AuthorizationPermissionMismatch`, or `403 Forbidden` when Azure gave no code.
    fn write_status(
        f: &mut fmt::Formatter<'_>,
        status: StatusCode,
        code: &Option<String>,
    ) -> fmt::Result {
        match code {
            Some(code) => write!(f, "{} {code}", u16::from(status)),
            None => write!(f, "{} {}", u16::from(status), status.canonical_reason()),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Status { status, code } => {
                Self::write_status(f, *status, code)?;
                match *status {
                    StatusCode::Forbidden => f.write_str(" (the identity lacks a role)"),
                    StatusCode::Unauthorized => f.write_str(" (the token was not accepted)"),
                    StatusCode::NotFound => f.write_str(" (no such resource)"),
                    _ => Ok(()),
                }
            }
            Self::NoToken(chain) => write!(f, "no token: {chain}"),
            Self::Unreachable(chain) => write!(f, "not reachable: {chain}"),
            Self::Malformed => f.write_str("the request or the answer was malformed"),
            Self::TimedOut(after) => write!(f, "did not answer within {} s", seconds(*after)),
        }
    }
}

/// What was being done to which resource, and the role a 403 there means is missing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AzureCall {
    action: String,
    resource: String,
    needs: Option<(String, String)>,
}

impl AzureCall {
    /// A call doing `action` ("send a message to") to `resource` ("queue code-requests").
    pub fn new(action: impl Into<String>, resource: impl Into<String>) -> Self {
        Self {
            action: action.into(),
            resource: resource.into(),
            needs: None,
        }
    }

    /// Names the role the caller needs for this call and its scope, said when Azure answers 403.
    pub fn needs_role(mut self, role: impl Into<String>, scope: impl Into<String>) -> Self {
        self.needs = Some((role.into(), scope.into()));
        self
    }

    /// This call failed with `error`.
    pub fn failed(&self, error: &azure_core::Error) -> AzureError {
        self.with(Failure::of(error))
    }

    /// This call got no answer within `after`.
    pub fn timed_out(&self, after: Duration) -> AzureError {
        self.with(Failure::TimedOut(after))
    }

    /// This call failed as `failure` says.
    pub fn with(&self, failure: Failure) -> AzureError {
        AzureError {
            call: self.clone(),
            failure,
        }
    }
}

/// A failed Azure call; its Display is the operator's sentence.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct AzureError {
    call: AzureCall,
    failure: Failure,
}

impl AzureError {
    /// The HTTP status Azure answered, if it answered one.
    pub fn status(&self) -> Option<StatusCode> {
        self.failure.status()
    }

    /// Whether Azure answered 403: the identity lacks a role (retrying will not help).
    pub fn is_forbidden(&self) -> bool {
        self.status() == Some(StatusCode::Forbidden)
    }
}

impl fmt::Display for AzureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let AzureCall {
            action,
            resource,
            needs,
        } = &self.call;
        write!(f, "could not {action} {resource}: ")?;
        match (&self.failure, needs) {
            (
                Failure::Status {
                    status: status @ StatusCode::Forbidden,
                    code,
                },
                Some((role, scope)),
            ) => {
                Failure::write_status(f, *status, code)?;
                write!(f, "; the identity needs the role {role} on {scope}")
            }
            (failure, _) => write!(f, "{failure}"),
        }
    }
}

/// An error and every cause under it, joined: `azure_core::Error`'s Display hides the cause.
/// (Not for HTTP errors shown to an operator: their message can quote the response body.)
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// The last path segment of a queue, container or blob URL: the resource's name.
pub fn resource_name(url: &Url) -> String {
    url.path()
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// The container of a blob URL whose blob name has no `/` (`.../<container>/keys.json`).
pub fn blob_container_name(url: &Url) -> Option<String> {
    let mut segments: Vec<&str> = url.path_segments()?.filter(|s| !s.is_empty()).collect();
    segments.pop()?;
    segments.pop().map(str::to_owned)
}

/// Whether `code` is an error code Azure would send (an identifier), not a status or free text.
fn is_error_code(code: &str, status: StatusCode) -> bool {
    !code.is_empty()
        && code.len() <= MAX_CODE_LEN
        && code != status.to_string()
        && code
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// `text` on one line: every run of whitespace, line breaks included, becomes one space.
pub fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `5`, or `0.5` for a duration that is not whole seconds.
fn seconds(duration: Duration) -> String {
    if duration.subsec_millis() == 0 {
        duration.as_secs().to_string()
    } else {
        format!("{:.1}", duration.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::one_line;

    #[test]
    fn one_line_joins_lines_and_collapses_whitespace() {
        assert_eq!(
            one_line("  could not\n\tread  the\r\nsecret \n"),
            "could not read the secret"
        );
        assert_eq!(one_line(""), "");
    }
}
