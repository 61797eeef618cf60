//! The conflict queue: concurrent edits that two-way editing found at this instance (the origin
//! of the items), each with both versions of the row, and an admin's resolution of one, which is
//! an edit of the row like any other and syncs to every copy.

use crate::caller::Caller;
use crate::error::{NodeError, NodeResult};
use crate::node::Node;
use crate::task::blocking;
use ferry_core::edits::{EditTarget, plan_edits};
use ferry_core::twoway::{Fields, GEOMETRY};
use ferry_proto::twoway::{ConflictRecord, ConflictResolution};
use ferry_proto::{EditBatch, ErrorCode, RowInput};
use ferry_store::StoreError;

/// The most conflicts one page lists.
pub const MAX_PAGE: usize = 1_000;

/// Conflicts, newest first; `status`: `open`, `settled` or `resolved` (all when absent).
pub async fn list(
    node: &Node,
    caller: &Caller,
    status: Option<String>,
    limit: usize,
    offset: usize,
) -> NodeResult<Vec<ConflictRecord>> {
    caller.require(ferry_proto::Role::Viewer)?;
    if let Some(s) = status.as_deref()
        && !["open", "settled", "resolved"].contains(&s)
    {
        return Err(NodeError::new(
            ErrorCode::InvalidRequest,
            format!("status '{s}' is not one of open, settled, resolved"),
        ));
    }
    let store = node.store.clone();
    let limit = limit.clamp(1, MAX_PAGE);
    blocking(move || store.conflicts(status.as_deref(), limit, offset)).await
}

pub async fn show(node: &Node, caller: &Caller, id: String) -> NodeResult<ConflictRecord> {
    caller.require(ferry_proto::Role::Viewer)?;
    let store = node.store.clone();
    blocking(move || store.conflict(&id)).await
}

/// Resolves a conflict by keeping `ours`, `theirs` or a `merged` row: the row is written as an
/// edit here, whose version reaches every copy at its next run.
pub async fn resolve(
    node: &Node,
    caller: &Caller,
    id: String,
    resolution: ConflictResolution,
) -> NodeResult<ConflictRecord> {
    caller.require(ferry_proto::Role::Admin)?;
    let store = node.store.clone();
    let conflict = {
        let id = id.clone();
        blocking(move || store.conflict(&id)).await?
    };
    let kept: Option<Fields> = match (resolution.keep.as_str(), resolution.row) {
        ("ours", None) => conflict.ours.clone(),
        ("theirs", None) => conflict.theirs.clone(),
        ("merged", Some(row)) => Some(row),
        ("merged", None) => {
            return Err(NodeError::new(
                ErrorCode::InvalidRequest,
                "keep 'merged' needs the row to keep (`--keep merged FILE`)",
            ));
        }
        (_, Some(_)) => {
            return Err(NodeError::new(
                ErrorCode::InvalidRequest,
                "a row goes only with keep 'merged'",
            ));
        }
        (other, None) => {
            return Err(NodeError::new(
                ErrorCode::InvalidRequest,
                format!("keep '{other}' is not one of ours, theirs, merged"),
            ));
        }
    };
    let stamp = node.tick();
    let store = node.store.clone();
    let actor = caller.name.clone();
    let item_id = conflict.item_id;
    let resolved = blocking(move || {
        let item = store.item(item_id)?;
        let current = store.row(item_id, &ferry_core::Key::from_value(&conflict.key)?)?;
        let batch = batch_for(&conflict.key, current.is_some(), kept.as_ref(), &item);
        let schema = item.schema.clone().unwrap_or_default();
        let target = EditTarget {
            kind: item.kind,
            schema: &schema,
            crs: item.crs.as_deref(),
        };
        let mut plan =
            plan_edits(&target, &batch).map_err(|results| StoreError::EditsRejected {
                failed: results.iter().filter(|r| !r.success).count(),
                total: results.len(),
                results,
            })?;
        plan.stamp = Some(stamp);
        store.resolve_conflict(&id, &plan, &actor)
    })
    .await?;
    let space = {
        let store = node.store.clone();
        blocking(move || store.item(item_id)).await?.space_id
    };
    crate::sync::changed(node, space.to_string());
    Ok(resolved)
}

/// The edit that makes the row what was kept: every field named (a field the kept row lacks
/// becomes null), or a delete.
fn batch_for(
    key: &serde_json::Value,
    live: bool,
    kept: Option<&Fields>,
    item: &ferry_proto::Item,
) -> EditBatch {
    let Some(fields) = kept else {
        return EditBatch {
            deletes: if live { vec![key.clone()] } else { Vec::new() },
            ..EditBatch::default()
        };
    };
    let mut values: serde_json::Map<String, serde_json::Value> = item
        .schema
        .iter()
        .flat_map(|s| s.fields.iter())
        .map(|f| (f.name.clone(), serde_json::Value::Null))
        .collect();
    for (name, value) in fields.iter().filter(|(n, _)| n.as_str() != GEOMETRY) {
        values.insert(name.clone(), value.clone());
    }
    let row = RowInput {
        key: Some(key.clone()),
        values,
        geometry: (item.kind == ferry_proto::ItemKind::FeatureLayer).then(|| {
            fields
                .get(GEOMETRY)
                .cloned()
                .unwrap_or(serde_json::Value::Null)
        }),
    };
    if live {
        EditBatch {
            updates: vec![row],
            ..EditBatch::default()
        }
    } else {
        EditBatch {
            adds: vec![row],
            ..EditBatch::default()
        }
    }
}
