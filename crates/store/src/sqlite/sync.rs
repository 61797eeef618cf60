//! Receiving side of sync: cursors, batches applied with their cursor, whole-item copies, full
//! passes with their sweep, pending copies, and the run history.

use super::records::{
    CachedStatements, KeySql, RowOwner, SeqAlloc, UPSERT_ROW, find_space, now, to_json,
    tombstone_item, write_row,
};
use crate::types::{
    BatchOutcome, Origin, PendingCopy, ReceivedItem, SentPart, SyncBatch, SyncCursor, SyncOp,
    SyncRunRecord,
};
use crate::{StoreError, StoreResult};
use ferry_core::FastMap;
use ferry_core::Key;
use ferry_proto::{ErrorCode, ItemId};
use rusqlite::{Connection, OptionalExtension, Transaction, params};

pub(super) fn cursor(conn: &Connection, channel: &str) -> StoreResult<Option<SyncCursor>> {
    conn.query_row_cached(
        "SELECT epoch, scope, seq, resync FROM sync_cursors WHERE channel = ?1",
        [channel],
        |r| {
            Ok(SyncCursor {
                epoch: r.get(0)?,
                scope: r.get(1)?,
                seq: r.get(2)?,
                resync: r.get::<_, i64>(3)? != 0,
            })
        },
    )
    .optional()
    .map_err(Into::into)
}

fn set_cursor(tx: &Transaction<'_>, channel: &str, cursor: &SyncCursor) -> StoreResult<()> {
    tx.execute_cached(
        "INSERT OR REPLACE INTO sync_cursors (channel, epoch, scope, seq, resync, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            channel,
            cursor.epoch,
            cursor.scope,
            cursor.seq,
            cursor.resync,
            now()
        ],
    )?;
    Ok(())
}

/// Starts a full pass: every arrival by `link` is stale until the pass brings it again.
pub(super) fn begin_resync(
    tx: &Transaction<'_>,
    channel: &str,
    link: &str,
    cursor: &SyncCursor,
) -> StoreResult<()> {
    // Only what this channel brought: another guest's items on the same link are not its to
    // retract.
    tx.execute_cached(
        "UPDATE item_arrivals SET stale = 1
         WHERE link = ?1 AND (channel = ?2 OR channel IS NULL)",
        params![link, channel],
    )?;
    tx.execute_cached("DELETE FROM sync_copy_starts WHERE channel = ?1", [channel])?;
    set_cursor(
        tx,
        channel,
        &SyncCursor {
            seq: 0,
            resync: true,
            ..cursor.clone()
        },
    )
}

/// The local item a received origin item is, if this instance has it: found by its origin
/// instance and item id together, so one instance's item id never finds another's item.
fn local_item(tx: &Connection, origin: &Origin) -> StoreResult<Option<i64>> {
    tx.prepare_cached(
        "SELECT i.rid FROM (SELECT item_rid, origin_instance, origin_item FROM item_arrivals
             UNION ALL SELECT item_rid, origin_instance, origin_item FROM kept_origins) o
         JOIN items i ON i.rid = o.item_rid
         WHERE o.origin_item = ?1 AND o.origin_instance = ?2 AND i.deleted = 0 LIMIT 1",
    )?
    .query_row(params![origin.item, origin.instance], |r| r.get(0))
    .optional()
    .map_err(Into::into)
}

/// Applies checked changes in one transaction, then the new cursor (if any).
struct Apply<'t, 'c, 'b> {
    tx: &'t Transaction<'c>,
    batch: &'b SyncBatch<'b>,
    space_rid: i64,
    seqs: SeqAlloc,
    /// Local item rid per origin item.
    items: FastMap<Origin, i64>,
    spaces: FastMap<i64, i64>,
    /// Per item: whether its next row is tried as an insert first.
    inserting: FastMap<i64, bool>,
    /// Per item: whether it is a reference (its rows stay at the origin).
    references: FastMap<i64, bool>,
    row_delta: FastMap<i64, i64>,
    outcome: BatchOutcome,
    /// The row statements, prepared once per batch rather than looked up per row.
    insert_row: Option<rusqlite::CachedStatement<'t>>,
    update_row: Option<rusqlite::CachedStatement<'t>>,
    /// Two-way editing, read once per batch: this instance's id, each edited item's rid and
    /// setting, and whether an item's geometries are lon/lat.
    me: Option<String>,
    edited: FastMap<ItemId, (i64, Option<ferry_proto::twoway::TwoWay>)>,
    geographic: FastMap<i64, bool>,
}

/// The statement in `slot`, prepared on first use.
fn held<'s, 't>(
    slot: &'s mut Option<rusqlite::CachedStatement<'t>>,
    tx: &'t Connection,
    sql: &str,
) -> StoreResult<&'s mut rusqlite::CachedStatement<'t>> {
    let stmt = match slot.take() {
        Some(stmt) => stmt,
        None => tx.prepare_cached(sql)?,
    };
    Ok(slot.insert(stmt))
}

/// Updates a live row in place.
const UPDATE_ROW: &str = "UPDATE rows SET seq = ?3, vals = ?4, geom = ?5, min_x = ?6, min_y = ?7,
     max_x = ?8, max_y = ?9, map_cell = ?10 WHERE item_rid = ?1 AND key = ?2 AND deleted = 0";

