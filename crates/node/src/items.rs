use crate::caller::Caller;
use crate::error::{NodeError, NodeResult};
use crate::node::Node;
use crate::query::QueryPairs;
use crate::task::blocking;
use ferry_core::edits::{EditTarget, check_new_schema, plan_edits};
use ferry_core::{CoreError, names};
use ferry_proto::{
    EditBatch, EditResults, ErrorCode, Item, ItemId, ItemKind, ItemPatch, NewItem, Received,
    RowPage, SyncAs,
};
use ferry_store::{ItemDraft, ItemShape, NoRows, StoreError};

const MAX_EDITS: usize = 100_000;

pub fn parse_item_id(id: &str) -> NodeResult<ItemId> {
    id.parse()
        .map_err(|_| StoreError::ItemNotFound(id.to_string()).into())
}

/// Checks the metadata people type: title, description, tags, markings.
pub fn check_metadata(
    title: Option<&str>,
    description: Option<&str>,
    tags: Option<&[String]>,
    markings: Option<&[String]>,
) -> Result<(), CoreError> {
    if let Some(t) = title {
        names::check_title(t)?;
    }
    if let Some(d) = description {
        names::check_description(d)?;
    }
    if let Some(t) = tags {
        names::check_tags(t)?;
    }
    if let Some(m) = markings {
        names::check_markings(m)?;
    }
    Ok(())
}

/// Items, optionally of one space.
pub async fn list_items(
    node: &Node,
    caller: &Caller,
    query: Option<String>,
) -> NodeResult<Vec<Item>> {
    caller.require(ferry_proto::Role::Viewer)?;
    let q = QueryPairs::parse(query.as_deref());
    let space = q.get("space").map(str::to_string);
    if let Some(limit) = q.number::<usize>("limit")? {
        let space = space.ok_or_else(|| {
            NodeError::new(
                ErrorCode::InvalidRequest,
                "a page of items (limit, offset) is a page of one space: give space too",
            )
        })?;
        let offset = q.number::<usize>("offset")?.unwrap_or(0);
        return list_page(node, space, offset, limit.clamp(1, MAX_ITEMS_PAGE)).await;
    }
    let store = node.store.clone();
    let (mut items, stale, arrivals) = blocking(move || {
        Ok::<_, StoreError>((
            store.list_items(space.as_deref())?,
            store.stale_items()?,
            store.arrivals_in(space.as_deref())?,
        ))
    })
    .await?;
    mark_stale(&mut items, stale);
    mark_received(&mut items, arrivals);
    Ok(items)
}

/// The most items one page holds.
const MAX_ITEMS_PAGE: usize = 1_000;

/// Items `offset..offset + limit` of a space, with where received ones came from.
async fn list_page(
    node: &Node,
    space: String,
    offset: usize,
    limit: usize,
) -> NodeResult<Vec<Item>> {
    let store = node.store.clone();
    let (mut items, stale, arrivals) = blocking(move || {
        let items = store.list_items_page(&space, offset, limit)?;
        let mut arrivals = Vec::new();
        for item in &items {
            arrivals.extend(store.item_links(item.id)?.into_iter().map(|l| (item.id, l)));
        }
        Ok::<_, StoreError>((items, store.stale_items()?, arrivals))
    })
    .await?;
    mark_stale(&mut items, stale);
    mark_received(&mut items, arrivals);
    Ok(items)
}

/// Notes where each received item came from and by which links.
fn mark_received(items: &mut [Item], arrivals: Vec<(ItemId, ferry_store::ItemLink)>) {
    let mut received: std::collections::HashMap<ItemId, Received> =
        std::collections::HashMap::new();
    for (id, arrival) in arrivals {
        received
            .entry(id)
            .or_insert_with(|| Received {
                origin_instance: arrival.origin_instance,
                origin_item: arrival.origin_item,
                links: Vec::new(),
            })
            .links
            .push(arrival.link);
    }
    for item in items {
        item.received = received.remove(&item.id);
    }
}

/// Marks the items whose latest version a link refused (see [`Item::stale`]).
fn mark_stale(items: &mut [Item], stale: Vec<(ItemId, String)>) {
    let stale: std::collections::HashMap<ItemId, String> = stale.into_iter().collect();
    for item in items {
        item.stale = stale.get(&item.id).cloned();
    }
}

