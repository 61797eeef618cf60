use crate::caller::Caller;
use crate::error::{NodeError, NodeResult};
use crate::node::Node;
use crate::task::blocking;
use ferry_core::CoreError;
use ferry_proto::{CreatedToken, ErrorCode, InstanceInfo, NewToken, TokenId, TokenInfo};

/// Who this instance is.
pub async fn show_instance(node: &Node, caller: &Caller) -> NodeResult<InstanceInfo> {
    caller.require(ferry_proto::Role::Viewer)?;
    let store = node.store.clone();
    let record = blocking(move || store.instance()).await?;
    Ok(InstanceInfo {
        id: record.id,
        title: node.info.title.clone(),
        public_url: node.info.public_url.clone(),
        public_key: node.info.public_key.clone(),
        fingerprint: node.info.fingerprint.clone(),
        epoch: record.epoch,
        last_seq: record.last_seq,
        api_version: ferry_proto::API_VERSION,
        software_version: env!("CARGO_PKG_VERSION").to_string(),
    })
}

/// Every token, revoked ones included. Secrets are never shown.
pub async fn list_tokens(node: &Node, caller: &Caller) -> NodeResult<Vec<TokenInfo>> {
    caller.require(ferry_proto::Role::Admin)?;
    let store = node.store.clone();
    blocking(move || store.list_tokens()).await
}

/// Creates a token for a named user; the secret is in this answer only.
pub async fn create_token(node: &Node, caller: &Caller, new: NewToken) -> NodeResult<CreatedToken> {
    caller.require(ferry_proto::Role::Admin)?;
    let name = new.name.trim().to_string();
    if name.is_empty() || name.chars().count() > 64 {
        return Err(CoreError::InvalidRequest("a token's name has 1-64 characters".into()).into());
    }
    let token = crate::caller::new_token_secret();
    let hash = crate::caller::hash_token(&token);
    let store = node.store.clone();
    let actor = caller.name.clone();
    let info = blocking(move || store.create_token(&name, new.role, hash, &actor)).await?;
    tracing::info!(by = %caller.name, token = %info.id, name = %info.name, role = info.role.as_str(), "token created");
    Ok(CreatedToken { token, info })
}

/// Revokes a token at once; revoking twice is harmless.
pub async fn revoke_token(node: &Node, caller: &Caller, id: String) -> NodeResult<TokenInfo> {
    caller.require(ferry_proto::Role::Admin)?;
    let id: TokenId = id
        .parse()
        .map_err(|_| ferry_store::StoreError::TokenNotFound(id.clone()))?;
    let store = node.store.clone();
    let actor = caller.name.clone();
    let info = blocking(move || store.revoke_token(id, &actor)).await?;
    tracing::info!(by = %caller.name, token = %info.id, "token revoked");
    Ok(info)
}

/// The caller a token names, if the token is known and not revoked.
pub async fn authenticate(node: &Node, token: &str) -> NodeResult<Caller> {
    let info = live_token(node, token).await?;
    Ok(Caller {
        name: info.name,
        role: info.role,
    })
}

/// The live token with this secret; a revoked or unknown one is refused, saying which.
pub(crate) async fn live_token(node: &Node, token: &str) -> NodeResult<TokenInfo> {
    let hash = crate::caller::hash_token(token);
    let store = node.store.clone();
    let found = blocking(move || store.token_by_hash(hash)).await?;
    match found {
        Some(info) if info.revoked_at.is_none() => Ok(info),
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

/// Who this instance is: public facts, answered to anyone.
pub fn identity(node: &Node) -> ferry_proto::InstanceIdentity {
    ferry_proto::InstanceIdentity {
        instance_id: node.info.instance_id.clone(),
        title: node.info.title.clone(),
        public_key: node.info.public_key.clone(),
    }
}
