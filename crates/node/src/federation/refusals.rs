//! Refused federation calls in the audit log, without letting a flood of them fill it.
//!
//! Each refusal is keyed by its source (the caller's address, or a verified peer) and its code.
//! The first one of a key in a minute is written as it happens (`federation.refused`); the
//! others of that minute are only counted, and written as one `federation.refused_repeatedly`
//! entry once the minute is over. Whatever a caller claims is cut short before it is stored.
//! So a flood of refused calls costs a few hundred bytes per source, code and minute, not a row
//! per call.

use ferry_proto::ErrorCode;
use ferry_store::NewAuditEntry;
use serde_json::json;
use std::collections::HashMap;
use std::sync::Mutex;

/// The most characters of any text a caller controls (a claimed sender, a reason that quotes
/// it) that reach the audit log.
pub(crate) const MAX_CLAIM_CHARS: usize = 128;

/// Sources tracked at once; past this, refusals of new sources are counted under one key, so a
/// caller that varies its address cannot grow the table without bound.
const MAX_SOURCES: usize = 4096;

/// The key for refusals of sources past [`MAX_SOURCES`], or past [`MAX_FIRSTS_PER_MINUTE`].
const OTHER_SOURCES: &str = "other sources";

/// Refusals written one by one in a minute, all sources together; the rest are counted.
const MAX_FIRSTS_PER_MINUTE: usize = 256;

/// The source a refusal from `ip` is counted under: an IPv6 caller holds a whole /64, and
/// counting each of its addresses apart would let it write a row per address.
pub(crate) fn source_of(ip: std::net::IpAddr) -> String {
    match ip.to_canonical() {
        std::net::IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
        v4 => v4.to_string(),
    }
}

/// `text` cut to [`MAX_CLAIM_CHARS`] characters, marked when cut.
pub(crate) fn truncated(text: &str) -> String {
    match text.char_indices().nth(MAX_CLAIM_CHARS) {
        None => text.to_string(),
        Some((end, _)) => format!("{}… ({} bytes in all)", &text[..end], text.len()),
    }
}

/// One refusal, as the audit log will show it.
#[derive(Debug, Clone)]
pub(crate) struct Refusal {
    /// The caller's address, or `peer:<id>` once its signature verified.
    pub(crate) source: String,
    /// `peer:<id>` for a verified sender, else `unverified`.
    pub(crate) actor: String,
    pub(crate) path: String,
    pub(crate) code: ErrorCode,
    pub(crate) reason: String,
    /// What an unverified caller says it is.
    pub(crate) claimed_sender: Option<String>,
}

impl Refusal {
    fn entry(&self) -> NewAuditEntry {
        let mut detail = json!({
            "code": self.code, "reason": truncated(&self.reason), "source": self.source,
        });
        if let Some(claimed) = &self.claimed_sender {
            detail["claimed_sender"] = json!(truncated(claimed));
        }
        NewAuditEntry {
            actor: self.actor.clone(),
            event: "federation.refused".into(),
            subject: Some(self.path.clone()),
            detail,
        }
    }
}

/// A key's refusals in one minute beyond the first.
#[derive(Debug)]
struct Window {
    minute: i64,
    repeats: u64,
    /// The last repeated refusal, for its path and reason.
    last: Option<Refusal>,
}

/// Counts refusals per source, code and minute; see the module's documentation.
#[derive(Debug, Default)]
pub(crate) struct RefusalLog {
    windows: Mutex<HashMap<(String, ErrorCode), Window>>,
    /// The minute being counted, and how many refusals were written one by one in it.
    firsts: Mutex<(i64, usize)>,
}

impl RefusalLog {
    /// Notes a refusal at `minute` (Unix minutes). Returns what to write now: the refusal itself
    /// when it is the first of its key this minute, with the summaries of finished minutes.
    pub(crate) fn note(&self, refusal: Refusal, minute: i64) -> Vec<NewAuditEntry> {
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        let mut due = summaries(&mut windows, minute);
        let mut key = (refusal.source.clone(), refusal.code);
        if !windows.contains_key(&key) {
            let mut firsts = self.firsts.lock().unwrap_or_else(|p| p.into_inner());
            if firsts.0 != minute {
                *firsts = (minute, 0);
            }
            firsts.1 += 1;
            if windows.len() >= MAX_SOURCES || firsts.1 > MAX_FIRSTS_PER_MINUTE {
                key.0 = OTHER_SOURCES.to_string();
            }
        }
        match windows.get_mut(&key) {
            Some(window) => {
                window.repeats += 1;
                window.last = Some(refusal);
            }
            None => {
                due.push(refusal.entry());
                windows.insert(
                    key,
                    Window {
                        minute,
                        repeats: 0,
                        last: None,
                    },
                );
            }
        }
        due
    }

