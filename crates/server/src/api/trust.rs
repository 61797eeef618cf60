//! HTTP adapter: extract, call the node, shape the answer.

use crate::auth::AdminRole;
use crate::error::ApiResult;
use crate::extract::JsonBody;
use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use ferry_node::Node;
use ferry_proto::{ApiError, AuditEntry, NewPolicyRule, PolicyRule};

/// Every ingress and egress rule.
#[utoipa::path(get, path = "/api/v1/policies", tag = "policy",
    responses((status = 200, body = Vec<PolicyRule>), (status = 403, body = ApiError)))]
pub(crate) async fn list_policies(
    State(node): State<Node>,
    caller: AdminRole,
) -> ApiResult<Json<Vec<PolicyRule>>> {
    Ok(Json(
        ferry_node::trust::list_policies(&node, &caller).await?,
    ))
}

/// Adds an allow or deny rule; federation traffic is refused unless a rule allows it.
#[utoipa::path(post, path = "/api/v1/policies", tag = "policy", request_body = NewPolicyRule,
    responses((status = 201, body = PolicyRule), (status = 400, body = ApiError)))]
pub(crate) async fn add_policy(
    State(node): State<Node>,
    caller: AdminRole,
    JsonBody(new): JsonBody<NewPolicyRule>,
) -> ApiResult<(StatusCode, Json<PolicyRule>)> {
    Ok((
        StatusCode::CREATED,
        Json(ferry_node::trust::add_policy(&node, &caller, new).await?),
    ))
}

#[utoipa::path(delete, path = "/api/v1/policies/{id}", tag = "policy",
    params(("id" = String, Path, description = "Rule id")),
    responses((status = 200, body = PolicyRule), (status = 404, body = ApiError)))]
pub(crate) async fn remove_policy(
    State(node): State<Node>,
    caller: AdminRole,
    Path(id): Path<String>,
) -> ApiResult<Json<PolicyRule>> {
    Ok(Json(
        ferry_node::trust::remove_policy(&node, &caller, id).await?,
    ))
}

/// Trust and security events: oldest first after `after`, or newest first (`newest=true`,
/// before `before`).
#[utoipa::path(get, path = "/api/v1/audit", tag = "policy",
    params(("after" = Option<i64>, Query, description = "Entries after this sequence, oldest first"),
           ("newest" = Option<bool>, Query, description = "Newest first instead"),
           ("before" = Option<i64>, Query, description = "With newest: entries before this sequence"),
           ("limit" = Option<usize>, Query, description = "At most this many (default 100, max 10000)")),
    responses((status = 200, body = Vec<AuditEntry>), (status = 403, body = ApiError)))]
pub(crate) async fn list_audit(
    State(node): State<Node>,
    caller: AdminRole,
    RawQuery(query): RawQuery,
) -> ApiResult<Json<Vec<AuditEntry>>> {
    Ok(Json(
        ferry_node::trust::list_audit(&node, &caller, query).await?,
    ))
}
