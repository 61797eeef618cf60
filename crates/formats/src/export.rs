//! Writers for exports. Rows come straight from the store's scan; GeoJSON and NDJSON copy the
//! stored JSON text through without decoding it.

use ferry_core::geometry::is_geographic;
use ferry_core::schema::value_to_text;
use ferry_core::{CoreError, CoreResult};
use ferry_proto::{Item, ItemKind};
use ferry_store::{RawRow, Store, StoreError, StoreResult};
use serde_json::Value;
use std::io::Write;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    GeoJson,
    Csv,
    Ndjson,
}

impl ExportFormat {
    pub fn parse(s: &str) -> Option<ExportFormat> {
        match s {
            "geojson" => Some(ExportFormat::GeoJson),
            "csv" => Some(ExportFormat::Csv),
            "ndjson" | "jsonl" => Some(ExportFormat::Ndjson),
            _ => None,
        }
    }

    /// The natural format of an item kind.
    pub fn default_for(kind: ItemKind) -> Option<ExportFormat> {
        match kind {
            ItemKind::FeatureLayer => Some(ExportFormat::GeoJson),
            ItemKind::Dataset => Some(ExportFormat::Csv),
            ItemKind::File => None,
        }
    }

    pub fn media_type(self) -> &'static str {
        match self {
            ExportFormat::GeoJson => "application/geo+json",
            ExportFormat::Csv => "text/csv; charset=utf-8",
            ExportFormat::Ndjson => "application/x-ndjson",
        }
    }

    /// Whether this format can carry items of `kind`.
    pub fn check(self, kind: ItemKind) -> CoreResult<()> {
        let ok = matches!(
            (self, kind),
            (ExportFormat::GeoJson, ItemKind::FeatureLayer)
                | (ExportFormat::Csv | ExportFormat::Ndjson, ItemKind::Dataset)
                | (ExportFormat::Ndjson, ItemKind::FeatureLayer)
        );
        if ok {
            Ok(())
        } else {
            Err(CoreError::InvalidRequest(format!(
                "a {} cannot be exported as {self:?}; layers export as geojson or ndjson, datasets as csv or ndjson",
                kind.as_str()
            )))
        }
    }
}

fn io(e: std::io::Error) -> StoreError {
    StoreError::Backend(format!("writing the export failed: {e}"))
}

/// Hands each row to the visitor, in key order: a store's scan, or pages read from elsewhere.
pub type ScanRows<'s> =
    dyn FnMut(&mut dyn FnMut(RawRow<'_>) -> StoreResult<()>) -> StoreResult<()> + 's;

/// Writes every live row of `item` to `out` in `format`.
pub fn write_export(
    store: &dyn Store,
    item: &Item,
    format: ExportFormat,
    out: &mut dyn Write,
) -> StoreResult<()> {
    write_rows(item, format, out, &mut |visit| {
        store.scan_rows(item.id, visit)
    })
}

/// Writes the rows `scan` gives to `out` in `format`.
pub fn write_rows(
    item: &Item,
    format: ExportFormat,
    out: &mut dyn Write,
    scan: &mut ScanRows<'_>,
) -> StoreResult<()> {
    format.check(item.kind)?;
    match format {
        ExportFormat::GeoJson => geojson(scan, item, out),
        ExportFormat::Ndjson => ndjson(scan, item, out),
        ExportFormat::Csv => csv(scan, item, out),
    }
}

fn geojson(scan: &mut ScanRows<'_>, item: &Item, out: &mut dyn Write) -> StoreResult<()> {
    out.write_all(br#"{"type":"FeatureCollection","#)
        .map_err(io)?;
    if let Some(crs) = item.crs.as_deref().filter(|c| !is_geographic(c)) {
        // RFC 7946 dropped `crs`; it is still the common way to label projected data.
        let urn = crs.replacen("EPSG:", "urn:ogc:def:crs:EPSG::", 1);
        write!(
            out,
            r#""crs":{{"type":"name","properties":{{"name":{}}}}},"#,
            Value::from(urn)
        )
        .map_err(io)?;
    }
    out.write_all(br#""features":["#).map_err(io)?;
    let mut first = true;
    scan(&mut |row: RawRow<'_>| {
        let sep = if first { "" } else { ",\n" };
        first = false;
        write!(
            out,
            r#"{sep}{{"type":"Feature","id":{},"geometry":{},"properties":{}}}"#,
            row.key.to_value(),
            row.geometry.unwrap_or("null"),
            row.values
        )
        .map_err(io)
    })?;
    out.write_all(b"]}\n").map_err(io)
}

/// One object per line, always: stored text may be pretty-printed (as it was imported), and
/// its line breaks become spaces (the same JSON). A layer's lines are GeoJSON features, so the
/// file is also a GeoJSON text sequence (`.geojsonl`) that GIS tools and `ferry item import`
/// read as a layer.
fn ndjson(scan: &mut ScanRows<'_>, item: &Item, out: &mut dyn Write) -> StoreResult<()> {
    let layer = item.kind == ItemKind::FeatureLayer;
    scan(&mut |row: RawRow<'_>| {
        let values = ferry_proto::one_line(row.values);
        if layer {
            writeln!(
                out,
                r#"{{"type":"Feature","id":{},"geometry":{},"properties":{values}}}"#,
                row.key.to_value(),
                ferry_proto::one_line(row.geometry.unwrap_or("null")),
            )
        } else {
            writeln!(out, "{values}")
        }
        .map_err(io)
    })
}

fn csv(scan: &mut ScanRows<'_>, item: &Item, out: &mut dyn Write) -> StoreResult<()> {
    let fields: Vec<String> = item
        .schema
        .iter()
        .flat_map(|s| s.fields.iter().map(|f| f.name.clone()))
        .collect();
    let mut writer = csv::Writer::from_writer(out);
    let csv_err = |e: csv::Error| StoreError::Backend(format!("writing the export failed: {e}"));
    writer.write_record(&fields).map_err(csv_err)?;
    scan(&mut |row: RawRow<'_>| {
        // Exactly: a cell holds the number the stored digits name.
        let values = match ferry_proto::exact::from_text(row.values)? {
            Value::Object(values) => values,
            _ => serde_json::Map::new(),
        };
        let cells = fields
            .iter()
            .map(|f| values.get(f).map_or("".into(), value_to_text).into_owned());
        writer.write_record(cells).map_err(csv_err)
    })?;
    writer.flush().map_err(io)
}
