//! The one way Ferry writes a moment: RFC 3339 in UTC with milliseconds, always three digits
//! (`2026-12-07T16:01:52.630Z`), so times line up in tables and sort as text.

use jiff::Timestamp;

/// `t` as Ferry writes times.
pub fn format(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// Now, as Ferry writes times.
pub fn now() -> String {
    format(Timestamp::now())
}

/// A Unix time in seconds, as Ferry writes times.
pub fn from_unix(seconds: i64) -> String {
    Timestamp::from_second(seconds)
        .map(format)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #[test]
    fn times_have_milliseconds_always() {
        let t: jiff::Timestamp = "2026-12-07T16:01:52Z".parse().unwrap();
        assert_eq!(super::format(t), "2026-12-07T16:01:52.000Z");
        let t: jiff::Timestamp = "2026-12-07T16:01:52.123456789Z".parse().unwrap();
        assert_eq!(super::format(t), "2026-12-07T16:01:52.123Z");
        assert_eq!(super::from_unix(0), "1970-01-01T00:00:00.000Z");
    }
}
