use super::*;
use ferry_core::CoreError;
use ferry_proto::{ErrorCode, FieldType, GeometryType};
use ferry_store::{ItemShape, RowRecord, RowSource};

fn drain(
    format: ImportFormat,
    input: &str,
    options: ImportOptions,
) -> Result<(Vec<RowRecord>, ItemShape), CoreError> {
    let mut stream = start_import(
        format,
        std::io::Cursor::new(input.to_string().into_bytes()),
        options,
    );
    let mut rows = Vec::new();
    while let Some(r) = stream.next_row()? {
        rows.push(r);
    }
    Ok((rows, stream.shape()))
}

fn code(format: ImportFormat, input: &str) -> ErrorCode {
    drain(format, input, ImportOptions::default())
        .unwrap_err()
        .code()
}

#[test]
fn geojson_features_stream_with_inferred_schema() {
    let input = r#"{"type":"FeatureCollection","name":"x","features":[
        {"type":"Feature","id":7,"geometry":{"type":"Point","coordinates":[1,2]},"properties":{"a":1,"b":"x"}},
        {"type":"Feature","geometry":null,"properties":{"a":2.5,"c":true}},
        {"type":"Feature","id":"k","geometry":{"type":"LineString","coordinates":[[0,0],[1,1]]},"properties":null}
    ]}"#;
    let (rows, shape) = drain(ImportFormat::GeoJson, input, ImportOptions::default()).unwrap();
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0].key, ferry_core::Key::Int(7));
    assert_eq!(
        rows[1].key,
        ferry_core::Key::Int(8),
        "a missing id is the next integer above the largest"
    );
    assert!(rows[1].geometry.is_none());
    let schema = shape.schema.unwrap();
    assert_eq!(schema.field("a").unwrap().field_type, FieldType::Number);
    assert_eq!(schema.field("c").unwrap().field_type, FieldType::Boolean);
    assert_eq!(shape.geometry_type, Some(GeometryType::Geometry));
}

#[test]
fn geojson_errors_have_their_codes() {
    assert_eq!(
        code(ImportFormat::GeoJson, "{"),
        ErrorCode::MalformedGeojson
    );
    assert_eq!(
        code(ImportFormat::GeoJson, "[]"),
        ErrorCode::MalformedGeojson
    );
    assert_eq!(
        code(ImportFormat::GeoJson, r#"{"type":"Feature","features":[]}"#),
        ErrorCode::MalformedGeojson
    );
    assert_eq!(
        code(ImportFormat::GeoJson, r#"{"type":"FeatureCollection"}"#),
        ErrorCode::MalformedGeojson
    );
    assert_eq!(
        code(
            ImportFormat::GeoJson,
            r#"{"type":"FeatureCollection","features":[{"type":"Feature","geometry":{"type":"Point","coordinates":[1]}}]}"#
        ),
        ErrorCode::InvalidGeometry
    );
    assert_eq!(
        code(
            ImportFormat::GeoJson,
            r#"{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"a":1}},{"type":"Feature","properties":{"a":"x"}}]}"#
        ),
        ErrorCode::SchemaMismatch
    );
    assert_eq!(
        code(
            ImportFormat::GeoJson,
            r#"{"type":"FeatureCollection","features":[{"type":"Feature","properties":{}}]} trailing"#
        ),
        ErrorCode::MalformedGeojson
    );
}

#[test]
fn geojson_legacy_crs_member() {
    let input = r#"{"type":"FeatureCollection","crs":{"type":"name","properties":{"name":"urn:ogc:def:crs:EPSG::3857"}},
        "features":[{"type":"Feature","geometry":{"type":"Point","coordinates":[500000,6000000]},"properties":{}}]}"#;
    let mut stream = start_import(
        ImportFormat::GeoJson,
        std::io::Cursor::new(input.as_bytes().to_vec()),
        ImportOptions::default(),
    );
    while stream.next_row().unwrap().is_some() {}
    assert_eq!(stream.crs(), "EPSG:3857");
}

#[test]
fn csv_types_and_keys() {
    let input = "id,name,score,when\n1,ann,2.5,2024-01-02T03:04:05Z\n2,bob,,\n";
    let (rows, shape) = drain(ImportFormat::Csv, input, ImportOptions::default()).unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[1].key, ferry_core::Key::Int(2));
    assert_eq!(
        rows[1].values, r#"{"id":2,"name":"bob"}"#,
        "empty cells are null and left out"
    );
    let schema = shape.schema.unwrap();
    assert_eq!(schema.primary_key.as_deref(), Some("id"));
    assert_eq!(schema.field("score").unwrap().field_type, FieldType::Number);
    assert_eq!(
        schema.field("when").unwrap().field_type,
        FieldType::Timestamp
    );
}

