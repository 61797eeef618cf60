//! What an import reads: its format and options.

use ferry_core::CoreError;
use ferry_proto::{ItemKind, Schema};

/// Input formats for rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportFormat {
    /// A GeoJSON FeatureCollection → feature layer (or a text sequence, told by its first byte).
    GeoJson,
    /// A GeoJSON text sequence (RFC 8142, `.geojsons`; or one feature per line, `.geojsonl`) →
    /// feature layer.
    GeoJsonSeq,
    /// CSV with a header line → dataset.
    Csv,
    /// One JSON object per line → dataset.
    Ndjson,
}

impl ImportFormat {
    pub fn parse(s: &str) -> Option<ImportFormat> {
        match s {
            "geojson" => Some(ImportFormat::GeoJson),
            "geojsonseq" | "geojsons" | "geojsonl" => Some(ImportFormat::GeoJsonSeq),
            "csv" => Some(ImportFormat::Csv),
            "ndjson" | "jsonl" => Some(ImportFormat::Ndjson),
            _ => None,
        }
    }

    pub fn item_kind(self) -> ItemKind {
        match self {
            ImportFormat::GeoJson | ImportFormat::GeoJsonSeq => ItemKind::FeatureLayer,
            ImportFormat::Csv | ImportFormat::Ndjson => ItemKind::Dataset,
        }
    }
}

#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// An explicit schema; when absent the schema is inferred.
    pub schema: Option<Schema>,
    /// Dataset primary-key column; defaults to `id` when present, else a generated `_id`.
    pub primary_key: Option<String>,
    /// CRS of a layer's coordinates; a GeoJSON `crs` member overrides it.
    pub crs: String,
    /// A CSV's field separator; `None`: told from its header line (`,`, `;` or tab).
    pub delimiter: Option<u8>,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions {
            schema: None,
            primary_key: None,
            crs: "EPSG:4326".to_string(),
            delimiter: None,
        }
    }
}

/// Maps an IO error of the input to the format's error, keeping its message.
pub(crate) fn io_error(format: ImportFormat, e: std::io::Error) -> CoreError {
    let msg = format!("reading the input failed: {e}");
    match format {
        ImportFormat::GeoJson | ImportFormat::GeoJsonSeq => CoreError::MalformedGeojson(msg),
        ImportFormat::Csv => CoreError::MalformedCsv(msg),
        ImportFormat::Ndjson => CoreError::MalformedNdjson(msg),
    }
}
