use crate::harness::TestInstance;
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn missing_wrong_and_revoked_tokens_are_refused_with_401() {
    let inst = TestInstance::start().await;
    let anonymous = inst
        .request(Method::GET, "/api/v1/spaces", None)
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let body: serde_json::Value = anonymous.json().await.unwrap();
    assert_eq!(body["code"], "unauthenticated");
    assert!(body["message"].as_str().unwrap().contains("Bearer"));

    let (status, body) = inst
        .call_as("ferry_not_a_token", Method::GET, "/api/v1/spaces", None)
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("unauthenticated"))
    );

    let token = inst.create_token("temp", "viewer").await;
    assert_eq!(
        inst.call_as(&token, Method::GET, "/api/v1/spaces", None)
            .await
            .0,
        StatusCode::OK
    );
    let tokens = inst.get("/api/v1/tokens").await;
    let id = tokens
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "temp")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, _) = inst
        .call(Method::DELETE, &format!("/api/v1/tokens/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = inst
        .call_as(&token, Method::GET, "/api/v1/spaces", None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        body["message"].as_str().unwrap().contains("revoked"),
        "{body}"
    );
}

#[tokio::test]
async fn health_and_openapi_need_no_token() {
    let inst = TestInstance::start().await;
    let health = inst
        .request(Method::GET, "/healthz", None)
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    let spec: serde_json::Value = inst
        .request(Method::GET, "/api/v1/openapi.json", None)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for path in [
        "/api/v1/spaces",
        "/api/v1/items/import",
        "/api/v1/items/{id}/edits",
        "/api/v1/spaces/{space}/changes",
    ] {
        assert!(spec["paths"][path].is_object(), "openapi lacks {path}");
    }
    assert!(spec["components"]["schemas"]["ApiError"].is_object());
    let metrics = inst.metrics().await;
    assert!(metrics.contains("ferry_http_requests_total"), "{metrics}");
}

/// Viewers read; editors edit item data; admins do everything else.
#[tokio::test]
async fn roles_decide_what_a_token_may_do() {
    let inst = TestInstance::start().await;
    inst.create_space("s").await;
    let viewer = inst.create_token("vera", "viewer").await;
    let editor = inst.create_token("ed", "editor").await;
    let (_, layer) = inst
        .import(
            "space=s",
            "application/geo+json",
            crate::harness::points_geojson(3),
        )
        .await;
    let item = format!("/api/v1/items/{}", layer["id"].as_str().unwrap());
    let edit = json!({"updates": [{"key": 1, "values": {"name": "changed"}}]});

    // Viewer: reads, nothing else.
    for path in [
        "/api/v1/spaces",
        "/api/v1/items",
        &item,
        &format!("{item}/rows"),
        "/api/v1/instance",
        "/api/v1/spaces/s/changes",
    ] {
        assert_eq!(
            inst.call_as(&viewer, Method::GET, path, None).await.0,
            StatusCode::OK,
            "viewer GET {path}"
        );
    }
    let forbidden = [
        (Method::POST, format!("{item}/edits"), Some(edit.clone())),
        (Method::PATCH, item.clone(), Some(json!({"title": "x"}))),
        (
            Method::POST,
            "/api/v1/spaces".to_string(),
            Some(json!({"name": "v"})),
        ),
        (Method::GET, "/api/v1/tokens".to_string(), None),
    ];
    for (method, path, body) in forbidden.clone() {
        let (status, body) = inst.call_as(&viewer, method.clone(), &path, body).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::FORBIDDEN, Some("forbidden")),
            "viewer {method} {path}"
        );
    }
    let upload = inst
        .request(Method::POST, "/api/v1/items/import?space=s", Some(&viewer))
        .header("content-type", "text/csv")
        .body("id\n1\n")
        .send()
        .await
        .unwrap();
    assert_eq!(upload.status(), StatusCode::FORBIDDEN);

    // Editor: edits item data and metadata, imports; no spaces, tokens or deletes.
    assert_eq!(
        inst.call_as(&editor, Method::POST, &format!("{item}/edits"), Some(edit))
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(
        inst.call_as(&editor, Method::PATCH, &item, Some(json!({"title": "T"})))
            .await
            .0,
        StatusCode::OK
    );
    for (method, path, body) in [
        (
            Method::POST,
            "/api/v1/spaces".to_string(),
            Some(json!({"name": "e"})),
        ),
        (Method::GET, "/api/v1/tokens".to_string(), None),
        (Method::DELETE, item.clone(), None),
        (Method::DELETE, "/api/v1/spaces/s".to_string(), None),
    ] {
        assert_eq!(
            inst.call_as(&editor, method.clone(), &path, body).await.0,
            StatusCode::FORBIDDEN,
            "editor {method} {path}"
        );
    }
    // Nothing the refused calls asked for happened.
    assert_eq!(inst.get(&item).await["title"], "T");
    assert_eq!(
        inst.get("/api/v1/spaces").await.as_array().unwrap().len(),
        1
    );

    // Admin: everything.
    assert_eq!(
        inst.call(Method::DELETE, &item, None).await.0,
        StatusCode::NO_CONTENT
    );
}
