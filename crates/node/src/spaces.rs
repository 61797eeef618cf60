use crate::caller::Caller;
use crate::error::NodeResult;
use crate::node::Node;
use crate::query::QueryPairs;
use crate::task::blocking;
use ferry_core::names;
use ferry_proto::{ChangePage, NewSpace, Space, SpacePatch};

const DEFAULT_CHANGES: usize = 1000;
const MAX_CHANGES: usize = 10_000;

pub async fn list_spaces(node: &Node, caller: &Caller) -> NodeResult<Vec<Space>> {
    caller.require(ferry_proto::Role::Viewer)?;
    let store = node.store.clone();
    blocking(move || store.list_spaces()).await
}

pub async fn create_space(node: &Node, caller: &Caller, new: NewSpace) -> NodeResult<Space> {
    caller.require(ferry_proto::Role::Admin)?;
    names::check_space_name(&new.name)?;
    names::check_description(&new.description)?;
    let store = node.store.clone();
    let space = blocking(move || store.create_space(&new)).await?;
    Ok(space)
}

/// A space by id or by name.
pub async fn show_space(node: &Node, caller: &Caller, space: String) -> NodeResult<Space> {
    caller.require(ferry_proto::Role::Viewer)?;
    let store = node.store.clone();
    blocking(move || store.space(&space)).await
}

/// Renames or describes a space.
pub async fn update_space(
    node: &Node,
    caller: &Caller,
    space: String,
    patch: SpacePatch,
) -> NodeResult<Space> {
    caller.require(ferry_proto::Role::Admin)?;
    if let Some(name) = &patch.name {
        names::check_space_name(name)?;
    }
    if let Some(d) = &patch.description {
        names::check_description(d)?;
    }
    let store = node.store.clone();
    blocking(move || store.update_space(&space, &patch)).await
}

/// Deletes a space; refuses one that holds items unless `force=true`.
pub async fn delete_space(
    node: &Node,
    caller: &Caller,
    space: String,
    query: Option<String>,
) -> NodeResult<()> {
    caller.require(ferry_proto::Role::Admin)?;
    let force = QueryPairs::parse(query.as_deref()).flag("force");
    let store = node.store.clone();
    let freed = blocking(move || store.delete_space(&space, force)).await?;
    crate::chunks::remove_chunks(node, freed).await;
    Ok(())
}

/// The change feed of a space: everything changed after sequence `after`, in order.
pub async fn changes(
    node: &Node,
    caller: &Caller,
    space: String,
    query: Option<String>,
) -> NodeResult<ChangePage> {
    caller.require(ferry_proto::Role::Viewer)?;
    let q = QueryPairs::parse(query.as_deref());
    let after = q.number::<i64>("after")?.unwrap_or(0);
    let limit = q
        .number::<usize>("limit")?
        .unwrap_or(DEFAULT_CHANGES)
        .clamp(1, MAX_CHANGES);
    let store = node.store.clone();
    blocking(move || store.changes(&space, after, limit)).await
}
