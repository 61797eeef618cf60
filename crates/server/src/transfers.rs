//! Imports and exports over HTTP, for every door that offers them (the REST API, the console):
//! an upload's body and headers as a node import, and an export as an answer (the content type,
//! a file name to save it under, and for a file its length, ETag and the range sent).

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use ferry_node::transfer::{ByteStream, Export, ImportRequest};
use futures_util::TryStreamExt;

pub(crate) fn header_text(headers: &HeaderMap, name: header::HeaderName) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// An upload as the node imports it: the query (`space=...&title=...`), the body's type and
/// declared length, and the body as a stream.
pub(crate) fn import_of(
    query: Option<String>,
    headers: &HeaderMap,
    body: Body,
) -> (ImportRequest, ByteStream) {
    let request = ImportRequest {
        query,
        content_type: header_text(headers, header::CONTENT_TYPE),
        declared_length: header_text(headers, header::CONTENT_LENGTH)
            .and_then(|v| v.parse::<u64>().ok()),
    };
    let body = Box::pin(body.into_data_stream().map_err(std::io::Error::other));
    (request, body)
}

pub(crate) fn export_response(export: Export) -> Response {
    let file = export.file.clone();
    let mut response = Response::new(Body::from_stream(export.body));
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(&export.media_type)
            .unwrap_or(HeaderValue::from_static("application/octet-stream")),
    );
    let disposition = format!(
        "attachment; filename=\"{}\"",
        export.file_name.replace('"', "_")
    );
    h.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_str(&disposition).unwrap_or(HeaderValue::from_static("attachment")),
    );
    let Some(part) = file else {
        return response;
    };
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(part.length));
    h.insert(
        header::ETAG,
        HeaderValue::from_str(&format!("\"{}\"", part.content_hash))
            .unwrap_or(HeaderValue::from_static("\"\"")),
    );
    if let Some((start, end)) = part.range {
        *response.status_mut() = StatusCode::PARTIAL_CONTENT;
        let content_range = format!("bytes {start}-{end}/{}", part.size);
        response.headers_mut().insert(
            header::CONTENT_RANGE,
            HeaderValue::from_str(&content_range).unwrap_or(HeaderValue::from_static("")),
        );
    }
    response
}
