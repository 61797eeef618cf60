//! Sync between instances: a receiver's pull (a stream), a whole item, a file chunk, a poke,
//! and a page of a reference's rows.

use super::inbound::Signed;
use crate::error::ApiResult;
use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use ferry_node::Node;
use ferry_node::sync::sender::{self, SyncStream};
use ferry_proto::{COMPACT_ROWS, ROWS_HEADER, ReferenceRows, frames};

/// A sync stream as an NDJSON answer, its encoding named in the headers.
fn ndjson(stream: SyncStream) -> Response {
    let (compressed, compact) = (stream.compressed, stream.compact_rows);
    let body = futures_util::stream::unfold(stream.chunks, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    });
    let mut response = (
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        Body::from_stream(body),
    )
        .into_response();
    if compressed {
        response.headers_mut().insert(
            frames::ENCODING_HEADER,
            header::HeaderValue::from_static(frames::LZ4_FRAMES),
        );
    }
    if compact {
        response
            .headers_mut()
            .insert(ROWS_HEADER, header::HeaderValue::from_static(COMPACT_ROWS));
    }
    response
}

/// The changes in scope after the receiver's cursor.
pub(crate) async fn pull(State(node): State<Node>, Signed(signed): Signed) -> ApiResult<Response> {
    Ok(ndjson(sender::pull(&node, signed).await?))
}

/// One item's whole current content, or its retraction.
pub(crate) async fn pull_item(
    State(node): State<Node>,
    Signed(signed): Signed,
) -> ApiResult<Response> {
    Ok(ndjson(sender::pull_item(&node, signed).await?))
}

/// One chunk of a file in the link's space.
pub(crate) async fn chunk(State(node): State<Node>, Signed(signed): Signed) -> ApiResult<Response> {
    let bytes = sender::chunk(&node, signed).await?;
    Ok((
        [(header::CONTENT_TYPE, "application/octet-stream")],
        Body::from(bytes),
    )
        .into_response())
}

/// The caller has changes for this instance: pull now, in the background.
pub(crate) async fn poked(
    State(node): State<Node>,
    Signed(signed): Signed,
) -> ApiResult<Json<serde_json::Value>> {
    Ok(Json(ferry_node::sync::poked(&node, signed).await?))
}

/// A page of a reference's rows, read at this instance for a receiver of the item.
pub(crate) async fn rows(
    State(node): State<Node>,
    Signed(signed): Signed,
) -> ApiResult<Json<ReferenceRows>> {
    Ok(Json(
        ferry_node::sync::reference::rows(&node, signed).await?,
    ))
}
