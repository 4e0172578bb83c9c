//! The storage gate: an HTTPS reverse proxy in front of Azurite that enforces the role table as
//! Azure Storage does. Azurite checks a token's issuer, audience and lifetime but never the
//! caller's roles, so without the gate a missing role would pass locally and fail in Azure.
//! Requests the roles allow are forwarded (token included: Azurite checks it too).
//!
//! The path is normalised once ([`CheckedPath`]): percent-decoded segment by segment, refused
//! with 400 `InvalidUri` when it holds a dot segment (`.`, `..`, percent-encoded or not), an
//! encoded separator (`%2F`, `%5C`), a backslash, an empty segment other than one trailing slash,
//! or an undecodable escape; then classified, and the upstream URL is built from that same checked
//! path, so Azurite acts on exactly the resource the roles were checked against.
//!
//! Key-based authorization is refused as by a storage account with `allowSharedKeyAccess: false`
//! (what `infra/` deploys): a `SharedKey`/`SharedKeyLite` `Authorization` header, or an account
//! or service SAS (a `sig` query parameter), gets 403 `KeyBasedAuthenticationNotPermitted`.
//! A user-delegation SAS (`skoid`/`sktid`), which Azure would accept, is refused too (403
//! `AuthorizationFailure`): the gate cannot check its roles, so devstack supports tokens only.

use crate::azurite::ACCOUNT;
use crate::identity::IdentityProvider;
use crate::jwt::{TENANT_ID, TokenVerifier, bearer};
use crate::rbac::{DataAction, RoleAssignments, Scope};
pub use crate::storage_path::{CheckedPath, PathError};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use std::sync::Arc;
use time::OffsetDateTime;

/// Which storage service a gate fronts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageService {
    /// Queue Storage.
    Queue,
    /// Blob Storage.
    Blob,
}

/// What a request needs: one action, any of several, or all of several.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Need {
    /// This action.
    One(DataAction),
    /// At least one of these.
    Any(Vec<Need>),
    /// Every one of these.
    All(Vec<Need>),
}

impl Need {
    fn satisfied(&self, roles: &RoleAssignments, principal: &str, scope: &Scope) -> bool {
        match self {
            Need::One(action) => roles.allows(principal, *action, scope),
            Need::Any(needs) => needs.iter().any(|n| n.satisfied(roles, principal, scope)),
            Need::All(needs) => needs.iter().all(|n| n.satisfied(roles, principal, scope)),
        }
    }

    fn first_action(&self) -> DataAction {
        match self {
            Need::One(action) => *action,
            Need::Any(needs) | Need::All(needs) => needs[0].first_action(),
        }
    }
}

