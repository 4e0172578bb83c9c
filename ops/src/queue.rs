//! `keyless queue`: look at a queue without changing it (peek), empty it (clear), and move
//! poison messages back for another try (requeue-poison: send, then delete, so none is lost).

use crate::OpsError;
use crate::connect::{self, Connection};
use crate::roles::Role;
use azure_core::http::{RequestContent, Url};
use azure_storage_queue::QueueClient;
use azure_storage_queue::models::{
    QueueClientPeekMessagesOptions, QueueClientReceiveMessagesOptions, QueueMessage,
    ReceivedMessage,
};
use codes::{EnvelopeError, Incoming, MessageEncoding};
use shared_auth::azure_error::AzureCall;
use time::OffsetDateTime;
use time::format_description::well_known::{Rfc2822, Rfc3339};

/// The most messages one peek or receive returns (Azure's limit).
pub const MAX_BATCH: u32 = 32;
/// How long a message received for clearing or requeueing stays hidden from others.
const HOLD_SECONDS: i32 = 60;

/// Why a code envelope that decodes is in the poison queue. The worker moves a message there
/// unchanged (Azure queue messages carry no metadata, so its reason is only in its log): an
/// undecodable one on its first delivery, a decodable one only once handling it failed on the
/// last delivery it allows.
pub const RETRIES_EXHAUSTED: &str = "delivered and failed the worker's maximum number of times \
    (its setting WORKER_MAX_DEQUEUE_COUNT, default 5), then moved here unchanged; the worker's \
    log holds each failure and the last error under this envelope's id (`envelope.id`; the \
    queue's message id changed with the move), the last one as \"message moved to the poison \
    queue unchanged\"";

/// One message seen by peek, decoded as the worker would.
#[derive(Debug, Clone)]
pub struct Peeked {
    /// Queue Storage's message id.
    pub id: String,
    /// When it was put.
    pub inserted: Option<OffsetDateTime>,
    /// When it expires.
    pub expires: Option<OffsetDateTime>,
    /// How often it was received.
    pub dequeue_count: i64,
    /// The text as stored.
    pub raw: String,
    /// What it decodes to, or why it does not.
    pub decoded: Result<Incoming, EnvelopeError>,
    /// Whether it was read from the poison queue.
    pub poisoned: bool,
}

fn time_text(t: Option<OffsetDateTime>) -> String {
    t.and_then(|t| t.format(&Rfc3339).ok()).unwrap_or_default()
}

impl Peeked {
    /// Why it cannot be, or (in the poison queue) was not, handled, as far as the message itself
    /// tells: why it does not decode (bad encoding, not an envelope, not a valid code, ...), or
    /// for a code envelope in the poison queue [`RETRIES_EXHAUSTED`]. `None` for a message the
    /// worker would handle, and for a readiness probe (the worker never poisons one).
    pub fn reason(&self) -> Option<String> {
        match &self.decoded {
            Err(reason) => Some(reason.to_string()),
            Ok(Incoming::Code(_)) if self.poisoned => Some(RETRIES_EXHAUSTED.to_owned()),
            Ok(_) => None,
        }
    }
}

impl serde::Serialize for Peeked {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let (kind, envelope) = match &self.decoded {
            Ok(Incoming::Code(e)) => (
                serde_json::to_value(e.kind).unwrap_or_default(),
                serde_json::to_value(e).ok(),
            ),
            Ok(Incoming::Probe) => (serde_json::json!("probe"), None),
            Err(_) => (serde_json::json!("undecodable"), None),
        };
        serde_json::json!({
            "id": self.id,
            "inserted": time_text(self.inserted),
            "expires": time_text(self.expires),
            "dequeue_count": self.dequeue_count,
            "kind": kind,
            "envelope": envelope,
            "reason": self.reason(),
            "raw": self.raw,
        })
        .serialize(s)
    }
}

