//! Console sessions: a person signs in once with an API token and holds a session from then on.
//! The session id travels in a cookie the page cannot read; only its hash is kept. Each session
//! has its own CSRF token for forms. A session ends at sign-out, at its expiry, or when its token
//! is revoked (the token is checked again at every request).
//!
//! Sessions live in the node's memory: a restart signs everyone out, which is the safe side.

use crate::caller::hash_token;
use crate::error::{NodeError, NodeResult};
use crate::ids::{hex, random, unix_now};
use crate::node::Node;
use crate::session_table::MAX_SESSIONS;
pub use crate::session_table::Session;
use ferry_proto::ErrorCode;

fn session_key(id: &str) -> [u8; 32] {
    *blake3::hash(id.as_bytes()).as_bytes()
}

fn signed_out() -> NodeError {
    NodeError::new(
        ErrorCode::Unauthenticated,
        "this session ended (signed out, expired, or its token was revoked); sign in again",
    )
}

/// Signs in with an API token: answers the new session's id (for the cookie) and the session.
pub async fn sign_in(node: &Node, token: &str) -> NodeResult<(String, Session)> {
    let caller = crate::tokens::authenticate(node, token).await?;
    let id = format!("s_{}", hex(&random::<32>()));
    let session = Session {
        caller,
        csrf: hex(&random::<32>()),
        expires_at: unix_now() + node.session_secs,
        token_hash: hash_token(token),
    };
    node.sessions.with(|map| {
        let now = unix_now();
        map.retain(|_, s| s.expires_at > now);
        if map.len() >= MAX_SESSIONS
            && let Some(oldest) = map
                .iter()
                .min_by_key(|(_, s)| s.expires_at)
                .map(|(k, _)| *k)
        {
            map.remove(&oldest);
        }
        map.insert(session_key(&id), session.clone());
    });
    Ok((id, session))
}

/// The live session a cookie names; its token must still be valid.
pub async fn session(node: &Node, id: &str) -> NodeResult<Session> {
    let key = session_key(id);
    let found = node.sessions.with(|map| map.get(&key).cloned());
    let Some(session) = found.filter(|s| s.expires_at > unix_now()) else {
        node.sessions.with(|map| map.remove(&key));
        return Err(signed_out());
    };
    let store = node.store.clone();
    let hash = session.token_hash;
    let token = crate::task::blocking(move || store.token_by_hash(hash)).await?;
    match token {
        Some(info) if info.revoked_at.is_none() => Ok(session),
        _ => {
            node.sessions.with(|map| map.remove(&key));
            Err(signed_out())
        }
    }
}

/// Ends a session.
pub fn sign_out(node: &Node, id: &str) {
    node.sessions.with(|map| map.remove(&session_key(id)));
}
