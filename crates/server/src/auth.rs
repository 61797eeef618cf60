//! Bearer-token authentication, done by extractors before any handler runs.
//!
//! Tokens are 32 random bytes shown once; the database keeps only their BLAKE3 hash, so a leaked
//! database does not leak working tokens.

use crate::error::ApiFailure;
use crate::state::AppState;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use ferry_proto::{ErrorCode, Role};

const TOKEN_PREFIX: &str = "ferry_";

pub fn new_token_secret() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the operating system provides randomness");
    format!(
        "{TOKEN_PREFIX}{}",
        data_encoding::BASE32_NOPAD.encode(&bytes).to_lowercase()
    )
}

pub fn hash_token(token: &str) -> [u8; 32] {
    *blake3::hash(token.trim().as_bytes()).as_bytes()
}

/// The authenticated caller, holding at least role `MIN` (0 viewer, 1 editor, 2 admin).
#[derive(Debug, Clone)]
pub(crate) struct Caller<const MIN: u8> {
    pub name: String,
    /// The caller's own role, at least `MIN`'s (for the calls that ask more of some requests).
    pub role: Role,
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

impl<const MIN: u8> FromRequestParts<AppState> for Caller<MIN> {
    type Rejection = ApiFailure;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiFailure> {
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
        let hash = hash_token(token);
        let store = state.store.clone();
        let found = crate::state::blocking(move || store.token_by_hash(hash)).await?;
        let info = match found {
            Some(info) if info.revoked_at.is_none() => info,
            Some(_) => {
                return Err(ApiFailure::new(
                    ErrorCode::Unauthenticated,
                    "this token was revoked; ask an admin for a new one",
                ));
            }
            None => {
                return Err(ApiFailure::new(
                    ErrorCode::Unauthenticated,
                    "the token is not known to this instance; check --token or FERRY_TOKEN",
                ));
            }
        };
        let needed = required(MIN);
        if info.role < needed {
            return Err(ApiFailure::new(
                ErrorCode::Forbidden,
                format!(
                    "'{}' has role {} but this needs {}; ask an admin",
                    info.name,
                    info.role.as_str(),
                    needed.as_str()
                ),
            ));
        }
        Ok(Caller {
            name: info.name,
            role: info.role,
        })
    }
}
