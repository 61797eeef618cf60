//! A sync stream as a sender (or anyone between) can send it: LZ4 frames, then NDJSON records,
//! `row` lines read without decoding their values, and compact rows. Nothing panics, and no
//! frame makes the decoder hold more than it allows.
#![no_main]

use ferry_proto::frames::FrameDecoder;
use ferry_proto::{RawRowRecord, SyncRecord, read_compact_row};
use libfuzzer_sys::fuzz_target;

fn read_lines(bytes: &[u8]) {
    for line in bytes.split_inclusive(|b| *b == b'\n') {
        let _ = serde_json::from_slice::<SyncRecord>(line);
        let _ = serde_json::from_slice::<RawRowRecord<'_>>(line);
        let _ = read_compact_row(line.strip_suffix(b"\n").unwrap_or(line));
    }
}

fuzz_target!(|data: &[u8]| {
    read_lines(data);
    let mut frames = FrameDecoder::default();
    // Fed in two parts, as a network would cut it.
    let (first, second) = data.split_at(data.len() / 2);
    let mut plain = Vec::new();
    frames.push(first);
    while let Ok(true) = frames.next_into(&mut plain) {}
    frames.push(second);
    while let Ok(true) = frames.next_into(&mut plain) {}
    read_lines(&plain);
});
