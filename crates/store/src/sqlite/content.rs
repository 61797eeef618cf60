//! Spaces, items, their rows and files, and the change feed, as the store keeps them.

use super::connections::SqliteStore;
use super::records::*;
use crate::types::*;
use crate::{Store, StoreError, StoreResult};
use ferry_core::Key;
use ferry_core::tiles::Tile;
use ferry_proto::{
    Change, ChangePage, ChunkHash, EditOp, Item, ItemId, ItemKind, ItemPatch, NewSpace, Row, Space,
    SpaceId, SpacePatch,
};
use rusqlite::types::Value as SqlValue;
use rusqlite::{OptionalExtension, params};

pub(super) fn create_space(store: &SqliteStore, new: &NewSpace) -> StoreResult<Space> {
    store.write(|tx| {
            let ts = now();
            let inserted = tx.execute_cached(
                "INSERT INTO spaces (id, name, description, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?4)",
                params![SpaceId::generate().to_string(), new.name, new.description, ts],
            );
            match inserted {
                Err(e) if is_unique_violation(&e) => Err(StoreError::SpaceNameTaken(new.name.clone())),
                other => other.map_err(StoreError::from),
            }?;
            Ok(find_space(tx, &new.name)?.1)
        })
}

pub(super) fn list_spaces(store: &SqliteStore) -> StoreResult<Vec<Space>> {
    store.read(|c| {
        c.prepare_cached(&format!(
            "SELECT {SPACE_COLS} FROM spaces s ORDER BY s.name"
        ))?
        .query_map([], space_from_row)?
        .map(|r| Ok(r?.1))
        .collect()
    })
}

pub(super) fn space(store: &SqliteStore, space_ref: &str) -> StoreResult<Space> {
    store.read(|c| Ok(find_space(c, space_ref)?.1))
}

pub(super) fn update_space(
    store: &SqliteStore,
    space_ref: &str,
    patch: &SpacePatch,
) -> StoreResult<Space> {
    store.write(|tx| {
        let (rid, space) = find_space(tx, space_ref)?;
        let name = patch.name.clone().unwrap_or(space.name);
        let description = patch.description.clone().unwrap_or(space.description);
        let updated = tx.execute_cached(
            "UPDATE spaces SET name = ?2, description = ?3, updated_at = ?4 WHERE rid = ?1",
            params![rid, name, description, now()],
        );
        match updated {
            Err(e) if is_unique_violation(&e) => Err(StoreError::SpaceNameTaken(name.clone())),
            other => other.map_err(StoreError::from),
        }?;
        Ok(find_space(tx, &space.id.to_string())?.1)
    })
}

