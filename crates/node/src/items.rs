use crate::caller::Caller;
use crate::error::{NodeError, NodeResult};
use crate::node::{Node, blocking};
use crate::query::QueryPairs;
use ferry_core::edits::{EditTarget, check_new_schema, plan_edits};
use ferry_core::geometry::BBox;
use ferry_core::schema::coerce_text;
use ferry_core::{CoreError, Key, names};
use ferry_proto::{
    EditBatch, EditResults, ErrorCode, Item, ItemId, ItemKind, ItemPatch, NewItem, ReferenceRows,
    RowPage, SyncAs,
};
use ferry_store::{ChunkStore, ItemDraft, ItemShape, NoRows, RowQuery, Store, StoreError};

const DEFAULT_ROWS: usize = 100;
const MAX_ROWS: usize = 10_000;
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

/// Deletes those of `hashes` that no item references and no upload in progress holds.
pub fn remove_unused_chunks(
    store: &dyn Store,
    chunks: &ChunkStore,
    hashes: &[ferry_proto::ChunkHash],
) {
    for h in hashes {
        if let Err(e) = chunks.remove_unused(h, |h| store.chunk_in_use(h)) {
            tracing::warn!(error = %e, chunk = %h, "could not remove an unused chunk; it stays on disk");
        }
    }
}

/// [`remove_unused_chunks`] for chunks an item deletion freed.
pub(crate) async fn remove_chunks(state: &Node, hashes: Vec<ferry_proto::ChunkHash>) {
    if hashes.is_empty() {
        return;
    }
    let (store, chunks) = (state.store.clone(), state.chunks.clone());
    let _ = blocking(move || {
        remove_unused_chunks(store.as_ref(), &chunks, &hashes);
        Ok::<_, StoreError>(())
    })
    .await;
}

/// Items, optionally of one space.
pub async fn list_items(state: &Node, query: Option<String>) -> NodeResult<Vec<Item>> {
    let space = QueryPairs::parse(query.as_deref())
        .get("space")
        .map(str::to_string);
    let store = state.store.clone();
    let (mut items, stale) = blocking(move || {
        Ok::<_, StoreError>((store.list_items(space.as_deref())?, store.stale_items()?))
    })
    .await?;
    mark_stale(&mut items, stale);
    Ok(items)
}

/// Marks the items whose latest version a link refused (see [`Item::stale`]).
fn mark_stale(items: &mut [Item], stale: Vec<(ItemId, String)>) {
    let stale: std::collections::HashMap<ItemId, String> = stale.into_iter().collect();
    for item in items {
        item.stale = stale.get(&item.id).cloned();
    }
}

/// Creates an empty dataset or feature layer with a given schema (fill it with edits).
pub async fn create_item(state: &Node, caller: &Caller, new: NewItem) -> NodeResult<Item> {
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
    let store = state.store.clone();
    let item = blocking(move || store.create_item(&draft, &mut rows)).await?;
    crate::sync::changed(state, item.space_id.to_string());
    Ok(item)
}

pub async fn show_item(state: &Node, id: String) -> NodeResult<Item> {
    let id = parse_item_id(&id)?;
    let store = state.store.clone();
    let (item, stale) =
        blocking(move || Ok::<_, StoreError>((store.item(id)?, store.stale_items()?))).await?;
    let mut items = [item];
    mark_stale(&mut items, stale);
    let [item] = items;
    Ok(item)
}

