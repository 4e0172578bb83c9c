//! Queue and Blob Storage through the gate to Azurite with real SDK clients and tokens: what
//! each identity's roles allow passes, the rest gets Azure's 403 AuthorizationPermissionMismatch;
//! paths that could name another resource than the one checked get 400 InvalidUri; key-based
//! authorization gets 403 KeyBasedAuthenticationNotPermitted, and Azurite itself does not know
//! the well-known key.

mod support;

use azure_core::http::{RequestContent, StatusCode};
use azure_storage_queue::models::{QueueClientReceiveMessagesOptions, QueueMessage};
use devstack::rbac::{Role, Scope};
use devstack::stack::QUEUE;
use devstack::stack::{Identity, Principal};
use support::{
    WELL_KNOWN_KEY, account_sas, azurite_blob_endpoint, blob_client, container_exists, error_body,
    queue_client, raw_request, shared_key_headers, start_stack, storage_token,
};

fn message(text: &str) -> RequestContent<QueueMessage, azure_core::http::XmlFormat> {
    QueueMessage {
        message_text: Some(text.into()),
    }
    .try_into()
    .unwrap()
}

#[tokio::test]
async fn queue_roles_are_enforced_per_operation() {
    let stack = start_stack(|_| {}).await;
    let main_app = queue_client(&stack, &stack.urls.queue, Identity::MainApp);
    let worker = queue_client(&stack, &stack.urls.queue, Identity::QueueWorker);
    let outsider = queue_client(&stack, &stack.urls.queue, Identity::ThirdPartyApi);

    // main-app: Sender. It can send, not receive.
    main_app.send_message(message("hello"), None).await.unwrap();
    let err = main_app.receive_messages(None).await.unwrap_err();
    assert_eq!(err.http_status(), Some(StatusCode::Forbidden));
    assert!(error_body(&err).contains("<Code>AuthorizationPermissionMismatch</Code>"));

    // queue-worker: Processor + Sender. It receives and deletes.
    let received = worker
        .receive_messages(Some(QueueClientReceiveMessagesOptions {
            number_of_messages: Some(1),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_model()
        .unwrap();
    let item = received.items.unwrap().remove(0);
    assert_eq!(item.message_text.as_deref(), Some("hello"));
    // Update Message needs messages/write, which neither Processor nor Sender has (as in Azure);
    // the worker gets it from a custom role. main-app, a Sender only, is refused.
    let (id, receipt) = (item.message_id.unwrap(), item.pop_receipt.unwrap());
    let err = main_app
        .update_message(&id, &receipt, 5, None)
        .await
        .unwrap_err();
    assert_eq!(err.http_status(), Some(StatusCode::Forbidden));
    let renewed = worker.update_message(&id, &receipt, 5, None).await.unwrap();
    let receipt = renewed
        .headers()
        .get_optional_string(&azure_core::http::headers::HeaderName::from_static(
            "x-ms-popreceipt",
        ))
        .expect("a new pop receipt");
    worker.delete_message(&id, &receipt, None).await.unwrap();

    // third-party-api has no storage role at all.
    let err = outsider
        .send_message(message("nope"), None)
        .await
        .unwrap_err();
    assert_eq!(err.http_status(), Some(StatusCode::Forbidden));
    // And nobody but the stack's admin may create or clear queues.
    let err = worker.clear(None).await.unwrap_err();
    assert_eq!(err.http_status(), Some(StatusCode::Forbidden));

    // main-app may not write to the poison queue: its Sender role is on code-requests only.
    let poison = queue_client(&stack, &stack.urls.poison_queue, Identity::MainApp);
    let err = poison.send_message(message("x"), None).await.unwrap_err();
    assert_eq!(err.http_status(), Some(StatusCode::Forbidden));
}

#[tokio::test]
async fn a_role_granted_while_running_takes_effect_and_a_revoked_one_stops() {
    let stack = start_stack(|_| {}).await;
    let outsider = queue_client(&stack, &stack.urls.queue, Identity::ThirdPartyApi);
    assert!(outsider.send_message(message("a"), None).await.is_err());
    stack.grant(
        Identity::ThirdPartyApi,
        Role::StorageQueueDataMessageSender,
        Scope::Queue(QUEUE.into()),
    );
    outsider.send_message(message("b"), None).await.unwrap();
    assert!(stack.revoke(
        Identity::ThirdPartyApi,
        Role::StorageQueueDataMessageSender,
        &Scope::Queue(QUEUE.into())
    ));
    assert!(outsider.send_message(message("c"), None).await.is_err());
}

#[tokio::test]
async fn blob_contributor_reads_writes_and_deletes_the_ledger_others_cannot() {
    let stack = start_stack(|_| {}).await;
    let worker = blob_client(&stack, "abc-42-XYZ", Identity::QueueWorker);
    worker
        .upload(RequestContent::from(b"{}".to_vec()), None)
        .await
        .unwrap();
    let main_app = blob_client(&stack, "abc-42-XYZ", Identity::MainApp);
    let body = main_app
        .download(None)
        .await
        .unwrap()
        .body
        .collect()
        .await
        .unwrap();
    assert_eq!(&body[..], b"{}");

    let outsider = blob_client(&stack, "abc-42-XYZ", Identity::ThirdPartyApi);
    let err = outsider.download(None).await.unwrap_err();
    assert_eq!(err.http_status(), Some(StatusCode::Forbidden));
    let err = outsider.delete(None).await.unwrap_err();
    assert_eq!(err.http_status(), Some(StatusCode::Forbidden));

    main_app.delete(None).await.unwrap();
    let err = worker.download(None).await.unwrap_err();
    assert_eq!(err.http_status(), Some(StatusCode::NotFound));
}

#[tokio::test]
async fn requests_without_or_with_bad_tokens_are_refused_like_azure() {
    let stack = start_stack(|_| {}).await;
    let url = format!("{}/messages", stack.urls.queue);
    let res = stack.http().get(&url).send().await.unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(
        res.headers()["x-ms-error-code"],
        "NoAuthenticationInformation"
    );

    let main_app = stack.identity(Identity::MainApp);
    for (token, why) in [
        (
            stack
                .identities
                .issue(&main_app, "https://vault.azure.net", 3600),
            "audience",
        ),
        (
            stack
                .identities
                .issue(&main_app, "https://storage.azure.com", -3600),
            "expired",
        ),
        ("not.a.token".to_owned(), "malformed"),
    ] {
        let res = stack
            .http()
            .post(&url)
            .bearer_auth(&token)
            .body("<QueueMessage><MessageText>x</MessageText></QueueMessage>")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 401, "{why}");
        assert_eq!(
            res.headers()["x-ms-error-code"],
            "InvalidAuthenticationInfo",
            "{why}"
        );
    }
    // A token signed by another key is refused too.
    let forged = devstack::identity::IdentityProvider::new(&["main-app"]).unwrap();
    let token = forged.issue(
        &forged.get("main-app").unwrap(),
        "https://storage.azure.com",
        3600,
    );
    let res = stack
        .http()
        .post(&url)
        .bearer_auth(token)
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
}

fn assert_storage_error(res: &support::RawResponse, status: u16, code: &str, what: &str) {
    assert_eq!(res.status, status, "{what}: {}", res.body);
    assert_eq!(res.header("x-ms-error-code"), Some(code), "{what}");
    assert!(
        res.body.contains(&format!("<Code>{code}</Code>")),
        "{what}: {}",
        res.body
    );
}

#[tokio::test]
async fn dot_segments_cannot_walk_out_of_the_granted_container() {
    let stack = start_stack(|_| {}).await;
    let token = format!("Bearer {}", storage_token(&stack, Identity::MainApp));
    let headers = [
        ("authorization", token.as_str()),
        ("x-ms-version", "2021-08-06"),
    ];
    for walk in [
        "codes/../other",
        "codes/%2e%2e/other",
        "codes/%2E%2E/other",
        "codes/.%2e/other",
        "codes/%2E./other",
        "codes/./../other",
        "codes/x/../../other",
    ] {
        let res = raw_request(
            &stack,
            &stack.urls.blob_service,
            "PUT",
            &format!("/devstoreaccount1/{walk}?restype=container"),
            &headers,
        )
        .await;
        assert_storage_error(&res, 400, "InvalidUri", walk);
    }
    // A blob write walking out is refused the same way.
    let res = raw_request(
        &stack,
        &stack.urls.blob_service,
        "PUT",
        "/devstoreaccount1/codes/%2e%2e/other/blob",
        &[headers[0], headers[1], ("x-ms-blob-type", "BlockBlob")],
    )
    .await;
    assert_storage_error(&res, 400, "InvalidUri", "blob walk");
    assert!(!container_exists(&stack, "other").await);
    // The gate's refusal is about the path, not the role: the same request straight is refused
    // by the role check.
    let res = raw_request(
        &stack,
        &stack.urls.blob_service,
        "PUT",
        "/devstoreaccount1/other?restype=container",
        &headers,
    )
    .await;
    assert_storage_error(&res, 403, "AuthorizationPermissionMismatch", "straight");
    assert!(!container_exists(&stack, "other").await);
}

#[tokio::test]
async fn encoded_separators_and_empty_segments_are_refused() {
    let stack = start_stack(|_| {}).await;
    let token = format!("Bearer {}", storage_token(&stack, Identity::MainApp));
    let headers = [
        ("authorization", token.as_str()),
        ("x-ms-version", "2021-08-06"),
    ];
    for path in [
        "/devstoreaccount1/codes%2f..%2fother",
        "/devstoreaccount1/codes%2F..%2Fother",
        "/devstoreaccount1/codes%5c..%5cother",
        "/devstoreaccount1/codes%5C..%5Cother",
        "/devstoreaccount1//other",
        "//devstoreaccount1/other",
    ] {
        let res = raw_request(
            &stack,
            &stack.urls.blob_service,
            "PUT",
            &format!("{path}?restype=container"),
            &headers,
        )
        .await;
        assert_storage_error(&res, 400, "InvalidUri", path);
    }
    // A raw backslash is not even a valid request target: refused before the gate runs.
    let res = raw_request(
        &stack,
        &stack.urls.blob_service,
        "PUT",
        "/devstoreaccount1/codes\\..\\other?restype=container",
        &headers,
    )
    .await;
    assert_eq!(res.status, 400, "{}", res.body);
    assert!(!container_exists(&stack, "other").await);
    // An ordinary (empty) blob in the granted container still goes through.
    let res = raw_request(
        &stack,
        &stack.urls.blob_service,
        "PUT",
        "/devstoreaccount1/codes/plain",
        &[headers[0], headers[1], ("x-ms-blob-type", "BlockBlob")],
    )
    .await;
    assert_eq!(res.status, 201, "{res:?}");
}

#[tokio::test]
async fn blob_names_with_reserved_characters_still_round_trip_through_the_gate() {
    let stack = start_stack(|_| {}).await;
    let name = "dir/a b+c ü(1)@x.json";
    let blob = blob_client(&stack, name, Identity::MainApp);
    blob.upload(RequestContent::from(b"{}".to_vec()), None)
        .await
        .unwrap();
    let body = blob
        .download(None)
        .await
        .unwrap()
        .body
        .collect()
        .await
        .unwrap();
    assert_eq!(&body[..], b"{}");
    // Listed by Azurite under exactly that name.
    let res = stack
        .http()
        .get(format!(
            "{}?restype=container&comp=list",
            stack.urls.container
        ))
        .bearer_auth(storage_token(&stack, Identity::MainApp))
        .header("x-ms-version", "2021-08-06")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let listing = res.text().await.unwrap();
    assert!(
        listing.contains(&format!("<Name>{name}</Name>")),
        "{listing}"
    );
    blob.delete(None).await.unwrap();
}

#[tokio::test]
async fn shared_key_is_refused_as_by_an_account_without_shared_key_access() {
    let stack = start_stack(|_| {}).await;
    let path = "/devstoreaccount1/skmade";
    let query = [("restype", "container")];
    let signed = shared_key_headers(WELL_KNOWN_KEY, "PUT", path, &query);
    let lite = [(
        "authorization",
        "SharedKeyLite devstoreaccount1:bm90IGEgc2ln",
    )];
    for (what, headers) in [
        (
            "SharedKey",
            signed
                .iter()
                .map(|(k, v)| (*k, v.as_str()))
                .collect::<Vec<_>>(),
        ),
        ("SharedKeyLite", lite.to_vec()),
    ] {
        let res = raw_request(
            &stack,
            &stack.urls.blob_service,
            "PUT",
            &format!("{path}?restype=container"),
            &headers,
        )
        .await;
        assert_storage_error(&res, 403, "KeyBasedAuthenticationNotPermitted", what);
        assert!(
            res.body
                .contains("Key based authentication is not permitted on this storage account."),
            "{}",
            res.body
        );
    }
    // A SharedKey header beside a valid token is refused the same way; two tokens are refused
    // as ambiguous (the gate would check one, Azurite might read the other).
    let admin = format!("Bearer {}", storage_token(&stack, Principal::Devstack));
    let main_app = format!("Bearer {}", storage_token(&stack, Identity::MainApp));
    let res = raw_request(
        &stack,
        &stack.urls.blob_service,
        "PUT",
        &format!("{path}?restype=container"),
        &[
            ("authorization", admin.as_str()),
            ("authorization", "SharedKey devstoreaccount1:bm90IGEgc2ln"),
        ],
    )
    .await;
    assert_storage_error(&res, 403, "KeyBasedAuthenticationNotPermitted", "beside");
    let res = raw_request(
        &stack,
        &stack.urls.blob_service,
        "PUT",
        &format!("{path}?restype=container"),
        &[
            ("authorization", main_app.as_str()),
            ("authorization", admin.as_str()),
        ],
    )
    .await;
    assert_storage_error(&res, 400, "InvalidHeaderValue", "two tokens");
    // The queue gate too.
    let res = stack
        .http()
        .get(format!("{}/messages", stack.urls.queue))
        .header("authorization", "SharedKey devstoreaccount1:bm90IGEgc2ln")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    assert_eq!(
        res.headers()["x-ms-error-code"],
        "KeyBasedAuthenticationNotPermitted"
    );
    assert!(!container_exists(&stack, "skmade").await);
}

#[tokio::test]
async fn a_sas_signed_with_the_well_known_key_is_refused_at_the_gate() {
    let stack = start_stack(|_| {}).await;
    let sas = account_sas(WELL_KNOWN_KEY, "sco", "rwdlac");
    let url = format!(
        "{}/sasmade?restype=container&{sas}",
        stack.urls.blob_service
    );
    let res = stack
        .http()
        .put(&url)
        .header("x-ms-version", "2021-08-06")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    assert_eq!(
        res.headers()["x-ms-error-code"],
        "KeyBasedAuthenticationNotPermitted"
    );
    let body = res.text().await.unwrap();
    assert!(body.contains("<Code>KeyBasedAuthenticationNotPermitted</Code>"));
    // With a valid token beside it, the SAS still decides: refused.
    let res = stack
        .http()
        .put(&url)
        .bearer_auth(storage_token(&stack, Principal::Devstack))
        .header("x-ms-version", "2021-08-06")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    // However `sig` is spelled.
    for spelled in ["SIG=x", "%73ig=x", "sig%5B%5D=x"] {
        let res = stack
            .http()
            .get(format!("{}/?comp=list&{spelled}", stack.urls.blob_service))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 403, "{spelled}");
    }
    // A user-delegation SAS is refused too (devstack supports tokens only).
    let res = stack
        .http()
        .get(format!(
            "{}/?comp=list&skoid=x&sktid=y&sig=z",
            stack.urls.blob_service
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    assert_eq!(res.headers()["x-ms-error-code"], "AuthorizationFailure");
    assert!(!container_exists(&stack, "sasmade").await);
}

#[tokio::test]
async fn azurite_itself_does_not_accept_the_well_known_key() {
    let stack = start_stack(|_| {}).await;
    let azurite = azurite_blob_endpoint(&stack).await;
    let answer = |res: reqwest::Response| {
        let code = res
            .headers()
            .get("x-ms-error-code")
            .map(|v| v.to_str().unwrap().to_owned());
        (res.status().as_u16(), code)
    };
    // List Containers straight at Azurite, past the gate, with an account SAS ...
    let sas = account_sas(WELL_KNOWN_KEY, "s", "l");
    let with_sas = stack
        .http()
        .get(format!("{azurite}/devstoreaccount1/?comp=list&{sas}"))
        .header("x-ms-version", "2021-08-06")
        .send()
        .await
        .unwrap();
    // ... and with SharedKey (both signed correctly: Azurite's default key would take them).
    let mut request = stack
        .http()
        .get(format!("{azurite}/devstoreaccount1/?comp=list"));
    for (name, value) in shared_key_headers(
        WELL_KNOWN_KEY,
        "GET",
        "/devstoreaccount1/",
        &[("comp", "list")],
    ) {
        request = request.header(name, value);
    }
    let with_shared_key = request.send().await.unwrap();
    // Azurite's own answers: a SAS whose signature no key matches is 403 AuthorizationFailure; a
    // SharedKey header that fails falls through to its token check, which answers 400.
    assert_eq!(
        (answer(with_sas), answer(with_shared_key)),
        (
            (403, Some("AuthorizationFailure".to_owned())),
            (400, Some("InvalidAuthenticationInfo".to_owned()))
        )
    );
    // Tokens still work there (Azurite checks them; the gate adds the roles).
    let res = stack
        .http()
        .get(format!("{azurite}/devstoreaccount1/?comp=list"))
        .bearer_auth(storage_token(&stack, Principal::Devstack))
        .header("x-ms-version", "2021-08-06")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn an_empty_blob_upload_passes_the_gate() {
    let stack = start_stack(|_| {}).await;
    let blob = blob_client(&stack, "empty", Identity::MainApp);
    blob.upload(RequestContent::from(Vec::new()), None)
        .await
        .unwrap();
    let body = blob
        .download(None)
        .await
        .unwrap()
        .body
        .collect()
        .await
        .unwrap();
    assert!(body.is_empty());
}