pub(super) fn delete_space(
    store: &SqliteStore,
    space_ref: &str,
    force: bool,
) -> StoreResult<Vec<ChunkHash>> {
    store.write(|tx| {
        let (rid, space) = find_space(tx, space_ref)?;
        let links = super::collabs::links_to_space(tx, rid)?;
        if !links.is_empty() {
            return Err(StoreError::SpaceLinked {
                name: space.name,
                links,
            });
        }
        if space.item_count > 0 && !force {
            return Err(StoreError::SpaceNotEmpty {
                name: space.name,
                items: space.item_count,
            });
        }
        let item_rids: Vec<i64> = tx
            .prepare_cached("SELECT rid FROM items WHERE space_rid = ?1")?
            .query_map([rid], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        let mut freed = Vec::new();
        let mut seqs = SeqAlloc::begin(tx)?;
        for item_rid in item_rids {
            freed.extend(tombstone_item(tx, item_rid, seqs.take())?);
        }
        seqs.finish(tx)?;
        // The space and its feed go away together, tombstones included. Connections that
        // are over keep their history without the space.
        tx.execute_cached("DELETE FROM items WHERE space_rid = ?1", [rid])?;
        tx.execute_cached(
            "UPDATE peer_connections SET space_rid = NULL WHERE space_rid = ?1",
            [rid],
        )?;
        tx.execute_cached("DELETE FROM spaces WHERE rid = ?1", [rid])?;
        Ok(freed)
    })
}

pub(super) fn create_item(
    store: &SqliteStore,
    draft: &ItemDraft,
    rows: &mut dyn RowSource,
) -> StoreResult<Item> {
    store.write(|tx| {
        let (space_rid, _) = find_space(tx, &draft.space_ref)?;
        let id = ItemId::generate();
        let ts = now();
        tx.execute_cached(
            "INSERT INTO items (id, space_rid, kind, title, description, tags, markings, owner,
                     created_at, updated_at, version, seq, crs, file)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9, 1, 0, ?10, ?11)",
            params![
                id.to_string(),
                space_rid,
                draft.kind.as_str(),
                draft.title,
                draft.description,
                to_json(&draft.tags)?,
                to_json(&draft.markings)?,
                draft.owner,
                ts,
                draft.crs,
                draft
                    .file
                    .as_ref()
                    .map(|(info, _)| to_json(info))
                    .transpose()?,
            ],
        )?;
        let rid = tx.last_insert_rowid();
        let owner = RowOwner {
            item_rid: rid,
            space_rid,
        };
        let mut seqs = SeqAlloc::begin(tx)?;
        tx.execute_cached(
            "UPDATE items SET created_seq = ?2 WHERE rid = ?1",
            params![rid, seqs.last + 1],
        )?;
        let mut count = 0i64;
        {
            let mut stmt = tx.prepare_cached(INSERT_ROW)?;
            while let Some(row) = rows.next_row()? {
                let inserted = write_row(
                    &mut stmt,
                    owner,
                    &row.key,
                    seqs.take(),
                    &row.values,
                    row.geometry.as_ref(),
                );
                match inserted {
                    Err(e) if is_unique_violation(&e) => {
                        return Err(ferry_core::CoreError::DuplicateKey(format!(
                            "row {}: key {} appears more than once; keys must be unique",
                            count + 1,
                            row.key
                        ))
                        .into());
                    }
                    other => other?,
                };
                count += 1;
            }
        }
        if let Some((_, chunks)) = &draft.file {
            let mut stmt = tx.prepare_cached(
                "INSERT INTO file_chunks (item_rid, idx, hash, len) VALUES (?1, ?2, ?3, ?4)",
            )?;
            for (idx, c) in chunks.iter().enumerate() {
                stmt.execute(params![rid, idx as i64, c.hash.to_hex(), c.len as i64])?;
            }
        }
        let shape = rows.shape();
        tx.execute_cached(
            "UPDATE items SET seq = ?2, schema = ?3, geometry_type = ?4, row_count = ?5,
                     crs = coalesce(?6, crs) WHERE rid = ?1",
            params![
                rid,
                seqs.take(),
                shape.schema.as_ref().map(to_json).transpose()?,
                shape.geometry_type.map(|g| g.as_str()),
                count,
                shape.crs,
            ],
        )?;
        seqs.finish(tx)?;
        Ok(find_item(tx, id)?.1)
    })
}

pub(super) fn item(store: &SqliteStore, id: ItemId) -> StoreResult<Item> {
    store.read(|c| Ok(find_item(c, id)?.1))
}

pub(super) fn list_items(store: &SqliteStore, space_ref: Option<&str>) -> StoreResult<Vec<Item>> {
    store.read(|c| {
        let mut raw = Vec::new();
        match space_ref {
            Some(s) => {
                let (rid, _) = find_space(c, s)?;
                let mut stmt = c.prepare_cached(&items_query(
                    "i.space_rid = ?1 AND i.deleted = 0 ORDER BY i.rid",
                ))?;
                for r in stmt.query_map([rid], decode_item)? {
                    raw.push(r?);
                }
            }
            None => {
                let mut stmt = c.prepare_cached(&items_query("i.deleted = 0 ORDER BY i.rid"))?;
                for r in stmt.query_map([], decode_item)? {
                    raw.push(r?);
                }
            }
        }
        raw.into_iter().map(|r| Ok(build_item(r)?.2)).collect()
    })
}

pub(super) fn list_items_page(
    store: &SqliteStore,
    space_ref: &str,
    offset: usize,
    limit: usize,
) -> StoreResult<Vec<Item>> {
    store.read(|c| {
        let (rid, _) = find_space(c, space_ref)?;
        let mut stmt = c.prepare_cached(&items_query(
            "i.space_rid = ?1 AND i.deleted = 0 ORDER BY i.rid LIMIT ?2 OFFSET ?3",
        ))?;
        let bound = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        let raw = stmt
            .query_map(params![rid, bound(limit), bound(offset)], decode_item)?
            .collect::<Result<Vec<_>, _>>()?;
        raw.into_iter().map(|r| Ok(build_item(r)?.2)).collect()
    })
}

