//! The storage gate: an HTTPS reverse proxy in front of Azurite that enforces the role table as
//! Azure Storage does. Azurite checks a token's issuer, audience and lifetime but never the
//! caller's roles, so without the gate a missing role would pass locally and fail in Azure.
//! Requests the roles allow are forwarded unchanged (token included: Azurite checks it too).

use crate::azurite::ACCOUNT;
use crate::identity::IdentityProvider;
use crate::jwt::{TENANT_ID, TokenVerifier, bearer};
use crate::rbac::{DataAction, RoleAssignments, Scope};
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
    path: &str,
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
    let segments: Vec<&str> = path.trim_start_matches('/').splitn(3, '/').collect();
    let resource = segments.get(1).copied().filter(|s| !s.is_empty());
    let rest = segments.get(2).copied().filter(|s| !s.is_empty());
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
            let is_one_message = rest.trim_end_matches('/') != "messages";
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

/// One gate: the service it fronts and where Azurite listens.
pub struct StorageGate {
    service: StorageService,
    upstream: String,
    http: reqwest::Client,
    verifier: TokenVerifier,
    identities: Arc<IdentityProvider>,
    roles: Arc<RoleAssignments>,
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
        }
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

async fn gate(gate: web::Data<StorageGate>, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let query: Vec<(String, String)> = form_urlencoded::parse(req.query_string().as_bytes())
        .into_owned()
        .collect();
    let is_sas = query.iter().any(|(k, _)| k == "sig");
    match bearer(req.headers().get("authorization")) {
        Some(token) => {
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
            let (scope, need) = classify(gate.service, req.method().as_str(), req.path(), &query);
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
        }
        None if is_sas => {}
        None => {
            return storage_error(
                StatusCode::UNAUTHORIZED,
                "NoAuthenticationInformation",
                "Server failed to authenticate the request. Please refer to the information in \
                 the www-authenticate header.",
            );
        }
    }
    forward(&gate, &req, body).await
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

async fn forward(gate: &StorageGate, req: &HttpRequest, body: web::Bytes) -> HttpResponse {
    let mut url = format!("{}{}", gate.upstream, req.path());
    if !req.query_string().is_empty() {
        url.push('?');
        url.push_str(req.query_string());
    }
    let method = reqwest::Method::from_bytes(req.method().as_str().as_bytes())
        .unwrap_or(reqwest::Method::GET);
    let mut upstream = gate.http.request(method, &url);
    for (name, value) in req.headers() {
        if !HOP_BY_HOP.contains(&name.as_str()) {
            upstream = upstream.header(name.as_str(), value.as_bytes());
        }
    }
    let response = match upstream.body(body).send().await {
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
        classify(service, method, path, &query).1
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
            classify(Queue, "PUT", "/devstoreaccount1/code-requests", &[]),
            (Scope::Queue("code-requests".into()), Need::One(QueueWrite))
        );
    }

    #[test]
    fn blob_operations_need_what_azure_documents() {
        use StorageService::Blob;
        assert_eq!(
            classify(Blob, "PUT", "/devstoreaccount1/codes/abc-1-DEF", &[]),
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
}
