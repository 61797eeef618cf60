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