pub(super) fn update_item(
    store: &SqliteStore,
    id: ItemId,
    patch: &ItemPatch,
    actor: &str,
) -> StoreResult<Item> {
    store.write(|tx| {
        let (rid, item) = find_item(tx, id)?;
        if let Some(schema) = &patch.schema {
            reshape_rows(tx, rid, &item, schema)?;
        }
        let mut seqs = SeqAlloc::begin(tx)?;
        let seq = seqs.take();
        tx.execute_cached(
            "UPDATE items SET title = ?2, description = ?3, tags = ?4, markings = ?5,
                     version = version + 1, seq = ?6, updated_at = ?7, sync_as = ?8,
                     two_way = ?9, schema = coalesce(?10, schema) WHERE rid = ?1",
            params![
                rid,
                patch.title.as_ref().unwrap_or(&item.title),
                patch.description.as_ref().unwrap_or(&item.description),
                to_json(patch.tags.as_ref().unwrap_or(&item.tags))?,
                to_json(patch.markings.as_ref().unwrap_or(&item.markings))?,
                seq,
                now(),
                patch.sync_as.unwrap_or(item.sync_as).as_str(),
                two_way_after(&item, patch)
                    .map(|t| to_json(&t))
                    .transpose()?,
                patch.schema.as_ref().map(to_json).transpose()?,
            ],
        )?;
        if let Some(space) = &patch.space {
            move_item(tx, rid, &item, space, &mut seqs)?;
        }
        seqs.finish(tx)?;
        let updated = find_item(tx, id)?.1;
        for entry in item_change_audits(tx, actor, &item, &updated)? {
            audit_in(tx, &entry)?;
        }
        Ok(updated)
    })
}

