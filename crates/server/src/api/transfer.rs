//! HTTP adapter for streaming import and export: the body goes to the node as a byte stream,
//! and an export comes back as one, with its headers shaped here (type, name, file ranges).

use crate::auth::{AnyRole, EditorRole};
use crate::error::{ApiFailure, ApiResult};
use axum::Json;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ferry_node::Node;
use ferry_node::transfer;
use ferry_proto::{ApiError, ErrorCode, Item};

/// Imports a body as a new item: GeoJSON → layer, CSV/NDJSON → dataset, anything else → file.
#[utoipa::path(post, path = "/api/v1/items/import", tag = "items",
    params(
        ("space" = String, Query, description = "Space id or name"),
        ("kind" = Option<String>, Query, description = "dataset, feature_layer or file (default: from the Content-Type)"),
        ("format" = Option<String>, Query, description = "geojson, geojsonseq, csv or ndjson (default: from the Content-Type)"),
        ("title" = Option<String>, Query), ("description" = Option<String>, Query),
        ("tag" = Option<Vec<String>>, Query), ("marking" = Option<Vec<String>>, Query),
        ("primary_key" = Option<String>, Query, description = "Datasets: the key column (default `id`, else a generated `_id`)"),
        ("schema" = Option<String>, Query, description = "An explicit schema as JSON"),
        ("crs" = Option<String>, Query, description = "Layers: CRS of the coordinates (default EPSG:4326)"),
        ("delimiter" = Option<String>, Query, description = "CSV: the field separator, one character or `tab` (default: told from the header line: `,`, `;` or tab)"),
        ("file_name" = Option<String>, Query)),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 201, body = Item), (status = 413, body = ApiError), (status = 415, body = ApiError), (status = 422, body = ApiError)))]
pub(crate) async fn import_item(
    State(node): State<Node>,
    caller: EditorRole,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<(StatusCode, Json<Item>)> {
    let (request, body) = crate::transfers::import_of(query, &headers, body);
    let item = transfer::import_item(&node, &caller, request, body).await?;
    Ok((StatusCode::CREATED, Json(item)))
}

/// Exports an item: GeoJSON (layers), CSV or NDJSON (datasets), the original bytes (files, with
/// HTTP Range).
#[utoipa::path(get, path = "/api/v1/items/{id}/export", tag = "items",
    params(("id" = String, Path, description = "Item id"),
           ("format" = Option<String>, Query, description = "geojson, csv or ndjson (default: the kind's own)")),
    responses((status = 200, description = "The item's content"), (status = 206, description = "Part of a file"),
               (status = 404, body = ApiError), (status = 416, body = ApiError)))]
pub(crate) async fn export_item(
    State(node): State<Node>,
    caller: AnyRole,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, Response> {
    let range = crate::transfers::header_text(&headers, header::RANGE);
    match transfer::export_item(&node, &caller, id, query, range).await {
        Ok(export) => Ok(crate::transfers::export_response(export)),
        Err(e) if e.code() == ErrorCode::RangeNotSatisfiable => Err(range_not_satisfiable(e)),
        Err(e) => Err(ApiFailure(e).into_response()),
    }
}

/// 416, with the file's size in `Content-Range` (RFC 9110 §15.5.17).
fn range_not_satisfiable(mut error: ferry_node::NodeError) -> Response {
    let size = error
        .0
        .details
        .take()
        .and_then(|d| d.get("size").and_then(serde_json::Value::as_u64))
        .unwrap_or(0);
    let mut response = ApiFailure(error).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
        response.headers_mut().insert(header::CONTENT_RANGE, v);
    }
    response
}
