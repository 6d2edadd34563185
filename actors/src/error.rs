//! The queue's error type, shared by the store, the actor and the messages that answer with it
//! (here, below both, so that `messages` and `queue` do not import each other).

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
    /// Another process holds the queue file (one filmgate per queue file).
    #[error(
        "queue {path} is in use by another filmgate{}; give each process its own queue.path",
        pid.map(|p| format!(" (pid {p})")).unwrap_or_default()
    )]
    InUse { path: String, pid: Option<u32> },
    /// The integrity check at open failed: the file is damaged.
    #[error(
        "queue {path} is damaged ({detail}). filmgate will not run on it: a damaged queue can \
         re-send delivered records or lose pending ones. Stop filmgate, move {path} and its -wal \
         and -shm files aside, recover what is readable with \
         `sqlite3 DAMAGED.sqlite3 .recover | sqlite3 {path}`, and start again (the records \
         service answers re-sent uids as replays); or start on a new empty queue file"
    )]
    Damaged { path: String, detail: String },
    /// A SQLite operation failed (disk full, I/O error, corruption).
    #[error("queue store failed: {0}")]
    Store(#[from] rusqlite::Error),
    /// No item with this id.
    #[error("no queue item with id {0}")]
    NotFound(i64),
    /// The operation needs a dead item and this one is not dead.
    #[error("queue item {id} is {state}, not dead")]
    NotDead { id: i64, state: &'static str },
    /// Accept takes a dead fragment; this dead item is a frame that did not parse (retry it).
    #[error("queue item {0} is not a fragment; retry it instead")]
    NotFragment(i64),
}