impl Apply<'_, '_, '_> {
    fn item_rid(&mut self, origin: &Origin) -> StoreResult<Option<i64>> {
        if let Some(rid) = self.items.get(origin) {
            return Ok(Some(*rid));
        }
        let found = local_item(self.tx, origin)?;
        if let Some(rid) = found {
            self.items.insert(origin.clone(), rid);
        }
        Ok(found)
    }

    fn is_reference(&mut self, rid: i64) -> StoreResult<bool> {
        if let Some(reference) = self.references.get(&rid) {
            return Ok(*reference);
        }
        let reference =
            self.tx
                .query_row_cached("SELECT reference FROM items WHERE rid = ?1", [rid], |r| {
                    r.get::<_, bool>(0)
                })?;
        self.references.insert(rid, reference);
        Ok(reference)
    }

    /// Records that this batch's link brings the item, how (copy or reference), and with which
    /// markings.
    fn arrive(&mut self, rid: i64, item: &ReceivedItem) -> StoreResult<()> {
        self.tx
            .execute_cached("DELETE FROM kept_origins WHERE item_rid = ?1", [rid])?;
        self.tx.execute_cached(
            "INSERT INTO item_arrivals
                 (item_rid, link, origin_instance, origin_item, stale, reference, channel, markings)
             VALUES (?1, ?2, ?3, ?4, 0, ?5, ?6, ?7)
             ON CONFLICT (item_rid, link) DO UPDATE
                 SET stale = 0, reference = ?5, channel = ?6, markings = ?7",
            params![
                rid,
                self.batch.link,
                item.origin_instance,
                item.origin_item,
                item.reference,
                self.batch.channel,
                to_json(&item.markings)?,
            ],
        )?;
        Ok(())
    }

    /// The item's markings: all those its links gave it, together. One link never lowers what
    /// another marked; they fall only when the link that gave them describes the item again
    /// without them (the origin lowered its own) or no longer brings it.
    fn arrival_markings(&mut self, rid: i64) -> StoreResult<Vec<String>> {
        let mut stmt = self
            .tx
            .prepare_cached("SELECT markings FROM item_arrivals WHERE item_rid = ?1")?;
        let mut all = Vec::new();
        for text in stmt.query_map([rid], |r| r.get::<_, Option<String>>(0))? {
            if let Some(text) = text? {
                all.extend(serde_json::from_str::<Vec<String>>(&text)?);
            }
        }
        Ok(ferry_core::names::normalize_set(all))
    }

    /// Audits a change of a received item's markings, made by the link that brought it.
    fn audit_markings(&mut self, rid: i64, before: &str, after: &[String]) -> StoreResult<()> {
        let before: Vec<String> = serde_json::from_str(before)?;
        if before == after {
            return Ok(());
        }
        let id: String =
            self.tx
                .query_row_cached("SELECT id FROM items WHERE rid = ?1", [rid], |r| r.get(0))?;
        super::records::audit_in(
            self.tx,
            &crate::NewAuditEntry {
                actor: format!("sync:{}", self.batch.link),
                event: "item.markings_changed".into(),
                subject: Some(id),
                detail: serde_json::json!({"from": before, "to": after}),
            },
        )
    }

    /// An item is a reference only while every link that brings it brings it as one.
    fn all_links_refer(&mut self, rid: i64) -> StoreResult<bool> {
        let copies: i64 = self.tx.query_row_cached(
            "SELECT count(*) FROM item_arrivals WHERE item_rid = ?1 AND reference = 0",
            [rid],
            |r| r.get(0),
        )?;
        Ok(copies == 0)
    }

    fn op(&mut self, op: &SyncOp) -> StoreResult<()> {
        match op {
            SyncOp::Item(item) => self.item(item),
            SyncOp::Row { origin, row } => {
                // Rows of an item this instance does not hold (refused, waiting for a copy) wait
                // for that copy.
                match self.item_rid(origin)? {
                    Some(rid) if !self.is_reference(rid)? => self.row(rid, &row.key, Some(row)),
                    // Rows of a reference stay at the origin, whatever a sender sends.
                    _ => Ok(()),
                }
            }
            SyncOp::RowDeleted { origin, key } => match self.item_rid(origin)? {
                Some(rid) if !self.is_reference(rid)? => self.row(rid, key, None),
                _ => Ok(()),
            },
            SyncOp::Retract {
                origin_instance,
                origin_item,
            } => self.retract(origin_instance, origin_item),
            SyncOp::RowVersion {
                origin,
                key,
                version,
            } => match self.item_rid(origin)? {
                Some(rid) if !self.is_reference(rid)? => self.row_version(rid, key, version),
                _ => Ok(()),
            },
            SyncOp::Edit { item, key, edit } => self.edit(*item, key, edit, None),
            SyncOp::RefusedEdit {
                item,
                key,
                edit,
                reason,
            } => self.edit(*item, key, edit, Some(reason)),
        }
    }

    /// A copy takes the origin's version of a row: what of its own pending edit the origin has
    /// not seen stays over the origin's content.
    fn row_version(
        &mut self,
        rid: i64,
        key: &Key,
        version: &ferry_proto::twoway::RowVersion,
    ) -> StoreResult<()> {
        if self.me.is_none() {
            self.me = Some(super::records::meta(self.tx, "instance_id")?);
        }
        let me = self.me.as_deref().unwrap_or_default();
        if let Some(local) = super::twoway::received_version(self.tx, rid, key, version, me)? {
            let seq = self.tx.query_row_cached(
                "SELECT seq FROM rows WHERE item_rid = ?1 AND key = ?2",
                params![rid, KeySql(key)],
                |r| r.get::<_, i64>(0),
            )?;
            self.put(rid, key, seq, local.as_ref())?;
        }
        Ok(())
    }

    /// Writes a row as fields (`None`: its tombstone) at `seq`, keeping the item's row count.
    fn put(
        &mut self,
        rid: i64,
        key: &Key,
        seq: i64,
        fields: Option<&ferry_core::twoway::Fields>,
    ) -> StoreResult<()> {
        let delta = match fields {
            Some(fields) => {
                let geographic = self.geographic(rid)?;
                let (values, geometry) = super::twoway::stored_of(fields, geographic)?;
                let row = ferry_core::rows::RowRecord {
                    key: key.clone(),
                    values,
                    geometry,
                };
                self.write(rid, key, seq, &row)?
            }
            None => super::twoway::tombstone(self.tx, self.owner(rid)?, key, seq)?,
        };
        *self.row_delta.entry(rid).or_default() += delta;
        Ok(())
    }

    /// Whether an item's geometries are lon/lat (read once per batch).
    fn geographic(&mut self, rid: i64) -> StoreResult<bool> {
        if let Some(g) = self.geographic.get(&rid) {
            return Ok(*g);
        }
        let crs: Option<String> =
            self.tx
                .query_row_cached("SELECT crs FROM items WHERE rid = ?1", [rid], |r| r.get(0))?;
        let g = crs
            .as_deref()
            .is_none_or(ferry_core::geometry::is_geographic);
        self.geographic.insert(rid, g);
        Ok(g)
    }

    /// Judges an edit from a copy of this instance's two-way item, writes the row it leaves
    /// (always with a new version, so the editor learns the outcome) and any conflict. An edit
    /// refused for `refusal` changes no field and is kept as an open conflict.
    fn edit(
        &mut self,
        item: ferry_proto::ItemId,
        key: &Key,
        edit: &ferry_proto::twoway::RowEdit,
        refusal: Option<&str>,
    ) -> StoreResult<()> {
        if !self.edited.contains_key(&item) {
            let (rid, found) = super::records::find_item(self.tx, item)?;
            self.edited.insert(item, (rid, found.two_way));
        }
        let (rid, two_way) = self.edited[&item];
        let Some(two_way) = two_way else {
            return self.refuse_edit(
                item,
                key,
                ErrorCode::EditRefused,
                "two-way editing is off for this item",
            );
        };
        let row = super::twoway::read_row(self.tx, rid, key)?;
        if edit.base > row.seq {
            return self.refuse_edit(
                item,
                key,
                ErrorCode::VersionInvalid,
                &format!(
                    "the edit claims version {} of a row whose latest version is {}",
                    edit.base, row.seq
                ),
            );
        }
        let version = self.seqs.take();
        let current = row.origin()?;
        let judged = match refusal {
            None => {
                ferry_core::twoway::judge(Some(&current), edit, two_way.conflict_policy, version)
            }
            Some(_) => match ferry_core::twoway::refuse(Some(&current), edit, version) {
                Some(judged) => judged,
                None => return Ok(()),
            },
        };
        if judged.duplicate {
            return Ok(());
        }
        self.put(rid, key, version, judged.row.fields.as_ref())?;
        super::twoway::write_meta(
            self.tx,
            rid,
            key,
            Some(&super::twoway::meta_of(&judged.row)?),
        )?;
        if let Some(conflict) = &judged.conflict {
            super::twoway::record_conflict(
                self.tx,
                rid,
                item,
                key,
                super::twoway::Found {
                    edit,
                    conflict,
                    policy: two_way.conflict_policy,
                    reason: refusal,
                },
            )?;
            self.outcome.conflicts += 1;
        }
        if refusal.is_none() {
            self.outcome.edits += 1;
        }
        Ok(())
    }

    fn refuse_edit(
        &mut self,
        item: ferry_proto::ItemId,
        key: &Key,
        code: ErrorCode,
        why: &str,
    ) -> StoreResult<()> {
        self.outcome
            .refused_edits
            .push((item, key.clone(), code, why.to_string()));
        Ok(())
    }

    fn item(&mut self, item: &ReceivedItem) -> StoreResult<()> {
        let seq = self.seqs.take();
        let file = item
            .file
            .as_ref()
            .map(|(info, _)| to_json(info))
            .transpose()?;
        let existing = self.item_rid(&item.origin())?;
        // Kept after every link let go of it: changes made meanwhile never came, so it is copied
        // again, as if new here.
        let was_kept = match existing {
            Some(rid) => !self.tx.query_row_cached(
                "SELECT EXISTS (SELECT 1 FROM item_arrivals WHERE item_rid = ?1)",
                [rid],
                |r| r.get::<_, bool>(0),
            )?,
            None => false,
        };
        let mut became_copy = false;
        let rid = match existing {
            Some(rid) => {
                self.arrive(rid, item)?;
                // An accepted schema change is taken with this description: the acceptance
                // was for it.
                self.tx
                    .execute_cached("DELETE FROM schema_accepts WHERE item_rid = ?1", [rid])?;
                let before: String = self.tx.query_row_cached(
                    "SELECT markings FROM items WHERE rid = ?1",
                    [rid],
                    |r| r.get(0),
                )?;
                let markings = self.arrival_markings(rid)?;
                self.audit_markings(rid, &before, &markings)?;
                let was_reference = self.is_reference(rid)?;
                let reference = self.all_links_refer(rid)?;
                if reference && !was_reference {
                    // Now a reference: the rows held here go; reads go to the origin.
                    sweep_rows(self.tx, rid, i64::MAX, &mut self.seqs)?;
                    self.row_delta.remove(&rid);
                }
                became_copy = was_reference && !reference;
                self.tx.execute_cached(
                    "UPDATE items SET title = ?2, description = ?3, tags = ?4, markings = ?5,
                         schema = ?6, geometry_type = ?7, crs = ?8, file = coalesce(?9, file),
                         seq = ?10, version = version + 1, updated_at = ?11, reference = ?12,
                         row_count = CASE WHEN ?12 THEN ?13 WHEN reference THEN 0 ELSE row_count END,
                         sync_as = ?14, two_way = ?15
                     WHERE rid = ?1",
                    params![
                        rid,
                        item.title,
                        item.description,
                        to_json(&item.tags)?,
                        to_json(&markings)?,
                        item.schema.as_ref().map(to_json).transpose()?,
                        item.geometry_type.map(|g| g.as_str()),
                        item.crs,
                        file,
                        seq,
                        now(),
                        reference,
                        item.row_count,
                        item.sync_as.as_str(),
                        item.two_way.map(|t| to_json(&t)).transpose()?,
                    ],
                )?;
                self.references.insert(rid, reference);
                rid
            }
            None => {
                let rid = self.create(item, seq, file)?;
                self.arrive(rid, item)?;
                self.references.insert(rid, item.reference);
                rid
            }
        };
        // A large item the sender leaves to a whole copy (also in a full pass): none of its rows
        // come in the stream.
        let left_out = item.copy_whole && !item.reference;
        // An item new here with rows older than the cursor: those never come in the stream.
        let older_rows = (existing.is_none() || was_kept) && !item.whole && !item.reference;
        if self.batch.cursor.resync && !left_out {
            self.tx.execute_cached(
                "INSERT OR IGNORE INTO sync_copy_starts (channel, item_rid, seq) VALUES (?1, ?2, ?3)",
                params![self.batch.channel, rid, seq],
            )?;
        } else if left_out || older_rows || became_copy {
            // Copied whole; the copy's last part sweeps the rows it did not bring.
            self.tx.execute_cached(
                "INSERT OR IGNORE INTO sync_pending (channel, origin_instance, origin_item, title)
                 VALUES (?1, ?2, ?3, ?4)",
                params![
                    self.batch.channel,
                    item.origin_instance,
                    item.origin_item,
                    item.title
                ],
            )?;
        }
        // New here, all its rows in this stream: some may land in a later batch.
        let inline_new = (existing.is_none() || was_kept) && item.whole && !item.reference;
        if inline_new && !left_out {
            self.tx.execute_cached(
                "INSERT OR IGNORE INTO sync_inline_arrivals (channel, item_rid) VALUES (?1, ?2)",
                params![self.batch.channel, rid],
            )?;
        }
        if let Some((_, chunks)) = &item.file {
            self.replace_chunks(rid, chunks)?;
        }
        self.outcome.items += 1;
        Ok(())
    }

    fn create(&mut self, item: &ReceivedItem, seq: i64, file: Option<String>) -> StoreResult<i64> {
        let ts = now();
        self.tx.execute_cached(
            "INSERT INTO items (id, space_rid, kind, title, description, tags, markings, owner,
                 created_at, updated_at, version, seq, crs, file, schema, geometry_type, row_count,
                 created_seq, reference, sync_as, two_way)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9, 1, ?10, ?11, ?12, ?13, ?14, ?15, ?10,
                 ?16, ?17, ?18)",
            params![
                ItemId::generate().to_string(),
                self.space_rid,
                item.kind.as_str(),
                item.title,
                item.description,
                to_json(&item.tags)?,
                to_json(&item.markings)?,
                self.batch.owner,
                ts,
                seq,
                item.crs,
                file,
                item.schema.as_ref().map(to_json).transpose()?,
                item.geometry_type.map(|g| g.as_str()),
                if item.reference { item.row_count } else { 0 },
                item.reference,
                item.sync_as.as_str(),
                item.two_way.map(|t| to_json(&t)).transpose()?,
            ],
        )?;
        let rid = self.tx.last_insert_rowid();
        self.items.insert(item.origin(), rid);
        self.spaces.insert(rid, self.space_rid);
        Ok(rid)
    }

    fn replace_chunks(&mut self, rid: i64, chunks: &[crate::ChunkRef]) -> StoreResult<()> {
        let old = super::records::item_chunk_hashes(self.tx, rid)?;
        self.tx
            .execute_cached("DELETE FROM file_chunks WHERE item_rid = ?1", [rid])?;
        let mut stmt = self.tx.prepare_cached(
            "INSERT INTO file_chunks (item_rid, idx, hash, len) VALUES (?1, ?2, ?3, ?4)",
        )?;
        for (idx, c) in chunks.iter().enumerate() {
            stmt.execute(params![rid, idx as i64, c.hash.to_hex(), c.len as i64])?;
        }
        drop(stmt);
        let freed = super::records::unused_chunks(self.tx, old)?;
        self.outcome.freed_chunks.extend(freed);
        Ok(())
    }

    /// Writes a row (`Some`) or its tombstone (`None`), keeping the item's row count.
    fn row(
        &mut self,
        rid: i64,
        key: &Key,
        row: Option<&ferry_core::rows::RowRecord>,
    ) -> StoreResult<()> {
        let seq = self.seqs.take();
        let delta = match row {
            Some(row) => self.write(rid, key, seq, row)?,
            None => {
                let deleted = self
                    .tx
                    .prepare_cached(
                        "UPDATE rows SET deleted = 1, seq = ?3, vals = NULL, geom = NULL,
                         min_x = NULL, min_y = NULL, max_x = NULL, max_y = NULL, map_cell = NULL
                     WHERE item_rid = ?1 AND key = ?2 AND deleted = 0",
                    )?
                    .execute(params![rid, KeySql(key), seq])?;
                -(deleted as i64)
            }
        };
        *self.row_delta.entry(rid).or_default() += delta;
        self.outcome.rows += 1;
        Ok(())
    }

    /// Writes a received row; returns the change in the item's live rows. A first copy is all
    /// new rows and a delta mostly changed ones, so each item tries first what worked for its
    /// last row: the insert, or the update of a live row.
    fn write(
        &mut self,
        rid: i64,
        key: &Key,
        seq: i64,
        row: &ferry_core::rows::RowRecord,
    ) -> StoreResult<i64> {
        let owner = self.owner(rid)?;
        let geometry = row.geometry.as_ref();
        let inserting = *self.inserting.entry(rid).or_insert(true);
        if inserting {
            let insert = held(&mut self.insert_row, self.tx, super::records::INSERT_ROW)?;
            match write_row(insert, owner, key, seq, &row.values, geometry) {
                Ok(_) => return Ok(1),
                Err(e) if super::records::is_unique_violation(&e) => {
                    self.inserting.insert(rid, false);
                }
                Err(e) => return Err(e.into()),
            }
        }
        let [min_x, min_y, max_x, max_y] = super::records::stored_bbox(geometry);
        let updated = held(&mut self.update_row, self.tx, UPDATE_ROW)?.execute(params![
            rid,
            KeySql(key),
            seq,
            row.values,
            geometry.map(|g| super::records::stored_geometry(&g.text)),
            min_x,
            min_y,
            max_x,
            max_y,
            super::records::map_cell(key, geometry),
        ])?;
        if updated == 1 {
            return Ok(0);
        }
        // Absent or a tombstone: the row comes (back) to life.
        self.inserting.insert(rid, true);
        let mut upsert = self.tx.prepare_cached(UPSERT_ROW)?;
        write_row(&mut upsert, owner, key, seq, &row.values, geometry)?;
        Ok(1)
    }

    /// Rows repeat their item's space; an item that came by another link first may live in
    /// another space than this link's.
    fn owner(&mut self, rid: i64) -> StoreResult<RowOwner> {
        let space_rid = match self.spaces.get(&rid) {
            Some(s) => *s,
            None => {
                let s = self.tx.query_row_cached(
                    "SELECT space_rid FROM items WHERE rid = ?1",
                    [rid],
                    |r| r.get(0),
                )?;
                self.spaces.insert(rid, s);
                s
            }
        };
        Ok(RowOwner {
            item_rid: rid,
            space_rid,
        })
    }

    fn retract(&mut self, origin_instance: &str, origin_item: &str) -> StoreResult<()> {
        self.tx.execute_cached(
            "DELETE FROM sync_pending WHERE channel = ?1 AND origin_instance = ?2 AND origin_item = ?3",
            params![self.batch.channel, origin_instance, origin_item],
        )?;
        let origin = Origin::new(origin_instance, origin_item);
        let Some(rid) = self.item_rid(&origin)? else {
            return Ok(());
        };
        self.items.remove(&origin);
        self.retract_rid(rid)
    }

    /// Unties an item from this link; deletes it if the policy says so and no other link
    /// brought it.
    fn retract_rid(&mut self, rid: i64) -> StoreResult<()> {
        // A link retracts only what it brought: an item kept from another link, or held
        // through another one only, is not this link's to delete.
        if !arrives_by(self.tx, rid, self.batch)? {
            return Ok(());
        }
        keep_origin(self.tx, rid)?;
        self.tx.execute_cached(
            "DELETE FROM item_arrivals WHERE item_rid = ?1 AND link = ?2",
            params![rid, self.batch.link],
        )?;
        let other_links: i64 = self.tx.query_row_cached(
            "SELECT count(*) FROM item_arrivals WHERE item_rid = ?1",
            [rid],
            |r| r.get(0),
        )?;
        // A reference with no link left can never be read: it goes whatever the policy.
        if other_links == 0 && (self.batch.delete_retracted || self.is_reference(rid)?) {
            let seq = self.seqs.take();
            self.outcome
                .freed_chunks
                .extend(tombstone_item(self.tx, rid, seq)?);
            self.row_delta.remove(&rid);
        }
        self.outcome.retracted += 1;
        Ok(())
    }

    /// Moves every touched item to a new sequence, with its new row count.
    fn finish(mut self) -> StoreResult<BatchOutcome> {
        let touched: Vec<(i64, i64)> = self.row_delta.drain().collect();
        for (rid, delta) in touched {
            let seq = self.seqs.take();
            self.tx.execute_cached(
                "UPDATE items SET seq = ?2, version = version + 1, updated_at = ?3,
                     row_count = row_count + ?4 WHERE rid = ?1 AND deleted = 0",
                params![rid, seq, now(), delta],
            )?;
        }
        self.seqs.finish(self.tx)?;
        Ok(self.outcome)
    }
}

