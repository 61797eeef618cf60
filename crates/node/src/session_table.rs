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
    /// The token signed in with: a session ends when it is revoked.
    pub(crate) token: ferry_proto::TokenId,
}

impl Session {
    /// Whether `offered` is this session's CSRF token (compared in constant time).
    pub fn csrf_matches(&self, offered: &str) -> bool {
        blake3::hash(offered.as_bytes()) == blake3::hash(self.csrf.as_bytes())
    }
}

/// A one-time sign-in link: which token it signs in as, until when.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LoginLink {
    pub(crate) token: ferry_proto::TokenId,
    pub(crate) expires_at: i64,
}

/// The sessions and open sign-in links of one node, by the hash of their secret.
#[derive(Debug, Default)]
pub(crate) struct Sessions {
    sessions: Mutex<HashMap<[u8; 32], Session>>,
    links: Mutex<HashMap<[u8; 32], LoginLink>>,
}

impl Sessions {
    pub(crate) fn with<T>(&self, f: impl FnOnce(&mut HashMap<[u8; 32], Session>) -> T) -> T {
        let mut map = self
            .sessions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut map)
    }

    pub(crate) fn links<T>(&self, f: impl FnOnce(&mut HashMap<[u8; 32], LoginLink>) -> T) -> T {
        let mut map = self
            .links
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut map)
    }
}
