//! HTTP adapter: extract, call the node, shape the answer.

use crate::auth::AdminRole;
use crate::error::ApiResult;
use crate::extract::JsonBody;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use ferry_node::Node;
use ferry_proto::{
    AcceptPeerResponse, ApiError, ApprovePeer, ImportInviteCode, NewPeerRequest, PeerApproved,
    PeerChanged, PeerConnection, PeerDetail, PeerRequestCreated, PeerSends, PolicyCheck,
    ProposeSecurity, RefreshPeerRequest,
};

/// Creates a peer request on a local space and returns its invite code.
#[utoipa::path(post, path = "/api/v1/peers/requests", tag = "peers", request_body = NewPeerRequest,
    responses((status = 201, body = PeerRequestCreated), (status = 400, body = ApiError), (status = 404, body = ApiError)))]
pub(crate) async fn create_request(
    State(node): State<Node>,
    caller: AdminRole,
    JsonBody(new): JsonBody<NewPeerRequest>,
) -> ApiResult<(StatusCode, Json<PeerRequestCreated>)> {
    Ok((
        StatusCode::CREATED,
        Json(ferry_node::peers::create_request(&node, &caller, new).await?),
    ))
}

/// Replaces an unanswered request's code: new secret, new expiry; the old code stops working.
#[utoipa::path(post, path = "/api/v1/peers/{id}/refresh", tag = "peers", request_body = RefreshPeerRequest,
    params(("id" = String, Path, description = "Connection id")),
    responses((status = 200, body = PeerRequestCreated), (status = 409, body = ApiError)))]
pub(crate) async fn refresh_request(
    State(node): State<Node>,
    caller: AdminRole,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<RefreshPeerRequest>,
) -> ApiResult<Json<PeerRequestCreated>> {
    Ok(Json(
        ferry_node::peers::refresh_request(&node, &caller, id, body).await?,
    ))
}

/// Withdraws an unanswered request; its code stops working.
#[utoipa::path(post, path = "/api/v1/peers/{id}/invalidate", tag = "peers",
    params(("id" = String, Path, description = "Connection id")),
    responses((status = 200, body = PeerConnection), (status = 409, body = ApiError)))]
pub(crate) async fn invalidate_request(
    State(node): State<Node>,
    caller: AdminRole,
    Path(id): Path<String>,
) -> ApiResult<Json<PeerConnection>> {
    Ok(Json(
        ferry_node::peers::invalidate_request(&node, &caller, id).await?,
    ))
}

/// Checks an invite code and records what it offers. Nothing is sent to the issuer yet: the
/// admin reviews the details, then approves.
#[utoipa::path(post, path = "/api/v1/peers/import", tag = "peers", request_body = ImportInviteCode,
    responses((status = 201, body = PeerConnection), (status = 400, body = ApiError), (status = 409, body = ApiError),
              (status = 410, body = ApiError)))]
pub(crate) async fn import_code(
    State(node): State<Node>,
    caller: AdminRole,
    JsonBody(body): JsonBody<ImportInviteCode>,
) -> ApiResult<(StatusCode, Json<PeerConnection>)> {
    Ok((
        StatusCode::CREATED,
        Json(ferry_node::peers::import_code(&node, &caller, body).await?),
    ))
}

/// Every peer connection of this instance, in every state.
#[utoipa::path(get, path = "/api/v1/peers", tag = "peers",
    responses((status = 200, body = Vec<PeerConnection>), (status = 403, body = ApiError)))]
pub(crate) async fn list_peers(
    State(node): State<Node>,
    caller: AdminRole,
) -> ApiResult<Json<Vec<PeerConnection>>> {
    Ok(Json(ferry_node::peers::list_peers(&node, &caller).await?))
}

#[utoipa::path(get, path = "/api/v1/peers/{id}", tag = "peers",
    params(("id" = String, Path, description = "Connection id")),
    responses((status = 200, body = PeerDetail), (status = 404, body = ApiError)))]
