use super::JsonBody;
use crate::auth::{self, AdminRole, AnyRole};
use crate::error::ApiResult;
use crate::state::{AppState, blocking};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use ferry_core::CoreError;
use ferry_proto::{ApiError, CreatedToken, InstanceInfo, NewToken, TokenId, TokenInfo};

/// Who this instance is.
#[utoipa::path(get, path = "/api/v1/instance", tag = "instance",
    responses((status = 200, body = InstanceInfo), (status = 401, body = ApiError)))]
pub(crate) async fn show_instance(
    State(state): State<AppState>,
    _caller: AnyRole,
) -> ApiResult<Json<InstanceInfo>> {
    let store = state.store.clone();
    let record = blocking(move || store.instance()).await?;
    Ok(Json(InstanceInfo {
        id: record.id,
        title: state.info.title.clone(),
        public_url: state.info.public_url.clone(),
        public_key: state.info.public_key.clone(),
        fingerprint: state.info.fingerprint.clone(),
        epoch: record.epoch,
        last_seq: record.last_seq,
        api_version: ferry_proto::API_VERSION,
        software_version: env!("CARGO_PKG_VERSION").to_string(),
    }))
}

/// Every token, revoked ones included. Secrets are never shown.
#[utoipa::path(get, path = "/api/v1/tokens", tag = "tokens",
    responses((status = 200, body = Vec<TokenInfo>), (status = 403, body = ApiError)))]
pub(crate) async fn list_tokens(
    State(state): State<AppState>,
    _caller: AdminRole,
) -> ApiResult<Json<Vec<TokenInfo>>> {
    let store = state.store.clone();
    Ok(Json(blocking(move || store.list_tokens()).await?))
}

/// Creates a token for a named user; the secret is in this answer only.
#[utoipa::path(post, path = "/api/v1/tokens", tag = "tokens", request_body = NewToken,
    responses((status = 201, body = CreatedToken), (status = 403, body = ApiError)))]
pub(crate) async fn create_token(
    State(state): State<AppState>,
    caller: AdminRole,
    JsonBody(new): JsonBody<NewToken>,
) -> ApiResult<(StatusCode, Json<CreatedToken>)> {
    let name = new.name.trim().to_string();
    if name.is_empty() || name.chars().count() > 64 {
        return Err(CoreError::InvalidRequest("a token's name has 1-64 characters".into()).into());
    }
    let token = auth::new_token_secret();
    let hash = auth::hash_token(&token);
    let store = state.store.clone();
    let actor = caller.name.clone();
    let info = blocking(move || store.create_token(&name, new.role, hash, &actor)).await?;
    tracing::info!(by = %caller.name, token = %info.id, name = %info.name, role = info.role.as_str(), "token created");
    Ok((StatusCode::CREATED, Json(CreatedToken { token, info })))
}

/// Revokes a token at once; revoking twice is harmless.
#[utoipa::path(delete, path = "/api/v1/tokens/{id}", tag = "tokens",
    params(("id" = String, Path, description = "Token id")),
    responses((status = 200, body = TokenInfo), (status = 404, body = ApiError)))]
pub(crate) async fn revoke_token(
    State(state): State<AppState>,
    caller: AdminRole,
    Path(id): Path<String>,
) -> ApiResult<Json<TokenInfo>> {
    let id: TokenId = id
        .parse()
        .map_err(|_| ferry_store::StoreError::TokenNotFound(id.clone()))?;
    let store = state.store.clone();
    let actor = caller.name.clone();
    let info = blocking(move || store.revoke_token(id, &actor)).await?;
    tracing::info!(by = %caller.name, token = %info.id, "token revoked");
    Ok(Json(info))
}