    /// The summaries of minutes before `minute` (all of them with `None`: at shutdown).
    pub(crate) fn flush(&self, minute: Option<i64>) -> Vec<NewAuditEntry> {
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        summaries(&mut windows, minute.unwrap_or(i64::MAX))
    }
}

/// Takes the windows of minutes before `minute` out of the table; returns a summary of each
/// that saw repeats.
fn summaries(
    windows: &mut HashMap<(String, ErrorCode), Window>,
    minute: i64,
) -> Vec<NewAuditEntry> {
    let mut entries = Vec::new();
    windows.retain(|(source, code), window| {
        if window.minute >= minute {
            return true;
        }
        if let Some(last) = &window.last {
            let mut entry = last.entry();
            entry.event = "federation.refused_repeatedly".into();
            entry.detail["source"] = json!(source);
            entry.detail["code"] = json!(code);
            entry.detail["count"] = json!(window.repeats);
            entry.detail["minute"] = json!(
                jiff::Timestamp::from_second(window.minute * 60)
                    .map(|t| t.to_string())
                    .unwrap_or_default()
            );
            entries.push(entry);
        }
        false
    });
    entries
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(source: &str, code: ErrorCode) -> Refusal {
        Refusal {
            source: source.into(),
            actor: "unverified".into(),
            path: "/federation/v1/sync/pull".into(),
            code,
            reason: "no".into(),
            claimed_sender: Some("x".repeat(200_000)),
        }
    }

    #[test]
    fn the_first_refusal_of_a_minute_is_written_and_the_rest_counted() {
        let log = RefusalLog::default();
        let first = log.note(refusal("10.0.0.1", ErrorCode::IngressDenied), 100);
        assert_eq!(first.len(), 1);
        let claimed = first[0].detail["claimed_sender"].as_str().unwrap();
        assert!(claimed.len() < 200, "{} bytes", claimed.len());
        for _ in 0..9_999 {
            assert!(
                log.note(refusal("10.0.0.1", ErrorCode::IngressDenied), 100)
                    .is_empty()
            );
        }
        // Another code or source is its own key.
        assert_eq!(
            log.note(refusal("10.0.0.1", ErrorCode::SignatureInvalid), 100)
                .len(),
            1
        );
        assert_eq!(
            log.note(refusal("10.0.0.2", ErrorCode::IngressDenied), 100)
                .len(),
            1
        );
        assert!(log.flush(Some(100)).is_empty(), "the minute is not over");
        // The next minute's first refusal brings the summary of the last one.
        let next = log.note(refusal("10.0.0.1", ErrorCode::IngressDenied), 101);
        let events: Vec<&str> = next.iter().map(|e| e.event.as_str()).collect();
        assert_eq!(
            events,
            ["federation.refused_repeatedly", "federation.refused"]
        );
        assert_eq!(next[0].detail["count"], 9_999);
        assert_eq!(next[0].detail["source"], "10.0.0.1");
        assert!(log.flush(None).is_empty(), "nothing else repeated");
    }

    #[test]
    fn sources_past_the_bound_share_one_key() {
        let log = RefusalLog::default();
        for i in 0..MAX_SOURCES + 100 {
            log.note(refusal(&format!("source {i}"), ErrorCode::IngressDenied), 7);
        }
        let windows = log.windows.lock().unwrap();
        assert_eq!(
            windows.len(),
            MAX_FIRSTS_PER_MINUTE + 1,
            "one minute writes at most so many"
        );
        let other = &windows[&(OTHER_SOURCES.to_string(), ErrorCode::IngressDenied)];
        assert_eq!(
            other.repeats as usize,
            MAX_SOURCES + 100 - MAX_FIRSTS_PER_MINUTE - 1
        );
        assert_eq!(
            source_of("2001:db8:1:2:3:4:5:6".parse().unwrap()),
            "2001:db8:1:2::/64"
        );
        assert_eq!(source_of("::ffff:10.1.2.3".parse().unwrap()), "10.1.2.3");
    }
}
