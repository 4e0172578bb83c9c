//! The ledger against the local stack's Blob Storage (Azurite behind the RBAC gate), as the
//! identities that use it: record once, consume once, remove and sweep only what has expired.

use codes::Code;
use codes::ledger::{CodeLedger, LedgerError, RecordState, Recorded, Swept};
use devstack::stack::Identity;
use devstack::storage_gate::{Fault, StorageService};
use std::time::Duration;
use test_kit::clients::{blob_client, ledger};
use test_kit::{ledger_record, start_stack};
use time::OffsetDateTime;

fn code(text: &str) -> Code {
    Code::parse(text).unwrap()
}

/// The state of `code`'s record, as `reader` sees it.
async fn state(reader: &CodeLedger, code: &Code) -> Option<RecordState> {
    reader
        .lookup(code)
        .await
        .unwrap()
        .map(|record| record.state)
}

/// Records `code` for message-1, valid from an hour ago until `now + valid_for` (negative: expired).
async fn record(ledger: &CodeLedger, code: &Code, valid_for: time::Duration) -> Recorded {
    record_for(ledger, code, "message-1", valid_for).await
}

#[tokio::test]
async fn records_once_consumes_once_and_never_accepts_an_expired_code() {
    let stack = start_stack(&[]).await;
    let worker = ledger(&stack, Identity::QueueWorker);
    let main_app = ledger(&stack, Identity::MainApp);

    let live = code("LiV-1-ReC");
    assert_eq!(
        record(&worker, &live, time::Duration::hours(1)).await,
        Recorded::Created
    );
    assert_eq!(
        record(&worker, &live, time::Duration::hours(1)).await,
        Recorded::AlreadyRecorded,
        "a duplicate delivery changes nothing"
    );
    assert_eq!(state(&main_app, &live).await, Some(RecordState::Issued));
    assert!(main_app.consume(&live).await.unwrap(), "valid once");
    assert!(!main_app.consume(&live).await.unwrap(), "then not valid");
    let used = main_app.lookup(&live).await.unwrap().unwrap();
    assert_eq!(used.state, RecordState::Used);
    assert!(used.used_at.is_some() && !used.usable_at(OffsetDateTime::now_utc()));

    let stale = code("StA-2-LeE");
    record(&worker, &stale, time::Duration::seconds(-1)).await;
    assert!(
        !main_app.consume(&stale).await.unwrap(),
        "expired: not valid"
    );
    assert!(
        !main_app.consume(&code("NoT-3-HeR")).await.unwrap(),
        "unknown: not valid"
    );
}

#[tokio::test]
async fn concurrent_consumes_of_one_code_have_exactly_one_winner() {
    let stack = start_stack(&[]).await;
    let worker = ledger(&stack, Identity::QueueWorker);
    let main_app = ledger(&stack, Identity::MainApp);
    let contested = code("OnE-4-WiN");
    record(&worker, &contested, time::Duration::hours(1)).await;
    let attempts = (0..8).map(|_| main_app.consume(&contested));
    let wins = futures::future::join_all(attempts)
        .await
        .into_iter()
        .filter(|r| *r.as_ref().unwrap())
        .count();
    assert_eq!(wins, 1);
}

