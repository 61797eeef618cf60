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
        let filter = AuditFilter {
            kind: q
                .get("kind")
                .filter(|k| !k.is_empty())
                .map(|k| format!("{}.", k.trim_end_matches('.'))),
            since: q.get("since").filter(|s| !s.is_empty()).map(str::to_string),
        };
        return blocking(move || filter.newest(store.as_ref(), before, limit)).await;
    }
    blocking(move || store.list_audit(after, limit)).await
}

/// Which entries a reader of the log wants: events of one kind (`peer`, `token`, ...), at or
/// after a time (RFC 3339, or a date).
struct AuditFilter {
    kind: Option<String>,
    since: Option<String>,
}

/// Entries read at a time while filtering.
const AUDIT_SCAN: usize = 500;

impl AuditFilter {
    /// The newest `limit` entries before `before` that pass, reading back page by page and
    /// stopping at the first entry older than `since`.
    fn newest(
        &self,
        store: &dyn ferry_store::Store,
        mut before: i64,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, ferry_store::StoreError> {
        if self.kind.is_none() && self.since.is_none() {
            return store.list_audit_newest(before, limit);
        }
        let mut found = Vec::new();
        loop {
            let page = store.list_audit_newest(before, AUDIT_SCAN)?;
            let Some(last) = page.last() else {
                return Ok(found);
            };
            before = last.seq;
            for entry in page {
                if self.since.as_ref().is_some_and(|since| entry.at < *since) {
                    return Ok(found);
                }
                if self
                    .kind
                    .as_ref()
                    .is_none_or(|k| entry.event.starts_with(k))
                {
                    found.push(entry);
                    if found.len() == limit {
                        return Ok(found);
                    }
                }
            }
        }
    }
}