pub(crate) async fn show_peer(
    State(node): State<Node>,
    caller: AdminRole,
    Path(id): Path<String>,
) -> ApiResult<Json<PeerDetail>> {
    Ok(Json(
        ferry_node::peers::show_peer(&node, &caller, id).await?,
    ))
}

/// Approves an imported code: picks the receiving space and security, and answers the originator
/// online, or returns the signed response for a file.
#[utoipa::path(post, path = "/api/v1/peers/{id}/approve", tag = "peers", request_body = ApprovePeer,
    params(("id" = String, Path, description = "Connection id")),
    responses((status = 200, body = PeerApproved), (status = 409, body = ApiError), (status = 502, body = ApiError)))]
pub(crate) async fn approve(
    State(node): State<Node>,
    caller: AdminRole,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<ApprovePeer>,
) -> ApiResult<Json<PeerApproved>> {
    Ok(Json(
        ferry_node::peers::approve(&node, &caller, id, body).await?,
    ))
}

/// The response file of a connection approved for delivery by file, again, until the originator
/// activates. Its body is what the originator posts to `/api/v1/peers/accept-response`.
#[utoipa::path(get, path = "/api/v1/peers/{id}/response-file", tag = "peers",
    params(("id" = String, Path, description = "Connection id")),
    responses((status = 200, body = AcceptPeerResponse), (status = 409, body = ApiError)))]
pub(crate) async fn response_file(
    State(node): State<Node>,
    caller: AdminRole,
    Path(id): Path<String>,
) -> ApiResult<Json<AcceptPeerResponse>> {
    let response = ferry_node::peers::response_file(&node, &caller, id).await?;
    Ok(Json(AcceptPeerResponse { response }))
}

/// Imports a response file from the instance that approved one of this instance's requests.
#[utoipa::path(post, path = "/api/v1/peers/accept-response", tag = "peers", request_body = AcceptPeerResponse,
    responses((status = 200, body = PeerConnection), (status = 400, body = ApiError), (status = 409, body = ApiError)))]
pub(crate) async fn accept_response_file(
    State(node): State<Node>,
    caller: AdminRole,
    JsonBody(body): JsonBody<AcceptPeerResponse>,
) -> ApiResult<Json<PeerConnection>> {
    Ok(Json(
        ferry_node::peers::accept_response_file(&node, &caller, body).await?,
    ))
}

/// Activates an approved connection and tells the other instance; until then no data flows.
#[utoipa::path(post, path = "/api/v1/peers/{id}/activate", tag = "peers",
    params(("id" = String, Path, description = "Connection id")),
    responses((status = 200, body = PeerConnection), (status = 409, body = ApiError), (status = 502, body = ApiError)))]
pub(crate) async fn activate(
    State(node): State<Node>,
    caller: AdminRole,
    Path(id): Path<String>,
) -> ApiResult<Json<PeerConnection>> {
    Ok(Json(ferry_node::peers::activate(&node, &caller, id).await?))
}

#[utoipa::path(post, path = "/api/v1/peers/{id}/disable", tag = "peers",
    params(("id" = String, Path, description = "Connection id")),
    responses((status = 200, body = PeerChanged), (status = 409, body = ApiError)))]
pub(crate) async fn disable(
    State(node): State<Node>,
    caller: AdminRole,
    Path(id): Path<String>,
) -> ApiResult<Json<PeerChanged>> {
    Ok(Json(ferry_node::peers::disable(&node, &caller, id).await?))
}

#[utoipa::path(post, path = "/api/v1/peers/{id}/enable", tag = "peers",
    params(("id" = String, Path, description = "Connection id")),
    responses((status = 200, body = PeerChanged), (status = 409, body = ApiError)))]
pub(crate) async fn enable(
    State(node): State<Node>,
    caller: AdminRole,
    Path(id): Path<String>,
) -> ApiResult<Json<PeerChanged>> {
    Ok(Json(ferry_node::peers::enable(&node, &caller, id).await?))
}

