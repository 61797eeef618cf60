use crate::harness::{TestInstance, points_geojson};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

#[tokio::test]
async fn spaces_create_show_rename_and_delete() {
    let inst = TestInstance::start().await;
    let space = inst.create_space("harbor").await;
    let id = space["id"].as_str().unwrap();
    assert_eq!(
        inst.get(&format!("/api/v1/spaces/{id}")).await["name"],
        "harbor"
    );
    let (status, body) = inst
        .call(
            Method::PATCH,
            "/api/v1/spaces/harbor",
            Some(json!({"name": "port", "description": "Port data"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        inst.get("/api/v1/spaces/port").await["description"],
        "Port data"
    );
    let (status, body) = inst.call(Method::GET, "/api/v1/spaces/harbor", None).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("space_not_found"))
    );
    inst.import("space=port", "text/csv", "id,v\n1,2\n").await;
    let (status, body) = inst.call(Method::DELETE, "/api/v1/spaces/port", None).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::CONFLICT, Some("space_not_empty"))
    );
    assert!(body["message"].as_str().unwrap().contains("--force"));
    assert_eq!(
        inst.call(Method::DELETE, "/api/v1/spaces/port?force=true", None)
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(inst.get("/api/v1/spaces").await, json!([]));
    assert_eq!(inst.get("/api/v1/items").await, json!([]));
}

