//! HTTP adapter: extract, call the node, shape the answer.

pub(crate) mod guest;
pub(crate) mod host;

use crate::auth::AdminRole;
use crate::error::ApiResult;
use crate::extract::JsonBody;
use axum::Json;
use axum::extract::{Path, State};
use ferry_node::Node;
use ferry_proto::{
    ApiError, CollabDetail, Collaboration, LinkSpace, PolicyCheck, SetCollabSecurity,
    SetDeletePolicy, SetShare,
};

/// Every collaboration this instance hosts or joined, in every state.
#[utoipa::path(get, path = "/api/v1/collabs", tag = "collaborations",
    responses((status = 200, body = Vec<Collaboration>), (status = 403, body = ApiError)))]
pub(crate) async fn list_collabs(
    State(node): State<Node>,
    caller: AdminRole,
) -> ApiResult<Json<Vec<Collaboration>>> {
    Ok(Json(
        ferry_node::collabs::list_collabs(&node, &caller).await?,
    ))
}

#[utoipa::path(get, path = "/api/v1/collabs/{id}", tag = "collaborations",
    params(("id" = String, Path, description = "Collaboration id")),
    responses((status = 200, body = CollabDetail), (status = 404, body = ApiError)))]
pub(crate) async fn show_collab(
    State(node): State<Node>,
    caller: AdminRole,
    Path(id): Path<String>,
) -> ApiResult<Json<CollabDetail>> {
    Ok(Json(
        ferry_node::collabs::show_collab(&node, &caller, id).await?,
    ))
}

/// Links one of this instance's spaces to a workspace. Only this instance ever knows which.
#[utoipa::path(post, path = "/api/v1/collabs/{id}/workspaces/{workspace}/link", tag = "collaborations",
    request_body = LinkSpace,
    params(("id" = String, Path, description = "Collaboration id"), ("workspace" = String, Path, description = "Workspace id or name")),
    responses((status = 200, body = Collaboration), (status = 404, body = ApiError), (status = 409, body = ApiError)))]
pub(crate) async fn link(
    State(node): State<Node>,
    caller: AdminRole,
    Path((id, workspace)): Path<(String, String)>,
    JsonBody(body): JsonBody<LinkSpace>,
) -> ApiResult<Json<Collaboration>> {
    Ok(Json(
        ferry_node::collabs::link(&node, &caller, id, workspace, body).await?,
    ))
}

/// Changes how this guest's link sends its own feature layers (`copies`, `references`, or
/// `workspace`); receivers convert what was sent before at their next run.
#[utoipa::path(put, path = "/api/v1/collabs/{id}/workspaces/{workspace}/share", tag = "collaborations",
    request_body = SetShare,
    params(("id" = String, Path, description = "Collaboration id"), ("workspace" = String, Path, description = "Workspace id or name")),
    responses((status = 200, body = Collaboration), (status = 400, body = ApiError),
        (status = 404, body = ApiError), (status = 409, body = ApiError)))]
pub(crate) async fn set_share(
    State(node): State<Node>,
    caller: AdminRole,
    Path((id, workspace)): Path<(String, String)>,
    JsonBody(body): JsonBody<SetShare>,
) -> ApiResult<Json<Collaboration>> {
    Ok(Json(
        ferry_node::collabs::set_share(&node, &caller, id, workspace, body).await?,
    ))
}

/// Unlinks this instance's space from a workspace. The space and its items stay.
#[utoipa::path(delete, path = "/api/v1/collabs/{id}/workspaces/{workspace}/link", tag = "collaborations",
    params(("id" = String, Path, description = "Collaboration id"), ("workspace" = String, Path, description = "Workspace id or name")),
    responses((status = 200, body = Collaboration), (status = 404, body = ApiError), (status = 409, body = ApiError)))]
pub(crate) async fn unlink(
    State(node): State<Node>,
    caller: AdminRole,
    Path((id, workspace)): Path<(String, String)>,
) -> ApiResult<Json<Collaboration>> {
    Ok(Json(
        ferry_node::collabs::unlink(&node, &caller, id, workspace).await?,
    ))
}

/// Checks the network policies a collaboration needs, per direction its workspaces carry: on a
/// guest, between it and its host; on a host, between it and each active guest.
#[utoipa::path(post, path = "/api/v1/collabs/{id}/check", tag = "collaborations",
    params(("id" = String, Path, description = "Collaboration id")),
    responses((status = 200, body = PolicyCheck), (status = 404, body = ApiError)))]
pub(crate) async fn check(
    State(node): State<Node>,
    caller: AdminRole,
    Path(id): Path<String>,
) -> ApiResult<Json<PolicyCheck>> {
    Ok(Json(ferry_node::collabs::check(&node, &caller, id).await?))
}

/// Sets what happens to the items this instance received when a workspace or the collaboration
/// ends for it.
#[utoipa::path(put, path = "/api/v1/collabs/{id}/delete-policy", tag = "collaborations",
    request_body = SetDeletePolicy,
    params(("id" = String, Path, description = "Collaboration id")),
    responses((status = 200, body = Collaboration), (status = 400, body = ApiError)))]
pub(crate) async fn set_delete_policy(
    State(node): State<Node>,
    caller: AdminRole,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<SetDeletePolicy>,
) -> ApiResult<Json<Collaboration>> {
    Ok(Json(
        ferry_node::collabs::set_delete_policy(&node, &caller, id, body).await?,
    ))
}

/// Sets this instance's security for a collaboration: the markings ceiling for what it sends,
/// and the markings it gives to what it receives. Its own setting: nobody else is asked or told.
#[utoipa::path(put, path = "/api/v1/collabs/{id}/security", tag = "collaborations",
    request_body = SetCollabSecurity,
    params(("id" = String, Path, description = "Collaboration id")),
    responses((status = 200, body = Collaboration), (status = 400, body = ApiError)))]
pub(crate) async fn set_security(
    State(node): State<Node>,
    caller: AdminRole,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<SetCollabSecurity>,
) -> ApiResult<Json<Collaboration>> {
    Ok(Json(
        ferry_node::collabs::set_security(&node, &caller, id, body).await?,
    ))
}