#[tokio::test]
async fn the_sweep_removes_expired_records_used_or_not_and_nothing_else() {
    let stack = start_stack(&[]).await;
    let worker = ledger(&stack, Identity::QueueWorker);
    let main_app = ledger(&stack, Identity::MainApp);
    let expired_unused = code("ExP-5-UnU");
    let expired_used = code("ExP-6-UsE");
    let live = code("LiV-7-KeP");
    record(&worker, &expired_used, time::Duration::seconds(2)).await;
    assert!(main_app.consume(&expired_used).await.unwrap());
    record(&worker, &expired_unused, time::Duration::seconds(-1)).await;
    record(&worker, &live, time::Duration::hours(1)).await;

    let now = OffsetDateTime::now_utc();
    assert_eq!(
        worker.sweep_expired(now).await.unwrap(),
        Swept {
            scanned: 3,
            removed: 1
        },
        "only the expired one goes; the used one is not expired yet"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let later = OffsetDateTime::now_utc();
    assert_eq!(
        worker.sweep_expired(later).await.unwrap(),
        Swept {
            scanned: 2,
            removed: 1
        },
        "the used record goes at its expiry too"
    );
    assert_eq!(state(&worker, &live).await, Some(RecordState::Issued));
    assert_eq!(state(&worker, &expired_used).await, None);
    assert_eq!(state(&worker, &expired_unused).await, None);
    assert_eq!(
        worker.sweep_expired(later).await.unwrap(),
        Swept {
            scanned: 1,
            removed: 0
        },
        "a second sweep finds nothing to do"
    );
}

#[tokio::test]
async fn the_sweep_leaves_blobs_that_are_not_records_alone() {
    let stack = start_stack(&[]).await;
    let worker = ledger(&stack, Identity::QueueWorker);
    let far_future = OffsetDateTime::now_utc() + time::Duration::days(3650);
    // Something else in the container (an operator's file, a doctor probe): no expiry metadata.
    let blob = blob_client(&stack, "not-a-record", Identity::QueueWorker);
    blob.upload(azure_core::http::RequestContent::from(b"{}".to_vec()), None)
        .await
        .unwrap();
    assert_eq!(
        worker.sweep_expired(far_future).await.unwrap(),
        Swept {
            scanned: 1,
            removed: 0
        }
    );
    assert!(blob.get_properties(None).await.is_ok(), "still there");
}

#[tokio::test]
async fn without_the_role_the_sweep_is_forbidden_and_names_it() {
    let stack = start_stack(&[]).await;
    let outsider = ledger(&stack, Identity::ThirdPartyApi);
    let err = outsider
        .sweep_expired(OffsetDateTime::now_utc())
        .await
        .unwrap_err();
    assert!(matches!(err, LedgerError::Forbidden(_)), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("Storage Blob Data Contributor") && text.contains("container codes"),
        "{text}"
    );
}

/// How many `Set Blob Metadata` requests `caller` sent through the gate.
fn metadata_writes(stack: &devstack::stack::DevStack, caller: &str) -> u64 {
    stack.storage_operations_by(caller, "Set Blob Metadata")
}

#[tokio::test]
async fn a_verify_whose_write_committed_but_whose_answer_was_lost_is_told_valid() {
    let stack = start_stack(&[]).await;
    let worker = ledger(&stack, Identity::QueueWorker);
    let main_app = ledger(&stack, Identity::MainApp);
    let lost = code("LoS-7-AnS");
    record(&worker, &lost, time::Duration::hours(1)).await;
    // The write that marks the code used is carried out; its answer never arrives, so the SDK
    // retries it, and the retry meets the changed ETag (412).
    stack
        .storage_gate(StorageService::Blob)
        .set_fault(Some(Fault::LoseAnswer("Set Blob Metadata")));
    assert!(
        main_app.consume(&lost).await.unwrap(),
        "the holder whose own write used the code is told valid"
    );
    assert_eq!(
        metadata_writes(&stack, "main-app"),
        2,
        "the lost write and its retry"
    );
    assert_eq!(state(&main_app, &lost).await, Some(RecordState::Used));
    assert!(
        !main_app.consume(&lost).await.unwrap(),
        "and it is used: once"
    );

    // Another verify's write is still another's: a second holder racing is told not valid.
    let raced = code("RaC-8-EdX");
    record(&worker, &raced, time::Duration::hours(1)).await;
    let (first, second) = tokio::join!(main_app.consume(&raced), main_app.consume(&raced));
    assert_eq!(
        [first.unwrap(), second.unwrap()]
            .iter()
            .filter(|v| **v)
            .count(),
        1,
        "exactly one of two concurrent verifies wins"
    );
}

/// Records `code` for `message`, valid from an hour ago until `now + valid_for`.
async fn record_for(
    ledger: &CodeLedger,
    code: &Code,
    message: &str,
    valid_for: time::Duration,
) -> Recorded {
    let now = OffsetDateTime::now_utc();
    ledger
        .record(
            code,
            now - time::Duration::hours(1),
            now + valid_for,
            message,
        )
        .await
        .unwrap()
}

#[tokio::test]
async fn an_old_record_never_blocks_a_new_code_equal_to_it_and_a_live_one_is_never_taken() {
    let stack = start_stack(&[]).await;
    let worker = ledger(&stack, Identity::QueueWorker);
    let main_app = ledger(&stack, Identity::MainApp);
    let hour = time::Duration::hours(1);

    // The same code issued again after the first expired: recorded, and valid once.
    let again = code("AgA-4-InX");
    record_for(&worker, &again, "first", time::Duration::seconds(-1)).await;
    assert_eq!(
        record_for(&worker, &again, "second", hour).await,
        Recorded::ReplacedDead
    );
    assert!(
        main_app.consume(&again).await.unwrap(),
        "the new holder's code is valid"
    );
    assert!(!main_app.consume(&again).await.unwrap());

    // ... and after the first was used.
    let used = code("UsE-5-DtW");
    record_for(&worker, &used, "first", hour).await;
    assert!(main_app.consume(&used).await.unwrap());
    assert_eq!(
        record_for(&worker, &used, "second", hour).await,
        Recorded::ReplacedDead
    );
    assert!(
        main_app.consume(&used).await.unwrap(),
        "valid for its new holder"
    );

    // A duplicate delivery of the new message changes nothing.
    assert_eq!(
        record_for(&worker, &used, "second", hour).await,
        Recorded::AlreadyRecorded
    );

    // While the first is live, an equal code of another message never takes its record.
    let live = code("LiV-6-OnE");
    record_for(&worker, &live, "first", hour).await;
    assert_eq!(
        record_for(&worker, &live, "second", hour).await,
        Recorded::HeldByAnother
    );
    let record = main_app.lookup(&live).await.unwrap().unwrap();
    assert_eq!(record.state, RecordState::Issued, "untouched");
    assert_eq!(
        ledger_record(&stack, live.as_str()).await.unwrap()["message_id"],
        "first"
    );
}