/// Deletes the connection here; the other instance revokes its copy and stops accepting this
/// instance's key for it.
#[utoipa::path(delete, path = "/api/v1/peers/{id}", tag = "peers",
    params(("id" = String, Path, description = "Connection id")),
    responses((status = 200, body = PeerChanged), (status = 409, body = ApiError)))]
pub(crate) async fn delete(
    State(node): State<Node>,
    caller: AdminRole,
    Path(id): Path<String>,
) -> ApiResult<Json<PeerChanged>> {
    Ok(Json(ferry_node::peers::delete(&node, &caller, id).await?))
}

/// Checks both instances' policies for this connection: for each direction it carries, the
/// sender's egress to the receiver and the receiver's ingress from the sender.
#[utoipa::path(post, path = "/api/v1/peers/{id}/check", tag = "peers",
    params(("id" = String, Path, description = "Connection id")),
    responses((status = 200, body = PolicyCheck), (status = 409, body = ApiError)))]
pub(crate) async fn check(
    State(node): State<Node>,
    caller: AdminRole,
    Path(id): Path<String>,
) -> ApiResult<Json<PolicyCheck>> {
    Ok(Json(ferry_node::peers::check(&node, &caller, id).await?))
}

/// Narrows the data types this side sends. Fewer is this side's own decision; more would need
/// the other side's approval, so it is refused. Items of a type no longer sent leave the
/// other side's view: its next run starts a full pass (the scope changed) that retracts them.
#[utoipa::path(put, path = "/api/v1/peers/{id}/sends", tag = "peers", request_body = PeerSends,
    params(("id" = String, Path, description = "Connection id")),
    responses((status = 200, body = PeerConnection), (status = 400, body = ApiError),
        (status = 409, body = ApiError)))]
pub(crate) async fn narrow_sends(
    State(node): State<Node>,
    caller: AdminRole,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<PeerSends>,
) -> ApiResult<Json<PeerConnection>> {
    Ok(Json(
        ferry_node::peers::narrow_sends(&node, &caller, id, body).await?,
    ))
}

/// Proposes new security settings for this side. They take effect only once the other side's
/// admin approves (`ferry peer approve-change`).
#[utoipa::path(post, path = "/api/v1/peers/{id}/security", tag = "peers", request_body = ProposeSecurity,
    params(("id" = String, Path, description = "Connection id")),
    responses((status = 200, body = PeerConnection), (status = 409, body = ApiError), (status = 502, body = ApiError)))]
pub(crate) async fn propose_security(
    State(node): State<Node>,
    caller: AdminRole,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<ProposeSecurity>,
) -> ApiResult<Json<PeerConnection>> {
    Ok(Json(
        ferry_node::peers::propose_security(&node, &caller, id, body).await?,
    ))
}

/// Approves the other side's proposed security settings; they take effect there at once.
#[utoipa::path(post, path = "/api/v1/peers/{id}/security/approve", tag = "peers",
    params(("id" = String, Path, description = "Connection id")),
    responses((status = 200, body = PeerConnection), (status = 409, body = ApiError)))]
pub(crate) async fn approve_security(
    State(node): State<Node>,
    caller: AdminRole,
    Path(id): Path<String>,
) -> ApiResult<Json<PeerConnection>> {
    Ok(Json(
        ferry_node::peers::approve_security(&node, &caller, id).await?,
    ))
}

/// Rejects the other side's proposed security settings; its current settings stay.
#[utoipa::path(post, path = "/api/v1/peers/{id}/security/reject", tag = "peers",
    params(("id" = String, Path, description = "Connection id")),
    responses((status = 200, body = PeerConnection), (status = 409, body = ApiError)))]
pub(crate) async fn reject_security(
    State(node): State<Node>,
    caller: AdminRole,
    Path(id): Path<String>,
) -> ApiResult<Json<PeerConnection>> {
    Ok(Json(
        ferry_node::peers::reject_security(&node, &caller, id).await?,
    ))
}
