//! HTTP adapter: extract, call the node, shape the answer.

use crate::auth::{AdminRole, AnyRole};
use crate::error::ApiResult;
use crate::extract::JsonBody;
use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use ferry_node::Node;
use ferry_proto::{ApiError, ChangePage, NewSpace, Space, SpacePatch};

#[utoipa::path(get, path = "/api/v1/spaces", tag = "spaces",
    responses((status = 200, body = Vec<Space>), (status = 401, body = ApiError)))]
pub(crate) async fn list_spaces(
    State(node): State<Node>,
    caller: AnyRole,
) -> ApiResult<Json<Vec<Space>>> {
    Ok(Json(ferry_node::spaces::list_spaces(&node, &caller).await?))
}

#[utoipa::path(post, path = "/api/v1/spaces", tag = "spaces", request_body = NewSpace,
    responses((status = 201, body = Space), (status = 409, body = ApiError)))]
pub(crate) async fn create_space(
    State(node): State<Node>,
    caller: AdminRole,
    JsonBody(new): JsonBody<NewSpace>,
) -> ApiResult<(StatusCode, Json<Space>)> {
    Ok((
        StatusCode::CREATED,
        Json(ferry_node::spaces::create_space(&node, &caller, new).await?),
    ))
}

/// A space by id or by name.
#[utoipa::path(get, path = "/api/v1/spaces/{space}", tag = "spaces",
    params(("space" = String, Path, description = "Space id or name")),
    responses((status = 200, body = Space), (status = 404, body = ApiError)))]
pub(crate) async fn show_space(
    State(node): State<Node>,
    caller: AnyRole,
    Path(space): Path<String>,
) -> ApiResult<Json<Space>> {
    Ok(Json(
        ferry_node::spaces::show_space(&node, &caller, space).await?,
    ))
}

/// Renames or describes a space.
#[utoipa::path(patch, path = "/api/v1/spaces/{space}", tag = "spaces", request_body = SpacePatch,
    params(("space" = String, Path, description = "Space id or name")),
    responses((status = 200, body = Space), (status = 404, body = ApiError)))]
pub(crate) async fn update_space(
    State(node): State<Node>,
    caller: AdminRole,
    Path(space): Path<String>,
    JsonBody(patch): JsonBody<SpacePatch>,
) -> ApiResult<Json<Space>> {
    Ok(Json(
        ferry_node::spaces::update_space(&node, &caller, space, patch).await?,
    ))
}

/// Deletes a space; refuses one that holds items unless `force=true`.
#[utoipa::path(delete, path = "/api/v1/spaces/{space}", tag = "spaces",
    params(("space" = String, Path, description = "Space id or name"),
           ("force" = Option<bool>, Query, description = "Delete the space's items too")),
    responses((status = 204), (status = 409, body = ApiError)))]
pub(crate) async fn delete_space(
    State(node): State<Node>,
    caller: AdminRole,
    Path(space): Path<String>,
    RawQuery(query): RawQuery,
) -> ApiResult<StatusCode> {
    ferry_node::spaces::delete_space(&node, &caller, space, query).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The change feed of a space: everything changed after sequence `after`, in order.
#[utoipa::path(get, path = "/api/v1/spaces/{space}/changes", tag = "spaces",
    params(("space" = String, Path, description = "Space id or name"),
           ("after" = Option<i64>, Query, description = "Sequence to resume after (default 0)"),
           ("limit" = Option<usize>, Query, description = "At most this many changes (default 1000, max 10000)")),
    responses((status = 200, body = ChangePage), (status = 404, body = ApiError)))]
pub(crate) async fn changes(
    State(node): State<Node>,
    caller: AnyRole,
    Path(space): Path<String>,
    RawQuery(query): RawQuery,
) -> ApiResult<Json<ChangePage>> {
    Ok(Json(
        ferry_node::spaces::changes(&node, &caller, space, query).await?,
    ))
}
