//! HTTP adapter for the conflict queue of two-way editing.

use crate::auth::{AdminRole, AnyRole};
use crate::error::ApiResult;
use crate::extract::JsonBody;
use axum::Json;
use axum::extract::{Path, RawQuery, State};
use ferry_node::Node;
use ferry_node::query::QueryPairs;
use ferry_proto::ApiError;
use ferry_proto::twoway::{ConflictRecord, ConflictResolution};

/// Conflicts two-way editing found here, newest first, each with both versions of its row.
#[utoipa::path(get, path = "/api/v1/conflicts", tag = "conflicts",
    params(("status" = Option<String>, Query, description = "open, settled or resolved (all when absent)"),
           ("limit" = Option<usize>, Query, description = "At most this many (default 100, max 1000)"),
           ("offset" = Option<usize>, Query, description = "Skip this many")),
    responses((status = 200, body = Vec<ConflictRecord>), (status = 400, body = ApiError)))]
pub(crate) async fn list_conflicts(
    State(node): State<Node>,
    caller: AnyRole,
    RawQuery(query): RawQuery,
) -> ApiResult<Json<Vec<ConflictRecord>>> {
    let q = QueryPairs::parse(query.as_deref());
    let limit = q.number::<usize>("limit")?.unwrap_or(100);
    let offset = q.number::<usize>("offset")?.unwrap_or(0);
    let status = q.get("status").map(str::to_string);
    Ok(Json(
        ferry_node::conflicts::list(&node, &caller, status, limit, offset).await?,
    ))
}

#[utoipa::path(get, path = "/api/v1/conflicts/{id}", tag = "conflicts",
    params(("id" = String, Path, description = "Conflict id")),
    responses((status = 200, body = ConflictRecord), (status = 404, body = ApiError)))]
pub(crate) async fn show_conflict(
    State(node): State<Node>,
    caller: AnyRole,
    Path(id): Path<String>,
) -> ApiResult<Json<ConflictRecord>> {
    Ok(Json(ferry_node::conflicts::show(&node, &caller, id).await?))
}

/// Resolves a conflict by keeping `ours`, `theirs` or a `merged` row: an edit of the row here,
/// which reaches every copy like any other.
#[utoipa::path(post, path = "/api/v1/conflicts/{id}/resolve", tag = "conflicts",
    params(("id" = String, Path, description = "Conflict id")),
    request_body = ConflictResolution,
    responses((status = 200, body = ConflictRecord), (status = 404, body = ApiError),
              (status = 409, body = ApiError)))]
pub(crate) async fn resolve_conflict(
    State(node): State<Node>,
    caller: AdminRole,
    Path(id): Path<String>,
    JsonBody(resolution): JsonBody<ConflictResolution>,
) -> ApiResult<Json<ConflictRecord>> {
    Ok(Json(
        ferry_node::conflicts::resolve(&node, &caller, id, resolution).await?,
    ))
}
