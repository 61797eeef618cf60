//! The error table: the one place that maps every error to its stable code, HTTP status and
//! message.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ferry_core::CoreError;
use ferry_proto::{ApiError, ErrorCode};
use ferry_store::StoreError;

/// The HTTP status of each code.
pub fn status_of(code: ErrorCode) -> StatusCode {
    use ErrorCode::*;
    match code {
        Unauthenticated => StatusCode::UNAUTHORIZED,
        Forbidden => StatusCode::FORBIDDEN,
        InvalidRequest | InvalidCursor | InvalidMarking | InvalidSchema | UnknownItemKind => {
            StatusCode::BAD_REQUEST
        }
        BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        UnsupportedContentType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        SpaceNotFound | ItemNotFound | TokenNotFound | PolicyRuleNotFound | PeerNotFound
        | CollabNotFound | WorkspaceNotFound | ParticipantNotFound | InvitationNotFound
        | LinkNotFound => StatusCode::NOT_FOUND,
        InviteWrongKind
        | InviteMalformed
        | InviteTampered
        | InviteUnsupportedVersion
        | InviteOwn
        | InviteWrongInstance
        | ResponseInvalid
        | ResponseTampered => StatusCode::BAD_REQUEST,
        InviteExpired | InviteSuperseded | InviteInvalidated | CollabDeleted => StatusCode::GONE,
        SignatureInvalid | SignatureStale | RequestReplayed | PeerUnknown => {
            StatusCode::UNAUTHORIZED
        }
        DigestMismatch => StatusCode::BAD_REQUEST,
        PeerRevoked | IngressDenied | EgressDenied | PolicyDenied | PlainHttpRefused
        | CollabHostOnly | CollabGuestRemoved => StatusCode::FORBIDDEN,
        PeerUnreachable
        | PeerRefused
        | PeerAnswerTooLarge
        | AnswerSignatureInvalid
        | StreamSignatureInvalid => StatusCode::BAD_GATEWAY,
        InviteReused | InviteKeyMismatch | PeerStateConflict | LastAdminToken | ItemArriving => {
            StatusCode::CONFLICT
        }
        SpaceNameTaken | SpaceNotEmpty | WrongItemKind | SpaceLinked => StatusCode::CONFLICT,
        CollabStateConflict | WorkspaceAlreadyLinked | WorkspaceNotLinked | LinkInactive => {
            StatusCode::CONFLICT
        }
        SyncRefused | OriginNotAllowed | ItemTooLarge | DeliveryRefused => {
            StatusCode::UNPROCESSABLE_ENTITY
        }
        // Not 502: federation calls retry those, and every hop would multiply the retries.
        ReferenceUnavailable => StatusCode::FAILED_DEPENDENCY,
        ItemReceived => StatusCode::CONFLICT,
        SyncStreamCut => StatusCode::BAD_GATEWAY,
        MalformedGeojson | MalformedCsv | MalformedNdjson | InvalidGeometry | SchemaMismatch
        | DuplicateKey | RowNotFound | EditsRejected => StatusCode::UNPROCESSABLE_ENTITY,
        RangeNotSatisfiable => StatusCode::RANGE_NOT_SATISFIABLE,
        Internal | Unknown => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// An error on its way to becoming a response.
#[derive(Debug)]
pub(crate) struct ApiFailure(pub ApiError);

impl ApiFailure {
    pub(crate) fn new(code: ErrorCode, message: impl Into<String>) -> ApiFailure {
        ApiFailure(ApiError {
            code,
            message: message.into(),
            details: None,
        })
    }

    pub(crate) fn with_details(mut self, details: serde_json::Value) -> ApiFailure {
        self.0.details = Some(details);
        self
    }

    pub(crate) fn internal(detail: impl std::fmt::Display) -> ApiFailure {
        tracing::error!(error = %detail, "internal error");
        ApiFailure::new(
            ErrorCode::Internal,
            "the server failed to complete the request; its log has the details",
        )
    }
}

impl IntoResponse for ApiFailure {
    fn into_response(self) -> Response {
        (status_of(self.0.code), axum::Json(self.0)).into_response()
    }
}

impl From<CoreError> for ApiFailure {
    fn from(e: CoreError) -> Self {
        ApiFailure::new(e.code(), e.to_string())
    }
}

impl From<StoreError> for ApiFailure {
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
            StoreError::EditsRejected { results, .. } => {
                let details = serde_json::json!({ "results": results });
                return ApiFailure::new(ErrorCode::EditsRejected, e.to_string())
                    .with_details(details);
            }
            StoreError::Backend(detail) => return ApiFailure::internal(detail),
        };
        ApiFailure::new(code, e.to_string())
    }
}

impl From<ferry_proto::ticket::TicketError> for ApiFailure {
    fn from(e: ferry_proto::ticket::TicketError) -> Self {
        use ferry_proto::ticket::TicketError::*;
        let code = match &e {
            WrongKind => ErrorCode::InviteWrongKind,
            Malformed(_) => ErrorCode::InviteMalformed,
            Tampered => ErrorCode::InviteTampered,
            UnsupportedVersion(_) => ErrorCode::InviteUnsupportedVersion,
        };
        ApiFailure::new(code, e.to_string())
    }
}

impl From<ferry_core::peering::NotAllowed> for ApiFailure {
    fn from(e: ferry_core::peering::NotAllowed) -> Self {
        ApiFailure::new(
            ErrorCode::PeerStateConflict,
            format!(
                "a connection that is {} cannot take '{:?}'; `ferry peer show` tells its state",
                e.phase.as_str(),
                e.event
            ),
        )
    }
}

pub(crate) type ApiResult<T> = Result<T, ApiFailure>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_a_client_or_server_error_status() {
        for code in ErrorCode::ALL {
            let status = status_of(*code);
            assert!(
                status.is_client_error() || status.is_server_error(),
                "{code:?}"
            );
        }
    }
}
