//! Where console sessions are kept: in the node's memory, by the hash of their id (see
//! `sessions.rs` for signing in and out).

use crate::caller::Caller;
use std::collections::HashMap;
use std::sync::Mutex;

/// The most sessions kept at once: past it, the oldest go first.
pub(crate) const MAX_SESSIONS: usize = 10_000;

/// A signed-in person, as a page sees it.
#[derive(Debug, Clone)]
pub struct Session {
    pub caller: Caller,
    /// What every form of this session carries, to prove it came from one of its pages.
    pub csrf: String,
    pub expires_at: i64,
    pub(crate) token_hash: [u8; 32],
}

impl Session {
    /// Whether `offered` is this session's CSRF token (compared in constant time).
    pub fn csrf_matches(&self, offered: &str) -> bool {
        blake3::hash(offered.as_bytes()) == blake3::hash(self.csrf.as_bytes())
    }
}

/// The sessions of one node, by the hash of their id.
#[derive(Debug, Default)]
pub(crate) struct Sessions(Mutex<HashMap<[u8; 32], Session>>);

impl Sessions {
    pub(crate) fn with<T>(&self, f: impl FnOnce(&mut HashMap<[u8; 32], Session>) -> T) -> T {
        let mut map = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut map)
    }
}