/// Classifies a request into the resource it touches and the permission it needs, following
/// "Permissions for calling data operations" of the Azure Storage REST documentation.
pub fn classify(
    service: StorageService,
    method: &str,
    path: &CheckedPath,
    query: &[(String, String)],
) -> (Scope, Need) {
    use DataAction::*;
    use Need::*;
    let q = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    let segments = path.segments();
    let resource = segments.get(1).map(String::as_str);
    let rest = (segments.len() > 2).then(|| segments[2..].join("/"));
    let rest = rest.as_deref();
    let read_like = matches!(method, "GET" | "HEAD" | "OPTIONS");
    match (service, resource, rest) {
        // Account level: list queues or containers, service properties.
        (StorageService::Queue, None, _) => (
            Scope::StorageAccount,
            One(if read_like { QueueRead } else { QueueWrite }),
        ),
        (StorageService::Blob, None, _) => (
            Scope::StorageAccount,
            One(if read_like {
                ContainerRead
            } else {
                ContainerWrite
            }),
        ),
        (StorageService::Queue, Some(queue), None) => {
            let scope = Scope::Queue(queue.to_owned());
            let need = match method {
                "DELETE" => One(QueueDelete),
                _ if read_like => One(QueueRead),
                _ => One(QueueWrite),
            };
            (scope, need)
        }
        (StorageService::Queue, Some(queue), Some(rest)) => {
            let scope = Scope::Queue(queue.to_owned());
            let is_one_message = rest != "messages";
            let need = match (method, is_one_message) {
                ("POST", false) => Any(vec![One(QueueMessageAdd), One(QueueMessageWrite)]),
                ("GET", false) if q("peekonly") == Some("true") => One(QueueMessageRead),
                ("GET", false) => Any(vec![
                    One(QueueMessageProcess),
                    All(vec![One(QueueMessageDelete), One(QueueMessageRead)]),
                ]),
                ("DELETE", false) => One(QueueMessageDelete),
                ("DELETE", true) => Any(vec![One(QueueMessageProcess), One(QueueMessageDelete)]),
                ("PUT", true) => One(QueueMessageWrite),
                _ => One(QueueMessageWrite),
            };
            (scope, need)
        }
        (StorageService::Blob, Some(container), None) => {
            let scope = Scope::Container(container.to_owned());
            let need = if q("comp") == Some("list") {
                One(BlobRead)
            } else {
                match method {
                    "DELETE" => One(ContainerDelete),
                    _ if read_like => One(ContainerRead),
                    _ => One(ContainerWrite),
                }
            };
            (scope, need)
        }
        (StorageService::Blob, Some(container), Some(_blob)) => {
            let scope = Scope::Container(container.to_owned());
            let need = match method {
                "DELETE" => One(BlobDelete),
                _ if read_like => One(BlobRead),
                _ => One(BlobWrite),
            };
            (scope, need)
        }
    }
}

/// The Azure Storage REST operation a request is, by its documented name ("Put Message",
/// "Get Blob Properties"); what Azure bills one transaction for.
pub fn operation(
    service: StorageService,
    method: &str,
    path: &CheckedPath,
    query: &[(String, String)],
) -> &'static str {
    let q = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    let segments = path.segments();
    let comp = q("comp");
    match (service, segments.len(), method, comp) {
        (StorageService::Queue, 0 | 1, "GET", Some("list")) => "List Queues",
        (_, 0 | 1, "GET", _) => "Get Service Properties",
        (_, 0 | 1, _, _) => "Set Service Properties",
        (StorageService::Queue, 2, "PUT", Some("metadata")) => "Set Queue Metadata",
        (StorageService::Queue, 2, "GET" | "HEAD", Some("metadata")) => "Get Queue Metadata",
        (StorageService::Queue, 2, "PUT", _) => "Create Queue",
        (StorageService::Queue, 2, "DELETE", _) => "Delete Queue",
        (StorageService::Queue, 2, _, _) => "Get Queue Metadata",
        (StorageService::Queue, 3, "POST", _) => "Put Message",
        (StorageService::Queue, 3, "GET", _) if q("peekonly") == Some("true") => "Peek Messages",
        (StorageService::Queue, 3, "GET", _) => "Get Messages",
        (StorageService::Queue, 3, "DELETE", _) => "Clear Messages",
        (StorageService::Queue, _, "DELETE", _) => "Delete Message",
        (StorageService::Queue, _, "PUT", _) => "Update Message",
        (StorageService::Queue, _, _, _) => "Other Queue Operation",
        (StorageService::Blob, 2, "GET", Some("list")) => "List Blobs",
        (StorageService::Blob, 2, "PUT", _) => "Create Container",
        (StorageService::Blob, 2, "DELETE", _) => "Delete Container",
        (StorageService::Blob, 2, _, _) => "Get Container Properties",
        (StorageService::Blob, _, "PUT", Some("metadata")) => "Set Blob Metadata",
        (StorageService::Blob, _, "PUT", Some("properties")) => "Set Blob Properties",
        (StorageService::Blob, _, "PUT", Some("block")) => "Put Block",
        (StorageService::Blob, _, "PUT", Some("blocklist")) => "Put Block List",
        (StorageService::Blob, _, "PUT", Some("lease")) => "Lease Blob",
        (StorageService::Blob, _, "PUT", _) => "Put Blob",
        (StorageService::Blob, _, "HEAD", _) => "Get Blob Properties",
        (StorageService::Blob, _, "GET", Some("metadata")) => "Get Blob Metadata",
        (StorageService::Blob, _, "GET", _) => "Get Blob",
        (StorageService::Blob, _, "DELETE", _) => "Delete Blob",
        (StorageService::Blob, _, _, _) => "Other Blob Operation",
    }
}