fn begin<'t, 'c, 'b>(
    tx: &'t Transaction<'c>,
    batch: &'b SyncBatch<'b>,
) -> StoreResult<Apply<'t, 'c, 'b>> {
    let (space_rid, _) = find_space(tx, batch.space)?;
    Ok(Apply {
        tx,
        batch,
        space_rid,
        seqs: SeqAlloc::begin(tx)?,
        items: FastMap::default(),
        spaces: FastMap::default(),
        inserting: FastMap::default(),
        references: FastMap::default(),
        row_delta: FastMap::default(),
        outcome: BatchOutcome::default(),
        insert_row: None,
        update_row: None,
        me: None,
        edited: FastMap::default(),
        geographic: FastMap::default(),
    })
}

pub(super) fn apply_batch(
    tx: &Transaction<'_>,
    batch: &SyncBatch<'_>,
) -> StoreResult<BatchOutcome> {
    let mut apply = begin(tx, batch)?;
    for op in in_key_order(batch.ops) {
        apply.op(op)?;
    }
    let outcome = apply.finish()?;
    set_cursor(tx, batch.channel, batch.cursor)?;
    Ok(outcome)
}

/// The ops of a batch with each run of row changes sorted by item and key (a stable sort: the
/// changes of one row keep their order; item records and retractions stay where they are). A
/// delta's changes come in the order they were made, scattered over the table; in key order,
/// each B-tree is walked once from left to right, and the pages two changes share are near.
fn in_key_order(ops: &[SyncOp]) -> Vec<&SyncOp> {
    /// Where a row op writes: a received item's row (the op and the version after it), or a
    /// row of this instance's own item that an edit from a copy changes.
    #[derive(PartialEq, Eq, PartialOrd, Ord)]
    enum RowAt<'a> {
        Received(&'a Origin, &'a Key),
        Own(ItemId, &'a Key),
    }
    fn row_of(op: &SyncOp) -> Option<RowAt<'_>> {
        match op {
            SyncOp::Row { origin, row } => Some(RowAt::Received(origin, &row.key)),
            SyncOp::RowDeleted { origin, key } | SyncOp::RowVersion { origin, key, .. } => {
                Some(RowAt::Received(origin, key))
            }
            SyncOp::Edit { item, key, .. } | SyncOp::RefusedEdit { item, key, .. } => {
                Some(RowAt::Own(*item, key))
            }
            _ => None,
        }
    }
    let mut ordered: Vec<&SyncOp> = ops.iter().collect();
    for run in ordered.chunk_by_mut(|a, b| row_of(a).is_some() == row_of(b).is_some()) {
        if row_of(run[0]).is_some() {
            run.sort_by(|a, b| row_of(a).cmp(&row_of(b)));
        }
    }
    ordered
}

