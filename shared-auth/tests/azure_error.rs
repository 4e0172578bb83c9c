//! `shared_auth::azure_error`: each kind of Azure failure becomes the operator's sentence; a 403
//! names the role and scope given; no response body is ever quoted.

use azure_core::error::ErrorKind;
use azure_core::http::RawResponse;
use azure_core::http::headers::Headers;
use azure_core::http::{StatusCode, Url};
use shared_auth::azure_error::{AzureCall, Failure, blob_container_name, resource_name};
use std::time::Duration;

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
    let call = queue_send().needs_role("Storage Queue Data Message Sender", "queue code-requests");
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
    let call = queue_send().needs_role("Storage Queue Data Message Sender", "queue code-requests");
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
    let call = queue_send().needs_role("Storage Queue Data Message Sender", "queue code-requests");
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

#[test]
fn a_blob_urls_container_is_the_segment_before_the_blob() {
    let container = |u: &str| blob_container_name(&Url::parse(u).unwrap());
    assert_eq!(
        container("https://acct.blob.core.windows.net/third-party-api-keys/keys.json").as_deref(),
        Some("third-party-api-keys")
    );
    assert_eq!(
        container("https://127.0.0.1:10000/devstoreaccount1/keys/keys.json").as_deref(),
        Some("keys")
    );
    assert_eq!(
        container("https://acct.blob.core.windows.net/keys.json"),
        None
    );
}
