//! The queue's error type, shared by the store, the actor and the messages.

/// What can go wrong with the queue.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// The queue file could not be created or opened (path, directory, permissions, disk).
    #[error("cannot open the queue at {path}: {source}")]
    Open {
        path: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A SQLite operation failed (disk full, I/O error, corruption).
    #[error("queue store failed: {0}")]
    Store(#[from] rusqlite::Error),
    /// No item with this id.
    #[error("no queue item with id {0}")]
    NotFound(i64),
    /// The operation needs a dead item and this one is not dead.
    #[error("queue item {id} is {state}, not dead")]
    NotDead { id: i64, state: &'static str },
    /// The actor is gone (shutdown) or its mailbox refused the message.
    #[error("queue actor unavailable: {0}")]
    Unavailable(String),
}
