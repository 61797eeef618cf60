//! Chunk ids from other instances: only 64 lowercase hex digits parse, a parsed id prints back
//! as the same text, and it can never name a path.
#![no_main]

use ferry_proto::ChunkHash;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(hash) = text.parse::<ChunkHash>() {
        assert_eq!(hash.to_hex(), text, "one spelling per chunk id");
        assert!(hash.to_hex().bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
    }
    let json = serde_json::to_string(text).unwrap_or_default();
    if let Ok(hash) = serde_json::from_str::<ChunkHash>(&json) {
        assert_eq!(hash.to_hex(), text);
    }
});