/// Requests of one caller and one operation that the gate forwarded to Azurite.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct OperationCount {
    /// The identity that called (its name in the stack, or the token's object id).
    pub caller: String,
    /// The operation, as [`operation`] names it.
    pub operation: &'static str,
    /// How many requests.
    pub count: u64,
}

/// How many requests the gate forwarded to Azurite, by caller identity and operation.
#[derive(Debug, Default)]
pub struct OperationCounts(
    std::sync::Mutex<std::collections::BTreeMap<(String, &'static str), u64>>,
);

impl OperationCounts {
    fn add(&self, caller: String, operation: &'static str) {
        let mut counts = self.0.lock().unwrap_or_else(|p| p.into_inner());
        *counts.entry((caller, operation)).or_default() += 1;
    }

    /// The counts so far, sorted by caller and operation.
    pub fn snapshot(&self) -> Vec<OperationCount> {
        let counts = self.0.lock().unwrap_or_else(|p| p.into_inner());
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

/// One gate: the service it fronts and where Azurite listens.
pub struct StorageGate {
    service: StorageService,
    upstream: String,
    http: reqwest::Client,
    verifier: TokenVerifier,
    identities: Arc<IdentityProvider>,
    roles: Arc<RoleAssignments>,
    counts: OperationCounts,
}

impl StorageGate {
    /// A gate for `service` forwarding to `upstream` (Azurite's endpoint) with `http`.
    pub fn new(
        service: StorageService,
        upstream: String,
        http: reqwest::Client,
        identities: Arc<IdentityProvider>,
        roles: Arc<RoleAssignments>,
    ) -> Self {
        Self {
            service,
            upstream,
            http,
            verifier: identities.verifier(),
            identities,
            roles,
            counts: OperationCounts::default(),
        }
    }

    /// The requests this gate forwarded to Azurite, by caller and operation.
    pub fn operation_counts(&self) -> &OperationCounts {
        &self.counts
    }

    /// Every path goes through [`StorageGate::handle`].
    pub fn configure(self: &Arc<Self>, cfg: &mut web::ServiceConfig) {
        cfg.app_data(web::Data::from(self.clone()))
            .app_data(web::PayloadConfig::new(256 * 1024 * 1024))
            .default_service(web::to(gate));
    }

    fn audiences(&self) -> [String; 3] {
        let service = match self.service {
            StorageService::Queue => "queue",
            StorageService::Blob => "blob",
        };
        [
            "https://storage.azure.com".to_owned(),
            "e406a681-f3d4-42a8-90b6-c2b029497af1".to_owned(),
            format!("https://{ACCOUNT}.{service}.core.windows.net"),
        ]
    }
}

/// An error as Azure Storage answers it: XML body and `x-ms-error-code`.
fn storage_error(status: StatusCode, code: &str, message: &str) -> HttpResponse {
    let request_id = uuid::Uuid::new_v4();
    let time = OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let mut response = HttpResponse::build(status);
    response
        .insert_header(("x-ms-error-code", code))
        .insert_header(("x-ms-request-id", request_id.to_string()))
        .content_type("application/xml");
    if status == StatusCode::UNAUTHORIZED {
        response.insert_header((
            "WWW-Authenticate",
            format!(
                "Bearer authorization_uri=https://login.microsoftonline.com/{TENANT_ID}/oauth2/authorize \
                 resource_id=https://storage.azure.com"
            ),
        ));
    }
    response.body(format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>{code}</Code><Message>{message}\n\
         RequestId:{request_id}\nTime:{time}</Message></Error>"
    ))
}

/// What an `Authorization` header or the query asks for, before any token is looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyBased {
    /// `SharedKey` or `SharedKeyLite` (Azurite takes any value starting with `SharedKey`).
    SharedKey,
    /// An account or service SAS: signed with an account key.
    KeySas,
    /// A user-delegation SAS (`skoid`/`sktid`): signed with a key obtained with a token.
    UserDelegationSas,
}

/// Whether the request uses key-based authorization, as Azurite would read it: any
/// `Authorization` value starting with `SharedKey`, any query key starting with `sig` (so
/// `SIG`, `%73ig` and `sig[]` too).
fn key_based(
    authorization: &[&actix_web::http::header::HeaderValue],
    query: &[(String, String)],
) -> Option<KeyBased> {
    let shared_key = authorization.iter().any(|value| {
        let value = String::from_utf8_lossy(value.as_bytes());
        value
            .trim_start()
            .get(..9)
            .is_some_and(|s| s.eq_ignore_ascii_case("sharedkey"))
    });
    if shared_key {
        return Some(KeyBased::SharedKey);
    }
    let has = |prefix: &str| {
        query.iter().any(|(k, _)| {
            k.trim_start()
                .get(..prefix.len())
                .is_some_and(|s| s.eq_ignore_ascii_case(prefix))
        })
    };
    if !has("sig") {
        return None;
    }
    if has("skoid") || has("sktid") {
        Some(KeyBased::UserDelegationSas)
    } else {
        Some(KeyBased::KeySas)
    }
}

async fn gate(gate: web::Data<StorageGate>, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let path = match CheckedPath::parse(req.path()) {
        Ok(path) => path,
        Err(e) => {
            tracing::info!(reason = %e, "storage gate: request path refused");
            return storage_error(
                StatusCode::BAD_REQUEST,
                "InvalidUri",
                "The requested URI does not represent any resource on the server.",
            );
        }
    };
    let query: Vec<(String, String)> = form_urlencoded::parse(req.query_string().as_bytes())
        .into_owned()
        .collect();
    let authorization: Vec<_> = req.headers().get_all("authorization").collect();
    match key_based(&authorization, &query) {
        Some(KeyBased::SharedKey | KeyBased::KeySas) => {
            return storage_error(
                StatusCode::FORBIDDEN,
                "KeyBasedAuthenticationNotPermitted",
                "Key based authentication is not permitted on this storage account.",
            );
        }
        Some(KeyBased::UserDelegationSas) => {
            return storage_error(
                StatusCode::FORBIDDEN,
                "AuthorizationFailure",
                "This request is not authorized to perform this operation. (devstack: user \
                 delegation SAS is not supported locally; use a token)",
            );
        }
        None => {}
    }
    if authorization.len() > 1 {
        return storage_error(
            StatusCode::BAD_REQUEST,
            "InvalidHeaderValue",
            "The value for one of the HTTP headers is not in the correct format.",
        );
    }
    let Some(token) = bearer(authorization.first().copied()) else {
        return storage_error(
            StatusCode::UNAUTHORIZED,
            "NoAuthenticationInformation",
            "Server failed to authenticate the request. Please refer to the information in \
             the www-authenticate header.",
        );
    };
    let audiences = gate.audiences();
    let audiences: Vec<&str> = audiences.iter().map(String::as_str).collect();
    let claims = match gate.verifier.verify(token, &audiences) {
        Ok(claims) => claims,
        Err(e) => {
            return storage_error(
                StatusCode::UNAUTHORIZED,
                "InvalidAuthenticationInfo",
                &format!("Server failed to authenticate the request: {e}."),
            );
        }
    };
    let (scope, need) = classify(gate.service, req.method().as_str(), &path, &query);
    if !need.satisfied(&gate.roles, &claims.oid, &scope) {
        let who = gate
            .identities
            .by_object_id(&claims.oid)
            .map(|i| i.name.clone())
            .unwrap_or_else(|| claims.oid.clone());
        tracing::info!(
            caller = %who,
            action = need.first_action().azure_name(),
            scope = ?scope,
            "storage gate: permission mismatch"
        );
        return storage_error(
            StatusCode::FORBIDDEN,
            "AuthorizationPermissionMismatch",
            "This request is not authorized to perform this operation using this permission.",
        );
    }
    let caller = gate
        .identities
        .by_object_id(&claims.oid)
        .map(|i| i.name.clone())
        .unwrap_or(claims.oid);
    let operation = operation(gate.service, req.method().as_str(), &path, &query);
    gate.counts.add(caller, operation);
    forward(&gate, &req, &path, body).await
}

/// Headers that belong to one hop and are not forwarded.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
    "te",
    "trailer",
    "content-length",
];

