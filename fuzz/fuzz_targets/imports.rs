//! GeoJSON, CSV and NDJSON imports: whatever a user uploads. An import either yields rows or a
//! clear error; it never panics and never hangs.
#![no_main]

use ferry_formats::{ImportFormat, ImportOptions, start_import};
use ferry_store::RowSource;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, input)) = data.split_first() else {
        return;
    };
    let format = match selector % 3 {
        0 => ImportFormat::GeoJson,
        1 => ImportFormat::Csv,
        _ => ImportFormat::Ndjson,
    };
    let mut stream = start_import(
        format,
        std::io::Cursor::new(input.to_vec()),
        ImportOptions::default(),
    );
    while let Ok(Some(_)) = stream.next_row() {}
});
