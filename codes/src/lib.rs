//! The code domain: what main-app and queue-worker agree on, and nothing of authentication.
//!
//! - [`code`]: [`Code`], `AAA-N-BBB`, parsed once wherever a code enters (a request, a message).
//! - [`envelope`]: the versioned queue message that carries a code from main-app to the worker.
//! - [`ledger`]: the code ledger in Blob Storage (record, consume once, sweep after expiry).
//! - [`queues`]: the code queue's and poison queue's URLs, read the one way every crate reads them.
//! - [`variables`]: the names of the variables that point every crate at the queue and ledger.
//!
//! The flows these serve, the envelope's fields and why expiry rides on the record:
//! `docs/ARCHITECTURE.md` at the repository's root.

pub mod code;
pub mod envelope;
pub mod ledger;
pub mod queues;
pub mod variables;

pub use code::{Code, CodeError};
pub use envelope::{CodeEnvelope, EnvelopeError, Incoming, MessageEncoding, MessageType};
pub use ledger::{
    CodeLedger, CodeLedgerOptions, LedgerError, Record, RecordState, Recorded, Swept,
};
