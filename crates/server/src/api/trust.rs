//! Network policy rules and the audit log.

use super::{JsonBody, QueryPairs};
use crate::auth::AdminRole;
use crate::error::ApiResult;
use crate::state::{AppState, blocking};
use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use ferry_core::CoreError;
use ferry_core::policy::Matcher;
use ferry_proto::{ApiError, AuditEntry, NewPolicyRule, PolicyRule};

const DEFAULT_AUDIT: usize = 100;
const MAX_AUDIT: usize = 10_000;

/// Every ingress and egress rule.
#[utoipa::path(get, path = "/api/v1/policies", tag = "policy",
    responses((status = 200, body = Vec<PolicyRule>), (status = 403, body = ApiError)))]
pub(crate) async fn list_policies(
    State(state): State<AppState>,
    _caller: AdminRole,
) -> ApiResult<Json<Vec<PolicyRule>>> {
    let store = state.store.clone();
    Ok(Json(blocking(move || store.list_policy_rules()).await?))
}

/// Adds an allow or deny rule; federation traffic is refused unless a rule allows it.
#[utoipa::path(post, path = "/api/v1/policies", tag = "policy", request_body = NewPolicyRule,
    responses((status = 201, body = PolicyRule), (status = 400, body = ApiError)))]
pub(crate) async fn add_policy(
    State(state): State<AppState>,
    caller: AdminRole,
    JsonBody(new): JsonBody<NewPolicyRule>,
) -> ApiResult<(StatusCode, Json<PolicyRule>)> {
    if !matches!(new.direction.as_str(), "ingress" | "egress") {
        return Err(CoreError::InvalidRequest(format!(
            "direction '{}' is not valid: use ingress or egress",
            new.direction
        ))
        .into());
    }
    if !matches!(new.effect.as_str(), "allow" | "deny") {
        return Err(CoreError::InvalidRequest(format!(
            "effect '{}' is not valid: use allow or deny",
            new.effect
        ))
        .into());
    }
    // Stored in canonical form, so the same rule typed two ways is one rule.
    let rule = NewPolicyRule {
        pattern: Matcher::parse(&new.pattern)?.render(),
        ..new
    };
    let store = state.store.clone();
    let added = blocking(move || store.add_policy_rule(&rule, &caller.name)).await?;
    Ok((StatusCode::CREATED, Json(added)))
}

#[utoipa::path(delete, path = "/api/v1/policies/{id}", tag = "policy",
    params(("id" = String, Path, description = "Rule id")),
    responses((status = 200, body = PolicyRule), (status = 404, body = ApiError)))]
pub(crate) async fn remove_policy(
    State(state): State<AppState>,
    caller: AdminRole,
    Path(id): Path<String>,
) -> ApiResult<Json<PolicyRule>> {
    let store = state.store.clone();
    Ok(Json(
        blocking(move || store.remove_policy_rule(&id, &caller.name)).await?,
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
    State(state): State<AppState>,
    _caller: AdminRole,
    RawQuery(query): RawQuery,
) -> ApiResult<Json<Vec<AuditEntry>>> {
    let q = QueryPairs::parse(query.as_deref());
    let after = q.number::<i64>("after")?.unwrap_or(0);
    let limit = q
        .number::<usize>("limit")?
        .unwrap_or(DEFAULT_AUDIT)
        .clamp(1, MAX_AUDIT);
    let store = state.store.clone();
    if q.get("newest") == Some("true") {
        let before = q.number::<i64>("before")?.unwrap_or(i64::MAX);
        return Ok(Json(
            blocking(move || store.list_audit_newest(before, limit)).await?,
        ));
    }
    Ok(Json(
        blocking(move || store.list_audit(after, limit)).await?,
    ))
}
