//! Unit tests of the gate: what each operation needs and is called, and the paths it refuses or
//! forwards (every accepted path reaches Azurite as the resource that was checked).

use super::proxy::upstream_url;
use super::{CheckedPath, Need, PathError, StorageService, classify, operation};
use crate::rbac::DataAction::*;
use crate::rbac::Scope;

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
