use super::{JsonBody, QueryPairs};
use crate::auth::{AdminRole, AnyRole};
use crate::error::ApiResult;
use crate::state::{AppState, blocking};
use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use ferry_core::names;
use ferry_proto::{ApiError, ChangePage, NewSpace, Space, SpacePatch};

const DEFAULT_CHANGES: usize = 1000;
const MAX_CHANGES: usize = 10_000;

#[utoipa::path(get, path = "/api/v1/spaces", tag = "spaces",
    responses((status = 200, body = Vec<Space>), (status = 401, body = ApiError)))]
pub(crate) async fn list_spaces(
    State(state): State<AppState>,
    _caller: AnyRole,
) -> ApiResult<Json<Vec<Space>>> {
    let store = state.store.clone();
    Ok(Json(blocking(move || store.list_spaces()).await?))
}

#[utoipa::path(post, path = "/api/v1/spaces", tag = "spaces", request_body = NewSpace,
    responses((status = 201, body = Space), (status = 409, body = ApiError)))]
pub(crate) async fn create_space(
    State(state): State<AppState>,
    _caller: AdminRole,
    JsonBody(new): JsonBody<NewSpace>,
) -> ApiResult<(StatusCode, Json<Space>)> {
    names::check_space_name(&new.name)?;
    names::check_description(&new.description)?;
    let store = state.store.clone();
    let space = blocking(move || store.create_space(&new)).await?;
    Ok((StatusCode::CREATED, Json(space)))
}

/// A space by id or by name.
#[utoipa::path(get, path = "/api/v1/spaces/{space}", tag = "spaces",
    params(("space" = String, Path, description = "Space id or name")),
    responses((status = 200, body = Space), (status = 404, body = ApiError)))]
pub(crate) async fn show_space(
    State(state): State<AppState>,
    _caller: AnyRole,
    Path(space): Path<String>,
) -> ApiResult<Json<Space>> {
    let store = state.store.clone();
    Ok(Json(blocking(move || store.space(&space)).await?))
}

/// Renames or describes a space.
#[utoipa::path(patch, path = "/api/v1/spaces/{space}", tag = "spaces", request_body = SpacePatch,
    params(("space" = String, Path, description = "Space id or name")),
    responses((status = 200, body = Space), (status = 404, body = ApiError)))]
pub(crate) async fn update_space(
    State(state): State<AppState>,
    _caller: AdminRole,
    Path(space): Path<String>,
    JsonBody(patch): JsonBody<SpacePatch>,
) -> ApiResult<Json<Space>> {
    if let Some(name) = &patch.name {
        names::check_space_name(name)?;
    }
    if let Some(d) = &patch.description {
        names::check_description(d)?;
    }
    let store = state.store.clone();
    Ok(Json(
        blocking(move || store.update_space(&space, &patch)).await?,
    ))
}

/// Deletes a space; refuses one that holds items unless `force=true`.
#[utoipa::path(delete, path = "/api/v1/spaces/{space}", tag = "spaces",
    params(("space" = String, Path, description = "Space id or name"),
           ("force" = Option<bool>, Query, description = "Delete the space's items too")),
    responses((status = 204), (status = 409, body = ApiError)))]
pub(crate) async fn delete_space(
    State(state): State<AppState>,
    _caller: AdminRole,
    Path(space): Path<String>,
    RawQuery(query): RawQuery,
) -> ApiResult<StatusCode> {
    let force = QueryPairs::parse(query.as_deref()).flag("force");
    let store = state.store.clone();
    let freed = blocking(move || store.delete_space(&space, force)).await?;
    super::items::remove_chunks(&state, freed).await;
    Ok(StatusCode::NO_CONTENT)
}

/// The change feed of a space: everything changed after sequence `after`, in order.
#[utoipa::path(get, path = "/api/v1/spaces/{space}/changes", tag = "spaces",
    params(("space" = String, Path, description = "Space id or name"),
           ("after" = Option<i64>, Query, description = "Sequence to resume after (default 0)"),
           ("limit" = Option<usize>, Query, description = "At most this many changes (default 1000, max 10000)")),
    responses((status = 200, body = ChangePage), (status = 404, body = ApiError)))]
pub(crate) async fn changes(
    State(state): State<AppState>,
    _caller: AnyRole,
    Path(space): Path<String>,
    RawQuery(query): RawQuery,
) -> ApiResult<Json<ChangePage>> {
    let q = QueryPairs::parse(query.as_deref());
    let after = q.number::<i64>("after")?.unwrap_or(0);
    let limit = q
        .number::<usize>("limit")?
        .unwrap_or(DEFAULT_CHANGES)
        .clamp(1, MAX_CHANGES);
    let store = state.store.clone();
    Ok(Json(
        blocking(move || store.changes(&space, after, limit)).await?,
    ))
}