/// Gives an item's rows a new schema: removed fields leave every row, and a retyped field's
/// values must fit their new type. Rows keep their versions: copies take a schema that removes
/// or retypes fields by copying the item whole, once their admin accepts it.
fn reshape_rows(
    tx: &rusqlite::Transaction<'_>,
    rid: i64,
    item: &Item,
    schema: &ferry_proto::Schema,
) -> StoreResult<()> {
    let old = item.schema.clone().unwrap_or_default();
    let change = ferry_core::schema_change::check_change(item.kind, &old, schema)?;
    if !change.narrows() {
        return Ok(());
    }
    let rows: Vec<(rusqlite::types::Value, String)> = tx
        .prepare_cached("SELECT key, vals FROM rows WHERE item_rid = ?1 AND deleted = 0")?
        .query_map([rid], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let mut update =
        tx.prepare_cached("UPDATE rows SET vals = ?3 WHERE item_rid = ?1 AND key = ?2")?;
    for (key, vals) in rows {
        let serde_json::Value::Object(mut values) = ferry_proto::exact::from_text(&vals)? else {
            continue;
        };
        if change.reshape(&mut values)? {
            update.execute(params![
                rid,
                key,
                serde_json::Value::Object(values).to_string()
            ])?;
        }
    }
    Ok(())
}

/// An item's two-way setting after a patch: a policy turns it on, `two_way: false` off.
fn two_way_after(item: &Item, patch: &ItemPatch) -> Option<ferry_proto::twoway::TwoWay> {
    let on = patch
        .two_way
        .unwrap_or(item.two_way.is_some() || patch.conflict_policy.is_some());
    on.then(|| ferry_proto::twoway::TwoWay {
        conflict_policy: patch
            .conflict_policy
            .or(item.two_way.map(|t| t.conflict_policy))
            .unwrap_or_default(),
    })
}

pub(super) fn delete_item(store: &SqliteStore, id: ItemId) -> StoreResult<Vec<ChunkHash>> {
    store.write(|tx| {
        let (rid, _) = find_item(tx, id)?;
        let mut seqs = SeqAlloc::begin(tx)?;
        let freed = tombstone_item(tx, rid, seqs.take())?;
        seqs.finish(tx)?;
        Ok(freed)
    })
}

pub(super) fn apply_edits(
    store: &SqliteStore,
    id: ItemId,
    plan: &EditPlan,
) -> StoreResult<EditOutcome> {
    store.write(|tx| apply_plan(tx, id, plan))
}

/// Applies a batch of edits inside `tx`, all or nothing.
pub(super) fn apply_plan(
    tx: &rusqlite::Transaction<'_>,
    id: ItemId,
    plan: &EditPlan,
) -> StoreResult<EditOutcome> {
    {
        let (rid, item) = find_item(tx, id)?;
        require_rows(id, &item)?;
        let mut run = EditRun {
            tx,
            rid,
            owner: row_owner(tx, rid)?,
            seqs: SeqAlloc::begin(tx)?,
            results: Vec::new(),
            failed: 0,
            row_delta: 0,
            next_int_key: None,
        };
        let received = super::twoway::is_received(tx, rid)?;
        let mut two_way = super::twoway::TwoWayEdits::begin(&item, received, plan.stamp.as_ref());
        for (i, add) in plan.adds.iter().enumerate() {
            if let (Some(t), AddKey::Given(key)) = (two_way.as_mut(), &add.key) {
                t.note(tx, rid, key)?;
            }
            let (key, outcome) = run.add(add);
            if let (Some(t), Some(key)) = (two_way.as_mut(), key.as_ref()) {
                t.note(tx, rid, key)?;
            }
            run.record(EditOp::Add, i, key.as_ref(), outcome);
        }
        for (i, update) in plan.updates.iter().enumerate() {
            if let Some(t) = two_way.as_mut() {
                t.note(tx, rid, &update.key)?;
            }
            let outcome = run.update(update);
            run.record(EditOp::Update, i, Some(&update.key), outcome);
        }
        for (i, key) in plan.deletes.iter().enumerate() {
            if let Some(t) = two_way.as_mut() {
                t.note(tx, rid, key)?;
            }
            let outcome = run.delete(key);
            run.record(EditOp::Delete, i, Some(key), outcome);
        }
        if let Some(t) = two_way {
            t.finish(tx, rid)?;
        }
        if run.failed > 0 {
            return Err(StoreError::EditsRejected {
                failed: run.failed,
                total: run.results.len(),
                results: run.results,
            });
        }
        let item_seq = run.seqs.take();
        // Combined here, inside the transaction, so concurrent batches cannot lose a type.
        let geometry_type = match plan.geometry_type {
            Some(t) => Some(ferry_core::geometry::combine_types(item.geometry_type, t)),
            None => item.geometry_type,
        };
        tx.execute_cached(
            "UPDATE items SET version = version + 1, seq = ?2, updated_at = ?3,
                     row_count = row_count + ?4, geometry_type = ?5
                 WHERE rid = ?1",
            params![
                rid,
                item_seq,
                now(),
                run.row_delta,
                geometry_type.map(|g| g.as_str())
            ],
        )?;
        let results = run.results;
        run.seqs.finish(tx)?;
        Ok(EditOutcome {
            item: find_item(tx, id)?.1,
            results,
        })
    }
}

pub(super) fn query_rows(
    store: &SqliteStore,
    id: ItemId,
    query: &RowQuery,
) -> StoreResult<Vec<Row>> {
    store.read(|c| {
        let (rid, item) = find_item(c, id)?;
        require_rows(id, &item)?;
        let mut sql = String::from(
            "SELECT key, seq, vals, geom FROM rows WHERE item_rid = ? AND deleted = 0",
        );
        let mut args: Vec<SqlValue> = vec![SqlValue::Integer(rid)];
        if let Some(after) = &query.after {
            sql.push_str(" AND key > ?");
            args.push(match after {
                Key::Int(i) => SqlValue::Integer(*i),
                Key::Text(s) => SqlValue::Text(s.clone()),
            });
        }
        if let Some(b) = query.bbox {
            sql.push_str(
                " AND coalesce(max_x, min_x) >= ? AND min_x <= ?
                      AND coalesce(max_y, min_y) >= ? AND min_y <= ?",
            );
            args.extend([b.min_x, b.max_x, b.min_y, b.max_y].map(SqlValue::Real));
        }
        for (field, value) in &query.equals {
            sql.push_str(" AND json_extract(vals, ?) IS ?");
            args.push(SqlValue::Text(format!(
                "$.\"{}\"",
                field.replace('"', "\\\"")
            )));
            args.push(sql_of_json(value));
        }
        sql.push_str(" ORDER BY key LIMIT ?");
        args.push(SqlValue::Integer(query.limit as i64));
        let mut stmt = c.prepare_cached(&sql)?;
        let rows = stmt.query_map(rusqlite::params_from_iter(args), |r| {
            Ok((
                key_from_sql(r.get_ref(0)?)?,
                r.get::<_, i64>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, Option<String>>(3)?,
            ))
        })?;
        rows.map(|r| {
            let (key, seq, vals, geom) = r?;
            parse_row(key, seq, &vals, geom.as_deref())
        })
        .collect()
    })
}

pub(super) fn tile_rows(
    store: &SqliteStore,
    id: ItemId,
    tile: Tile,
    limit: usize,
) -> StoreResult<TileRows> {
    store.read(|c| {
        // One read transaction: the tiers and the rows read come from one snapshot.
        let tx = c.unchecked_transaction()?;
        let (rid, item) = find_item(&tx, id)?;
        require_rows(id, &item)?;
        let (keys, complete) = tile_keys(&tx, rid, tile, limit)?;
        let mut stmt = tx.prepare_cached(
            "SELECT seq, vals, geom FROM rows WHERE item_rid = ?1 AND key = ?2 AND deleted = 0",
        )?;
        let mut rows = Vec::with_capacity(keys.len());
        for key in keys {
            let found = stmt
                .query_row(params![rid, KeySql(&key)], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, Option<String>>(2)?,
                    ))
                })
                .optional()?;
            if let Some((seq, vals, geom)) = found {
                rows.push(parse_row(key, seq, &vals, geom.as_deref())?);
            }
        }
        Ok(TileRows { rows, complete })
    })
}