#[test]
fn csv_without_id_gets_generated_keys() {
    let (rows, shape) = drain(
        ImportFormat::Csv,
        "a,b\nx,1\ny,2\n",
        ImportOptions::default(),
    )
    .unwrap();
    assert_eq!(rows[1].key, ferry_core::Key::Int(2));
    assert_eq!(shape.schema.unwrap().primary_key.as_deref(), Some("_id"));
}

#[test]
fn csv_errors() {
    assert_eq!(
        code(ImportFormat::Csv, "a,b\n1,2,3\n"),
        ErrorCode::MalformedCsv
    );
    let many = format!(
        "id,n\n{}x,y\n",
        (1..=1000).map(|i| format!("{i},{i}\n")).collect::<String>()
    );
    assert_eq!(
        code(ImportFormat::Csv, &many),
        ErrorCode::SchemaMismatch,
        "a value past the sample that does not fit"
    );
    let options = ImportOptions {
        primary_key: Some("nope".into()),
        ..Default::default()
    };
    assert_eq!(
        drain(ImportFormat::Csv, "a\n1\n", options)
            .unwrap_err()
            .code(),
        ErrorCode::SchemaMismatch
    );
}

#[test]
fn ndjson_records() {
    let (rows, shape) = drain(
        ImportFormat::Ndjson,
        "{\"id\":\"a\",\"v\":1}\n\n{\"id\":\"b\",\"v\":2}\n",
        ImportOptions::default(),
    )
    .unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(shape.schema.unwrap().primary_key.as_deref(), Some("id"));
    assert_eq!(
        code(ImportFormat::Ndjson, "{\"id\":1}\n[1,2]\n"),
        ErrorCode::MalformedNdjson
    );
    assert_eq!(
        code(ImportFormat::Ndjson, "{\"id\":1}\n{\"id\":null}\n"),
        ErrorCode::SchemaMismatch
    );
}

#[test]
fn geojson_scanner_handles_large_features_escapes_and_members_after_features() {
    let big = "x}\\\"]{".repeat(100_000);
    let input = format!(
        r#"{{"features":[{{"type":"Feature","id":"a","geometry":null,"properties":{{"s":"{big}","t":"\"}}"}}}},
            {{"type":"Feature","id":"b","geometry":{{"type":"Point","coordinates":[1,2]}},"properties":{{}}}}],
          "type":"FeatureCollection","bbox":[1,2,1,2]}}"#
    );
    // A reader that hands out a few bytes at a time exercises every buffer boundary.
    struct Trickle(std::io::Cursor<Vec<u8>>);
    impl std::io::Read for Trickle {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = buf.len().min(4093);
            self.0.read(&mut buf[..n])
        }
    }
    let mut stream = start_import(
        ImportFormat::GeoJson,
        Trickle(std::io::Cursor::new(input.into_bytes())),
        ImportOptions::default(),
    );
    let first = stream.next_row().unwrap().unwrap();
    assert_eq!(first.key, ferry_core::Key::Text("a".into()));
    let values: serde_json::Value = serde_json::from_str(&first.values).unwrap();
    assert_eq!(values["s"].as_str().unwrap().len(), 6 * 100_000 - 100_000);
    assert_eq!(values["t"], "\"}");
    assert!(stream.next_row().unwrap().is_some());
    assert!(stream.next_row().unwrap().is_none());
}

#[test]
fn geojson_scanner_refuses_broken_structure() {
    for bad in [
        r#"{"type":"FeatureCollection","features":[{"type":"Feature","properties":{}} {"type":"Feature"}]}"#,
        r#"{"type":"FeatureCollection","features":[{"type":"Feature","properties":{}}]"#,
        r#"{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"a":1}]}"#,
        r#"{"type":"FeatureCollection","features":{}}"#,
        r#"{"type":"FeatureCollection","features":[]}}"#,
        r#"{"type" "FeatureCollection","features":[]}"#,
        r#"{"type":"FeatureCollection","features":[{"type":"Feature","properties":[1]}]}"#,
        "",
    ] {
        let err = drain(ImportFormat::GeoJson, bad, ImportOptions::default()).unwrap_err();
        assert!(
            matches!(
                err.code(),
                ErrorCode::MalformedGeojson | ErrorCode::SchemaMismatch
            ),
            "{bad}: {err}"
        );
    }
    let (rows, _) = drain(
        ImportFormat::GeoJson,
        r#" { "features" : [ ] , "type" : "FeatureCollection" } "#,
        ImportOptions::default(),
    )
    .unwrap();
    assert!(rows.is_empty());
}