#[tokio::test]
async fn geojson_layer_round_trips_and_answers_queries() {
    let inst = TestInstance::start().await;
    inst.create_space("s").await;
    let source = points_geojson(2500);
    let (status, item) = inst
        .import(
            "space=s&title=Points&tag=demo&marking=SECRET&marking=EU",
            "application/geo+json",
            source.clone(),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{item}");
    assert_eq!(item["kind"], "feature_layer");
    assert_eq!(item["row_count"], 2500);
    assert_eq!(item["geometry_type"], "Point");
    assert_eq!(item["crs"], "EPSG:4326");
    assert_eq!(item["markings"], json!(["EU", "SECRET"]));
    let fields: Vec<(String, String)> = item["schema"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["name"].as_str().unwrap().into(),
                f["type"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert!(
        fields.contains(&("n".into(), "integer".into()))
            && fields.contains(&("v".into(), "number".into()))
    );
    let id = item["id"].as_str().unwrap();

    // Export equals the input, feature by feature.
    let exported: Value = inst.export(id, "", &[]).await.json().await.unwrap();
    let original: Value = serde_json::from_str(&source).unwrap();
    assert_eq!(exported["features"], original["features"]);

    // Paging walks every feature once, in key order.
    let mut keys = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let path = match &after {
            Some(a) => format!("/api/v1/items/{id}/rows?limit=1000&after={a}"),
            None => format!("/api/v1/items/{id}/rows?limit=1000"),
        };
        let page = inst.get(&path).await;
        keys.extend(
            page["rows"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["key"].as_i64().unwrap()),
        );
        match page["next"].as_str() {
            Some(n) => after = Some(n.to_string()),
            None => break,
        }
    }
    assert_eq!(keys, (1..=2500).collect::<Vec<i64>>());

    // Bounding box and equality filters.
    let boxed = inst
        .get(&format!(
            "/api/v1/items/{id}/rows?bbox=-179,-89,-176,-86&limit=10000"
        ))
        .await;
    let boxed_keys: Vec<i64> = boxed["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["key"].as_i64().unwrap())
        .collect();
    assert!(!boxed_keys.is_empty());
    for r in boxed["rows"].as_array().unwrap() {
        let c = &r["geometry"]["coordinates"];
        assert!(
            (-179.0..=-176.0).contains(&c[0].as_f64().unwrap())
                && (-89.0..=-86.0).contains(&c[1].as_f64().unwrap())
        );
    }
    let equal = inst
        .get(&format!(
            "/api/v1/items/{id}/rows?where=n:3&where=name:p3&limit=10000"
        ))
        .await;
    assert_eq!(equal["rows"].as_array().unwrap().len(), 1);
    let only_n = inst
        .get(&format!("/api/v1/items/{id}/rows?where=n:3&limit=10000"))
        .await;
    assert_eq!(
        only_n["rows"].as_array().unwrap().len(),
        (1..=2500).filter(|i| i % 7 == 3).count()
    );
}

#[tokio::test]
async fn csv_and_ndjson_datasets_with_inferred_and_explicit_schemas() {
    let inst = TestInstance::start().await;
    inst.create_space("s").await;
    let csv = "code,name,score,active\nA1,Alpha,1.5,true\nB2,Beta,,false\n";
    let (status, item) = inst
        .import("space=s&primary_key=code", "text/csv", csv)
        .await;
    assert_eq!(status, StatusCode::CREATED, "{item}");
    assert_eq!(item["schema"]["primary_key"], "code");
    let id = item["id"].as_str().unwrap();
    let exported = inst.export_text(id, "?format=csv").await;
    assert_eq!(
        exported,
        "code,name,score,active\nA1,Alpha,1.5,true\nB2,Beta,,false\n"
    );

    let schema = json!({"fields": [{"name": "id", "type": "integer"}, {"name": "label", "type": "string"}], "primary_key": "id"});
    let query = format!("space=s&schema={}", urlencode(&schema.to_string()));
    let (status, item) = inst
        .import(
            &query,
            "application/x-ndjson",
            "{\"id\":1,\"label\":\"x\"}\n{\"id\":2}\n",
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{item}");
    assert_eq!(item["schema"], schema);
    let id = item["id"].as_str().unwrap();
    let nd = inst.export_text(id, "?format=ndjson").await;
    assert_eq!(nd, "{\"id\":1,\"label\":\"x\"}\n{\"id\":2}\n");
}

pub fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn edits_apply_all_or_nothing_with_a_result_per_edit() {
    let inst = TestInstance::start().await;
    inst.create_space("s").await;
    let (_, item) = inst
        .import("space=s", "application/geo+json", points_geojson(5))
        .await;
    let id = item["id"].as_str().unwrap();
    let edits = format!("/api/v1/items/{id}/edits");
    let batch = json!({
        "adds": [{"key": 100, "values": {"name": "new", "n": 1}, "geometry": {"type": "Point", "coordinates": [1, 2]}},
                 {"values": {"name": "auto"}}],
        "updates": [{"key": 2, "values": {"name": "two"}, "geometry": {"type": "Point", "coordinates": [3, 4]}}],
        "deletes": [3]
    });
    let (status, out) = inst.call(Method::POST, &edits, Some(batch)).await;
    assert_eq!(status, StatusCode::OK, "{out}");
    let results = out["results"].as_array().unwrap();
    assert_eq!(results.len(), 4);
    assert!(results.iter().all(|r| r["success"] == true));
    assert_eq!(
        results[1]["key"], 101,
        "a feature added without an id gets the next one"
    );
    assert_eq!(out["item"]["row_count"], 6);
    assert_eq!(out["item"]["version"], 2);
    assert_eq!(
        out["item"]["geometry_type"], "Point",
        "points added to a point layer keep its type"
    );
    let two = inst
        .get(&format!("/api/v1/items/{id}/rows?where=name:two"))
        .await;
    assert_eq!(two["rows"][0]["geometry"]["coordinates"], json!([3.0, 4.0]));
    assert_eq!(
        two["rows"][0]["values"]["n"], 2,
        "fields not named keep their value"
    );

    // A value put beside "values" is a mistake of shape, said as such.
    let misshapen = json!({"adds": [{"name": "beside", "values": {}}]});
    let (status, body) = inst.call(Method::POST, &edits, Some(misshapen)).await;
    let message = body["message"].as_str().unwrap_or_default();
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        message.contains("unknown field `name`") && message.contains("`values`"),
        "{message}"
    );

    // One bad edit: nothing applies, each edit has its result.
    let before = inst.snapshot().await;
    let bad = json!({"adds": [{"key": 200, "values": {"name": "ok"}}], "updates": [{"key": 999, "values": {"name": "x"}}], "deletes": [1]});
    let (status, body) = inst.call(Method::POST, &edits, Some(bad)).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("edits_rejected"))
    );
    let results = body["details"]["results"].as_array().unwrap();
    assert_eq!(
        results
            .iter()
            .map(|r| r["success"].as_bool().unwrap())
            .collect::<Vec<_>>(),
        vec![true, false, true]
    );
    assert_eq!(results[1]["error"]["code"], "row_not_found");
    assert_eq!(inst.snapshot().await, before);
}

#[tokio::test]
async fn item_metadata_updates_and_deletion() {
    let inst = TestInstance::start().await;
    inst.create_space("s").await;
    let (_, item) = inst
        .import("space=s&title=Before", "text/csv", "id\n1\n")
        .await;
    let path = format!("/api/v1/items/{}", item["id"].as_str().unwrap());
    let (status, updated) = inst
        .call(
            Method::PATCH,
            &path,
            Some(json!({"title": "After", "tags": ["b", "a", "b"], "markings": ["OFFICIAL"]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(updated["title"], "After");
    assert_eq!(updated["tags"], json!(["a", "b"]));
    assert_eq!(updated["version"], 2);
    assert!(updated["seq"].as_i64() > item["seq"].as_i64());
    assert_eq!(
        inst.call(Method::DELETE, &path, None).await.0,
        StatusCode::NO_CONTENT
    );
    let (status, body) = inst.call(Method::GET, &path, None).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("item_not_found"))
    );
}

#[tokio::test]
async fn empty_items_can_be_created_and_filled_by_edits() {
    let inst = TestInstance::start().await;
    inst.create_space("s").await;
    let new = json!({"space": "s", "kind": "dataset", "title": "Empty",
        "schema": {"fields": [{"name": "k", "type": "string"}, {"name": "v", "type": "integer"}], "primary_key": "k"}});
    let (status, item) = inst.call(Method::POST, "/api/v1/items", Some(new)).await;
    assert_eq!(status, StatusCode::CREATED, "{item}");
    let id = item["id"].as_str().unwrap();
    let (status, out) = inst
        .call(
            Method::POST,
            &format!("/api/v1/items/{id}/edits"),
            Some(json!({"adds": [{"values": {"k": "a", "v": 1}}]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{out}");
    assert_eq!(out["results"][0]["key"], "a");
    let (status, body) = inst
        .call(Method::POST, "/api/v1/items", Some(json!({"space": "s", "kind": "dataset", "title": "No key", "schema": {"fields": []}})))
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_schema"))
    );
}

/// NDJSON is one object per line, whatever the layout of the GeoJSON the layer came from.
#[tokio::test]
async fn ndjson_exports_one_object_per_line_from_pretty_printed_imports() {
    let inst = TestInstance::start().await;
    inst.create_space("s").await;
    let (status, item) = inst
        .import(
            "space=s",
            "application/geo+json",
            crate::sync::pretty_points(59),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{item}");
    let id = item["id"].as_str().unwrap();
    let text = inst.export_text(id, "?format=ndjson").await;
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 59, "{text}");
    for line in lines {
        let feature: Value = serde_json::from_str(line).unwrap();
        assert!(
            feature["properties"].is_object() && feature["geometry"].is_object(),
            "{line}"
        );
    }
}

/// CSV cells that would change when written back as numbers (a postcode's leading zero, a
/// price's trailing zero) are text, and export exactly as they came.
#[tokio::test]
async fn csv_text_that_looks_like_numbers_comes_back_as_it_was() {
    let inst = TestInstance::start().await;
    inst.create_space("s").await;
    let csv = "id,zip,price,count\n1,07585,12.50,3\n2,12345,7.25,4\n";
    let (status, item) = inst.import("space=s", "text/csv", csv).await;
    assert_eq!(status, StatusCode::CREATED, "{item}");
    let types: Vec<(&str, &str)> = item["schema"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["name"].as_str().unwrap(), f["type"].as_str().unwrap()))
        .collect();
    assert_eq!(
        types,
        [
            ("id", "integer"),
            ("zip", "string"),
            ("price", "string"),
            ("count", "integer")
        ]
    );
    let id = item["id"].as_str().unwrap();
    let exported = inst.export_text(id, "?format=csv").await;
    assert_eq!(exported, csv);
}

/// A number written through the edit API reads back digit for digit, in values and in
/// coordinates, in every export format, the rows API, the change feed and the CLI.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edited_numbers_read_back_exactly() {
    let inst = TestInstance::start().await;
    inst.create_space("s").await;
    let (_, layer) = inst
        .import("space=s", "application/geo+json", points_geojson(5))
        .await;
    let (_, dataset) = inst
        .import("space=s&primary_key=id", "text/csv", "id,x\n1,0.5\n")
        .await;
    let digits = [
        "-116916.63774434407",
        "0.30000000000000004",
        "5e-324",
        "1.7976931348623157e308",
        "123456789.12345679",
    ];
    let (lon, lat) = ("-116.91663774434407", "33.123456789012345");
    // Sent as text: the test's own JSON reader must not be what rounds.
    let updates: Vec<String> = digits
        .iter()
        .enumerate()
        .map(|(i, d)| {
            format!(
                r#"{{"key": {}, "values": {{"v": {d}}}, "geometry": {{"type": "Point", "coordinates": [{lon}, {lat}]}}}}"#,
                i + 1
            )
        })
        .collect();
    let body = format!(r#"{{"updates": [{}]}}"#, updates.join(","));
    let response = inst
        .post_raw(
            &format!("/api/v1/items/{}/edits", layer["id"].as_str().unwrap()),
            Some("application/json"),
            body.into_bytes(),
        )
        .await;
    assert_eq!(response.0, StatusCode::OK, "{}", response.1);
    let csv_body = format!(
        r#"{{"updates": [{{"values": {{"id": 1, "x": {}}}}}]}}"#,
        digits[0]
    );
    let response = inst
        .post_raw(
            &format!("/api/v1/items/{}/edits", dataset["id"].as_str().unwrap()),
            Some("application/json"),
            csv_body.into_bytes(),
        )
        .await;
    assert_eq!(response.0, StatusCode::OK, "{}", response.1);
    // Every number in an export, read exactly (by the standard library, not a JSON reader).
    let numbers = |text: &str| -> Vec<f64> {
        text.split(|c: char| !(c.is_ascii_digit() || "eE+-.".contains(c)))
            .filter_map(|t| t.parse::<f64>().ok())
            .collect()
    };
    let exactly = |d: &str| d.parse::<f64>().unwrap();
    let layer_id = layer["id"].as_str().unwrap();
    for format in ["geojson", "ndjson"] {
        let text = inst
            .export_text(layer_id, &format!("?format={format}"))
            .await;
        let found = numbers(&text);
        for d in digits.iter().chain([&lon, &lat]) {
            assert!(found.contains(&exactly(d)), "{format} lacks {d}: {text}");
        }
    }
    // The rows API and the change feed too, read as text, and the CLI's table.
    for path in [
        format!("/api/v1/items/{layer_id}/rows"),
        "/api/v1/spaces/s/changes?after=0".to_string(),
    ] {
        let text = inst
            .request(Method::GET, &path, Some(&inst.admin_token))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let found = numbers(&text);
        for d in digits.iter().chain([&lon, &lat]) {
            assert!(found.contains(&exactly(d)), "{path} lacks {d}: {text}");
        }
    }
    let shown = crate::harness::stdout(&inst.ferry(&["item", "rows", layer_id]));
    assert!(numbers(&shown).contains(&exactly(digits[0])), "{shown}");
    let dataset_id = dataset["id"].as_str().unwrap();
    for format in ["csv", "ndjson"] {
        let text = inst
            .export_text(dataset_id, &format!("?format={format}"))
            .await;
        assert!(
            numbers(&text).contains(&exactly(digits[0])),
            "{format}: {text}"
        );
    }
}
