//! Reading a federation request: its head, then (if policy could admit the caller at all) its
//! body, bounded in size and time; the node does every check.

use crate::error::{ApiFailure, ApiResult};
use axum::Json;
use axum::extract::{ConnectInfo, FromRequest, Request, State};
use ferry_node::Node;
use ferry_node::federation::{Incoming, RequestHead, SignedByPeer};
use ferry_proto::{ErrorCode, PeerConnection, signing};
use std::net::SocketAddr;

/// Federation bodies are small control messages.
const MAX_BODY: usize = 1 << 20;
/// ...and arrive quickly: a body sent a byte at a time does not hold a connection for long.
const BODY_DEADLINE: std::time::Duration = std::time::Duration::from_secs(30);

/// A request as received, its head admitted and its body read; not yet verified.
pub(crate) struct Unverified(pub Incoming);

impl FromRequest<Node> for Unverified {
    type Rejection = ApiFailure;

    async fn from_request(request: Request, node: &Node) -> Result<Self, ApiFailure> {
        let (parts, body) = request.into_parts();
        let header = |name: &str| {
            parts
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let head = RequestHead {
            method: parts.method.as_str().to_string(),
            path_and_query: parts
                .uri
                .path_and_query()
                .map_or_else(|| parts.uri.path().to_string(), |p| p.as_str().to_string()),
            signature: header(signing::SIGNATURE_HEADER),
            digest: header(signing::DIGEST_HEADER),
            remote: parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip()),
        };
        let incoming = Incoming::admit_head(node, head).await?;
        let read = axum::body::to_bytes(body, MAX_BODY);
        let body = match tokio::time::timeout(BODY_DEADLINE, read).await {
            Ok(Ok(body)) => body,
            Ok(Err(_)) => {
                return Err(ApiFailure::new(
                    ErrorCode::BodyTooLarge,
                    "federation requests carry at most 1 MiB",
                ));
            }
            Err(_) => {
                return Err(ApiFailure::new(
                    ErrorCode::InvalidRequest,
                    format!(
                        "the request body did not arrive within {} s",
                        BODY_DEADLINE.as_secs()
                    ),
                ));
            }
        };
        Ok(Unverified(incoming.with_body(body)))
    }
}

/// A request signed by a peer this instance has pinned, with every check passed.
pub(crate) struct Signed(pub SignedByPeer);

impl FromRequest<Node> for Signed {
    type Rejection = ApiFailure;

    async fn from_request(request: Request, node: &Node) -> Result<Self, ApiFailure> {
        let Unverified(incoming) = Unverified::from_request(request, node).await?;
        Ok(Signed(SignedByPeer::check(node, incoming).await?))
    }
}

/// The acceptor's response, online. The sender is not pinned yet: the signed response carries
/// its key, and the request must be signed with that same key.
pub(crate) async fn peer_response(
    State(node): State<Node>,
    Unverified(incoming): Unverified,
) -> ApiResult<Json<PeerConnection>> {
    Ok(Json(
        ferry_node::peers::inbound::peer_response(&node, incoming).await?,
    ))
}

/// The other side changed the connection: it activated, disabled, enabled or deleted it.
pub(crate) async fn peer_state(
    State(node): State<Node>,
    Signed(signed): Signed,
) -> ApiResult<Json<PeerConnection>> {
    Ok(Json(
        ferry_node::peers::inbound::peer_state(&node, signed).await?,
    ))
}

/// The other side proposed a change to its security settings, or decided on ours.
pub(crate) async fn peer_security(
    State(node): State<Node>,
    Signed(signed): Signed,
) -> ApiResult<Json<PeerConnection>> {
    Ok(Json(
        ferry_node::peers::inbound::peer_security(&node, signed).await?,
    ))
}

/// Answers a signed probe with the directions this instance's rules let data flow with the
/// caller.
pub(crate) async fn probe(
    State(node): State<Node>,
    Signed(signed): Signed,
) -> ApiResult<Json<serde_json::Value>> {
    Ok(Json(
        ferry_node::peers::inbound::probe(&node, signed).await?,
    ))
}