#[test]
fn geojson_text_sequences_read_as_the_collection_of_their_features() {
    let features = [
        r#"{"type":"Feature","id":1,"geometry":{"type":"Point","coordinates":[1.5,2]},"properties":{"a":"x"}}"#,
        r#"{"type":"Feature","id":2,"geometry":null,"properties":{"a":null}}"#,
    ];
    let collection = format!(
        r#"{{"type":"FeatureCollection","features":[{}]}}"#,
        features.join(",")
    );
    let (expected, expected_shape) =
        drain(ImportFormat::GeoJson, &collection, ImportOptions::default()).unwrap();
    // One feature per line (.geojsonl), with a blank line and CRLF; and RFC 8142 (record
    // separators), which the GeoJSON reader also tells by its first byte.
    let lines = format!("{}\r\n\n{}\n", features[0], features[1]);
    let rfc8142 = format!("\u{1e}{}\n\u{1e}{}\n", features[0], features[1]);
    for (format, text) in [
        (ImportFormat::GeoJsonSeq, &lines),
        (ImportFormat::GeoJsonSeq, &rfc8142),
        (ImportFormat::GeoJson, &rfc8142),
    ] {
        let (rows, shape) = drain(format, text, ImportOptions::default()).unwrap();
        assert_eq!(rows, expected, "{format:?}: {text}");
        assert_eq!(shape, expected_shape);
    }
    assert_eq!(
        code(ImportFormat::GeoJsonSeq, "{\"type\":\"Feature\"\n"),
        ErrorCode::MalformedGeojson
    );
    assert_eq!(
        code(ImportFormat::GeoJsonSeq, "[1,2]\n"),
        ErrorCode::MalformedGeojson
    );
    // A line-per-feature file read as a collection says what it is.
    let err = drain(ImportFormat::GeoJson, &lines, ImportOptions::default()).unwrap_err();
    assert!(err.to_string().contains("text sequence"), "{err}");
}

#[test]
fn csv_separators_are_told_from_the_header_or_given() {
    let comma = "id,name,v\n1,\"a;b\",1.5\n";
    let (expected, _) = drain(ImportFormat::Csv, comma, ImportOptions::default()).unwrap();
    for text in [
        "id;name;v\n1;\"a;b\";1.5\n",
        "id\tname\tv\n1\t\"a;b\"\t1.5\n",
    ] {
        let (rows, _) = drain(ImportFormat::Csv, text, ImportOptions::default()).unwrap();
        assert_eq!(rows, expected, "{text:?}");
    }
    let given = ImportOptions {
        delimiter: Some(b'|'),
        ..ImportOptions::default()
    };
    let (rows, _) = drain(ImportFormat::Csv, "id|name|v\n1|a;b|1.5\n", given).unwrap();
    assert_eq!(rows, expected);
    // Quoted separators of another kind do not count.
    assert_eq!(super::csv_format::separator_of(b"\"i,d\";n\n"), b';');
    assert_eq!(super::csv_format::separator_of(b"only\n"), b',');
}

#[test]
fn projected_coordinates_without_a_crs_say_how_to_name_it() {
    let input = r#"{"type":"FeatureCollection","features":[{"type":"Feature","geometry":{"type":"Point","coordinates":[155000,463000]},"properties":{}}]}"#;
    let err = drain(ImportFormat::GeoJson, input, ImportOptions::default()).unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidGeometry);
    let said = err.to_string();
    assert!(
        said.contains("--crs") && said.contains("\"crs\" member"),
        "{said}"
    );
    // Named, they import.
    let named = ImportOptions {
        crs: "EPSG:28992".into(),
        ..ImportOptions::default()
    };
    assert_eq!(
        drain(ImportFormat::GeoJson, input, named).unwrap().0.len(),
        1
    );
}
