//! HTTP adapter: extract, call the node, shape the answer.

use crate::auth::AdminRole;
use crate::error::ApiResult;
use crate::extract::JsonBody;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use ferry_node::Node;
use ferry_proto::{
    ApiError, CollabChanged, Collaboration, GuestResponse, InvitationCreated, InvitationView,
    NewCollab, NewInvitation, NewWorkspace, RefreshInvitation, SetAccess, WorkspacePatch,
};

/// Creates a collaboration hosted here, with its first workspaces and this instance's links.
#[utoipa::path(post, path = "/api/v1/collabs", tag = "collaborations", request_body = NewCollab,
    responses((status = 201, body = Collaboration), (status = 400, body = ApiError), (status = 404, body = ApiError)))]
pub(crate) async fn create(
    State(node): State<Node>,
    caller: AdminRole,
    JsonBody(new): JsonBody<NewCollab>,
) -> ApiResult<(StatusCode, Json<Collaboration>)> {
    Ok((
        StatusCode::CREATED,
        Json(ferry_node::collabs::host::create(&node, &caller, new).await?),
    ))
}

/// Adds a workspace, links the host's space to it, and sets existing guests' modes in it.
#[utoipa::path(post, path = "/api/v1/collabs/{id}/workspaces", tag = "collaborations", request_body = NewWorkspace,
    params(("id" = String, Path, description = "Collaboration id")),
    responses((status = 200, body = CollabChanged), (status = 403, body = ApiError), (status = 404, body = ApiError)))]
pub(crate) async fn add_workspace(
    State(node): State<Node>,
    caller: AdminRole,
    Path(id): Path<String>,
    JsonBody(new): JsonBody<NewWorkspace>,
) -> ApiResult<Json<CollabChanged>> {
    Ok(Json(
        ferry_node::collabs::host::add_workspace(&node, &caller, id, new).await?,
    ))
}

/// Changes a workspace's name, description or config.
#[utoipa::path(patch, path = "/api/v1/collabs/{id}/workspaces/{workspace}", tag = "collaborations",
    request_body = WorkspacePatch,
    params(("id" = String, Path, description = "Collaboration id"), ("workspace" = String, Path, description = "Workspace id or name")),
    responses((status = 200, body = CollabChanged), (status = 403, body = ApiError), (status = 404, body = ApiError)))]
pub(crate) async fn update_workspace(
    State(node): State<Node>,
    caller: AdminRole,
    Path((id, workspace)): Path<(String, String)>,
    JsonBody(patch): JsonBody<WorkspacePatch>,
) -> ApiResult<Json<CollabChanged>> {
    Ok(Json(
        ferry_node::collabs::host::update_workspace(&node, &caller, id, workspace, patch).await?,
    ))
}

/// Deletes a workspace. Every participant's linked space and items stay; received items follow
/// each participant's delete policy.
#[utoipa::path(delete, path = "/api/v1/collabs/{id}/workspaces/{workspace}", tag = "collaborations",
    params(("id" = String, Path, description = "Collaboration id"), ("workspace" = String, Path, description = "Workspace id or name")),
    responses((status = 200, body = CollabChanged), (status = 403, body = ApiError), (status = 409, body = ApiError)))]
pub(crate) async fn delete_workspace(
    State(node): State<Node>,
    caller: AdminRole,
    Path((id, workspace)): Path<(String, String)>,
) -> ApiResult<Json<CollabChanged>> {
    Ok(Json(
        ferry_node::collabs::host::delete_workspace(&node, &caller, id, workspace).await?,
    ))
}

/// Sets one guest's modes: workspace to `send`, `receive`, `send_receive`, or `none`.
#[utoipa::path(post, path = "/api/v1/collabs/{id}/guests/{guest}/access", tag = "collaborations",
    request_body = SetAccess,
    params(("id" = String, Path, description = "Collaboration id"), ("guest" = String, Path, description = "Participant id, instance id or title")),
    responses((status = 200, body = CollabChanged), (status = 403, body = ApiError), (status = 404, body = ApiError)))]
pub(crate) async fn set_access(
    State(node): State<Node>,
    caller: AdminRole,
    Path((id, guest)): Path<(String, String)>,
    JsonBody(body): JsonBody<SetAccess>,
) -> ApiResult<Json<CollabChanged>> {
    Ok(Json(
        ferry_node::collabs::host::set_access(&node, &caller, id, guest, body).await?,
    ))
}

/// Removes a guest: it hears of it, and its key is no longer accepted for this collaboration.
#[utoipa::path(post, path = "/api/v1/collabs/{id}/guests/{guest}/remove", tag = "collaborations",
    params(("id" = String, Path, description = "Collaboration id"), ("guest" = String, Path, description = "Participant id, instance id or title")),
    responses((status = 200, body = CollabChanged), (status = 403, body = ApiError), (status = 404, body = ApiError)))]
