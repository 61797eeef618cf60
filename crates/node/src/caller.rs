//! Who is acting: every operation a person starts names its caller, for roles and the audit log.

use ferry_proto::Role;

/// An authenticated caller, as a door (the REST API, the web console) established it.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The token's name: the actor in the audit log.
    pub name: String,
    pub role: Role,
}

const TOKEN_PREFIX: &str = "ferry_";

/// A new API token: 32 random bytes, shown once. Only its hash is stored, so a leaked database
/// does not leak working tokens.
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

/// The caller a token names, if the token is known and not revoked.
pub async fn authenticate(node: &crate::Node, token: &str) -> crate::NodeResult<Caller> {
    use crate::error::NodeError;
    use ferry_proto::ErrorCode;
    let hash = hash_token(token);
    let store = node.store.clone();
    let found = crate::node::blocking(move || store.token_by_hash(hash)).await?;
    match found {
        Some(info) if info.revoked_at.is_none() => Ok(Caller {
            name: info.name,
            role: info.role,
        }),
        Some(_) => Err(NodeError::new(
            ErrorCode::Unauthenticated,
            "this token was revoked; ask an admin for a new one",
        )),
        None => Err(NodeError::new(
            ErrorCode::Unauthenticated,
            "the token is not known to this instance; check --token or FERRY_TOKEN",
        )),
    }
}

impl Caller {
    /// Refuses a caller whose role is below `needed`, naming both.
    pub fn require(&self, needed: Role) -> crate::NodeResult<()> {
        if self.role >= needed {
            return Ok(());
        }
        Err(crate::NodeError::new(
            ferry_proto::ErrorCode::Forbidden,
            format!(
                "'{}' has role {} but this needs {}; ask an admin",
                self.name,
                self.role.as_str(),
                needed.as_str()
            ),
        ))
    }
}
