use crate::caller::Caller;
use crate::error::NodeResult;
use crate::node::Node;
use crate::query::QueryPairs;
use crate::task::blocking;
use ferry_core::collab::CollabRole;
use ferry_core::names;
use ferry_proto::{ChangePage, NewSpace, Space, SpaceLink, SpacePatch};
use ferry_store::{Store, StoreError};

const DEFAULT_CHANGES: usize = 1000;
const MAX_CHANGES: usize = 10_000;

pub async fn list_spaces(node: &Node, caller: &Caller) -> NodeResult<Vec<Space>> {
    caller.require(ferry_proto::Role::Viewer)?;
    let store = node.store.clone();
    blocking(move || {
        let mut spaces = store.list_spaces()?;
        with_links(store.as_ref(), &mut spaces)?;
        Ok::<_, StoreError>(spaces)
    })
    .await
}

/// Fills in each space's links: the peer connections that link it (by name, as a connection
/// holds its space) and the collaboration workspaces (by id). Only this instance's own links:
/// another participant's space is never known here.
fn with_links(store: &dyn Store, spaces: &mut [Space]) -> Result<(), StoreError> {
    let peers = store.list_peers()?;
    let collabs = store.list_collabs()?;
    for space in spaces {
        space.links = peers
            .iter()
            .filter(|p| {
                p.space.as_deref() == Some(space.name.as_str()) && !p.status.phase.is_final()
            })
            .map(|p| SpaceLink {
                link: format!("peer:{}", p.id),
                kind: "peer".into(),
                name: p
                    .peer
                    .as_ref()
                    .map_or_else(|| p.offered_space.clone(), |i| i.title.clone()),
                role: p.role.as_str().into(),
                mode: p.status.phase.as_str().into(),
                share: "copies".into(),
            })
            .collect();
        for c in collabs.iter().filter(|c| !c.state.is_over()) {
            for (workspace_id, linked) in &c.links {
                if linked.space_id != space.id {
                    continue;
                }
                let workspace = c.workspaces.iter().find(|w| &w.id == workspace_id);
                let mode = match c.role {
                    CollabRole::Host => "send_receive".to_string(),
                    CollabRole::Guest => workspace
                        .and_then(|w| w.modes.get(&c.self_participant).cloned())
                        .unwrap_or_default(),
                };
                space.links.push(SpaceLink {
                    link: format!("collab:{}:{workspace_id}", c.id),
                    kind: "collaboration".into(),
                    name: format!(
                        "{} / {}",
                        c.name,
                        workspace.map_or("?", |w| w.name.as_str())
                    ),
                    role: c.role.as_str().into(),
                    mode,
                    share: crate::collabs::share_label(c, workspace_id),
                });
            }
        }
    }
    Ok(())
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
    blocking(move || {
        let mut found = [store.space(&space)?];
        with_links(store.as_ref(), &mut found)?;
        let [space] = found;
        Ok::<_, StoreError>(space)
    })
    .await
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