/// Applies one part of a whole copy of one item; the last part sweeps the rows the copy did not
/// bring (they are gone at the origin) and clears the item from the pending copies.
pub(super) fn apply_item_copy(
    tx: &Transaction<'_>,
    batch: &SyncBatch<'_>,
    origin_instance: &str,
    origin_item: &str,
    part: &mut crate::CopyPart,
) -> StoreResult<BatchOutcome> {
    let mut apply = begin(tx, batch)?;
    let origin = Origin::new(origin_instance, origin_item);
    if part.start.is_none() {
        part.start = Some(apply.seqs.last + 1);
        part.had_rows = match apply.item_rid(&origin)? {
            Some(rid) => tx.query_row_cached(
                "SELECT EXISTS (SELECT 1 FROM rows WHERE item_rid = ?1 AND deleted = 0)",
                [rid],
                |r| r.get(0),
            )?,
            None => false,
        };
    }
    for op in batch.ops {
        apply.op(op)?;
    }
    if !part.last {
        return apply.finish();
    }
    // Rows older than the copy exist only if the item had rows when it started: later writes
    // all take newer sequence numbers. A copy answered with a retraction brought nothing: what
    // another link brings stays.
    if let (true, Some(start), Some(rid)) = (part.had_rows, part.start, apply.item_rid(&origin)?)
        && arrives_by(tx, rid, batch)?
    {
        let swept = sweep_rows(tx, rid, start, &mut apply.seqs)?;
        *apply.row_delta.entry(rid).or_default() -= swept;
    }
    let outcome = apply.finish()?;
    tx.execute_cached(
        "DELETE FROM sync_pending WHERE channel = ?1 AND origin_instance = ?2 AND origin_item = ?3",
        params![batch.channel, origin_instance, origin_item],
    )?;
    Ok(outcome)
}

