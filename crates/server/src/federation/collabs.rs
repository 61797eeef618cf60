//! Collaboration calls between instances: a guest's response (online), the host's snapshots, a
//! guest catching up, and a guest leaving.

use super::inbound::{Signed, Unverified};
use crate::error::ApiResult;
use axum::Json;
use axum::extract::State;
use ferry_node::Node;
use ferry_node::collabs::inbound as collabs;
use ferry_proto::CollabSnapshot;

/// A guest's response, online; answered with the guest's first snapshot.
pub(crate) async fn guest_response(
    State(node): State<Node>,
    Unverified(incoming): Unverified,
) -> ApiResult<Json<CollabSnapshot>> {
    Ok(Json(collabs::guest_response(&node, incoming).await?))
}

/// The host pushes a snapshot; only the host of that collaboration may.
pub(crate) async fn snapshot(
    State(node): State<Node>,
    Signed(signed): Signed,
) -> ApiResult<Json<serde_json::Value>> {
    Ok(Json(collabs::snapshot(&node, signed).await?))
}

/// A guest catches up: its snapshot as of now.
pub(crate) async fn fetch(
    State(node): State<Node>,
    Signed(signed): Signed,
) -> ApiResult<Json<CollabSnapshot>> {
    Ok(Json(collabs::fetch(&node, signed).await?))
}

/// A guest leaves.
pub(crate) async fn leave(
    State(node): State<Node>,
    Signed(signed): Signed,
) -> ApiResult<Json<serde_json::Value>> {
    Ok(Json(collabs::leave(&node, signed).await?))
}