/// The keys of a tile's features, tier by tier from the sparsest, each tier in hash order; the
/// tier that would pass `limit` gives only its first keys in that order, an even sample of it.
/// Reads index entries alone, except for features whose cell contains the tile, whose boxes
/// are checked.
fn tile_keys(
    tx: &rusqlite::Transaction<'_>,
    rid: i64,
    tile: Tile,
    limit: usize,
) -> StoreResult<(Vec<Key>, bool)> {
    let mut inside = tx.prepare_cached(
        "SELECT key FROM rows INDEXED BY rows_by_map_cell
         WHERE item_rid = ?1 AND map_cell >= ?2 AND map_cell <= ?3",
    )?;
    let mut around = tx.prepare_cached(
        "SELECT key FROM rows INDEXED BY rows_by_map_cell
         WHERE item_rid = ?1 AND map_cell = ?2
             AND coalesce(max_x, min_x) >= ?3 AND min_x <= ?4
             AND coalesce(max_y, min_y) >= ?5 AND min_y <= ?6",
    )?;
    let b = tile.bounds();
    let mut chosen: Vec<Key> = Vec::new();
    for tier in 0..=ferry_core::tiles::TOP_TIER {
        let (lo, hi) = tile.inside(tier);
        let mut keys = inside
            .query_map(params![rid, lo, hi], |r| key_from_sql(r.get_ref(0)?))?
            .collect::<Result<Vec<_>, _>>()?;
        for cell in tile.around(tier) {
            let found = around.query_map(
                params![rid, cell, b.min_x, b.max_x, b.min_y, b.max_y],
                |r| key_from_sql(r.get_ref(0)?),
            )?;
            for key in found {
                keys.push(key?);
            }
        }
        keys.sort_by_cached_key(ferry_core::tiles::key_hash);
        if chosen.len() + keys.len() > limit {
            keys.truncate(limit - chosen.len());
            chosen.extend(keys);
            return Ok((chosen, false));
        }
        chosen.extend(keys);
    }
    Ok((chosen, true))
}

