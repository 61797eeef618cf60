//! Bearer-token authentication, done by extractors before any handler runs: the node names the
//! caller a token belongs to, and the extractor refuses a role below the route's.

use crate::error::ApiFailure;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use ferry_node::Node;
use ferry_proto::{ErrorCode, Role};

/// The authenticated caller, holding at least role `MIN` (0 viewer, 1 editor, 2 admin). It
/// dereferences to the node's [`ferry_node::Caller`], which operations take.
#[derive(Debug, Clone)]
pub(crate) struct Caller<const MIN: u8>(pub ferry_node::Caller);

impl<const MIN: u8> std::ops::Deref for Caller<MIN> {
    type Target = ferry_node::Caller;

    fn deref(&self) -> &ferry_node::Caller {
        &self.0
    }
}

pub(crate) type AnyRole = Caller<0>;
pub(crate) type EditorRole = Caller<1>;
pub(crate) type AdminRole = Caller<2>;

fn required(min: u8) -> Role {
    match min {
        0 => Role::Viewer,
        1 => Role::Editor,
        _ => Role::Admin,
    }
}

impl<const MIN: u8> FromRequestParts<Node> for Caller<MIN> {
    type Rejection = ApiFailure;

    async fn from_request_parts(parts: &mut Parts, node: &Node) -> Result<Self, ApiFailure> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let Some(token) = header.and_then(|h| h.strip_prefix("Bearer ")) else {
            return Err(ApiFailure::new(
                ErrorCode::Unauthenticated,
                "this call needs a token: send 'Authorization: Bearer <token>' (the CLI reads --token or FERRY_TOKEN)",
            ));
        };
        let caller = ferry_node::tokens::authenticate(node, token).await?;
        caller.require(required(MIN))?;
        Ok(Caller(caller))
    }
}
