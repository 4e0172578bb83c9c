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
    /// How the call failed.
    pub fn failure(&self) -> &Failure {
        &self.failure
    }

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

/// Whether `code` is an error code Azure would send (an identifier), not a status or free text.
fn is_error_code(code: &str, status: StatusCode) -> bool {
    !code.is_empty()
        && code.len() <= MAX_CODE_LEN
        && code != status.to_string()
        && code
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// `text` on one line.
fn one_line(text: &str) -> String {
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
    use super::*;
    use azure_core::http::RawResponse;
    use azure_core::http::headers::Headers;

    const BODY: &str = "<?xml version=\"1.0\"?><Error><Code>AuthorizationPermissionMismatch</Code>\
        <Message>This request is not authorized. secret-looking-detail RequestId:1234</Message></Error>";

    /// An HTTP error as the SDK builds it from a response it could not parse: the message
    /// quotes the body.
    fn http_error(status: u16, code: Option<&str>) -> azure_core::Error {
        let status = StatusCode::from(status);
        let raw = RawResponse::from_bytes(status, Headers::new(), BODY.as_bytes().to_vec());
        azure_core::Error::with_message(
            ErrorKind::HttpResponse {
                status,
                error_code: code.map(str::to_owned),
                raw_response: Some(Box::new(raw)),
            },
            format!("{status}: {BODY}"),
        )
    }

    fn queue_send() -> AzureCall {
        AzureCall::new("send a message to", "queue code-requests")
    }

    #[test]
    fn a_403_names_azures_code_and_the_role_and_scope_given() {
        let call =
            queue_send().needs_role("Storage Queue Data Message Sender", "queue code-requests");
        let error = call.failed(&http_error(403, Some("AuthorizationPermissionMismatch")));
        assert_eq!(
            error.to_string(),
            "could not send a message to queue code-requests: 403 \
             AuthorizationPermissionMismatch; the identity needs the role Storage Queue Data \
             Message Sender on queue code-requests"
        );
        assert!(error.is_forbidden());
        let vault = AzureCall::new("read", "secret api-key from Key Vault")
            .needs_role("Key Vault Secrets User", "secret api-key")
            .failed(&http_error(403, Some("ForbiddenByRbac")));
        assert_eq!(
            vault.to_string(),
            "could not read secret api-key from Key Vault: 403 ForbiddenByRbac; the identity \
             needs the role Key Vault Secrets User on secret api-key"
        );
    }

    #[test]
    fn a_403_without_a_role_given_says_a_role_is_missing() {
        let error = queue_send().failed(&http_error(403, Some("AuthorizationPermissionMismatch")));
        assert_eq!(
            error.to_string(),
            "could not send a message to queue code-requests: 403 \
             AuthorizationPermissionMismatch (the identity lacks a role)"
        );
    }

    #[test]
    fn other_statuses_give_status_and_code_and_the_role_only_for_a_403() {
        let call =
            queue_send().needs_role("Storage Queue Data Message Sender", "queue code-requests");
        let text = |status, code| call.failed(&http_error(status, code)).to_string();
        assert_eq!(
            text(401, Some("InvalidAuthenticationInfo")),
            "could not send a message to queue code-requests: 401 InvalidAuthenticationInfo \
             (the token was not accepted)"
        );
        assert_eq!(
            text(404, Some("QueueNotFound")),
            "could not send a message to queue code-requests: 404 QueueNotFound (no such resource)"
        );
        assert_eq!(
            text(500, None),
            "could not send a message to queue code-requests: 500 Internal Server Error"
        );
        assert_eq!(
            text(503, Some("ServerBusy")),
            "could not send a message to queue code-requests: 503 ServerBusy"
        );
        assert_eq!(
            call.failed(&http_error(500, None)).status(),
            Some(StatusCode::InternalServerError)
        );
    }

    #[test]
    fn no_body_is_quoted_and_a_code_that_is_not_an_identifier_is_dropped() {
        // Positive control: the SDK's own message does quote the body.
        assert!(
            http_error(403, None)
                .to_string()
                .contains("secret-looking-detail")
        );
        for code in [
            None,
            Some("AuthorizationPermissionMismatch"),
            Some(BODY),
            Some("403"),
            Some("two words"),
            Some(""),
        ] {
            let error = queue_send()
                .needs_role("Storage Queue Data Message Sender", "queue code-requests")
                .failed(&http_error(403, code));
            let text = error.to_string();
            assert!(!text.contains("secret-looking-detail"), "{text}");
            assert!(!text.contains("<Error>"), "{text}");
            assert!(!text.contains("RequestId"), "{text}");
            assert!(!format!("{error:?}").contains("secret-looking-detail"));
            if code != Some("AuthorizationPermissionMismatch") {
                assert!(
                    text.contains(": 403 Forbidden; the identity needs"),
                    "{text}"
                );
            }
        }
    }

    #[test]
    fn transport_failures_give_the_error_chain_on_one_line() {
        let refused = std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "tcp connect error:\n  Connection refused (os error 111)",
        );
        let error = azure_core::Error::with_error(
            ErrorKind::Connection,
            refused,
            "failed to execute `reqwest` request",
        );
        assert_eq!(
            queue_send().failed(&error).to_string(),
            "could not send a message to queue code-requests: not reachable: failed to execute \
             `reqwest` request: tcp connect error: Connection refused (os error 111)"
        );
        let io = azure_core::Error::with_message(ErrorKind::Io, "connection reset");
        assert_eq!(
            Failure::of(&io),
            Failure::Unreachable("connection reset".into())
        );
        assert_eq!(Failure::of(&io).status(), None);
    }

    #[test]
    fn a_credential_failure_says_no_token() {
        let error = azure_core::Error::with_message(
            ErrorKind::Credential,
            "ManagedIdentityCredential authentication failed",
        );
        assert_eq!(
            queue_send().failed(&error).to_string(),
            "could not send a message to queue code-requests: no token: ManagedIdentityCredential \
             authentication failed"
        );
    }

    #[test]
    fn a_conversion_failure_quotes_nothing() {
        let error = azure_core::Error::with_message(
            ErrorKind::DataConversion,
            "invalid type: string \"secret-looking-detail\", expected u64",
        );
        let text = queue_send().failed(&error).to_string();
        assert_eq!(
            text,
            "could not send a message to queue code-requests: the request or the answer was \
             malformed"
        );
    }

    #[test]
    fn timeouts_say_how_long_was_waited() {
        let call =
            queue_send().needs_role("Storage Queue Data Message Sender", "queue code-requests");
        assert_eq!(
            call.timed_out(Duration::from_secs(5)).to_string(),
            "could not send a message to queue code-requests: did not answer within 5 s"
        );
        assert_eq!(
            call.timed_out(Duration::from_millis(2500)).to_string(),
            "could not send a message to queue code-requests: did not answer within 2.5 s"
        );
        assert!(!call.timed_out(Duration::from_secs(5)).is_forbidden());
    }

    #[test]
    fn the_failure_alone_is_the_short_form() {
        assert_eq!(
            Failure::of(&http_error(403, Some("ForbiddenByRbac"))).to_string(),
            "403 ForbiddenByRbac (the identity lacks a role)"
        );
        assert_eq!(
            Failure::of(&http_error(409, Some("QueueBeingDeleted"))).to_string(),
            "409 QueueBeingDeleted"
        );
    }

    #[test]
    fn the_resource_name_is_the_last_path_segment() {
        let name = |u: &str| resource_name(&Url::parse(u).unwrap());
        assert_eq!(
            name("https://acct.queue.core.windows.net/code-requests"),
            "code-requests"
        );
        assert_eq!(
            name("https://127.0.0.1:10001/devstoreaccount1/codes/"),
            "codes"
        );
    }
}