/// Whether the batch's channel still brings the item: on a host, the guests of one workspace
/// share a link, and one guest's channel must not sweep or retract what another brought.
fn arrives_by(tx: &Transaction<'_>, rid: i64, batch: &SyncBatch<'_>) -> StoreResult<bool> {
    tx.query_row_cached(
        "SELECT EXISTS (SELECT 1 FROM item_arrivals WHERE item_rid = ?1 AND link = ?2
             AND (channel = ?3 OR channel IS NULL))",
        params![rid, batch.link, batch.channel],
        |r| r.get(0),
    )
    .map_err(Into::into)
}

/// Tombstones the live rows of an item last written before `before`; returns how many.
fn sweep_rows(
    tx: &Transaction<'_>,
    rid: i64,
    before: i64,
    seqs: &mut SeqAlloc,
) -> StoreResult<i64> {
    let keys: Vec<Key> = tx
        // A row with an edit the origin has not judged yet stays: the edit is on its way.
        .prepare_cached(
            "SELECT key FROM rows
             WHERE item_rid = ?1 AND deleted = 0 AND seq < ?2 AND pending IS NULL",
        )?
        .query_map(params![rid, before], |r| {
            super::records::key_from_sql(r.get_ref(0)?)
        })?
        .collect::<Result<_, _>>()?;
    let mut stmt = tx.prepare_cached(
        "UPDATE rows SET deleted = 1, seq = ?3, vals = NULL, geom = NULL,
             min_x = NULL, min_y = NULL, max_x = NULL, max_y = NULL, map_cell = NULL
         WHERE item_rid = ?1 AND key = ?2",
    )?;
    for key in &keys {
        stmt.execute(params![rid, KeySql(key), seqs.take()])?;
    }
    Ok(keys.len() as i64)
}