/// Changes an item's title, description, tags or markings, or moves it to another space
/// (admins only: links of the space it leaves retract it).
pub async fn update_item(
    state: &Node,
    caller: &Caller,
    id: String,
    mut patch: ItemPatch,
) -> NodeResult<Item> {
    let id = parse_item_id(&id)?;
    // Where an item is and how it is marked decide which links it leaves by.
    let admin_only = [
        (patch.space.is_some(), "moving an item to another space"),
        (patch.markings.is_some(), "changing an item's markings"),
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
    refuse_received(state, id).await?;
    let store = state.store.clone();
    let actor = caller.name.clone();
    let (from, item) = blocking(move || {
        if patch.sync_as == Some(SyncAs::Reference) && !store.item(id)?.kind.has_rows() {
            return Err(CoreError::InvalidRequest(
                "files travel as copies only: sync_as 'reference' applies to datasets and feature layers".into(),
            )
            .into());
        }
        let from = store.item(id)?.space_id;
        Ok::<_, NodeError>((from, store.update_item(id, &patch, &actor)?))
    })
    .await?;
    if from != item.space_id {
        crate::sync::changed(state, from.to_string());
    }
    crate::sync::changed(state, item.space_id.to_string());
    Ok(item)
}

/// A received copy changes only at its origin: local edits would be lost at the next sync, or
/// make the copy drift from its origin.
async fn refuse_received(state: &Node, id: ItemId) -> NodeResult<()> {
    let store = state.store.clone();
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
pub async fn delete_item(state: &Node, id: String) -> NodeResult<()> {
    let id = parse_item_id(&id)?;
    let store = state.store.clone();
    let (space, freed) = blocking(move || {
        let space = store.item(id)?.space_id;
        Ok::<_, StoreError>((space, store.delete_item(id)?))
    })
    .await?;
    remove_chunks(state, freed).await;
    crate::sync::changed(state, space.to_string());
    Ok(())
}

fn encode_cursor(key: &serde_json::Value) -> String {
    data_encoding::BASE64URL_NOPAD.encode(key.to_string().as_bytes())
}

fn decode_cursor(cursor: &str) -> NodeResult<Key> {
    data_encoding::BASE64URL_NOPAD
        .decode(cursor.as_bytes())
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| Key::from_value(&v).ok())
        .ok_or_else(|| {
            NodeError::new(
                ErrorCode::InvalidCursor,
                "the 'after' cursor was not produced by this server; start again without it",
            )
        })
}

/// Rows of a dataset or features of a layer, in key order, a page at a time.
pub async fn query_rows(state: &Node, id: String, query: Option<String>) -> NodeResult<RowPage> {
    let id = parse_item_id(&id)?;
    Ok(row_page(state, id, query.unwrap_or_default(), Vec::new())
        .await?
        .page)
}

/// A page of an item's rows: from this instance's store, or from the item's origin when it is
/// a reference.
/// A page of an item's rows, with the item's markings as they stand where the rows came from.
pub(crate) async fn row_page(
    state: &Node,
    id: ItemId,
    query: String,
    via: Vec<String>,
) -> NodeResult<ReferenceRows> {
    let store = state.store.clone();
    let item = blocking(move || store.item(id)).await?;
    // Checked here first, also for a reference: a bad query is the caller's mistake, not the
    // origin's.
    let q = QueryPairs::parse(Some(&query));
    let limit = q
        .number::<usize>("limit")?
        .unwrap_or(DEFAULT_ROWS)
        .clamp(1, MAX_ROWS);
    let after = q.get("after").map(decode_cursor).transpose()?;
    let bbox = q.get("bbox").map(BBox::parse).transpose()?;
    if bbox.is_some() && item.kind != ItemKind::FeatureLayer {
        return Err(NodeError::new(
            ErrorCode::InvalidRequest,
            "bbox filters apply to feature layers only",
        ));
    }
    let filters = q.all("where");
    if filters.len() > MAX_FILTERS {
        return Err(NodeError::new(
            ErrorCode::InvalidRequest,
            format!(
                "{} 'where' filters given; at most {MAX_FILTERS} are taken (each narrows the page further)",
                filters.len()
            ),
        ));
    }
    let equals = filters
        .iter()
        .map(|f| equality_filter(&item, f))
        .collect::<Result<_, CoreError>>()?;
    if item.reference {
        return crate::sync::reference::read_rows(state, &item, query, via).await;
    }
    let store = state.store.clone();
    let page = blocking(move || {
        store.query_rows(
            id,
            &RowQuery {
                after,
                limit,
                bbox,
                equals,
            },
        )
    })
    .await?;
    let next = (page.len() == limit)
        .then(|| page.last().map(|r| encode_cursor(&r.key)))
        .flatten();
    Ok(ReferenceRows {
        page: RowPage { rows: page, next },
        markings: item.markings,
    })
}

/// The most `where` filters one query takes: each becomes a condition of its own, and the
/// database refuses statements past a few hundred of them.
const MAX_FILTERS: usize = 64;

/// `field:value` with the value typed by the schema.
fn equality_filter(item: &Item, filter: &str) -> Result<(String, serde_json::Value), CoreError> {
    let (field, text) = filter.split_once(':').ok_or_else(|| {
        CoreError::InvalidRequest(format!("filter '{filter}' is not valid: write field:value"))
    })?;
    let field_type = item
        .schema
        .as_ref()
        .and_then(|s| s.field(field))
        .map(|f| f.field_type)
        .ok_or_else(|| CoreError::InvalidRequest(format!("the item has no field '{field}'")))?;
    let value = coerce_text(field_type, text)
        .map_err(|m| CoreError::InvalidRequest(format!("filter on '{field}': {m}")))?;
    Ok((field.to_string(), value))
}

/// Applies adds, updates and deletes all or nothing, with a result per edit.
pub async fn apply_edits(state: &Node, id: String, batch: EditBatch) -> NodeResult<EditResults> {
    let id = parse_item_id(&id)?;
    if batch.len() > MAX_EDITS {
        return Err(CoreError::InvalidRequest(format!(
            "a batch holds at most {MAX_EDITS} edits; split it"
        ))
        .into());
    }
    refuse_received(state, id).await?;
    let store = state.store.clone();
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
            });
        }
        let plan = plan_edits(&target, &batch).map_err(|results| StoreError::EditsRejected {
            failed: results.iter().filter(|r| !r.success).count(),
            total: results.len(),
            results,
        })?;
        store.apply_edits(id, &plan)
    })
    .await?;
    Ok(EditResults {
        item: outcome.item,
        results: outcome.results,
    })
}
