//! The error table: the one place that maps every error to its stable code, HTTP status and
//! message.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ferry_node::NodeError;
use ferry_proto::{ApiError, ErrorCode};

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
        NotFound | SpaceNotFound | ItemNotFound | TokenNotFound | PolicyRuleNotFound
        | PeerNotFound | CollabNotFound | WorkspaceNotFound | ParticipantNotFound
        | InvitationNotFound | LinkNotFound => StatusCode::NOT_FOUND,
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
        ItemReceived | TwoWayOff | EditNotAllowed | ConflictResolved | SchemaChanged => {
            StatusCode::CONFLICT
        }
        EditRefused | VersionInvalid | KeyRequired => StatusCode::UNPROCESSABLE_ENTITY,
        ConflictNotFound => StatusCode::NOT_FOUND,
        SyncStreamCut => StatusCode::BAD_GATEWAY,
        MalformedGeojson | MalformedCsv | MalformedNdjson | InvalidGeometry | SchemaMismatch
        | DuplicateKey | RowNotFound | EditsRejected => StatusCode::UNPROCESSABLE_ENTITY,
        RangeNotSatisfiable => StatusCode::RANGE_NOT_SATISFIABLE,
        Internal | Unknown => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// A node error on its way to becoming a response.
#[derive(Debug)]
pub(crate) struct ApiFailure(pub NodeError);

impl ApiFailure {
    pub(crate) fn new(code: ErrorCode, message: impl Into<String>) -> ApiFailure {
        ApiFailure(NodeError::new(code, message))
    }

    pub(crate) fn internal(detail: impl std::fmt::Display) -> ApiFailure {
        ApiFailure(NodeError::internal(detail))
    }
}

impl IntoResponse for ApiFailure {
    fn into_response(self) -> Response {
        let error: ApiError = self.0.0;
        (status_of(error.code), axum::Json(error)).into_response()
    }
}

impl<E: Into<NodeError>> From<E> for ApiFailure {
    fn from(e: E) -> Self {
        ApiFailure(e.into())
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