/// Ends a full pass: rows of each copied item that the pass did not bring are swept, and items
/// the pass did not bring at all are retracted.
pub(super) fn finish_resync(
    tx: &Transaction<'_>,
    batch: &SyncBatch<'_>,
) -> StoreResult<BatchOutcome> {
    let mut apply = begin(tx, batch)?;
    let starts: Vec<(i64, i64)> = tx
        .prepare_cached("SELECT item_rid, seq FROM sync_copy_starts WHERE channel = ?1")?
        .query_map([batch.channel], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    for (rid, start) in starts {
        let swept = sweep_rows(tx, rid, start, &mut apply.seqs)?;
        if swept > 0 {
            *apply.row_delta.entry(rid).or_default() -= swept;
        }
    }
    let stale: Vec<i64> = tx
        .prepare_cached(
            // An item this pass refused waits with its last accepted version (it is among the
            // channel's pending copies, with why): not brought is not gone.
            "SELECT a.item_rid FROM item_arrivals a
             WHERE a.link = ?1 AND a.stale = 1 AND (a.channel = ?2 OR a.channel IS NULL)
               AND NOT EXISTS (SELECT 1 FROM sync_pending p WHERE p.channel = ?2
                   AND p.origin_instance = a.origin_instance AND p.origin_item = a.origin_item)",
        )?
        .query_map(params![batch.link, batch.channel], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    for rid in stale {
        apply.retract_rid(rid)?;
    }
    let outcome = apply.finish()?;
    tx.execute_cached(
        "DELETE FROM sync_copy_starts WHERE channel = ?1",
        [batch.channel],
    )?;
    set_cursor(tx, batch.channel, batch.cursor)?;
    Ok(outcome)
}

pub(super) fn pending(conn: &Connection, channel: &str) -> StoreResult<Vec<PendingCopy>> {
    conn.prepare_cached(
        "SELECT origin_instance, origin_item, title, error_code, error FROM sync_pending
         WHERE channel = ?1 ORDER BY origin_item",
    )?
    .query_map([channel], |r| {
        Ok(PendingCopy {
            origin_instance: r.get(0)?,
            origin_item: r.get(1)?,
            title: r.get(2)?,
            error_code: r.get(3)?,
            error: r.get(4)?,
        })
    })?
    .collect::<Result<_, _>>()
    .map_err(Into::into)
}

pub(super) fn mark_pending(
    tx: &Transaction<'_>,
    channel: &str,
    copy: &PendingCopy,
) -> StoreResult<()> {
    tx.execute_cached(
        "INSERT OR REPLACE INTO sync_pending
             (channel, origin_instance, origin_item, title, error_code, error)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            channel,
            copy.origin_instance,
            copy.origin_item,
            copy.title,
            copy.error_code,
            copy.error
        ],
    )?;
    Ok(())
}

/// Where an item came from: `None` for the instance's own items.
/// Remembers where an item came from before a link lets go of it, in case it is kept (see
/// `kept_origins`); an item that arrives again, or is deleted, forgets it.
pub(super) fn keep_origin(tx: &Transaction<'_>, rid: i64) -> StoreResult<()> {
    tx.execute_cached(
        "INSERT OR REPLACE INTO kept_origins (item_rid, origin_instance, origin_item)
         SELECT item_rid, origin_instance, origin_item FROM item_arrivals
         WHERE item_rid = ?1 LIMIT 1",
        [rid],
    )?;
    Ok(())
}

pub(super) fn item_origin(conn: &Connection, id: ItemId) -> StoreResult<Option<(String, String)>> {
    conn.query_row_cached(
        "SELECT o.origin_instance, o.origin_item FROM items i
         JOIN (SELECT item_rid, origin_instance, origin_item FROM item_arrivals
               UNION ALL SELECT item_rid, origin_instance, origin_item FROM kept_origins) o
           ON o.item_rid = i.rid
         WHERE i.id = ?1 LIMIT 1",
        [id.to_string()],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .optional()
    .map_err(Into::into)
}

pub(super) fn item_links(conn: &Connection, id: ItemId) -> StoreResult<Vec<crate::ItemLink>> {
    conn.prepare_cached(
        "SELECT a.link, a.origin_instance, a.origin_item FROM item_arrivals a
         JOIN items i ON i.rid = a.item_rid WHERE i.id = ?1 ORDER BY a.link",
    )?
    .query_map([id.to_string()], |r| {
        Ok(crate::ItemLink {
            link: r.get(0)?,
            origin_instance: r.get(1)?,
            origin_item: r.get(2)?,
        })
    })?
    .collect::<Result<_, _>>()
    .map_err(Into::into)
}

pub(super) fn arrivals_in(
    conn: &Connection,
    space_ref: Option<&str>,
) -> StoreResult<Vec<(ItemId, crate::ItemLink)>> {
    let space_rid = match space_ref {
        Some(space) => Some(super::records::find_space(conn, space)?.0),
        None => None,
    };
    conn.prepare_cached(
        "SELECT i.id, a.link, a.origin_instance, a.origin_item FROM item_arrivals a
         JOIN items i ON i.rid = a.item_rid
         WHERE i.deleted = 0 AND (?1 IS NULL OR i.space_rid = ?1) ORDER BY i.rid, a.link",
    )?
    .query_map([space_rid], |r| {
        let id: String = r.get(0)?;
        Ok((
            id,
            crate::ItemLink {
                link: r.get(1)?,
                origin_instance: r.get(2)?,
                origin_item: r.get(3)?,
            },
        ))
    })?
    .map(|row| {
        let (id, link) = row?;
        let id = id.parse().map_err(|_| {
            StoreError::Backend(format!("item id '{id}' in the database is not an id"))
        })?;
        Ok((id, link))
    })
    .collect()
}

/// Live items some channel has a whole copy of still to finish, or whose inline rows its
/// stream has not all brought yet.
pub(super) fn arriving(conn: &Connection) -> StoreResult<Vec<ItemId>> {
    let ids: Vec<String> = conn
        .prepare_cached(
            "SELECT i.id FROM sync_pending p
             JOIN item_arrivals a
               ON a.origin_item = p.origin_item AND a.origin_instance = p.origin_instance
             JOIN items i ON i.rid = a.item_rid
             WHERE i.deleted = 0
             UNION
             SELECT i.id FROM sync_inline_arrivals x JOIN items i ON i.rid = x.item_rid
             WHERE i.deleted = 0",
        )?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    ids.iter()
        .map(|id| super::records::stored_item_id(id))
        .collect()
}

/// Live items whose latest version a channel refused, with the refusal.
pub(super) fn stale(conn: &Connection) -> StoreResult<Vec<(ItemId, String)>> {
    let found: Vec<(String, String, String)> = conn
        .prepare_cached(
            "SELECT i.id, p.error_code, COALESCE(p.error, '') FROM sync_pending p
             JOIN item_arrivals a
               ON a.origin_item = p.origin_item AND a.origin_instance = p.origin_instance
             JOIN items i ON i.rid = a.item_rid
             WHERE i.deleted = 0 AND p.error_code IS NOT NULL",
        )?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<Result<_, _>>()?;
    found
        .into_iter()
        .map(|(id, code, why)| {
            Ok((
                super::records::stored_item_id(&id)?,
                format!("{why} ({code})"),
            ))
        })
        .collect()
}

/// Whether a channel's stream brought items new and inline that are not all here yet.
pub(super) fn inline_arrivals_of(conn: &Connection, channel: &str) -> StoreResult<bool> {
    Ok(conn.query_row_cached(
        "SELECT EXISTS (SELECT 1 FROM sync_inline_arrivals WHERE channel = ?1)",
        [channel],
        |r| r.get(0),
    )?)
}

/// A channel's stream reached its end: what came new and inline in it is all here.
pub(super) fn end_stream(tx: &Transaction<'_>, channel: &str) -> StoreResult<()> {
    tx.execute_cached(
        "DELETE FROM sync_inline_arrivals WHERE channel = ?1",
        [channel],
    )?;
    Ok(())
}

pub(super) fn item_by_origin(
    conn: &Connection,
    origin_instance: &str,
    origin_item: &str,
) -> StoreResult<Option<ItemId>> {
    let id: Option<String> = conn
        .query_row_cached(
            "SELECT i.id FROM (SELECT item_rid, origin_instance, origin_item FROM item_arrivals
                 UNION ALL SELECT item_rid, origin_instance, origin_item FROM kept_origins) o
             JOIN items i ON i.rid = o.item_rid
             WHERE o.origin_item = ?1 AND o.origin_instance = ?2 AND i.deleted = 0 LIMIT 1",
            params![origin_item, origin_instance],
            |r| r.get(0),
        )
        .optional()?;
    id.as_deref()
        .map(super::records::stored_item_id)
        .transpose()
}

pub(super) fn accept_schema(tx: &Transaction<'_>, id: ItemId) -> StoreResult<()> {
    let (rid, _) = super::records::find_item(tx, id)?;
    tx.execute_cached(
        "INSERT OR IGNORE INTO schema_accepts (item_rid) VALUES (?1)",
        [rid],
    )?;
    Ok(())
}

pub(super) fn schema_accepted(conn: &Connection, id: ItemId) -> StoreResult<bool> {
    Ok(conn.query_row_cached(
        "SELECT EXISTS (SELECT 1 FROM schema_accepts s JOIN items i ON i.rid = s.item_rid
         WHERE i.id = ?1)",
        [id.to_string()],
        |r| r.get(0),
    )?)
}