/// Lets a copy take the next schema its origin sends, whatever fields it removes or retypes;
/// the copy is then copied whole at its next run (the refusal already queued that).
pub async fn accept_schema(node: &Node, caller: &Caller, id: String) -> NodeResult<Item> {
    caller.require(ferry_proto::Role::Admin)?;
    let id = parse_item_id(&id)?;
    let store = node.store.clone();
    let actor = caller.name.clone();
    blocking(move || {
        if store.item_origin(id)?.is_none() {
            return Err(NodeError::new(
                ErrorCode::InvalidRequest,
                format!(
                    "item {id} is this instance's own: its schema changes with `ferry item update {id} --add-field/--remove-field/--retype-field`"
                ),
            ));
        }
        store.accept_schema(id)?;
        store.audit(&ferry_store::NewAuditEntry {
            actor,
            event: "item.schema_accepted".into(),
            subject: Some(id.to_string()),
            detail: serde_json::json!({}),
        })?;
        Ok(store.item(id)?)
    })
    .await
}

/// Creates an empty dataset or feature layer with a given schema (fill it with edits).
pub async fn create_item(node: &Node, caller: &Caller, new: NewItem) -> NodeResult<Item> {
    caller.require(ferry_proto::Role::Editor)?;
    check_metadata(
        Some(&new.title),
        Some(&new.description),
        Some(&new.tags),
        Some(&new.markings),
    )?;
    check_new_schema(new.kind, &new.schema)?;
    if let Some(crs) = &new.crs {
        names::check_crs(crs)?;
    }
    let layer = new.kind == ItemKind::FeatureLayer;
    let draft = ItemDraft {
        space_ref: new.space,
        kind: new.kind,
        title: new.title,
        description: new.description,
        tags: names::normalize_set(new.tags),
        markings: names::normalize_set(new.markings),
        owner: caller.name.clone(),
        crs: layer.then(|| new.crs.unwrap_or_else(|| "EPSG:4326".into())),
        file: None,
    };
    let mut rows = NoRows(ItemShape {
        schema: Some(new.schema),
        geometry_type: new.geometry_type.filter(|_| layer),
        crs: None,
    });
    let store = node.store.clone();
    let item = blocking(move || store.create_item(&draft, &mut rows)).await?;
    crate::sync::changed(node, item.space_id.to_string());
    Ok(item)
}

pub async fn show_item(node: &Node, caller: &Caller, id: String) -> NodeResult<Item> {
    caller.require(ferry_proto::Role::Viewer)?;
    let id = parse_item_id(&id)?;
    let store = node.store.clone();
    let (item, stale, links) = blocking(move || {
        Ok::<_, StoreError>((store.item(id)?, store.stale_items()?, store.item_links(id)?))
    })
    .await?;
    let mut items = [item];
    mark_stale(&mut items, stale);
    mark_received(&mut items, links.into_iter().map(|l| (id, l)).collect());
    let [item] = items;
    Ok(item)
}

/// Changes an item's title, description, tags or markings, or moves it to another space
/// (admins only: links of the space it leaves retract it).
pub async fn update_item(
    node: &Node,
    caller: &Caller,
    id: String,
    mut patch: ItemPatch,
) -> NodeResult<Item> {
    caller.require(ferry_proto::Role::Editor)?;
    let id = parse_item_id(&id)?;
    // Where an item is and how it is marked decide which links it leaves by.
    let admin_only = [
        (patch.space.is_some(), "moving an item to another space"),
        (patch.markings.is_some(), "changing an item's markings"),
        (
            patch.schema.is_some(),
            "changing an item's schema (it changes what every copy holds)",
        ),
    ];
    if let Some((_, what)) = admin_only.iter().find(|(asked, _)| *asked)
        && caller.role < ferry_proto::Role::Admin
    {
        return Err(NodeError::new(
            ErrorCode::Forbidden,
            format!(
                "'{}' has role {}, but {what} needs admin: it decides who receives the item",
                caller.name,
                caller.role.as_str()
            ),
        ));
    }
    check_metadata(
        patch.title.as_deref(),
        patch.description.as_deref(),
        patch.tags.as_deref(),
        patch.markings.as_deref(),
    )?;
    patch.tags = patch.tags.map(names::normalize_set);
    patch.markings = patch.markings.map(names::normalize_set);
    refuse_received(node, id).await?;
    let store = node.store.clone();
    let actor = caller.name.clone();
    let (from, item) = blocking(move || {
        let kind = store.item(id)?.kind;
        if patch.sync_as == Some(SyncAs::Reference) && !kind.has_rows() {
            return Err(CoreError::InvalidRequest(
                "files travel as copies only: sync_as 'reference' applies to datasets and feature layers".into(),
            )
            .into());
        }
        let two_way = patch.two_way == Some(true) || patch.conflict_policy.is_some();
        if two_way && !kind.has_rows() {
            return Err(CoreError::InvalidRequest(
                "two-way editing applies to datasets and feature layers: a file has no rows to edit".into(),
            )
            .into());
        }
        let from = store.item(id)?.space_id;
        Ok::<_, NodeError>((from, store.update_item(id, &patch, &actor)?))
    })
    .await?;
    if from != item.space_id {
        crate::sync::changed(node, from.to_string());
    }
    crate::sync::changed(node, item.space_id.to_string());
    Ok(item)
}

