//! Console sessions: a person signs in once, with an API token or a one-time sign-in link that
//! stands for one (`ferry serve` prints one at first start, `ferry token login-link NAME` makes
//! more), and holds a session from then on.
//! The session id travels in a cookie the page cannot read; only its hash is kept. Each session
//! has its own CSRF token for forms. A session ends at sign-out, at its expiry, or when its token
//! is revoked (the token is checked again at every request).
//!
//! Sessions live in the node's memory: a restart signs everyone out, which is the safe side.

use crate::caller::Caller;
use crate::error::{NodeError, NodeResult};
use crate::ids::{hex, random, unix_now};
use crate::node::Node;
use crate::session_table::{LoginLink, MAX_SESSIONS};
use ferry_proto::{Role, TokenId};

/// How long a sign-in link stays good (once).
pub const LINK_SECS: i64 = 15 * 60;
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
    let info = crate::tokens::live_token(node, token).await?;
    let caller = Caller {
        name: info.name,
        role: info.role,
    };
    Ok(start(node, caller, info.id))
}

fn start(node: &Node, caller: Caller, token: TokenId) -> (String, Session) {
    let id = format!("s_{}", hex(&random::<32>()));
    let session = Session {
        caller,
        csrf: hex(&random::<32>()),
        expires_at: unix_now() + node.session_secs,
        token,
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
    (id, session)
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
    let token = session.token;
    let info = crate::task::blocking(move || store.token(token)).await;
    match info {
        Ok(info) if info.revoked_at.is_none() => Ok(session),
        _ => {
            node.sessions.with(|map| map.remove(&key));
            Err(signed_out())
        }
    }
}

/// A one-time sign-in link for the newest live token named `name` (admins only): the path to
/// open on this instance, good once for [`LINK_SECS`].
pub async fn login_link(node: &Node, caller: &Caller, name: &str) -> NodeResult<String> {
    caller.require(Role::Admin)?;
    let store = node.store.clone();
    let tokens = crate::task::blocking(move || store.list_tokens()).await?;
    let token = tokens
        .into_iter()
        .filter(|t| t.name == name && t.revoked_at.is_none())
        .max_by(|a, b| a.created_at.cmp(&b.created_at))
        .ok_or_else(|| {
            NodeError::new(
                ErrorCode::TokenNotFound,
                format!(
                    "no live token is named '{name}': `ferry token list` shows them, `ferry token create {name} --role ...` makes one"
                ),
            )
        })?;
    let entry = ferry_store::NewAuditEntry {
        actor: caller.name.clone(),
        event: "console.login_link_created".into(),
        subject: Some(token.id.to_string()),
        detail: serde_json::json!({"name": name}),
    };
    let store = node.store.clone();
    crate::task::blocking(move || store.audit(&entry)).await?;
    Ok(link_for(node, token.id))
}

/// A one-time sign-in link for the token with this secret (the admin token `ferry serve`
/// writes at first start).
pub async fn login_link_for_secret(node: &Node, token: &str) -> NodeResult<String> {
    let info = crate::tokens::live_token(node, token).await?;
    Ok(link_for(node, info.id))
}

fn link_for(node: &Node, token: TokenId) -> String {
    let secret = format!("l_{}", hex(&random::<32>()));
    let now = unix_now();
    node.sessions.links(|links| {
        links.retain(|_, l| l.expires_at > now);
        links.insert(
            session_key(&secret),
            LoginLink {
                token,
                expires_at: now + LINK_SECS,
            },
        );
    });
    format!("/sign-in/link/{secret}")
}

/// Signs in with a sign-in link, once: the link is spent whatever happens next.
pub async fn redeem(node: &Node, secret: &str) -> NodeResult<(String, Session)> {
    let link = node
        .sessions
        .links(|links| links.remove(&session_key(secret)))
        .filter(|l| l.expires_at > unix_now())
        .ok_or_else(|| {
            NodeError::new(
                ErrorCode::Unauthenticated,
                "this sign-in link was used already or expired; `ferry token login-link NAME` makes a new one",
            )
        })?;
    let store = node.store.clone();
    let info = crate::task::blocking(move || store.token(link.token)).await?;
    if info.revoked_at.is_some() {
        return Err(signed_out());
    }
    let caller = Caller {
        name: info.name,
        role: info.role,
    };
    Ok(start(node, caller, info.id))
}

/// Ends a session.
pub fn sign_out(node: &Node, id: &str) {
    node.sessions.with(|map| map.remove(&session_key(id)));
}
