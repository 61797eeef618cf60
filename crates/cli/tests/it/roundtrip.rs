//! Data comes back exactly: random layers and datasets (floats at the limits of f64, big
//! integers, unicode, nulls, nested values, every geometry type, text that looks like numbers)
//! go through import, edits, sync to a collaboration's host and relay to another guest, and
//! every export of every instance is equal to what went in. GDAL (`ogrinfo`) reads every
//! exported layer and counts every feature.

use crate::harness::TestInstance;
use crate::sync::{coast, edit, id, import, instance, items, sync_now};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// A small deterministic generator (xorshift64*): the same seed, the same data.
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a, T>(&mut self, from: &'a [T]) -> &'a T {
        &from[self.below(from.len())]
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A float: one at an edge of f64, or any finite bit pattern.
    fn float(&mut self) -> f64 {
        const EDGES: [f64; 9] = [
            5e-324,
            2.2250738585072014e-308,
            1.7976931348623157e308,
            -1.7976931348623157e308,
            0.1,
            -116916.63774434407,
            1e-7,
            123456.78901234567,
            0.30000000000000004,
        ];
        if self.below(2) == 0 {
            return *self.pick(&EDGES);
        }
        loop {
            let f = f64::from_bits(self.next());
            // Whole numbers are left out: `1.0` and `1` are one number, written two ways.
            if f.is_finite() && f.fract() != 0.0 && f != 0.0 {
                return f;
            }
        }
    }

    fn integer(&mut self) -> i64 {
        let any = (self.next() >> 1) as i64;
        *self.pick(&[
            i64::MAX,
            i64::MIN,
            9_007_199_254_740_993,
            -9_007_199_254_740_993,
            0,
            7,
            any,
        ])
    }

    /// Text, much of it the kind that breaks formats: numbers that are not numbers, quotes,
    /// separators, line breaks, scripts and emoji.
    fn text(&mut self) -> String {
        let pieces = [
            "07585",
            "+5",
            "1.50",
            "1e5",
            "NaN",
            "-0",
            "0x1F",
            "true",
            "null",
            "Ærø",
            "İstanbul",
            "日本語",
            "עברית",
            "e\u{301}",
            "🚢⚓",
            "a,b",
            "say \"hi\"",
            "line\nbreak",
            "tab\there",
            "back\\slash",
            " padded ",
            "=1+1",
        ];
        let n = 1 + self.below(3);
        (0..n)
            .map(|_| *self.pick(&pieces))
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn nested(&mut self, depth: usize) -> Value {
        match self.below(if depth > 3 { 4 } else { 6 }) {
            0 => Value::Null,
            1 => json!(self.float()),
            2 => json!(self.integer()),
            3 => json!(self.text()),
            4 => (0..self.below(4)).map(|_| self.nested(depth + 1)).collect(),
            _ => {
                let mut map = Map::new();
                for k in 0..self.below(4) {
                    map.insert(format!("k{k}"), self.nested(depth + 1));
                }
                Value::Object(map)
            }
        }
    }

    /// A value for a column, null now and then.
    fn cell(&mut self, column: &str) -> Value {
        if self.below(7) == 0 {
            return Value::Null;
        }
        match column {
            "f" => json!(self.float()),
            "i" => json!(self.integer()),
            "s" => json!(self.text()),
            "b" => json!(self.below(2) == 0),
            // An object, so the column is inferred as JSON from its first value on.
            _ => json!({"v": self.nested(1)}),
        }
    }

    fn lon(&mut self) -> f64 {
        self.unit() * 359.0 - 179.5
    }

    fn lat(&mut self) -> f64 {
        self.unit() * 179.0 - 89.5
    }

    fn position(&mut self) -> Value {
        match self.below(4) {
            0 => json!([self.lon(), self.lat(), self.float()]),
            _ => json!([self.lon(), self.lat()]),
        }
    }

    fn ring(&mut self) -> Value {
        let (x, y, d) = (self.lon(), self.lat(), 0.25 + self.unit() * 0.25);
        json!([[x, y], [x + d, y], [x + d, y + d], [x, y + d], [x, y]])
    }

    fn line(&mut self) -> Value {
        (0..2 + self.below(3)).map(|_| self.position()).collect()
    }

    fn geometry(&mut self) -> Value {
        match self.below(8) {
            0 => Value::Null,
            1 => json!({"type": "Point", "coordinates": self.position()}),
            2 => json!({"type": "MultiPoint", "coordinates": [self.position(), self.position()]}),
            3 => json!({"type": "LineString", "coordinates": self.line()}),
            4 => json!({"type": "MultiLineString", "coordinates": [self.line(), self.line()]}),
            5 => json!({"type": "Polygon", "coordinates": [self.ring()]}),
            6 => json!({"type": "MultiPolygon", "coordinates": [[self.ring()], [self.ring()]]}),
            _ => json!({"type": "GeometryCollection", "geometries": [
                {"type": "Point", "coordinates": self.position()},
                {"type": "LineString", "coordinates": self.line()},
            ]}),
        }
    }

    /// A feature's properties: every column, some missing, or `null` now and then.
    fn properties(&mut self) -> Value {
        if self.below(12) == 0 {
            return Value::Null;
        }
        let mut map = Map::new();
        for column in COLUMNS {
            if self.below(10) != 0 {
                map.insert(column.to_string(), self.cell(column));
            }
        }
        Value::Object(map)
    }
}

const COLUMNS: [&str; 5] = ["f", "i", "s", "b", "j"];

/// What an item should hold: key to (values, geometry).
type Model = BTreeMap<i64, (Value, Value)>;

/// Numbers are equal when they are the same number: an integer, or the same f64 bits.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64(), x.as_u64()) {
            (Some(i), Some(j), _) => i == j,
            (None, None, Some(u)) => y.as_u64() == Some(u),
            _ => x.as_f64().map(f64::to_bits) == y.as_f64().map(f64::to_bits),
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

fn assert_same(what: &str, got: &Model, want: &Model) {
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>(),
        "{what}: keys"
    );
    for (key, (values, geometry)) in want {
        let (got_values, got_geometry) = &got[key];
        assert!(
            same(got_values, values),
            "{what}: values of {key}\n got {got_values}\nwant {values}"
        );
        assert!(
            same(got_geometry, geometry),
            "{what}: geometry of {key}\n got {got_geometry}\nwant {geometry}"
        );
    }
}

fn exact(text: &str) -> Value {
    ferry_proto::exact::from_text(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// A layer's export, read exactly: GeoJSON or NDJSON (one feature per line).
fn read_layer(format: &str, text: &str) -> Model {
    let features: Vec<Value> = match format {
        "geojson" => exact(text)["features"].as_array().unwrap().clone(),
        _ => text.lines().map(exact).collect(),
    };
    features
        .into_iter()
        .map(|f| {
            let key = f["id"].as_i64().unwrap();
            (key, (f["properties"].clone(), f["geometry"].clone()))
        })
        .collect()
}

/// A dataset's export, read exactly; a CSV cell as the type its column has in `want`.
fn read_dataset(format: &str, text: &str, want: &Model) -> Model {
    let rows: Vec<Value> = match format {
        "ndjson" => text.lines().map(exact).collect(),
        _ => {
            let mut reader = csv::Reader::from_reader(text.as_bytes());
            let headers = reader.headers().unwrap().clone();
            reader
                .records()
                .map(|record| {
                    let record = record.unwrap();
                    let row: Map<String, Value> = headers
                        .iter()
                        .zip(record.iter())
                        .map(|(name, cell)| (name.to_string(), csv_cell(name, cell, want)))
                        .collect();
                    Value::Object(row)
                })
                .collect()
        }
    };
    rows.into_iter()
        .map(|row| (row["id"].as_i64().unwrap(), (row, Value::Null)))
        .collect()
}

/// A CSV cell: empty is null; text columns are text; other columns are JSON text, read exactly.
fn csv_cell(column: &str, cell: &str, want: &Model) -> Value {
    let text_column = want.values().any(|(values, _)| values[column].is_string());
    match cell {
        "" => Value::Null,
        _ if text_column => Value::String(cell.to_string()),
        _ => exact(cell),
    }
}

/// Fills in what a CSV cannot tell apart from missing: a missing column is a null one.
fn with_all_columns(model: &Model, columns: &[&str]) -> Model {
    model
        .iter()
        .map(|(key, (values, geometry))| {
            let mut row = values.as_object().cloned().unwrap_or_default();
            for c in columns {
                row.entry(c.to_string()).or_insert(Value::Null);
            }
            (*key, (Value::Object(row), geometry.clone()))
        })
        .collect()
}

fn without_nulls(model: &Model) -> Model {
    model
        .iter()
        .map(|(key, (values, geometry))| {
            let mut row = values.as_object().cloned().unwrap_or_default();
            row.retain(|_, v| !v.is_null());
            (*key, (Value::Object(row), geometry.clone()))
        })
        .collect()
}

fn geojson_of(model: &Model) -> String {
    let features: Vec<Value> = model
        .iter()
        .map(|(key, (properties, geometry))| {
            json!({"type": "Feature", "id": key, "geometry": geometry, "properties": properties})
        })
        .collect();
    json!({"type": "FeatureCollection", "features": features}).to_string()
}

fn ndjson_of(model: &Model) -> String {
    model
        .values()
        .map(|(values, _)| values.to_string() + "\n")
        .collect()
}

/// A CSV of a dataset whose columns are id, f, i, s: numbers written as JSON writes them, text
/// quoted where it must be, nulls empty.
fn csv_of(model: &Model) -> String {
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record(["id", "f", "i", "s"]).unwrap();
    for (values, _) in model.values() {
        let cells: Vec<String> = ["id", "f", "i", "s"]
            .iter()
            .map(|c| match &values[*c] {
                Value::Null => String::new(),
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect();
        writer.write_record(cells).unwrap();
    }
    String::from_utf8(writer.into_inner().unwrap()).unwrap()
}

/// Random rows for a dataset: `id` then the columns.
fn dataset(g: &mut Gen, rows: usize, columns: &[&str]) -> Model {
    (1..=rows as i64)
        .map(|key| {
            let mut row = Map::new();
            row.insert("id".into(), json!(key));
            for c in columns {
                row.insert(c.to_string(), g.cell(c));
            }
            // A CSV cannot tell an empty text from a missing one: text is never empty.
            if row.get("s").is_some_and(|s| s == "") {
                row.insert("s".into(), Value::Null);
            }
            (key, (Value::Object(row), Value::Null))
        })
        .collect()
}

/// Edits on the origin, applied to the model too: updates of values and geometry, an add, a
/// delete.
async fn edit_layer(g: &mut Gen, inst: &TestInstance, item: &str, model: &mut Model) {
    let keys: Vec<i64> = model.keys().copied().collect();
    let (a, b, gone) = (keys[1], keys[2], keys[3]);
    let f = g.float();
    let geometry = g.geometry();
    let new_key = keys.last().unwrap() + 1;
    let (new_values, new_geometry) = (g.properties(), g.geometry());
    let new_values = match new_values {
        Value::Null => json!({}),
        v => v,
    };
    edit(
        inst,
        item,
        json!({
            "updates": [
                {"key": a, "values": {"f": f, "s": "edited, \"quoted\"\n"}},
                {"key": b, "geometry": geometry},
            ],
            "adds": [{"key": new_key, "values": new_values, "geometry": new_geometry}],
            "deletes": [gone],
        }),
    )
    .await;
    let entry = model.get_mut(&a).unwrap();
    let mut merged = entry.0.as_object().cloned().unwrap_or_default();
    merged.insert("f".into(), json!(f));
    merged.insert("s".into(), json!("edited, \"quoted\"\n"));
    entry.0 = Value::Object(merged);
    model.get_mut(&b).unwrap().1 = geometry;
    model.insert(new_key, (new_values, new_geometry));
    model.remove(&gone);
}

async fn edit_dataset(g: &mut Gen, inst: &TestInstance, item: &str, model: &mut Model) {
    let keys: Vec<i64> = model.keys().copied().collect();
    let (a, gone) = (keys[0], keys[2]);
    let f = g.float();
    let new_key = keys.last().unwrap() + 1;
    let added = json!({"id": new_key, "f": g.float(), "i": g.integer(), "s": "07585"});
    edit(
        inst,
        item,
        json!({
            "updates": [{"values": {"id": a, "f": f}}],
            "adds": [{"values": added}],
            "deletes": [gone],
        }),
    )
    .await;
    let entry = model.get_mut(&a).unwrap();
    entry.0["f"] = json!(f);
    model.insert(new_key, (added, Value::Null));
    model.remove(&gone);
}

/// Every export of `item` on `inst`, in each of `formats`, read back into a model.
async fn exports(inst: &TestInstance, item: &str, formats: &[&str]) -> Vec<(String, String)> {
    let mut all = Vec::new();
    for format in formats {
        all.push((
            format.to_string(),
            inst.export_text(item, &format!("?format={format}")).await,
        ));
    }
    all
}

/// The feature count GDAL reads from a layer export.
fn gdal_count(dir: &std::path::Path, name: &str, text: &str) -> u64 {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    let out = std::process::Command::new("ogrinfo")
        .args(["-ro", "-so", "-al"])
        .arg(&path)
        .output()
        .expect("ogrinfo runs: install Debian's gdal-bin (.ci/run does)");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "ogrinfo {name}: {said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    said.lines()
        .find_map(|l| l.strip_prefix("Feature Count: "))
        .unwrap_or_else(|| panic!("no feature count for {name}: {said}"))
        .trim()
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_data_comes_back_exactly_through_edits_sync_relay_and_every_export() {
    let host = instance("Port Authority", |_| {}).await;
    let origin = instance("City GIS", |_| {}).await;
    let reader = instance("Harbor Pilots", |_| {}).await;
    coast(
        &host,
        &[(&origin, "Roads=send"), (&reader, "Roads=receive")],
        &[],
    );
    let dir = tempfile::tempdir().unwrap();
    for seed in [0x5eed_u64, 0xfe77_u64] {
        let mut g = Gen(seed);
        // Small enough to stream inline, and one large enough to be copied whole.
        let mut layers = Vec::new();
        for (n, rows) in [(0, 60), (1, 10_200)] {
            let model: Model = (1..=rows)
                .map(|k| (k as i64, (g.properties(), g.geometry())))
                .collect();
            let title = format!("Layer {seed:x}-{n}");
            let item = import(&origin, "mine", &title, "geojson", geojson_of(&model)).await;
            layers.push((title, id(&item).to_string(), model));
        }
        let mut nested = dataset(&mut g, 50, &COLUMNS);
        let title = format!("Nested {seed:x}");
        let (status, item) = origin
            .import(
                &format!("space=mine&title={title}&primary_key=id"),
                "application/x-ndjson",
                ndjson_of(&nested),
            )
            .await;
        assert_eq!(status, reqwest::StatusCode::CREATED, "{item}");
        let nested_id = id(&item).to_string();
        let mut flat = dataset(&mut g, 50, &["f", "i", "s"]);
        let flat_title = format!("Flat {seed:x}");
        let item = import(&origin, "mine", &flat_title, "csv", csv_of(&flat)).await;
        let flat_id = id(&item).to_string();

        for (_, item, model) in &mut layers {
            edit_layer(&mut g, &origin, item, model).await;
        }
        edit_dataset(&mut g, &origin, &nested_id, &mut nested).await;
        edit_dataset(&mut g, &origin, &flat_id, &mut flat).await;

        assert_eq!(sync_now(&host, "Coast/Roads")["status"], "completed");
        assert_eq!(sync_now(&reader, "Coast/Roads")["status"], "completed");
        let at_host = items(&host, "coast").await;
        let at_reader = items(&reader, "mine").await;
        for inst_items in [
            (&origin, None),
            (&host, Some(&at_host)),
            (&reader, Some(&at_reader)),
        ] {
            let (inst, by_title) = inst_items;
            let local = |title: &str, own: &str| match by_title {
                Some(found) => id(&found[title]).to_string(),
                None => own.to_string(),
            };
            for (title, own, model) in &layers {
                let item = local(title, own);
                for (format, text) in exports(inst, &item, &["geojson", "ndjson"]).await {
                    assert_same(
                        &format!("{title} {format}"),
                        &read_layer(&format, &text),
                        model,
                    );
                    let name = format!(
                        "{seed:x}-{}.{}",
                        item,
                        if format == "geojson" {
                            "geojson"
                        } else {
                            "geojsonl"
                        }
                    );
                    assert_eq!(
                        gdal_count(dir.path(), &name, &text),
                        model.len() as u64,
                        "GDAL reads every feature of {title} as {format}"
                    );
                }
            }
            let item = local(&title, &nested_id);
            for (format, text) in exports(inst, &item, &["csv", "ndjson"]).await {
                // In CSV, nested values are JSON text, and a missing value is an empty cell.
                let want = match format.as_str() {
                    "csv" => with_all_columns(&nested, &COLUMNS),
                    _ => nested.clone(),
                };
                let got = read_dataset(&format, &text, &want);
                assert_same(&format!("{title} {format}"), &got, &want);
            }
            let item = local(&flat_title, &flat_id);
            let want = with_all_columns(&flat, &["f", "i", "s"]);
            for (format, text) in exports(inst, &item, &["csv", "ndjson"]).await {
                let got = read_dataset(&format, &text, &want);
                // An empty CSV cell is no value: the row has no such key.
                let want = match format.as_str() {
                    "csv" => want.clone(),
                    _ => without_nulls(&flat),
                };
                assert_same(&format!("{flat_title} {format}"), &got, &want);
            }
        }
    }
}
