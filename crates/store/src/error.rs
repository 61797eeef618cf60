use ferry_core::CoreError;
use ferry_proto::EditResult;

/// Why a storage operation failed. `Backend` is for faults of the database or disk; everything
/// else is the caller's input or the data's state, with a message that says what to do.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Invalid(#[from] CoreError),
    #[error("space '{0}' does not exist; `ferry space list` shows the spaces")]
    SpaceNotFound(String),
    #[error("item {0} does not exist; `ferry item list` shows the items")]
    ItemNotFound(String),
    #[error("token {0} does not exist; `ferry token list` shows the tokens")]
    TokenNotFound(String),
    #[error("peer connection {0} does not exist; `ferry peer list` shows them")]
    PeerNotFound(String),
    #[error("peer connection {0} changed meanwhile; look at it again and retry")]
    PeerChanged(String),
    #[error("this invite code was already used here (connection {0})")]
    PeerExists(String),
    #[error("collaboration {0} does not exist; `ferry collab list` shows them")]
    CollabNotFound(String),
    #[error("collaboration {0} changed meanwhile; look at it again and retry")]
    CollabChanged(String),
    #[error("this instance already takes part in collaboration {0}")]
    CollabExists(String),
    #[error("space '{name}' is linked to {}; unlink it first", links.join(", "))]
    SpaceLinked { name: String, links: Vec<String> },
    #[error("policy rule {0} does not exist; `ferry policy list` shows the rules")]
    PolicyRuleNotFound(String),
    #[error("a space named '{0}' already exists; choose another name")]
    SpaceNameTaken(String),
    #[error("space '{name}' still holds {items} item(s); delete them first or delete with --force")]
    SpaceNotEmpty { name: String, items: i64 },
    #[error("item {id} is a {actual}; this operation needs a {expected}")]
    WrongItemKind {
        id: String,
        actual: &'static str,
        expected: &'static str,
    },
    #[error("{failed} of {total} edits failed, so none was applied; see details")]
    EditsRejected {
        failed: usize,
        total: usize,
        results: Vec<EditResult>,
    },
    #[error(
        "token {0} is the last admin token that is not revoked; create another admin token first (`ferry token create NAME --role admin`), or recover one offline with `ferry token recover`"
    )]
    LastAdminToken(String),
    #[error("conflict {0} does not exist; `ferry conflicts list` shows them")]
    ConflictNotFound(String),
    #[error("conflict {0} was resolved already")]
    ConflictResolved(String),
    #[error("storage failure: {0}")]
    Backend(String),
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Backend(e.to_string())
    }
}

impl From<std::io::Error> for StoreError {
    fn from(e: std::io::Error) -> Self {
        StoreError::Backend(e.to_string())
    }
}

impl From<serde_json::Error> for StoreError {
    fn from(e: serde_json::Error) -> Self {
        StoreError::Backend(format!("stored JSON is corrupt: {e}"))
    }
}

pub type StoreResult<T> = Result<T, StoreError>;