/// The message for people: one line, then what it holds; when undecodable the raw text, when
/// poisoned the reason.
impl std::fmt::Display for Peeked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inserted = time_text(self.inserted);
        writeln!(
            f,
            "{}  dequeued {}  inserted {inserted}",
            self.id, self.dequeue_count
        )?;
        match &self.decoded {
            Ok(Incoming::Code(e)) => {
                let kind = serde_json::to_value(e.kind).unwrap_or_default();
                writeln!(
                    f,
                    "    {} {} issued {} expires {} (message id {})",
                    kind.as_str().unwrap_or_default(),
                    e.code.as_str(),
                    time_text(Some(e.issued_at)),
                    time_text(Some(e.expires_at)),
                    e.id
                )?;
                match self.reason() {
                    Some(reason) => writeln!(f, "    poisoned: {reason}"),
                    None => Ok(()),
                }
            }
            Ok(Incoming::Probe) => writeln!(f, "    readiness probe"),
            Err(reason) => writeln!(
                f,
                "    undecodable: {reason}\n    raw: {}",
                self.raw.escape_debug()
            ),
        }
    }
}

/// What `keyless queue peek` found: the messages at the front of a queue.
#[derive(Debug, serde::Serialize)]
pub struct Peek {
    /// The queue's name.
    pub queue: String,
    /// Its first messages.
    pub messages: Vec<Peeked>,
}

impl std::fmt::Display for Peek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (queue, n) = (&self.queue, self.messages.len());
        writeln!(f, "queue {queue}: {n} message(s) at the front")?;
        self.messages.iter().try_for_each(|m| write!(f, "{m}"))
    }
}

/// What `keyless queue clear` deleted.
#[derive(Debug, serde::Serialize)]
pub struct Cleared {
    /// The queue's name.
    pub queue: String,
    /// How many messages it deleted.
    pub deleted: usize,
}

impl std::fmt::Display for Cleared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "queue {}: deleted {} message(s)",
            self.queue, self.deleted
        )
    }
}

/// What `keyless queue requeue-poison` moved.
#[derive(Debug, serde::Serialize)]
pub struct Requeued {
    /// The poison queue's name.
    pub from: String,
    /// The code queue's name.
    pub to: String,
    /// How many messages it moved.
    pub requeued: usize,
}

impl std::fmt::Display for Requeued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Self { from, to, requeued } = self;
        writeln!(f, "requeued {requeued} message(s) from {from} to {to}")
    }
}

/// Doing `action` ("peek", "send to") to the queue at `url` failed with `error`; a 403 names
/// `role` on the queue.
fn refused(error: &azure_core::Error, action: &str, url: &Url, role: Role) -> OpsError {
    let queue = format!("queue {}", connect::resource_name(url));
    let call = AzureCall::new(action, &queue).needs_role(role.name(), &queue);
    OpsError::azure(&call.failed(error), role)
}

/// Up to `max` messages at the front of the queue at `url` (the poison queue when `poisoned`),
/// without changing them (Peek Messages: no dequeue count, no visibility change).
pub async fn peek(
    conn: &Connection,
    url: &Url,
    poisoned: bool,
    encoding: MessageEncoding,
    max: u32,
) -> Result<Vec<Peeked>, OpsError> {
    let client = conn.queue(url)?;
    let options = QueueClientPeekMessagesOptions {
        number_of_messages: Some(max.clamp(1, MAX_BATCH) as i32),
        ..Default::default()
    };
    let peeked = client
        .peek_messages(Some(options))
        .await
        .and_then(|r| r.into_model())
        .map_err(|e| refused(&e, "peek", url, Role::StorageQueueDataMessageProcessor))?;
    Ok(peeked
        .items
        .unwrap_or_default()
        .into_iter()
        .map(|m| {
            let raw = m.message_text.unwrap_or_default();
            Peeked {
                id: m.message_id.unwrap_or_default(),
                inserted: m.insertion_time,
                expires: m.expiration_time,
                dequeue_count: m.dequeue_count.unwrap_or_default(),
                decoded: Incoming::decode(&raw, encoding),
                raw,
                poisoned,
            }
        })
        .collect())
}

/// The role receiving and deleting need.
const PROCESSOR: Role = Role::StorageQueueDataMessageProcessor;