/// Azurite's URL for the checked path: built from [`CheckedPath::encoded`] only, and refused if
/// URL parsing would change that path in any way.
fn upstream_url(upstream: &str, path: &CheckedPath, query: &str) -> Option<reqwest::Url> {
    let encoded = path.encoded();
    let mut url = format!("{upstream}{encoded}");
    if !query.is_empty() {
        url.push('?');
        url.push_str(query);
    }
    let url = reqwest::Url::parse(&url).ok()?;
    (url.path() == encoded).then_some(url)
}

async fn forward(
    gate: &StorageGate,
    req: &HttpRequest,
    path: &CheckedPath,
    body: web::Bytes,
) -> HttpResponse {
    let Some(url) = upstream_url(&gate.upstream, path, req.query_string()) else {
        tracing::warn!("storage gate: the checked path does not survive URL parsing; refused");
        return storage_error(
            StatusCode::BAD_REQUEST,
            "InvalidUri",
            "The requested URI does not represent any resource on the server.",
        );
    };
    let method = reqwest::Method::from_bytes(req.method().as_str().as_bytes())
        .unwrap_or(reqwest::Method::GET);
    let mut upstream = gate.http.request(method, url);
    for (name, value) in req.headers() {
        if !HOP_BY_HOP.contains(&name.as_str()) {
            upstream = upstream.header(name.as_str(), value.as_bytes());
        }
    }
    // Content-Length is per hop, so it is set again here, 0 included: without it Azurite answers
    // an empty Put Blob or Put Block with a bare 400.
    let response = match upstream
        .header("content-length", body.len())
        .body(body)
        .send()
        .await
    {
        Ok(response) => response,
        Err(e) => {
            tracing::warn!(error = %shared_auth::credential::error_chain(&e), "storage gate: Azurite unreachable");
            return storage_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "ServerBusy",
                "The storage emulator behind the gate is unavailable.",
            );
        }
    };
    let mut out = HttpResponse::build(
        StatusCode::from_u16(response.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY),
    );
    for (name, value) in response.headers() {
        if !HOP_BY_HOP.contains(&name.as_str()) {
            out.append_header((name.as_str(), value.as_bytes()));
        }
    }
    match response.bytes().await {
        Ok(bytes) => out.body(bytes),
        Err(_) => storage_error(
            StatusCode::BAD_GATEWAY,
            "ServerBusy",
            "The storage emulator closed the response early.",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use DataAction::*;

    fn need(service: StorageService, method: &str, path: &str, query: &[(&str, &str)]) -> Need {
        let query: Vec<(String, String)> = query
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        classify(service, method, &checked(path), &query).1
    }

    fn checked(path: &str) -> CheckedPath {
        CheckedPath::parse(path).unwrap()
    }

    #[test]
    fn queue_operations_need_what_azure_documents() {
        use StorageService::Queue;
        let p = "/devstoreaccount1/code-requests/messages";
        assert_eq!(
            need(Queue, "POST", p, &[]),
            Need::Any(vec![
                Need::One(QueueMessageAdd),
                Need::One(QueueMessageWrite)
            ])
        );
        assert_eq!(
            need(Queue, "GET", p, &[("peekonly", "true")]),
            Need::One(QueueMessageRead)
        );
        assert!(matches!(need(Queue, "GET", p, &[]), Need::Any(_)));
        assert_eq!(
            need(Queue, "PUT", &format!("{p}/abc"), &[]),
            Need::One(QueueMessageWrite)
        );
        assert_eq!(
            classify(
                Queue,
                "PUT",
                &checked("/devstoreaccount1/code-requests"),
                &[]
            ),
            (Scope::Queue("code-requests".into()), Need::One(QueueWrite))
        );
    }

    #[test]
    fn blob_operations_need_what_azure_documents() {
        use StorageService::Blob;
        assert_eq!(
            classify(
                Blob,
                "PUT",
                &checked("/devstoreaccount1/codes/abc-1-DEF"),
                &[]
            ),
            (Scope::Container("codes".into()), Need::One(BlobWrite))
        );
        assert_eq!(
            need(Blob, "HEAD", "/devstoreaccount1/codes/x", &[]),
            Need::One(BlobRead)
        );
        assert_eq!(
            need(Blob, "DELETE", "/devstoreaccount1/codes/x", &[]),
            Need::One(BlobDelete)
        );
        assert_eq!(
            need(
                Blob,
                "GET",
                "/devstoreaccount1/codes",
                &[("restype", "container"), ("comp", "list")]
            ),
            Need::One(BlobRead)
        );
        assert_eq!(
            need(
                Blob,
                "PUT",
                "/devstoreaccount1/codes",
                &[("restype", "container")]
            ),
            Need::One(ContainerWrite)
        );
    }

    #[test]
    fn operations_are_named_as_azure_bills_them() {
        use StorageService::{Blob, Queue};
        let op = |service, method: &str, path: &str, query: &[(&str, &str)]| {
            let query: Vec<(String, String)> = query
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            operation(service, method, &checked(path), &query)
        };
        let messages = "/devstoreaccount1/code-requests/messages";
        let one = "/devstoreaccount1/code-requests/messages/abc";
        assert_eq!(op(Queue, "POST", messages, &[]), "Put Message");
        assert_eq!(op(Queue, "GET", messages, &[]), "Get Messages");
        assert_eq!(
            op(Queue, "GET", messages, &[("peekonly", "true")]),
            "Peek Messages"
        );
        assert_eq!(op(Queue, "DELETE", one, &[]), "Delete Message");
        assert_eq!(op(Queue, "PUT", one, &[]), "Update Message");
        assert_eq!(
            op(
                Queue,
                "GET",
                "/devstoreaccount1/code-requests",
                &[("comp", "metadata")]
            ),
            "Get Queue Metadata"
        );
        let blob = "/devstoreaccount1/codes/ABC-1-DEF";
        assert_eq!(op(Blob, "PUT", blob, &[]), "Put Blob");
        assert_eq!(op(Blob, "HEAD", blob, &[]), "Get Blob Properties");
        assert_eq!(
            op(Blob, "PUT", blob, &[("comp", "metadata")]),
            "Set Blob Metadata"
        );
        assert_eq!(op(Blob, "DELETE", blob, &[]), "Delete Blob");
        assert_eq!(op(Blob, "GET", blob, &[]), "Get Blob");
        assert_eq!(
            op(
                Blob,
                "PUT",
                "/devstoreaccount1/codes",
                &[("restype", "container")]
            ),
            "Create Container"
        );
    }

    #[test]
    fn dot_segments_are_refused_however_they_are_spelled() {
        for dots in [
            ".", "..", "%2e", "%2E", "%2e%2e", "%2E%2E", "%2e.", ".%2E", "%2e%2E",
        ] {
            for path in [
                format!("/devstoreaccount1/codes/{dots}/other"),
                format!("/devstoreaccount1/{dots}"),
                format!("/devstoreaccount1/codes/{dots}"),
                format!("/devstoreaccount1/codes/{dots}/"),
                format!("/{dots}/devstoreaccount1/codes"),
            ] {
                assert_eq!(
                    CheckedPath::parse(&path),
                    Err(PathError::DotSegment),
                    "{path}"
                );
            }
        }
        // Dots inside a name are a name.
        assert_eq!(
            checked("/devstoreaccount1/codes/...").segments(),
            ["devstoreaccount1", "codes", "..."]
        );
        assert_eq!(
            checked("/devstoreaccount1/codes/a%2e%2eb").segments(),
            ["devstoreaccount1", "codes", "a..b"]
        );
        // Decoded once: "%252e%252e" is the literal name "%2e%2e", as Azurite reads it too.
        let double = checked("/devstoreaccount1/codes/%252e%252e");
        assert_eq!(double.segments()[2], "%2e%2e");
        assert_eq!(double.encoded(), "/devstoreaccount1/codes/%252e%252e");
    }

    #[test]
    fn encoded_separators_and_backslashes_are_refused() {
        for path in [
            "/devstoreaccount1/codes%2f..%2fother",
            "/devstoreaccount1/codes%2F..%2Fother",
            "/devstoreaccount1/codes%5c..%5cother",
            "/devstoreaccount1/codes%5C..%5Cother",
            "/devstoreaccount1/codes\\..\\other",
            "/devstoreaccount1/codes/a%2fb",
            "/devstoreaccount1/codes/a\\b",
        ] {
            assert_eq!(
                CheckedPath::parse(path),
                Err(PathError::EncodedSeparator),
                "{path}"
            );
        }
    }

    #[test]
    fn empty_segments_are_refused_but_one_trailing_slash() {
        for path in [
            "//devstoreaccount1/codes",
            "/devstoreaccount1//other",
            "/devstoreaccount1/codes//x",
            "/devstoreaccount1/codes/x//",
            "//",
        ] {
            assert_eq!(
                CheckedPath::parse(path),
                Err(PathError::EmptySegment),
                "{path}"
            );
        }
        assert_eq!(
            CheckedPath::parse("devstoreaccount1/codes"),
            Err(PathError::NotAbsolute)
        );
        assert_eq!(CheckedPath::parse(""), Err(PathError::NotAbsolute));
        let root = checked("/");
        assert!(root.segments().is_empty());
        assert_eq!(root.encoded(), "/");
        let account = checked("/devstoreaccount1/");
        assert_eq!(account.segments(), ["devstoreaccount1"]);
        assert_eq!(account.encoded(), "/devstoreaccount1/");
        assert_eq!(
            classify(StorageService::Blob, "GET", &account, &[]).0,
            Scope::StorageAccount
        );
        assert_eq!(
            checked("/devstoreaccount1/codes/dir/").encoded(),
            "/devstoreaccount1/codes/dir/"
        );
    }

    #[test]
    fn bad_escapes_and_control_characters_are_refused() {
        for path in [
            "/devstoreaccount1/codes/%",
            "/devstoreaccount1/codes/%2",
            "/devstoreaccount1/codes/%zz",
            "/devstoreaccount1/codes/%+1",
            "/devstoreaccount1/codes/%ff",
            "/devstoreaccount1/codes/%c3",
            "/devstoreaccount1/codes/a%00b",
            "/devstoreaccount1/codes/a%0Ab",
            "/devstoreaccount1/codes/%7f",
        ] {
            assert_eq!(
                CheckedPath::parse(path),
                Err(PathError::InvalidEncoding),
                "{path}"
            );
        }
    }

    #[test]
    fn an_encoded_container_name_is_classified_as_the_name_azurite_reads() {
        let path = checked("/devstoreaccount1/cod%65s/x");
        assert_eq!(
            classify(StorageService::Blob, "PUT", &path, &[]).0,
            Scope::Container("codes".into())
        );
        assert_eq!(path.encoded(), "/devstoreaccount1/codes/x");
        let name = checked("/devstoreaccount1/codes/dir/a%20b+c%C3%BC%25.json");
        assert_eq!(name.segments()[3], "a b+cü%.json");
        assert_eq!(
            name.encoded(),
            "/devstoreaccount1/codes/dir/a%20b+c%C3%BC%25.json"
        );
    }

    /// Azurite's `extractStoragePartsFromPath`: decode the whole path once, drop one leading
    /// slash, split on `/`, then backslashes in the blob name become slashes.
    fn azurite_reads(path: &str) -> Option<Vec<String>> {
        let mut bytes = Vec::new();
        let raw = path.as_bytes();
        let mut i = 0;
        while i < raw.len() {
            if raw[i] == b'%' {
                let hex = std::str::from_utf8(raw.get(i + 1..i + 3)?).ok()?;
                bytes.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            } else {
                bytes.push(raw[i]);
                i += 1;
            }
        }
        let decoded = String::from_utf8(bytes).ok()?;
        let decoded = decoded.strip_prefix('/').unwrap_or(&decoded);
        let parts: Vec<String> = decoded.split('/').map(str::to_owned).collect();
        let (account, container) = (parts.first()?.clone(), parts.get(1).cloned()?);
        let blob = parts[2.min(parts.len())..].join("/").replace('\\', "/");
        Some(
            [account, container, blob]
                .into_iter()
                .filter(|s| !s.is_empty())
                .collect(),
        )
    }

    /// Every path of up to four segments from pieces that have caused trouble: whatever is
    /// accepted is forwarded as a path URL parsing keeps byte for byte, reads back as the same
    /// checked path, and splits in Azurite into the account, container and name the gate
    /// classified.
    #[test]
    fn whatever_is_accepted_reaches_azurite_as_the_resource_that_was_checked() {
        let pieces = [
            "devstoreaccount1",
            "codes",
            "other",
            ".",
            "..",
            "%2e",
            "%2E%2e",
            "%2f",
            "%2F",
            "%5c",
            "\\",
            "",
            "%25",
            "%252e",
            "a%20b",
            "%C3%BC",
            "x.y",
            "$root",
            "a+b",
            "%3F",
            "%23",
            "@:",
        ];
        let mut paths = vec![String::new()];
        let mut checked_any = 0;
        for _ in 0..4 {
            let mut next = Vec::new();
            for prefix in &paths {
                for piece in pieces {
                    next.push(format!("{prefix}/{piece}"));
                }
            }
            for raw in &next {
                let Ok(path) = CheckedPath::parse(raw) else {
                    continue;
                };
                checked_any += 1;
                let encoded = path.encoded();
                let url = upstream_url("https://127.0.0.1:1", &path, "restype=container")
                    .unwrap_or_else(|| panic!("{raw} -> {encoded} does not survive URL parsing"));
                assert_eq!(url.path(), encoded, "{raw}");
                assert_eq!(CheckedPath::parse(&encoded).as_ref(), Ok(&path), "{raw}");
                let segments = path.segments();
                if segments.len() >= 2 {
                    // Same account, same container, and a name exactly when the gate saw one.
                    let mut expected = segments[..2].to_vec();
                    if segments.len() > 2 {
                        let slash = if path.has_trailing_slash() { "/" } else { "" };
                        expected.push(format!("{}{slash}", segments[2..].join("/")));
                    }
                    assert_eq!(azurite_reads(&encoded), Some(expected), "{raw}");
                }
            }
            paths = next;
        }
        assert!(checked_any > 10_000, "{checked_any}");
    }
}
