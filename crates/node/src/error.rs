//! The node's one error type: every failure carries its stable [`ErrorCode`] and a message that
//! says what went wrong and what to do. Each door maps codes to its own form (the HTTP edge to
//! statuses, in `ferry-server`).

use ferry_core::CoreError;
use ferry_proto::{ApiError, ErrorCode};
use ferry_store::StoreError;

/// A failed operation: its stable code, message and optional details, as every door shows them.
#[derive(Debug)]
pub struct NodeError(pub ApiError);

impl NodeError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> NodeError {
        NodeError(ApiError {
            code,
            message: message.into(),
            details: None,
        })
    }

    pub fn with_details(mut self, details: serde_json::Value) -> NodeError {
        self.0.details = Some(details);
        self
    }

    pub fn internal(detail: impl std::fmt::Display) -> NodeError {
        tracing::error!(error = %detail, "internal error");
        NodeError::new(
            ErrorCode::Internal,
            "the server failed to complete the request; its log has the details",
        )
    }
}

impl From<CoreError> for NodeError {
    fn from(e: CoreError) -> Self {
        NodeError::new(e.code(), e.to_string())
    }
}

impl From<StoreError> for NodeError {
    fn from(e: StoreError) -> Self {
        let code = match &e {
            StoreError::Invalid(core) => core.code(),
            StoreError::SpaceNotFound(_) => ErrorCode::SpaceNotFound,
            StoreError::ItemNotFound(_) => ErrorCode::ItemNotFound,
            StoreError::TokenNotFound(_) => ErrorCode::TokenNotFound,
            StoreError::PolicyRuleNotFound(_) => ErrorCode::PolicyRuleNotFound,
            StoreError::PeerNotFound(_) => ErrorCode::PeerNotFound,
            StoreError::PeerExists(_) => ErrorCode::InviteReused,
            StoreError::PeerChanged(_) => ErrorCode::PeerStateConflict,
            StoreError::CollabNotFound(_) => ErrorCode::CollabNotFound,
            StoreError::CollabChanged(_) => ErrorCode::CollabStateConflict,
            StoreError::CollabExists(_) => ErrorCode::InviteReused,
            StoreError::SpaceLinked { .. } => ErrorCode::SpaceLinked,
            StoreError::SpaceNameTaken(_) => ErrorCode::SpaceNameTaken,
            StoreError::SpaceNotEmpty { .. } => ErrorCode::SpaceNotEmpty,
            StoreError::WrongItemKind { .. } => ErrorCode::WrongItemKind,
            StoreError::LastAdminToken(_) => ErrorCode::LastAdminToken,
            StoreError::ConflictNotFound(_) => ErrorCode::ConflictNotFound,
            StoreError::ConflictResolved(_) => ErrorCode::ConflictResolved,
            StoreError::EditsRejected { results, .. } => {
                let details = serde_json::json!({ "results": results });
                return NodeError::new(ErrorCode::EditsRejected, e.to_string())
                    .with_details(details);
            }
            StoreError::Backend(detail) => return NodeError::internal(detail),
        };
        NodeError::new(code, e.to_string())
    }
}

impl From<ferry_proto::ticket::TicketError> for NodeError {
    fn from(e: ferry_proto::ticket::TicketError) -> Self {
        use ferry_proto::ticket::TicketError::*;
        let code = match &e {
            WrongKind => ErrorCode::InviteWrongKind,
            Malformed(_) => ErrorCode::InviteMalformed,
            Tampered => ErrorCode::InviteTampered,
            UnsupportedVersion(_) => ErrorCode::InviteUnsupportedVersion,
        };
        NodeError::new(code, e.to_string())
    }
}

/// A response (to a peer request or a collaboration invitation) that cannot be used, with
/// errors that name responses: `prefix` is how such a response starts, `sender` who sent it.
pub fn response_error(
    e: ferry_proto::ticket::TicketError,
    prefix: &str,
    sender: &str,
) -> NodeError {
    use ferry_proto::ticket::TicketError::*;
    let (code, message) = match e {
        Tampered => (
            ErrorCode::ResponseTampered,
            format!(
                "the response's signature does not match its content: it was altered; ask {sender} for a new one"
            ),
        ),
        WrongKind => (
            ErrorCode::ResponseInvalid,
            format!("this is not the response expected here: it should start with '{prefix}'"),
        ),
        Malformed(why) => (
            ErrorCode::ResponseInvalid,
            format!("the response is damaged or incomplete ({why}); copy it again in full"),
        ),
        UnsupportedVersion(v) => (
            ErrorCode::ResponseInvalid,
            format!(
                "the response uses format version {v}, which this Ferry does not read; upgrade Ferry"
            ),
        ),
    };
    NodeError::new(code, message)
}

impl From<ferry_core::peering::NotAllowed> for NodeError {
    fn from(e: ferry_core::peering::NotAllowed) -> Self {
        NodeError::new(
            ErrorCode::PeerStateConflict,
            format!(
                "a connection that is {} cannot take '{:?}'; `ferry peer show` tells its state",
                e.phase.as_str(),
                e.event
            ),
        )
    }
}

pub type NodeResult<T> = Result<T, NodeError>;

impl NodeError {
    pub fn code(&self) -> ErrorCode {
        self.0.code
    }
}

impl std::fmt::Display for NodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} [{}]", self.0.message, self.0.code.as_str())
    }
}

impl std::error::Error for NodeError {}
