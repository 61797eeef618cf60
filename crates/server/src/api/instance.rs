//! HTTP adapter: extract, call the node, shape the answer.

use crate::auth::{AdminRole, AnyRole};
use crate::error::ApiResult;
use crate::extract::JsonBody;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use ferry_node::Node;
use ferry_proto::{
    ApiError, CreatedToken, InstanceInfo, LoginLink, NewLoginLink, NewToken, TokenInfo,
};

/// Who this instance is.
#[utoipa::path(get, path = "/api/v1/instance", tag = "instance",
    responses((status = 200, body = InstanceInfo), (status = 401, body = ApiError)))]
pub(crate) async fn show_instance(
    State(node): State<Node>,
    caller: AnyRole,
) -> ApiResult<Json<InstanceInfo>> {
    Ok(Json(
        ferry_node::tokens::show_instance(&node, &caller).await?,
    ))
}

/// Every token, revoked ones included. Secrets are never shown.
#[utoipa::path(get, path = "/api/v1/tokens", tag = "tokens",
    responses((status = 200, body = Vec<TokenInfo>), (status = 403, body = ApiError)))]
pub(crate) async fn list_tokens(
    State(node): State<Node>,
    caller: AdminRole,
) -> ApiResult<Json<Vec<TokenInfo>>> {
    Ok(Json(ferry_node::tokens::list_tokens(&node, &caller).await?))
}

/// Creates a token for a named user; the secret is in this answer only.
#[utoipa::path(post, path = "/api/v1/tokens", tag = "tokens", request_body = NewToken,
    responses((status = 201, body = CreatedToken), (status = 403, body = ApiError)))]
pub(crate) async fn create_token(
    State(node): State<Node>,
    caller: AdminRole,
    JsonBody(new): JsonBody<NewToken>,
) -> ApiResult<(StatusCode, Json<CreatedToken>)> {
    Ok((
        StatusCode::CREATED,
        Json(ferry_node::tokens::create_token(&node, &caller, new).await?),
    ))
}

/// Revokes a token at once; revoking twice is harmless.
#[utoipa::path(delete, path = "/api/v1/tokens/{id}", tag = "tokens",
    params(("id" = String, Path, description = "Token id")),
    responses((status = 200, body = TokenInfo), (status = 404, body = ApiError)))]
pub(crate) async fn revoke_token(
    State(node): State<Node>,
    caller: AdminRole,
    Path(id): Path<String>,
) -> ApiResult<Json<TokenInfo>> {
    Ok(Json(
        ferry_node::tokens::revoke_token(&node, &caller, id).await?,
    ))
}

/// A one-time console sign-in link for the newest live token with this name (15 minutes).
#[utoipa::path(post, path = "/api/v1/tokens/login-link", tag = "tokens", request_body = NewLoginLink,
    responses((status = 201, body = LoginLink), (status = 403, body = ApiError), (status = 404, body = ApiError)))]
pub(crate) async fn create_login_link(
    State(node): State<Node>,
    caller: AdminRole,
    JsonBody(new): JsonBody<NewLoginLink>,
) -> ApiResult<(StatusCode, Json<LoginLink>)> {
    let path = ferry_node::sessions::login_link(&node, &caller, &new.name).await?;
    let url = format!("{}{path}", node.info.public_url.trim_end_matches('/'));
    Ok((StatusCode::CREATED, Json(LoginLink { url })))
}
