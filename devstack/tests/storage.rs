//! Queue and Blob Storage through the gate to Azurite with real SDK clients and tokens: what
//! each identity's roles allow passes, the rest gets Azure's 403 AuthorizationPermissionMismatch.

mod support;

use azure_core::http::{RequestContent, StatusCode};
use azure_storage_queue::models::{QueueClientReceiveMessagesOptions, QueueMessage};
use devstack::rbac::{Role, Scope};
use devstack::stack::QUEUE;
use support::{blob_client, error_body, queue_client, start_stack};

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
    let main_app = queue_client(&stack, &stack.urls.queue, "main-app");
    let worker = queue_client(&stack, &stack.urls.queue, "queue-worker");
    let outsider = queue_client(&stack, &stack.urls.queue, "third-party-api");

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
    let poison = queue_client(&stack, &stack.urls.poison_queue, "main-app");
    let err = poison.send_message(message("x"), None).await.unwrap_err();
    assert_eq!(err.http_status(), Some(StatusCode::Forbidden));
}

#[tokio::test]
async fn a_role_granted_while_running_takes_effect_and_a_revoked_one_stops() {
    let stack = start_stack(|_| {}).await;
    let outsider = queue_client(&stack, &stack.urls.queue, "third-party-api");
    assert!(outsider.send_message(message("a"), None).await.is_err());
    let oid = stack
        .identities
        .get("third-party-api")
        .unwrap()
        .object_id
        .clone();
    stack.roles.grant(
        &oid,
        Role::StorageQueueDataMessageSender,
        Scope::Queue(QUEUE.into()),
    );
    outsider.send_message(message("b"), None).await.unwrap();
    assert!(stack.roles.revoke(
        &oid,
        Role::StorageQueueDataMessageSender,
        &Scope::Queue(QUEUE.into())
    ));
    assert!(outsider.send_message(message("c"), None).await.is_err());
}

#[tokio::test]
async fn blob_contributor_reads_writes_and_deletes_the_ledger_others_cannot() {
    let stack = start_stack(|_| {}).await;
    let worker = blob_client(&stack, "abc-42-XYZ", "queue-worker");
    worker
        .upload(RequestContent::from(b"{}".to_vec()), None)
        .await
        .unwrap();
    let main_app = blob_client(&stack, "abc-42-XYZ", "main-app");
    let body = main_app
        .download(None)
        .await
        .unwrap()
        .body
        .collect()
        .await
        .unwrap();
    assert_eq!(&body[..], b"{}");

    let outsider = blob_client(&stack, "abc-42-XYZ", "third-party-api");
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

    let main_app = stack.identities.get("main-app").unwrap();
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