pub(super) fn scan_rows(
    store: &SqliteStore,
    id: ItemId,
    visit: &mut dyn FnMut(RawRow<'_>) -> StoreResult<()>,
) -> StoreResult<()> {
    store.read(|c| {
        // One read transaction: the scan sees one snapshot even while edits commit.
        let tx = c.unchecked_transaction()?;
        let (rid, item) = find_item(&tx, id)?;
        require_rows(id, &item)?;
        let mut stmt = tx.prepare_cached(
            "SELECT key, vals, geom, seq, twoway FROM rows
             WHERE item_rid = ?1 AND deleted = 0 ORDER BY key",
        )?;
        let mut rows = stmt.query([rid])?;
        while let Some(r) = rows.next()? {
            let key = key_from_sql(r.get_ref(0)?)?;
            let vals = r.get_ref(1)?.as_str().map_err(rusqlite::Error::from)?;
            let geom = r
                .get_ref(2)?
                .as_str_or_null()
                .map_err(rusqlite::Error::from)?
                .map(geometry_text);
            let two_way = r
                .get_ref(4)?
                .as_str_or_null()
                .map_err(rusqlite::Error::from)?;
            visit(RawRow {
                key: &key,
                values: vals,
                geometry: geom.as_deref(),
                seq: r.get(3)?,
                two_way,
            })?;
        }
        Ok(())
    })
}

pub(super) fn row(store: &SqliteStore, id: ItemId, key: &Key) -> StoreResult<Option<Row>> {
    store.read(|c| {
        let (rid, item) = find_item(c, id)?;
        require_rows(id, &item)?;
        c.query_row_cached(
            "SELECT seq, vals, geom FROM rows WHERE item_rid = ?1 AND key = ?2 AND deleted = 0",
            params![rid, KeySql(key)],
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Option<String>>(2)?,
                ))
            },
        )
        .optional()?
        .map(|(seq, vals, geom)| parse_row(key.clone(), seq, &vals, geom.as_deref()))
        .transpose()
    })
}

pub(super) fn file_chunks(store: &SqliteStore, id: ItemId) -> StoreResult<Vec<ChunkRef>> {
    store.read(|c| {
        let (rid, item) = find_item(c, id)?;
        if item.kind != ItemKind::File {
            return Err(StoreError::WrongItemKind {
                id: id.to_string(),
                actual: item.kind.as_str(),
                expected: "file",
            });
        }
        c.prepare_cached("SELECT hash, len FROM file_chunks WHERE item_rid = ?1 ORDER BY idx")?
            .query_map([rid], |r| {
                Ok(ChunkRef {
                    hash: stored_chunk_hash(r, 0)?,
                    len: r.get::<_, i64>(1)? as u64,
                })
            })?
            .collect::<Result<_, _>>()
            .map_err(Into::into)
    })
}

pub(super) fn chunk_in_use(store: &SqliteStore, hash: &ChunkHash) -> StoreResult<bool> {
    store.read(|c| Ok(unused_chunks(c, vec![*hash])?.is_empty()))
}

