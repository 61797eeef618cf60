//! Streaming import and export of items.
//!
//! Imports parse on their own thread and hand rows to the store in batches through a bounded
//! channel: parsing and writing overlap, and memory stays bounded by the channel, whatever the size
//! of the input. Exports write rows straight from the store's scan to any `Write`.

mod csv_format;
mod export;
mod format;
mod geojson;
mod ndjson;
mod sink;

pub use export::{ExportFormat, ScanRows, write_export, write_rows};
pub use format::{ImportFormat, ImportOptions};
pub use sink::ImportStream;

use std::io::Read;

/// Starts parsing `reader` on a new thread; the returned stream feeds
/// [`ferry_store::Store::create_item`].
pub fn start_import<R: Read + Send + 'static>(
    format: ImportFormat,
    reader: R,
    options: ImportOptions,
) -> ImportStream {
    let delimiter = options.delimiter;
    sink::spawn(format.item_kind(), options, move |sink| match format {
        ImportFormat::GeoJson => geojson::read(reader, sink),
        ImportFormat::GeoJsonSeq => geojson::read_sequence(reader, sink),
        ImportFormat::Csv => csv_format::read(reader, sink, delimiter),
        ImportFormat::Ndjson => ndjson::read(reader, sink),
    })
}

#[cfg(test)]
mod tests;
