//! Ids, secrets and times as the node makes them.

pub(crate) fn unix_now() -> i64 {
    jiff::Timestamp::now().as_second()
}

pub(crate) fn random<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).expect("the operating system provides randomness");
    bytes
}

/// A fresh 128-bit id, as lowercase hex: the form ids take inside signed tickets.
pub(crate) fn hex_id() -> String {
    hex(&random::<16>())
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    data_encoding::HEXLOWER.encode(bytes)
}

/// The bytes of an id made by [`hex_id`] (zeros for anything else).
pub(crate) fn id_bytes(hex: &str) -> [u8; 16] {
    data_encoding::HEXLOWER
        .decode(hex.as_bytes())
        .ok()
        .and_then(|b| b.try_into().ok())
        .unwrap_or_default()
}

pub(crate) fn rfc3339(unix: i64) -> String {
    ferry_core::time::from_unix(unix)
}
