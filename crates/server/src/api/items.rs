//! HTTP adapter: extract, call the node, shape the answer.

use crate::auth::{AdminRole, AnyRole, EditorRole};
use crate::error::ApiResult;
use crate::extract::JsonBody;
use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use ferry_node::Node;
use ferry_proto::{ApiError, EditBatch, EditResults, Item, ItemPatch, NewItem, RowPage};

/// Items, optionally of one space.
#[utoipa::path(get, path = "/api/v1/items", tag = "items",
    params(("space" = Option<String>, Query, description = "Only items of this space (id or name)"),
           ("limit" = Option<usize>, Query, description = "With space: at most this many (max 1000), in the order of the whole list"),
           ("offset" = Option<usize>, Query, description = "With limit: skip this many first")),
    responses((status = 200, body = Vec<Item>), (status = 400, body = ApiError), (status = 404, body = ApiError)))]
pub(crate) async fn list_items(
    State(node): State<Node>,
    caller: AnyRole,
    RawQuery(query): RawQuery,
) -> ApiResult<Json<Vec<Item>>> {
    Ok(Json(
        ferry_node::items::list_items(&node, &caller, query).await?,
    ))
}

/// Creates an empty dataset or feature layer with a given schema (fill it with edits).
#[utoipa::path(post, path = "/api/v1/items", tag = "items", request_body = NewItem,
    responses((status = 201, body = Item), (status = 400, body = ApiError)))]
pub(crate) async fn create_item(
    State(node): State<Node>,
    caller: EditorRole,
    JsonBody(new): JsonBody<NewItem>,
) -> ApiResult<(StatusCode, Json<Item>)> {
    Ok((
        StatusCode::CREATED,
        Json(ferry_node::items::create_item(&node, &caller, new).await?),
    ))
}

#[utoipa::path(get, path = "/api/v1/items/{id}", tag = "items",
    params(("id" = String, Path, description = "Item id")),
    responses((status = 200, body = Item), (status = 404, body = ApiError)))]
pub(crate) async fn show_item(
    State(node): State<Node>,
    caller: AnyRole,
    Path(id): Path<String>,
) -> ApiResult<Json<Item>> {
    Ok(Json(
        ferry_node::items::show_item(&node, &caller, id).await?,
    ))
}

/// Deletes an item (a tombstone stays in the change feed).
#[utoipa::path(delete, path = "/api/v1/items/{id}", tag = "items",
    params(("id" = String, Path, description = "Item id")),
    responses((status = 204), (status = 404, body = ApiError)))]
pub(crate) async fn delete_item(
    State(node): State<Node>,
    caller: AdminRole,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    ferry_node::items::delete_item(&node, &caller, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Rows of a dataset or features of a layer, in key order, a page at a time.
#[utoipa::path(get, path = "/api/v1/items/{id}/rows", tag = "rows",
    params(("id" = String, Path, description = "Item id"),
           ("after" = Option<String>, Query, description = "Cursor from the previous page's `next`"),
           ("limit" = Option<usize>, Query, description = "Rows per page (default 100, max 10000)"),
           ("bbox" = Option<String>, Query, description = "Layers: min_x,min_y,max_x,max_y"),
           ("where" = Option<Vec<String>>, Query, description = "field:value equality filters; repeat for more")),
    responses((status = 200, body = RowPage), (status = 400, body = ApiError), (status = 404, body = ApiError)))]
pub(crate) async fn query_rows(
    State(node): State<Node>,
    caller: AnyRole,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> ApiResult<Json<RowPage>> {
    Ok(Json(
        ferry_node::items::query_rows(&node, &caller, id, query).await?,
    ))
}

/// Applies adds, updates and deletes all or nothing, with a result per edit.
#[utoipa::path(post, path = "/api/v1/items/{id}/edits", tag = "rows", request_body = EditBatch,
    params(("id" = String, Path, description = "Item id")),
    responses((status = 200, body = EditResults), (status = 422, body = ApiError)))]
pub(crate) async fn apply_edits(
    State(node): State<Node>,
    caller: EditorRole,
    Path(id): Path<String>,
    JsonBody(batch): JsonBody<EditBatch>,
) -> ApiResult<Json<EditResults>> {
    Ok(Json(
        ferry_node::items::apply_edits(&node, &caller, id, batch).await?,
    ))
}

/// Lets a copy take its origin's schema change (removed or retyped fields) at its next run,
/// copied whole; until then the copy keeps its rows and fails with `schema_changed`.
#[utoipa::path(post, path = "/api/v1/items/{id}/accept-schema", tag = "items",
    params(("id" = String, Path, description = "The copy's item id")),
    responses((status = 200, body = Item), (status = 403, body = ApiError),
        (status = 404, body = ApiError), (status = 409, body = ApiError)))]
pub(crate) async fn accept_schema(
    State(node): State<Node>,
    caller: AdminRole,
    Path(id): Path<String>,
) -> ApiResult<Json<Item>> {
    Ok(Json(
        ferry_node::items::accept_schema(&node, &caller, id).await?,
    ))
}

/// Changes an item's title, description, tags or markings, or moves it to another space
/// (admins only: links of the space it leaves retract it).
#[utoipa::path(patch, path = "/api/v1/items/{id}", tag = "items", request_body = ItemPatch,
    params(("id" = String, Path, description = "Item id")),
    responses((status = 200, body = Item), (status = 403, body = ApiError),
        (status = 404, body = ApiError)))]
pub(crate) async fn update_item(
    State(node): State<Node>,
    caller: EditorRole,
    Path(id): Path<String>,
    JsonBody(patch): JsonBody<ItemPatch>,
) -> ApiResult<Json<Item>> {
    Ok(Json(
        ferry_node::items::update_item(&node, &caller, id, patch).await?,
    ))
}