pub(super) fn open_edit_grace(tx: &Transaction<'_>, grace: &crate::EditGrace) -> StoreResult<()> {
    let mut types = grace.types;
    if let Some(open) = edit_graces(tx)?
        .into_iter()
        .find(|g| g.channel == grace.channel)
    {
        types = types.union(open.types);
    }
    tx.execute_cached(
        "INSERT INTO edit_graces (channel, types, until_ms) VALUES (?1, ?2, ?3)
         ON CONFLICT (channel) DO UPDATE SET types = excluded.types,
             until_ms = max(until_ms, excluded.until_ms)",
        params![grace.channel, types.names().join(","), grace.until_ms],
    )?;
    Ok(())
}

pub(super) fn edit_graces(conn: &Connection) -> StoreResult<Vec<crate::EditGrace>> {
    let rows: Vec<(String, String, i64)> = conn
        .prepare_cached("SELECT channel, types, until_ms FROM edit_graces")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<Result<_, _>>()?;
    rows.into_iter()
        .map(|(channel, types, until_ms)| {
            let types = ferry_proto::ticket::DataTypes::parse(&types)
                .map_err(|e| StoreError::Backend(format!("edit grace of {channel}: {e}")))?;
            Ok(crate::EditGrace {
                channel,
                types,
                until_ms,
            })
        })
        .collect()
}

const RUN_COLS: &str = "id, link, trigger, status, started_at, ended_at, items_received,
    rows_received, items_retracted, bytes_received, errors, message, direction, items_sent,
    rows_sent, bytes_sent";

/// Runs kept per link and direction: a peer decides how often it pulls, so the history of what
/// was sent to it must not grow without bound.
const RUNS_KEPT: i64 = 1_000;

/// Drops a link's runs of one direction beyond the newest [`RUNS_KEPT`].
fn prune_runs(tx: &Transaction<'_>, link: &str, direction: &str) -> StoreResult<()> {
    tx.execute_cached(
        "DELETE FROM sync_runs WHERE link = ?1 AND direction = ?2 AND started_at < (
             SELECT started_at FROM sync_runs WHERE link = ?1 AND direction = ?2
             ORDER BY started_at DESC LIMIT 1 OFFSET ?3)",
        params![link, direction, RUNS_KEPT - 1],
    )?;
    Ok(())
}

pub(super) fn record_run(tx: &Transaction<'_>, run: &SyncRunRecord) -> StoreResult<()> {
    tx.execute_cached(
        &format!(
            "INSERT OR REPLACE INTO sync_runs ({RUN_COLS}) VALUES
             (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)"
        ),
        params![
            run.id,
            run.link,
            run.trigger,
            run.status,
            run.started_at,
            run.ended_at,
            run.items_received,
            run.rows_received,
            run.items_retracted,
            run.bytes_received,
            to_json(&run.errors)?,
            run.message,
            run.direction,
            run.items_sent,
            run.rows_sent,
            run.bytes_sent
        ],
    )?;
    if run.ended_at.is_some() {
        prune_runs(tx, &run.link, &run.direction)?;
    }
    Ok(())
}

