//! What a storage request is: the resource it touches and the permission it needs (what the
//! gate checks), and the REST operation it is by Azure's name (what the gate counts).

use super::StorageService;
use crate::caller::Need;
use crate::rbac::{DataAction, Scope};
use crate::storage_path::CheckedPath;

/// The value of query parameter `name` (any case), as Azure Storage reads it.
fn query_value<'q>(query: &'q [(String, String)], name: &str) -> Option<&'q str> {
    query
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
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
    let q = |name: &str| query_value(query, name);
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
    let q = |name: &str| query_value(query, name);
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
