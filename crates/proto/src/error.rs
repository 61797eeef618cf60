//! The stable error codes. Clients (the CLI, scripts, other instances) match on `code`, never on
//! `message`, so a code once published keeps its meaning forever.

use serde::{Deserialize, Serialize};

/// Body of every error response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ApiError {
    /// Stable machine-readable code, e.g. `space_not_empty`.
    pub code: ErrorCode,
    /// What went wrong and what to do about it, for people.
    pub message: String,
    /// Extra structured context (per-edit results, the offending line, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<serde_json::Value>,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.code.as_str())
    }
}

impl std::error::Error for ApiError {}

macro_rules! error_codes {
    ($($(#[$doc:meta])* $variant:ident = $text:literal,)*) => {
        /// Every error code Ferry can return. The HTTP status for each lives in the server's error
        /// table, the one place that maps errors to responses.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum ErrorCode {
            $($(#[$doc])* $variant,)*
            /// A code this client does not know yet (a newer server).
            #[serde(other)]
            Unknown,
        }

        impl ErrorCode {
            /// All known codes, for documentation and exhaustive tests.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)*];

            /// The wire spelling.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $text,)*
                    ErrorCode::Unknown => "unknown",
                }
            }
        }
    };
}

error_codes! {
    /// No or unknown bearer token.
    Unauthenticated = "unauthenticated",
    /// The token's role is too weak for the operation.
    Forbidden = "forbidden",
    /// The request is malformed (bad parameter, bad JSON shape).
    InvalidRequest = "invalid_request",
    /// The body is larger than the configured limit.
    BodyTooLarge = "body_too_large",
    /// The Content-Type is not one this endpoint accepts.
    UnsupportedContentType = "unsupported_content_type",
    /// No such page or endpoint at this path.
    NotFound = "not_found",
    /// No such space.
    SpaceNotFound = "space_not_found",
    /// No such item.
    ItemNotFound = "item_not_found",
    /// No such token.
    TokenNotFound = "token_not_found",
    /// The token is the last admin token that is not revoked.
    LastAdminToken = "last_admin_token",
    /// A space with that name already exists.
    SpaceNameTaken = "space_name_taken",
    /// The space still holds items.
    SpaceNotEmpty = "space_not_empty",
    /// The item kind is not `dataset`, `feature_layer` or `file`.
    UnknownItemKind = "unknown_item_kind",
    /// The operation does not apply to this kind of item.
    WrongItemKind = "wrong_item_kind",
    /// The body is not valid GeoJSON (or not a FeatureCollection).
    MalformedGeojson = "malformed_geojson",
    /// The body is not valid CSV.
    MalformedCsv = "malformed_csv",
    /// A line of the body is not a JSON object.
    MalformedNdjson = "malformed_ndjson",
    /// A geometry is not a valid GeoJSON geometry.
    InvalidGeometry = "invalid_geometry",
    /// A value does not fit the item's schema.
    SchemaMismatch = "schema_mismatch",
    /// A schema given by the client is itself invalid.
    InvalidSchema = "invalid_schema",
    /// Two rows share a primary key.
    DuplicateKey = "duplicate_key",
    /// An edit names a row that does not exist.
    RowNotFound = "row_not_found",
    /// A batch of edits was refused as a whole; `details` has the result per edit.
    EditsRejected = "edits_rejected",
    /// A Range header asks for bytes outside the file.
    RangeNotSatisfiable = "range_not_satisfiable",
    /// A paging cursor was not produced by this server.
    InvalidCursor = "invalid_cursor",
    /// A marking or tag is not well formed.
    InvalidMarking = "invalid_marking",
    /// No such peer connection.
    PeerNotFound = "peer_not_found",
    /// The peer connection's state does not allow this (e.g. activating before approval).
    PeerStateConflict = "peer_state_conflict",
    /// The invite code is not a Ferry peer code.
    InviteWrongKind = "invite_wrong_kind",
    /// The invite code is damaged or incomplete.
    InviteMalformed = "invite_malformed",
    /// The invite code's signature does not match its content.
    InviteTampered = "invite_tampered",
    /// The invite code was written by a format version this instance does not read.
    InviteUnsupportedVersion = "invite_unsupported_version",
    /// The invite code has expired.
    InviteExpired = "invite_expired",
    /// The invite code was already used (or replaced by a refreshed one).
    InviteReused = "invite_reused",
    /// The invite code names a known instance but carries another key than the one pinned for it.
    InviteKeyMismatch = "invite_key_mismatch",
    /// The invite code was issued by this very instance.
    InviteOwn = "invite_own",
    /// A federation request carries no valid signature.
    SignatureInvalid = "signature_invalid",
    /// A federation request was signed outside the clock window.
    SignatureStale = "signature_stale",
    /// A federation request's body does not match its Content-Digest.
    DigestMismatch = "digest_mismatch",
    /// A federation request was seen before (same nonce).
    RequestReplayed = "request_replayed",
    /// The calling instance is not a known peer of this one.
    PeerUnknown = "peer_unknown",
    /// The calling instance's connection was deleted or revoked here.
    PeerRevoked = "peer_revoked",
    /// The receiving instance's ingress policy does not permit data from the sending one; the
    /// message names the instance and the rule (or that no rule allows it).
    IngressDenied = "ingress_denied",
    /// The sending instance's egress policy does not permit data to the receiving one; the
    /// message names the instance and the rule (or that no rule allows it).
    EgressDenied = "egress_denied",
    /// The item is still arriving at the instance asked for it (its own copy is not complete);
    /// nothing of it goes on until it is. Ask again later.
    ItemArriving = "item_arriving",
    /// This instance's policy permits data to flow with the other instance in no direction
    /// their link carries (neither egress to it nor ingress from it); the message names both.
    PolicyDenied = "policy_denied",
    /// The peer instance could not be reached.
    PeerUnreachable = "peer_unreachable",
    /// The peer instance answered with an error (in `details`).
    PeerRefused = "peer_refused",
    /// No such network policy rule.
    PolicyRuleNotFound = "policy_rule_not_found",
    /// No such collaboration.
    CollabNotFound = "collab_not_found",
    /// The collaboration's state does not allow this (e.g. it was deleted, or the guest left).
    CollabStateConflict = "collab_state_conflict",
    /// Only the collaboration's host may do this.
    CollabHostOnly = "collab_host_only",
    /// The calling guest was removed from the collaboration (or left it).
    CollabGuestRemoved = "collab_guest_removed",
    /// The host deleted the collaboration.
    CollabDeleted = "collab_deleted",
    /// No such invitation in the collaboration.
    InvitationNotFound = "invitation_not_found",
    /// No such workspace in the collaboration.
    WorkspaceNotFound = "workspace_not_found",
    /// This instance already linked a space to the workspace; unlink it first.
    WorkspaceAlreadyLinked = "workspace_already_linked",
    /// This instance has not linked a space to the workspace.
    WorkspaceNotLinked = "workspace_not_linked",
    /// No such participant in the collaboration.
    ParticipantNotFound = "participant_not_found",
    /// The space is linked to a collaboration workspace or a peer connection.
    SpaceLinked = "space_linked",
    /// The invitation was issued for another instance's URL.
    InviteWrongInstance = "invite_wrong_instance",
    /// The invitation was refreshed: a newer code replaced this one.
    InviteSuperseded = "invite_superseded",
    /// The host withdrew the invitation.
    InviteInvalidated = "invite_invalidated",
    /// A guest's response is damaged, of another kind, or of an unknown format version.
    ResponseInvalid = "response_invalid",
    /// A guest's response does not match its signature: it was altered.
    ResponseTampered = "response_tampered",
    /// The item is a copy received from another instance: only its origin changes it.
    ItemReceived = "item_received",
    /// The item's owner has not turned two-way editing on for it: its copies are read-only.
    TwoWayOff = "two_way_off",
    /// This instance's link to the item's origin does not allow editing it now: the mode is
    /// below send and receive, the workspace is not two-way, the connection does not carry the
    /// item's type both ways, or the copy came through a third instance.
    EditNotAllowed = "edit_not_allowed",
    /// Another instance sent edits it was not allowed to send (an item not two-way, not of this
    /// instance, outside the link, or a mode that does not send).
    EditRefused = "edit_refused",
    /// An edit claims a row version the origin never wrote.
    VersionInvalid = "version_invalid",
    /// A copy cannot make up keys (another copy could make the same): give the key.
    KeyRequired = "key_required",
    /// A copy's origin removed or retyped fields of its schema: the copy keeps its rows until an
    /// admin here accepts the change (`ferry item accept-schema`).
    SchemaChanged = "schema_changed",
    /// No conflict with that id here.
    ConflictNotFound = "conflict_not_found",
    /// The conflict was resolved already.
    ConflictResolved = "conflict_resolved",
    /// No such link: a peer connection id, or COLLABORATION/WORKSPACE.
    LinkNotFound = "link_not_found",
    /// The link carries no data in that direction now (not active, disabled, or outside the mode).
    LinkInactive = "link_inactive",
    /// The receiver refused an item outside what it agreed to import.
    SyncRefused = "sync_refused",
    /// The peer's URL is plain HTTP off loopback, and this instance does not allow that.
    PlainHttpRefused = "plain_http_refused",
    /// An answer from another instance is not signed by its pinned key (changed on the way).
    AnswerSignatureInvalid = "answer_signature_invalid",
    /// A sync stream's batch is not signed by the sender's pinned key (changed on the way):
    /// nothing of it was applied.
    StreamSignatureInvalid = "stream_signature_invalid",
    /// Another instance answered with more than this instance reads for that answer.
    PeerAnswerTooLarge = "peer_answer_too_large",
    /// A link brought an item whose origin it may not bring: a peer brings its own items, a
    /// collaboration host those of the workspace's participants.
    OriginNotAllowed = "origin_not_allowed",
    /// The item is larger than the link accepts.
    ItemTooLarge = "item_too_large",
    /// The item was offered by reference (or as a copy) where the link does not take that.
    DeliveryRefused = "delivery_refused",
    /// A referenced item's rows could not be read from its origin now.
    ReferenceUnavailable = "reference_unavailable",
    /// A sync stream ended before its end record.
    SyncStreamCut = "sync_stream_cut",
    /// Something failed inside the server; the log has details.
    Internal = "internal",
}