pub(super) fn items_with_chunk(store: &SqliteStore, hash: &ChunkHash) -> StoreResult<Vec<ItemId>> {
    store.read(|c| {
        let ids: Vec<String> = c
            .prepare_cached(
                "SELECT DISTINCT i.id FROM file_chunks f JOIN items i ON i.rid = f.item_rid
                     WHERE f.hash = ?1 AND i.deleted = 0",
            )?
            .query_map([hash.to_hex()], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        ids.iter().map(|id| stored_item_id(id)).collect()
    })
}

pub(super) fn changes(
    store: &SqliteStore,
    space_ref: &str,
    after: i64,
    limit: usize,
) -> StoreResult<ChangePage> {
    let raw = store.raw_changes(space_ref, after, limit, &[], &[])?;
    let mut changes = Vec::with_capacity(raw.changes.len());
    for (seq, change) in raw.changes {
        changes.push(match change {
            RawChange::Item(item) => Change::Item { seq, item },
            RawChange::ItemDeleted(item_id) => Change::ItemDeleted { seq, item_id },
            RawChange::ItemLeft(item_id) => Change::ItemLeft { seq, item_id },
            RawChange::Row {
                item_id,
                key,
                values,
                geometry,
                ..
            } => Change::Row {
                seq,
                item_id,
                row: parse_row(key, seq, &values, geometry.as_deref())?,
            },
            RawChange::RowDeleted { item_id, key, .. } => Change::RowDeleted {
                seq,
                item_id,
                key: key.to_value(),
            },
        });
    }
    Ok(ChangePage {
        epoch: raw.epoch,
        changes,
        next_after: raw.next_after,
        has_more: raw.has_more,
    })
}

pub(super) fn raw_changes(
    store: &SqliteStore,
    space_ref: &str,
    after: i64,
    limit: usize,
    skip_rows: &[ItemId],
    pending_only: &[ItemId],
) -> StoreResult<RawChangePage> {
    let skipped: Vec<ItemId> = skip_rows.iter().chain(pending_only).copied().collect();
    let skip_rows = to_json(&skipped)?;
    let pending_items = to_json(&pending_only)?;
    store.read(|c| {
        let tx = c.unchecked_transaction()?;
        let (space_rid, _) = find_space(&tx, space_ref)?;
        let epoch = meta(&tx, "epoch")?;
        // Three index ranges, items, departures and rows by (space_rid, seq), each read for
        // at most `limit + 1` entries: a page costs O(limit), whatever the size of the space.
        let page = limit as i64 + 1;
        let mut items = tx.prepare_cached(&items_query(
            "i.space_rid = ?1 AND i.seq > ?2 ORDER BY i.seq LIMIT ?3",
        ))?;
        let mut changes = Vec::new();
        for raw in items.query_map(params![space_rid, after, page], decode_item)? {
            let (_, deleted, item) = build_item(raw?)?;
            changes.push(if deleted {
                (item.seq, RawChange::ItemDeleted(item.id))
            } else {
                (item.seq, RawChange::Item(Box::new(item)))
            });
        }
        let mut departures = tx.prepare_cached(
            "SELECT seq, item_id FROM item_departures
                 WHERE space_rid = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
        )?;
        let left = departures.query_map(params![space_rid, after, page], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
        })?;
        for departure in left {
            let (seq, item_id) = departure?;
            changes.push((seq, RawChange::ItemLeft(stored_item_id(&item_id)?)));
        }
        let mut rows = tx.prepare_cached(ROW_CHANGES)?;
        let mut found = rows
            .query_map(params![space_rid, after, page, skip_rows], raw_row_change)?
            .collect::<Result<Vec<_>, _>>()?;
        if !pending_only.is_empty() {
            let mut pending = tx.prepare_cached(PENDING_CHANGES)?;
            let rows = pending.query_map(
                params![space_rid, after, page, pending_items],
                raw_row_change,
            )?;
            for row in rows {
                found.push(row?);
            }
        }
        #[allow(clippy::type_complexity)]
        fn raw_row_change(
            r: &rusqlite::Row<'_>,
        ) -> rusqlite::Result<(
            Key,
            i64,
            bool,
            Option<String>,
            Option<String>,
            String,
            Option<String>,
            Option<String>,
        )> {
            Ok((
                key_from_sql(r.get_ref(0)?)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)? != 0,
                r.get::<_, Option<String>>(3)?,
                r.get::<_, Option<String>>(4)?,
                r.get::<_, String>(5)?,
                r.get::<_, Option<String>>(6)?,
                r.get::<_, Option<String>>(7)?,
            ))
        }
        for r in found {
            let (key, seq, deleted, vals, geometry, item_id, twoway, pending) = r;
            let item_id = stored_item_id(&item_id)?;
            let two_way = (twoway.is_some() || pending.is_some())
                .then(|| Box::new(RowTwoWay { twoway, pending }));
            changes.push(if deleted {
                (
                    seq,
                    RawChange::RowDeleted {
                        item_id,
                        key,
                        two_way,
                    },
                )
            } else {
                let values = vals.unwrap_or_else(|| "{}".to_string());
                (
                    seq,
                    RawChange::Row {
                        item_id,
                        key,
                        values,
                        geometry: geometry.map(owned_geometry_text),
                        two_way,
                    },
                )
            });
        }
        changes.sort_by_key(|(seq, _)| *seq);
        let has_more = changes.len() > limit;
        changes.truncate(limit);
        let next_after = changes.last().map_or(after, |(seq, _)| *seq);
        Ok(RawChangePage {
            epoch,
            changes,
            next_after,
            has_more,
        })
    })
}

/// Applies an admin's resolution of a conflict (an edit at the origin, which syncs like any
/// other) and marks the conflict resolved, in one transaction.
pub(super) fn resolve_conflict(
    tx: &rusqlite::Transaction<'_>,
    id: &str,
    plan: &EditPlan,
    actor: &str,
) -> StoreResult<ferry_proto::twoway::ConflictRecord> {
    let mut record = super::twoway::conflict(tx, id)?;
    if record.status == "resolved" {
        return Err(StoreError::ConflictResolved(id.to_string()));
    }
    apply_plan(tx, record.item_id, plan)?;
    let at = ferry_core::time::now();
    record.status = "resolved".into();
    record.resolved_at = Some(at.clone());
    record.resolved_by = Some(actor.to_string());
    tx.prepare_cached(
        "UPDATE conflicts SET status = 'resolved', resolved_at = ?2, resolved_by = ?3, body = ?4
         WHERE id = ?1",
    )?
    .execute(params![id, at, actor, serde_json::to_string(&record)?])?;
    Ok(record)
}