async fn receive(
    client: &QueueClient,
    url: &Url,
    count: u32,
) -> Result<Vec<ReceivedMessage>, OpsError> {
    let options = QueueClientReceiveMessagesOptions {
        number_of_messages: Some(count.clamp(1, MAX_BATCH) as i32),
        visibility_timeout: Some(HOLD_SECONDS),
        ..Default::default()
    };
    client
        .receive_messages(Some(options))
        .await
        .and_then(|r| r.into_model())
        .map(|m| m.items.unwrap_or_default())
        .map_err(|e| refused(&e, "receive from", url, PROCESSOR))
}

async fn delete(
    client: &QueueClient,
    url: &Url,
    message: &ReceivedMessage,
) -> Result<(), OpsError> {
    let (Some(id), Some(receipt)) = (&message.message_id, &message.pop_receipt) else {
        return Ok(());
    };
    client
        .delete_message(id, receipt, None)
        .await
        .map(drop)
        .map_err(|e| refused(&e, "delete from", url, PROCESSOR))
}

/// Deletes every visible message of the queue at `url` (received, then deleted: what Message
/// Processor allows); `progress` gets the running count. Messages hidden now (scheduled
/// expiries, messages in flight) stay.
pub async fn clear(
    conn: &Connection,
    url: &Url,
    progress: &mut dyn FnMut(usize),
) -> Result<usize, OpsError> {
    let client = conn.queue(url)?;
    let mut cleared = 0;
    loop {
        let batch = receive(&client, url, MAX_BATCH).await?;
        if batch.is_empty() {
            return Ok(cleared);
        }
        for message in &batch {
            delete(&client, url, message).await?;
            cleared += 1;
        }
        progress(cleared);
    }
}

/// Moves up to `max` (all when `None`) visible messages from `poison` back to `queue`, text
/// unchanged; each is sent before it is deleted, so a failure leaves it in the poison queue.
/// Only messages that were in the poison queue when it started are moved, each once: a copy
/// the worker poisons again while this runs is left where it is, so the command ends and never
/// sends one message twice.
pub async fn requeue_poison(
    conn: &Connection,
    poison: &Url,
    queue: &Url,
    max: Option<u32>,
    progress: &mut dyn FnMut(usize),
) -> Result<usize, OpsError> {
    let from = conn.queue(poison)?;
    let to = conn.queue(queue)?;
    let there_at_start = start_line(&from, poison).await?;
    let mut moved = 0usize;
    loop {
        let left = max.map_or(MAX_BATCH, |m| m.saturating_sub(moved as u32).min(MAX_BATCH));
        if left == 0 {
            return Ok(moved);
        }
        let batch = receive(&from, poison, left).await?;
        let old: Vec<&ReceivedMessage> = batch
            .iter()
            .filter(|m| m.insertion_time.is_none_or(&there_at_start))
            .collect();
        if old.is_empty() {
            // Empty, or only copies poisoned since the start (hidden for a minute, then back).
            return Ok(moved);
        }
        for message in old {
            let content: RequestContent<QueueMessage, _> = QueueMessage {
                message_text: Some(message.message_text.clone().unwrap_or_default()),
            }
            .try_into()
            .map_err(|e: azure_core::Error| OpsError::Failed(e.to_string()))?;
            to.send_message(content, None)
                .await
                .map_err(|e| refused(&e, "send to", queue, Role::StorageQueueDataMessageSender))?;
            delete(&from, poison, message).await?;
            moved += 1;
        }
        progress(moved);
    }
}

/// What was in the queue at the start, by Storage's clock: its time (the `Date` of a peek,
/// whole seconds, as insertion times are), then a wait past that second, so every message sent
/// from then on, copies of moved ones included, has a later insertion time than any message
/// that was there.
async fn start_line(
    client: &QueueClient,
    url: &Url,
) -> Result<impl Fn(OffsetDateTime) -> bool, OpsError> {
    let peeked = client
        .peek_messages(None)
        .await
        .map_err(|e| refused(&e, "peek into", url, Role::StorageQueueDataMessageProcessor))?;
    let storage_now = peeked
        .headers()
        .get_optional_string(&azure_core::http::headers::HeaderName::from_static("date"))
        .and_then(|d| OffsetDateTime::parse(&d, &Rfc2822).ok())
        .unwrap_or_else(OffsetDateTime::now_utc);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    Ok(move |inserted: OffsetDateTime| inserted <= storage_now)
}
