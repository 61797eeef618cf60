//! Every bad input gets its own stable code and leaves the instance exactly as it was.

use crate::harness::{TestInstance, points_geojson};
use reqwest::{Method, StatusCode};
use serde_json::json;

/// Runs `attempt`, checks status and code, and that items, sequence and chunks are unchanged.
macro_rules! refused {
    ($inst:expr, $status:expr, $code:expr, $attempt:expr) => {{
        let before = $inst.snapshot().await;
        let (status, body) = $attempt;
        assert_eq!(status, $status, "{body}");
        assert_eq!(body["code"], $code, "{body}");
        assert!(
            body["message"].as_str().is_some_and(|m| m.len() > 10),
            "a message for people: {body}"
        );
        assert_eq!(
            $inst.snapshot().await,
            before,
            "state changed after a refused {}",
            $code
        );
        body
    }};
}

const UNPROCESSABLE: StatusCode = StatusCode::UNPROCESSABLE_ENTITY;

#[tokio::test]
async fn malformed_imports_leave_nothing_behind() {
    let inst = TestInstance::start().await;
    inst.create_space("s").await;
    inst.import("space=s", "text/csv", "id\n1\n").await;

    let truncated = points_geojson(3000);
    let truncated = &truncated[..truncated.len() / 2];
    refused!(
        inst,
        UNPROCESSABLE,
        "malformed_geojson",
        inst.import("space=s", "application/geo+json", truncated.to_string())
            .await
    );
    refused!(
        inst,
        UNPROCESSABLE,
        "malformed_geojson",
        inst.import("space=s", "application/geo+json", "{\"type\":\"Feature\"}")
            .await
    );

    // A bad geometry after thousands of good features: the whole import is refused.
    let mut late_bad = points_geojson(3000);
    late_bad.truncate(late_bad.len() - 2);
    late_bad.push_str(r#",{"type":"Feature","geometry":{"type":"Polygon","coordinates":[[[0,0],[1,0],[1,1]]]},"properties":{}}]}"#);
    let body = refused!(
        inst,
        UNPROCESSABLE,
        "invalid_geometry",
        inst.import("space=s", "application/geo+json", late_bad)
            .await
    );
    assert!(
        body["message"].as_str().unwrap().contains("feature 3001"),
        "{body}"
    );

    let schema = json!({"fields": [{"name": "id", "type": "integer"}, {"name": "n", "type": "integer"}], "primary_key": "id"});
    let query = format!(
        "space=s&schema={}",
        crate::items::urlencode(&schema.to_string())
    );
    let body = refused!(
        inst,
        UNPROCESSABLE,
        "schema_mismatch",
        inst.import(&query, "text/csv", "id,n\n1,2\n2,two\n").await
    );
    assert!(
        body["message"].as_str().unwrap().contains("line 3"),
        "{body}"
    );
    refused!(
        inst,
        UNPROCESSABLE,
        "malformed_csv",
        inst.import("space=s", "text/csv", "id,n\n1,2\n2,3,4\n")
            .await
    );
    refused!(
        inst,
        UNPROCESSABLE,
        "duplicate_key",
        inst.import("space=s", "text/csv", "id,n\n1,2\n2,3\n1,4\n")
            .await
    );
    refused!(
        inst,
        UNPROCESSABLE,
        "malformed_ndjson",
        inst.import("space=s", "application/x-ndjson", "{\"id\":1}\nnot json\n")
            .await
    );
    refused!(
        inst,
        StatusCode::BAD_REQUEST,
        "unknown_item_kind",
        inst.import("space=s&kind=raster", "text/csv", "id\n1\n")
            .await
    );
    refused!(
        inst,
        StatusCode::NOT_FOUND,
        "space_not_found",
        inst.import("space=nope", "text/csv", "id\n1\n").await
    );
    refused!(
        inst,
        StatusCode::BAD_REQUEST,
        "invalid_marking",
        inst.import("space=s&marking=top%20secret", "text/csv", "id\n1\n")
            .await
    );
    refused!(
        inst,
        StatusCode::BAD_REQUEST,
        "invalid_schema",
        inst.import("space=s&schema=%7Bnope", "text/csv", "id\n1\n")
            .await
    );
}

#[tokio::test]
async fn wrong_content_types_are_refused() {
    let inst = TestInstance::start().await;
    inst.create_space("s").await;
    refused!(
        inst,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_content_type",
        inst.import("space=s&kind=feature_layer", "text/csv", "id\n1\n")
            .await
    );
    refused!(
        inst,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_content_type",
        inst.import("space=s&kind=dataset", "image/png", "x").await
    );
    let raw_posts = [
        (
            "/api/v1/items/import?space=s",
            None,
            "id\n1\n",
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_content_type",
        ),
        (
            "/api/v1/spaces",
            Some("text/plain"),
            r#"{"name":"x"}"#,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_content_type",
        ),
        (
            "/api/v1/spaces",
            Some("application/json"),
            r#"{"name": 5}"#,
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
    ];
    for (path, content_type, body, status, code) in raw_posts {
        refused!(
            inst,
            status,
            code,
            inst.post_raw(path, content_type, body).await
        );
    }
}

#[tokio::test]
async fn bodies_over_the_limits_are_refused() {
    let inst = TestInstance::start_with(|c| {
        c.max_import_bytes = 64 * 1024;
        c.max_body_bytes = 4 * 1024;
    })
    .await;
    inst.create_space("s").await;
    let big = points_geojson(2000);
    assert!(big.len() > 64 * 1024);
    refused!(
        inst,
        StatusCode::PAYLOAD_TOO_LARGE,
        "body_too_large",
        inst.import("space=s", "application/geo+json", big.clone())
            .await
    );
    // Without a Content-Length the limit is found while streaming; chunks already written go away.
    let streamed = |bytes: Vec<u8>| {
        let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
            bytes.chunks(8192).map(|c| Ok(c.to_vec())).collect();
        reqwest::Body::wrap_stream(futures_util::stream::iter(chunks))
    };
    refused!(
        inst,
        StatusCode::PAYLOAD_TOO_LARGE,
        "body_too_large",
        inst.import(
            "space=s",
            "application/geo+json",
            streamed(big.into_bytes())
        )
        .await
    );
    let file: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
    refused!(
        inst,
        StatusCode::PAYLOAD_TOO_LARGE,
        "body_too_large",
        inst.import("space=s", "application/octet-stream", streamed(file))
            .await
    );
    let long = "x".repeat(8 * 1024);
    refused!(
        inst,
        StatusCode::PAYLOAD_TOO_LARGE,
        "body_too_large",
        inst.call(
            Method::POST,
            "/api/v1/spaces",
            Some(json!({"name": "s2", "description": long}))
        )
        .await
    );
}

#[tokio::test]
async fn bad_edits_and_queries_are_refused() {
    let inst = TestInstance::start().await;
    inst.create_space("s").await;
    let (_, layer) = inst
        .import("space=s", "application/geo+json", points_geojson(3))
        .await;
    let (_, dataset) = inst.import("space=s", "text/csv", "id,n\n1,1\n").await;
    let edits = format!("/api/v1/items/{}/edits", layer["id"].as_str().unwrap());
    // Each batch is refused as a whole; `details` names the edit at fault and its own code.
    let bad_batches = [
        (json!({"deletes": [1, 77]}), 1, "row_not_found"),
        (
            json!({"adds": [{"key": 2, "values": {}}]}),
            0,
            "duplicate_key",
        ),
        (
            json!({"adds": [{"geometry": {"type": "Point", "coordinates": [0]}}]}),
            0,
            "invalid_geometry",
        ),
        (
            json!({"updates": [{"key": 1, "values": {"n": "seven"}}]}),
            0,
            "schema_mismatch",
        ),
    ];
    for (batch, at, code) in bad_batches {
        let body = refused!(
            inst,
            UNPROCESSABLE,
            "edits_rejected",
            inst.call(Method::POST, &edits, Some(batch)).await
        );
        assert_eq!(
            body["details"]["results"][at]["error"]["code"], code,
            "{body}"
        );
    }
    let dataset_id = dataset["id"].as_str().unwrap();
    refused!(
        inst,
        UNPROCESSABLE,
        "edits_rejected",
        inst.call(
            Method::POST,
            &format!("/api/v1/items/{dataset_id}/edits"),
            Some(json!({"adds": [{"values": {"n": 2}}]}))
        )
        .await
    );
    let rows = format!("/api/v1/items/{}/rows", layer["id"].as_str().unwrap());
    let bad_calls = [
        (
            Method::GET,
            format!("{rows}?after=!!"),
            None,
            StatusCode::BAD_REQUEST,
            "invalid_cursor",
        ),
        (
            Method::GET,
            format!("{rows}?bbox=1,2,3"),
            None,
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            Method::GET,
            format!("{rows}?where=nope:1"),
            None,
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            Method::GET,
            format!("/api/v1/items/{dataset_id}/rows?bbox=0,0,1,1"),
            None,
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            Method::GET,
            "/api/v1/items/not-an-id".to_string(),
            None,
            StatusCode::NOT_FOUND,
            "item_not_found",
        ),
        (
            Method::POST,
            "/api/v1/spaces".to_string(),
            Some(json!({"name": "has space"})),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            Method::POST,
            "/api/v1/spaces".to_string(),
            Some(json!({"name": "s"})),
            StatusCode::CONFLICT,
            "space_name_taken",
        ),
    ];
    for (method, path, body, status, code) in bad_calls {
        refused!(inst, status, code, inst.call(method, &path, body).await);
    }
}
