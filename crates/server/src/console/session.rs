//! The console's session: a cookie the page's scripts cannot read (`HttpOnly`), sent to this
//! site only (`SameSite=Strict`), `Secure` when served over HTTPS. A page without a live
//! session sends the browser to the sign-in page.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Redirect, Response};
use ferry_node::Node;
use ferry_node::sessions::Session;

/// The session cookie's name: one per instance, because browsers keep cookies per host, not per
/// port, and two instances on one host must not overwrite each other's sessions.
pub(crate) fn cookie_name(node: &Node) -> String {
    let id: String = node
        .info
        .instance_id
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(16)
        .collect();
    format!("ferry_session_{id}")
}

/// The session id a request's cookie carries, if any.
pub(crate) fn session_id(node: &Node, headers: &HeaderMap) -> Option<String> {
    let name = cookie_name(node);
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(found, _)| *found == name)
        .map(|(_, value)| value.to_string())
}

/// The `Set-Cookie` value that holds `id` for `max_age` seconds (0 ends it).
pub(crate) fn cookie(node: &Node, id: &str, max_age: i64) -> String {
    let name = cookie_name(node);
    let secure = if node.info.public_url.starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    format!("{name}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}")
}

/// A signed-in caller: its session and the session's id.
pub(crate) struct SignedIn {
    pub(crate) id: String,
    pub(crate) session: Session,
}

impl FromRequestParts<Node> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, node: &Node) -> Result<Self, Response> {
        let to_sign_in = || Redirect::to("/sign-in").into_response();
        let Some(id) = session_id(node, &parts.headers) else {
            return Err(to_sign_in());
        };
        match ferry_node::sessions::session(node, &id).await {
            Ok(session) => Ok(SignedIn { id, session }),
            Err(_) => Err(to_sign_in()),
        }
    }
}