pub(crate) async fn remove_guest(
    State(node): State<Node>,
    caller: AdminRole,
    Path((id, guest)): Path<(String, String)>,
) -> ApiResult<Json<CollabChanged>> {
    Ok(Json(
        ferry_node::collabs::host::remove_guest(&node, &caller, id, guest).await?,
    ))
}

/// Deletes the collaboration: every guest hears of it; linked spaces and items stay, received
/// items follow each participant's delete policy.
#[utoipa::path(delete, path = "/api/v1/collabs/{id}", tag = "collaborations",
    params(("id" = String, Path, description = "Collaboration id")),
    responses((status = 200, body = CollabChanged), (status = 403, body = ApiError)))]
pub(crate) async fn delete(
    State(node): State<Node>,
    caller: AdminRole,
    Path(id): Path<String>,
) -> ApiResult<Json<CollabChanged>> {
    Ok(Json(
        ferry_node::collabs::host::delete(&node, &caller, id).await?,
    ))
}

/// Invites one guest instance, by URL, with a mode per offered workspace.
#[utoipa::path(post, path = "/api/v1/collabs/{id}/invitations", tag = "collaborations", request_body = NewInvitation,
    params(("id" = String, Path, description = "Collaboration id")),
    responses((status = 201, body = InvitationCreated), (status = 403, body = ApiError), (status = 404, body = ApiError)))]
pub(crate) async fn invite(
    State(node): State<Node>,
    caller: AdminRole,
    Path(id): Path<String>,
    JsonBody(new): JsonBody<NewInvitation>,
) -> ApiResult<(StatusCode, Json<InvitationCreated>)> {
    Ok((
        StatusCode::CREATED,
        Json(ferry_node::collabs::host::invite(&node, &caller, id, new).await?),
    ))
}

#[utoipa::path(get, path = "/api/v1/collabs/{id}/invitations", tag = "collaborations",
    params(("id" = String, Path, description = "Collaboration id")),
    responses((status = 200, body = Vec<InvitationView>), (status = 403, body = ApiError)))]
pub(crate) async fn list_invitations(
    State(node): State<Node>,
    caller: AdminRole,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<InvitationView>>> {
    Ok(Json(
        ferry_node::collabs::host::list_invitations(&node, &caller, id).await?,
    ))
}

/// A new code for an open invitation, with a new expiry; the old code stops working.
#[utoipa::path(post, path = "/api/v1/collabs/{id}/invitations/{invitation}/refresh", tag = "collaborations",
    request_body = RefreshInvitation,
    params(("id" = String, Path, description = "Collaboration id"), ("invitation" = String, Path, description = "Invitation id")),
    responses((status = 200, body = InvitationCreated), (status = 409, body = ApiError)))]
pub(crate) async fn refresh_invitation(
    State(node): State<Node>,
    caller: AdminRole,
    Path((id, invitation)): Path<(String, String)>,
    JsonBody(body): JsonBody<RefreshInvitation>,
) -> ApiResult<Json<InvitationCreated>> {
    Ok(Json(
        ferry_node::collabs::host::refresh_invitation(&node, &caller, id, invitation, body).await?,
    ))
}

/// Withdraws an open invitation; its code stops working.
#[utoipa::path(post, path = "/api/v1/collabs/{id}/invitations/{invitation}/invalidate", tag = "collaborations",
    params(("id" = String, Path, description = "Collaboration id"), ("invitation" = String, Path, description = "Invitation id")),
    responses((status = 200, body = InvitationView), (status = 409, body = ApiError)))]
pub(crate) async fn invalidate_invitation(
    State(node): State<Node>,
    caller: AdminRole,
    Path((id, invitation)): Path<(String, String)>,
) -> ApiResult<Json<InvitationView>> {
    Ok(Json(
        ferry_node::collabs::host::invalidate_invitation(&node, &caller, id, invitation).await?,
    ))
}

/// Imports a guest's response file: the guest joins; it hears so online when it can be reached.
#[utoipa::path(post, path = "/api/v1/collabs/{id}/responses", tag = "collaborations", request_body = GuestResponse,
    params(("id" = String, Path, description = "Collaboration id")),
    responses((status = 200, body = CollabChanged), (status = 400, body = ApiError), (status = 409, body = ApiError), (status = 410, body = ApiError)))]
pub(crate) async fn import_response(
    State(node): State<Node>,
    caller: AdminRole,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<GuestResponse>,
) -> ApiResult<Json<CollabChanged>> {
    Ok(Json(
        ferry_node::collabs::host::import_response(&node, &caller, id, body).await?,
    ))
}
