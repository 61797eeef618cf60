//! Network policy rules and the audit log.

use crate::caller::Caller;
use crate::error::NodeResult;
use crate::node::Node;
use crate::query::QueryPairs;
use crate::task::blocking;
use ferry_core::CoreError;
use ferry_core::policy::Matcher;
use ferry_proto::{AuditEntry, NewPolicyRule, PolicyRule};

const DEFAULT_AUDIT: usize = 100;
const MAX_AUDIT: usize = 10_000;

/// Every ingress and egress rule.
pub async fn list_policies(node: &Node, caller: &Caller) -> NodeResult<Vec<PolicyRule>> {
    caller.require(ferry_proto::Role::Admin)?;
    let store = node.store.clone();
    blocking(move || store.list_policy_rules()).await
}

/// Adds an allow or deny rule; federation traffic is refused unless a rule allows it.
pub async fn add_policy(
    node: &Node,
    caller: &Caller,
    new: NewPolicyRule,
) -> NodeResult<PolicyRule> {
    caller.require(ferry_proto::Role::Admin)?;
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
    let store = node.store.clone();
    let actor = caller.name.clone();
    let added = blocking(move || store.add_policy_rule(&rule, &actor)).await?;
    Ok(added)
}

pub async fn remove_policy(node: &Node, caller: &Caller, id: String) -> NodeResult<PolicyRule> {
    caller.require(ferry_proto::Role::Admin)?;
    let store = node.store.clone();
    let actor = caller.name.clone();
    blocking(move || store.remove_policy_rule(&id, &actor)).await
}

/// Trust and security events: oldest first after `after`, or newest first (`newest=true`,
/// before `before`).
pub async fn list_audit(
    node: &Node,
    caller: &Caller,
    query: Option<String>,
) -> NodeResult<Vec<AuditEntry>> {
    caller.require(ferry_proto::Role::Admin)?;
    let q = QueryPairs::parse(query.as_deref());
    let after = q.number::<i64>("after")?.unwrap_or(0);
    let limit = q
        .number::<usize>("limit")?
        .unwrap_or(DEFAULT_AUDIT)
        .clamp(1, MAX_AUDIT);
    let store = node.store.clone();
    if q.get("newest") == Some("true") {
        let before = q.number::<i64>("before")?.unwrap_or(i64::MAX);
        return blocking(move || store.list_audit_newest(before, limit)).await;
    }
    blocking(move || store.list_audit(after, limit)).await
}
