//! An export as an HTTP answer, for every door that offers downloads (the REST API, the
//! console): the content type, a file name to save it under, and for a file its length, ETag
//! and the range sent.

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use ferry_node::transfer::Export;

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
