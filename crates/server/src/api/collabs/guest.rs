//! HTTP adapter: extract, call the node, shape the answer.

use crate::auth::AdminRole;
use crate::error::ApiResult;
use crate::extract::JsonBody;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use ferry_node::Node;
use ferry_proto::{
    AcceptInvitation, ApiError, CollabChanged, Collaboration, InvitationAccepted, InvitationCode,
    InvitationPreview,
};

/// Checks an invitation and shows what it offers, changing nothing.
#[utoipa::path(post, path = "/api/v1/collabs/invitations/preview", tag = "collaborations", request_body = InvitationCode,
    responses((status = 200, body = InvitationPreview), (status = 400, body = ApiError), (status = 410, body = ApiError)))]
pub(crate) async fn preview(
    State(node): State<Node>,
    caller: AdminRole,
    JsonBody(body): JsonBody<InvitationCode>,
) -> ApiResult<Json<InvitationPreview>> {
    Ok(Json(
        ferry_node::collabs::guest::preview(&node, &caller, body).await?,
    ))
}

/// Accepts an invitation: sends the signed response to the host, or returns it for a file.
#[utoipa::path(post, path = "/api/v1/collabs/accept", tag = "collaborations", request_body = AcceptInvitation,
    responses((status = 201, body = InvitationAccepted), (status = 400, body = ApiError), (status = 409, body = ApiError),
              (status = 410, body = ApiError), (status = 502, body = ApiError)))]
pub(crate) async fn accept(
    State(node): State<Node>,
    caller: AdminRole,
    JsonBody(body): JsonBody<AcceptInvitation>,
) -> ApiResult<(StatusCode, Json<InvitationAccepted>)> {
    Ok((
        StatusCode::CREATED,
        Json(ferry_node::collabs::guest::accept(&node, &caller, body).await?),
    ))
}

/// Asks the host for this guest's current view of the collaboration and applies it.
#[utoipa::path(post, path = "/api/v1/collabs/{id}/refresh", tag = "collaborations",
    params(("id" = String, Path, description = "Collaboration id")),
    responses((status = 200, body = Collaboration), (status = 409, body = ApiError), (status = 502, body = ApiError)))]
pub(crate) async fn refresh(
    State(node): State<Node>,
    caller: AdminRole,
    Path(id): Path<String>,
) -> ApiResult<Json<Collaboration>> {
    Ok(Json(
        ferry_node::collabs::guest::refresh(&node, &caller, id).await?,
    ))
}

/// Leaves a collaboration: the host hears of it; linked spaces and items stay, received items
/// follow this instance's delete policy.
#[utoipa::path(post, path = "/api/v1/collabs/{id}/leave", tag = "collaborations",
    params(("id" = String, Path, description = "Collaboration id")),
    responses((status = 200, body = CollabChanged), (status = 409, body = ApiError)))]
pub(crate) async fn leave(
    State(node): State<Node>,
    caller: AdminRole,
    Path(id): Path<String>,
) -> ApiResult<Json<CollabChanged>> {
    Ok(Json(
        ferry_node::collabs::guest::leave(&node, &caller, id).await?,
    ))
}