/// Adds a served request's counts to its send run. A failure sticks: the run's status says
/// whether every request of it went through.
pub(super) fn record_sent(tx: &Transaction<'_>, sent: &SentPart) -> StoreResult<()> {
    let now = now();
    let status = match sent.failure {
        Some(_) => "failed",
        None => "completed",
    };
    tx.execute_cached(
        "INSERT INTO sync_runs (id, link, trigger, status, started_at, ended_at, direction,
             peer_run, items_sent, rows_sent, items_retracted, bytes_sent, message)
         VALUES (?1, ?2, ?3, ?4, ?5, ?5, 'send', ?6, ?7, ?8, ?9, ?10, ?11)
         ON CONFLICT (link, peer_run) WHERE peer_run IS NOT NULL DO UPDATE SET
             ended_at = excluded.ended_at,
             items_sent = items_sent + excluded.items_sent,
             rows_sent = rows_sent + excluded.rows_sent,
             items_retracted = items_retracted + excluded.items_retracted,
             bytes_sent = bytes_sent + excluded.bytes_sent,
             status = CASE WHEN status = 'failed' THEN status ELSE excluded.status END,
             message = coalesce(message, excluded.message)",
        params![
            uuid::Uuid::new_v4().simple().to_string(),
            sent.link,
            sent.trigger,
            status,
            now,
            sent.peer_run,
            sent.items,
            sent.rows,
            sent.retracted,
            sent.bytes,
            sent.failure
        ],
    )?;
    prune_runs(tx, &sent.link, "send")
}

pub(super) fn runs(
    conn: &Connection,
    link: Option<&str>,
    direction: Option<&str>,
    limit: usize,
) -> StoreResult<Vec<SyncRunRecord>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {RUN_COLS} FROM sync_runs WHERE (?1 IS NULL OR link = ?1)
             AND (?3 IS NULL OR direction = ?3)
         ORDER BY started_at DESC, id DESC LIMIT ?2"
    ))?;
    let rows = stmt.query_map(params![link, limit as i64, direction], |r| {
        Ok((
            SyncRunRecord {
                id: r.get(0)?,
                link: r.get(1)?,
                trigger: r.get(2)?,
                status: r.get(3)?,
                started_at: r.get(4)?,
                ended_at: r.get(5)?,
                items_received: r.get(6)?,
                rows_received: r.get(7)?,
                items_retracted: r.get(8)?,
                bytes_received: r.get(9)?,
                errors: Vec::new(),
                message: r.get(11)?,
                direction: r.get(12)?,
                items_sent: r.get(13)?,
                rows_sent: r.get(14)?,
                bytes_sent: r.get(15)?,
            },
            r.get::<_, String>(10)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (mut run, errors) = row?;
        run.errors =
            serde_json::from_str(&errors).map_err(|e| StoreError::Backend(e.to_string()))?;
        out.push(run);
    }
    Ok(out)
}

pub(super) fn set_schedule(
    tx: &Transaction<'_>,
    link: &str,
    schedule: &ferry_core::sync::Schedule,
) -> StoreResult<()> {
    tx.execute_cached(
        "INSERT OR REPLACE INTO sync_schedules (link, every_secs, start_at, paused, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            link,
            schedule.every_secs,
            schedule.start_at,
            schedule.paused,
            now()
        ],
    )?;
    Ok(())
}

pub(super) fn schedules(
    conn: &Connection,
) -> StoreResult<Vec<(String, ferry_core::sync::Schedule)>> {
    conn.prepare_cached(
        "SELECT link, every_secs, start_at, paused FROM sync_schedules ORDER BY link",
    )?
    .query_map([], |r| {
        Ok((
            r.get(0)?,
            ferry_core::sync::Schedule {
                every_secs: r.get(1)?,
                start_at: r.get(2)?,
                paused: r.get::<_, i64>(3)? != 0,
            },
        ))
    })?
    .collect::<Result<_, _>>()
    .map_err(Into::into)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin(item: &str) -> std::sync::Arc<Origin> {
        Origin::new("i", item).into()
    }

    fn row(item: &str, key: i64, values: &str) -> SyncOp {
        SyncOp::Row {
            origin: origin(item),
            row: crate::RowRecord {
                key: Key::Int(key),
                values: values.into(),
                geometry: None,
            },
        }
    }

    fn deleted(item: &str, key: i64) -> SyncOp {
        SyncOp::RowDeleted {
            origin: origin(item),
            key: Key::Int(key),
        }
    }

    /// What each op is, in order: `item:key:values` for rows, `-item:key` for deletes.
    fn names(ops: &[&SyncOp]) -> Vec<String> {
        ops.iter()
            .map(|op| match op {
                SyncOp::Row { origin, row } => {
                    format!("{}:{}:{}", origin.item, row.key.to_value(), row.values)
                }
                SyncOp::RowDeleted { origin, key } => {
                    format!("-{}:{}", origin.item, key.to_value())
                }
                SyncOp::Retract { origin_item, .. } => format!("retract {origin_item}"),
                SyncOp::Item(item) => format!("item {}", item.origin_item),
                SyncOp::RowVersion { origin, key, .. } => {
                    format!("v{}:{}", origin.item, key.to_value())
                }
                SyncOp::Edit { item, key, .. } | SyncOp::RefusedEdit { item, key, .. } => {
                    format!("edit {item}:{}", key.to_value())
                }
            })
            .collect()
    }

    #[test]
    fn row_changes_go_in_key_order_and_each_row_keeps_its_own_order() {
        let retract = SyncOp::Retract {
            origin_instance: "i".into(),
            origin_item: "gone".into(),
        };
        let ops = vec![
            row("b", 9, "1"),
            row("a", 5, "1"),
            deleted("b", 9),
            row("a", 2, "1"),
            row("b", 9, "2"),
            retract,
            row("a", 7, "1"),
            row("a", 1, "1"),
        ];
        assert_eq!(
            names(&in_key_order(&ops)),
            vec![
                "a:2:1",
                "a:5:1",
                "b:9:1",
                "-b:9",
                "b:9:2",
                "retract gone",
                "a:1:1",
                "a:7:1"
            ],
            "sorted within each run of rows; the retraction stays between them"
        );
    }
}