/// A received copy changes only at its origin: local edits would be lost at the next sync, or
/// make the copy drift from its origin.
async fn refuse_received(node: &Node, id: ItemId) -> NodeResult<()> {
    let store = node.store.clone();
    if let Some((instance, item)) = blocking(move || store.item_origin(id)).await? {
        return Err(NodeError::new(
            ErrorCode::ItemReceived,
            format!(
                "item {id} is a copy of item {item} on instance {instance}; change it at its origin"
            ),
        ));
    }
    Ok(())
}

/// Deletes an item (a tombstone stays in the change feed).
pub async fn delete_item(node: &Node, caller: &Caller, id: String) -> NodeResult<()> {
    caller.require(ferry_proto::Role::Admin)?;
    let id = parse_item_id(&id)?;
    let store = node.store.clone();
    let (space, freed) = blocking(move || {
        let space = store.item(id)?.space_id;
        Ok::<_, StoreError>((space, store.delete_item(id)?))
    })
    .await?;
    crate::chunks::remove_chunks(node, freed).await;
    crate::sync::changed(node, space.to_string());
    Ok(())
}

/// Rows of a dataset or features of a layer, in key order, a page at a time.
pub async fn query_rows(
    node: &Node,
    caller: &Caller,
    id: String,
    query: Option<String>,
) -> NodeResult<RowPage> {
    caller.require(ferry_proto::Role::Viewer)?;
    let id = parse_item_id(&id)?;
    Ok(
        crate::sync::reference::row_page(node, id, query.unwrap_or_default(), Vec::new())
            .await?
            .page,
    )
}

/// Applies adds, updates and deletes all or nothing, with a result per edit.
pub async fn apply_edits(
    node: &Node,
    caller: &Caller,
    id: String,
    batch: EditBatch,
) -> NodeResult<EditResults> {
    caller.require(ferry_proto::Role::Editor)?;
    let id = parse_item_id(&id)?;
    if batch.len() > MAX_EDITS {
        return Err(CoreError::InvalidRequest(format!(
            "a batch holds at most {MAX_EDITS} edits; split it"
        ))
        .into());
    }
    let store = node.store.clone();
    let (item, copy_of) =
        blocking(move || Ok::<_, StoreError>((store.item(id)?, store.item_origin(id)?))).await?;
    if let Some((origin_instance, _)) = &copy_of {
        crate::sync::edits::may_edit_copy(node, &item, origin_instance).await?;
    }
    let stamp = item.two_way.is_some().then(|| node.tick());
    let copy = copy_of.is_some();
    let space = item.space_id.to_string();
    let store = node.store.clone();
    let outcome = blocking(move || {
        let item = store.item(id)?;
        let schema = item.schema.clone().unwrap_or_default();
        let target = EditTarget {
            kind: item.kind,
            schema: &schema,
            crs: item.crs.as_deref(),
        };
        if !item.kind.has_rows() {
            return Err(StoreError::WrongItemKind {
                id: id.to_string(),
                actual: item.kind.as_str(),
                expected: "dataset or feature_layer",
            }
            .into());
        }
        let mut plan = plan_edits(&target, &batch).map_err(|results| {
            NodeError::from(StoreError::EditsRejected {
                failed: results.iter().filter(|r| !r.success).count(),
                total: results.len(),
                results,
            })
        })?;
        if copy && plan.adds.iter().any(|a| matches!(a.key, ferry_core::rows::AddKey::Generate)) {
            return Err(NodeError::new(
                ErrorCode::KeyRequired,
                "a copy cannot make up keys (another copy could make the same one): give each added row its key",
            ));
        }
        plan.stamp = stamp;
        Ok(store.apply_edits(id, &plan)?)
    })
    .await?;
    if copy {
        // Realtime: the origin is asked to pull the edit now.
        crate::sync::changed(node, space);
    }
    Ok(EditResults {
        item: outcome.item,
        results: outcome.results,
    })
}
