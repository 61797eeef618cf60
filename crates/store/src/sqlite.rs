//! The SQLite implementation of [`Store`]: one writer connection, a small pool of readers, WAL mode
//! so readers never wait for the writer. This file is the `Store` implementation; the work is in
//! its parts: `connections.rs` (the connections and the checkpoint thread), `content.rs`
//! (spaces, items, rows, files, the change feed), `trust.rs` (tokens, peers, policy rules,
//! audit, nonces), `collabs.rs`, `sync.rs` (the receiving side of sync) and `records.rs` (how
//! records map to SQL).

mod collabs;
mod connections;
mod content;
mod records;
mod sync;
mod trust;
mod twoway;

pub use connections::SqliteStore;
use connections::poisoned;
use records::*;

use crate::types::*;
use crate::{Store, StoreError, StoreResult};
use ferry_core::Key;
use ferry_core::tiles::Tile;
use ferry_proto::{
    AuditEntry, ChangePage, ChunkHash, Item, ItemId, ItemPatch, NewPolicyRule, NewSpace,
    PolicyRule, Role, Row, Space, SpacePatch, TokenId, TokenInfo,
};
use serde_json::Value;

impl Store for SqliteStore {
    fn sync_cursor(&self, channel: &str) -> StoreResult<Option<SyncCursor>> {
        self.read(|c| sync::cursor(c, channel))
    }

    fn begin_resync(&self, channel: &str, link: &str, cursor: &SyncCursor) -> StoreResult<()> {
        self.write(|tx| sync::begin_resync(tx, channel, link, cursor))
    }

    fn apply_sync_batch(&self, batch: &SyncBatch<'_>) -> StoreResult<BatchOutcome> {
        self.write(|tx| sync::apply_batch(tx, batch))
    }

    fn apply_item_copy(
        &self,
        batch: &SyncBatch<'_>,
        origin_instance: &str,
        origin_item: &str,
        part: &mut crate::CopyPart,
    ) -> StoreResult<BatchOutcome> {
        self.write(|tx| sync::apply_item_copy(tx, batch, origin_instance, origin_item, part))
    }

    fn finish_resync(&self, batch: &SyncBatch<'_>) -> StoreResult<BatchOutcome> {
        self.write(|tx| sync::finish_resync(tx, batch))
    }

    fn pending_copies(&self, channel: &str) -> StoreResult<Vec<PendingCopy>> {
        self.read(|c| sync::pending(c, channel))
    }

    fn end_stream(&self, channel: &str) -> StoreResult<()> {
        // Most streams bring no new inline item: a read spares them a write transaction.
        if !self.read(|c| sync::inline_arrivals_of(c, channel))? {
            return Ok(());
        }
        self.write(|tx| sync::end_stream(tx, channel))
    }

    fn stale_items(&self) -> StoreResult<Vec<(ItemId, String)>> {
        self.read(sync::stale)
    }

    fn arriving_items(&self) -> StoreResult<Vec<ItemId>> {
        self.read(sync::arriving)
    }

    fn mark_pending(&self, channel: &str, copy: &PendingCopy) -> StoreResult<()> {
        self.write(|tx| sync::mark_pending(tx, channel, copy))
    }

    fn item_origin(&self, id: ItemId) -> StoreResult<Option<(String, String)>> {
        self.read(|c| sync::item_origin(c, id))
    }

    fn arrivals_in(&self, space_ref: Option<&str>) -> StoreResult<Vec<(ItemId, crate::ItemLink)>> {
        self.read(|c| sync::arrivals_in(c, space_ref))
    }

    fn item_links(&self, id: ItemId) -> StoreResult<Vec<crate::ItemLink>> {
        self.read(|c| sync::item_links(c, id))
    }

    fn item_by_origin(
        &self,
        origin_instance: &str,
        origin_item: &str,
    ) -> StoreResult<Option<ItemId>> {
        self.read(|c| sync::item_by_origin(c, origin_instance, origin_item))
    }

    fn accept_schema(&self, id: ItemId) -> StoreResult<()> {
        self.write(|tx| sync::accept_schema(tx, id))
    }

    fn schema_accepted(&self, id: ItemId) -> StoreResult<bool> {
        self.read(|c| sync::schema_accepted(c, id))
    }

    fn open_edit_grace(&self, grace: &crate::EditGrace) -> StoreResult<()> {
        self.write(|tx| sync::open_edit_grace(tx, grace))
    }

    fn edit_graces(&self) -> StoreResult<Vec<crate::EditGrace>> {
        self.read(sync::edit_graces)
    }

    fn close_edit_grace(&self, channel: &str, until_ms: i64) -> StoreResult<()> {
        self.write(|tx| {
            tx.execute_cached(
                "DELETE FROM edit_graces WHERE channel = ?1 AND until_ms <= ?2",
                rusqlite::params![channel, until_ms],
            )?;
            Ok(())
        })
    }

    fn set_schedule(&self, link: &str, schedule: &ferry_core::sync::Schedule) -> StoreResult<()> {
        self.write(|tx| sync::set_schedule(tx, link, schedule))
    }

    fn schedules(&self) -> StoreResult<Vec<(String, ferry_core::sync::Schedule)>> {
        self.read(sync::schedules)
    }

    fn record_run(&self, run: &SyncRunRecord) -> StoreResult<()> {
        self.write(|tx| sync::record_run(tx, run))
    }

    fn record_sent(&self, sent: &SentPart) -> StoreResult<()> {
        self.write(|tx| sync::record_sent(tx, sent))
    }

    fn list_runs(
        &self,
        link: Option<&str>,
        direction: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<SyncRunRecord>> {
        self.read(|c| sync::runs(c, link, direction, limit))
    }

    fn insert_collab(
        &self,
        record: &CollabRecord,
        audit: &NewAuditEntry,
    ) -> StoreResult<CollabRecord> {
        self.write(|tx| collabs::insert(tx, record, audit))
    }

    fn update_collab(
        &self,
        record: &CollabRecord,
        audit: &NewAuditEntry,
    ) -> StoreResult<CollabRecord> {
        self.write(|tx| collabs::update(tx, record, audit))
    }

    fn collab(&self, id: &str) -> StoreResult<CollabRecord> {
        self.read(|c| {
            collabs::find(c, id)?.ok_or_else(|| StoreError::CollabNotFound(id.to_string()))
        })
    }

    fn list_collabs(&self) -> StoreResult<Vec<CollabRecord>> {
        self.read(collabs::list)
    }

    fn record_arrival(
        &self,
        item: ItemId,
        link: &str,
        origin_instance: &str,
        origin_item: &str,
    ) -> StoreResult<()> {
        self.write(|tx| collabs::record_arrival(tx, item, link, origin_instance, origin_item))
    }

    fn end_arrivals(
        &self,
        which: Arrivals<'_>,
        delete_orphans: bool,
        audit: &NewAuditEntry,
    ) -> StoreResult<EndedArrivals> {
        self.write(|tx| {
            let orphaned = collabs::end_arrivals(tx, which)?;
            // A reference with no link left can never be read again: it goes whatever the
            // policy (it holds no data to keep).
            let doomed: Vec<(i64, ItemId)> = orphaned
                .iter()
                .filter(|(_, _, reference)| delete_orphans || *reference)
                .map(|(rid, id, _)| (*rid, *id))
                .collect();
            let orphaned: Vec<ItemId> = orphaned.into_iter().map(|(_, id, _)| id).collect();
            if doomed.is_empty() {
                return Ok(EndedArrivals {
                    orphaned,
                    ..Default::default()
                });
            }
            let mut seqs = SeqAlloc::begin(tx)?;
            let mut freed = Vec::new();
            for (rid, _) in &doomed {
                freed.extend(tombstone_item(tx, *rid, seqs.take())?);
            }
            seqs.finish(tx)?;
            let ids: Vec<ItemId> = doomed.into_iter().map(|(_, id)| id).collect();
            let mut entry = audit.clone();
            if let Value::Object(detail) = &mut entry.detail {
                detail.insert("items".into(), serde_json::to_value(&ids)?);
            }
            audit_in(tx, &entry)?;
            Ok(EndedArrivals {
                orphaned,
                deleted: delete_orphans,
                freed_chunks: freed,
            })
        })
    }

    fn insert_peer(&self, record: &PeerRecord, audit: &NewAuditEntry) -> StoreResult<PeerRecord> {
        trust::insert_peer(self, record, audit)
    }

    fn update_peer(&self, record: &PeerRecord, audit: &NewAuditEntry) -> StoreResult<PeerRecord> {
        trust::update_peer(self, record, audit)
    }

    fn peer(&self, id: &str) -> StoreResult<PeerRecord> {
        trust::peer(self, id)
    }

    fn peer_by_request(
        &self,
        role: ferry_core::peering::Role,
        request_id: &str,
    ) -> StoreResult<Option<PeerRecord>> {
        trust::peer_by_request(self, role, request_id)
    }

    fn list_peers(&self) -> StoreResult<Vec<PeerRecord>> {
        trust::list_peers(self)
    }

    fn add_policy_rule(&self, rule: &NewPolicyRule, actor: &str) -> StoreResult<PolicyRule> {
        trust::add_policy_rule(self, rule, actor)
    }

    fn list_policy_rules(&self) -> StoreResult<Vec<PolicyRule>> {
        trust::list_policy_rules(self)
    }

    fn remove_policy_rule(&self, id: &str, actor: &str) -> StoreResult<PolicyRule> {
        trust::remove_policy_rule(self, id, actor)
    }

    fn audit(&self, entry: &NewAuditEntry) -> StoreResult<()> {
        trust::audit(self, entry)
    }

    fn list_audit(&self, after: i64, limit: usize) -> StoreResult<Vec<AuditEntry>> {
        trust::list_audit(self, after, limit)
    }

    fn list_audit_newest(&self, before: i64, limit: usize) -> StoreResult<Vec<AuditEntry>> {
        trust::list_audit_newest(self, before, limit)
    }

    fn audit_of(&self, subject: &str) -> StoreResult<Vec<AuditEntry>> {
        trust::audit_of(self, subject)
    }

    fn remember_nonce(
        &self,
        key_id: &str,
        nonce: &[u8; 16],
        expires_at: i64,
        now: i64,
    ) -> StoreResult<bool> {
        trust::remember_nonce(self, key_id, nonce, expires_at, now)
    }

    fn close(&self) -> StoreResult<()> {
        self.stop_checkpointer();
        self.readers.lock().map_err(poisoned)?.clear();
        let conn = self.writer.lock().map_err(poisoned)?;
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        Ok(())
    }

    fn instance(&self) -> StoreResult<InstanceRecord> {
        self.read(|c| {
            Ok(InstanceRecord {
                id: meta(c, "instance_id")?,
                epoch: meta(c, "epoch")?,
                last_seq: meta_i64(c, "seq")?,
            })
        })
    }

    fn rotate_epoch(&self) -> StoreResult<String> {
        let epoch = uuid::Uuid::new_v4().to_string();
        self.write(|tx| {
            tx.execute_cached("UPDATE meta SET value = ?1 WHERE key = 'epoch'", [&epoch])?;
            Ok(())
        })?;
        Ok(epoch)
    }

    fn create_token(
        &self,
        name: &str,
        role: Role,
        secret_hash: [u8; 32],
        actor: &str,
    ) -> StoreResult<TokenInfo> {
        trust::create_token(self, name, role, secret_hash, actor)
    }

    fn token_by_hash(&self, secret_hash: [u8; 32]) -> StoreResult<Option<TokenInfo>> {
        trust::token_by_hash(self, secret_hash)
    }

    fn token(&self, id: TokenId) -> StoreResult<TokenInfo> {
        trust::token(self, id)
    }

    fn list_tokens(&self) -> StoreResult<Vec<TokenInfo>> {
        trust::list_tokens(self)
    }

    fn revoke_token(&self, id: TokenId, actor: &str) -> StoreResult<TokenInfo> {
        trust::revoke_token(self, id, actor)
    }

    fn create_space(&self, new: &NewSpace) -> StoreResult<Space> {
        content::create_space(self, new)
    }

    fn list_spaces(&self) -> StoreResult<Vec<Space>> {
        content::list_spaces(self)
    }

    fn space(&self, space_ref: &str) -> StoreResult<Space> {
        content::space(self, space_ref)
    }

    fn update_space(&self, space_ref: &str, patch: &SpacePatch) -> StoreResult<Space> {
        content::update_space(self, space_ref, patch)
    }

    fn delete_space(&self, space_ref: &str, force: bool) -> StoreResult<Vec<ChunkHash>> {
        content::delete_space(self, space_ref, force)
    }

    fn create_item(&self, draft: &ItemDraft, rows: &mut dyn RowSource) -> StoreResult<Item> {
        content::create_item(self, draft, rows)
    }

    fn item(&self, id: ItemId) -> StoreResult<Item> {
        content::item(self, id)
    }

    fn list_items_page(
        &self,
        space_ref: &str,
        offset: usize,
        limit: usize,
    ) -> StoreResult<Vec<Item>> {
        content::list_items_page(self, space_ref, offset, limit)
    }

    fn list_items(&self, space_ref: Option<&str>) -> StoreResult<Vec<Item>> {
        content::list_items(self, space_ref)
    }

    fn update_item(&self, id: ItemId, patch: &ItemPatch, actor: &str) -> StoreResult<Item> {
        content::update_item(self, id, patch, actor)
    }

    fn delete_item(&self, id: ItemId) -> StoreResult<Vec<ChunkHash>> {
        content::delete_item(self, id)
    }

    fn apply_edits(&self, id: ItemId, plan: &EditPlan) -> StoreResult<EditOutcome> {
        content::apply_edits(self, id, plan)
    }

    fn query_rows(&self, id: ItemId, query: &RowQuery) -> StoreResult<Vec<Row>> {
        content::query_rows(self, id, query)
    }

    fn tile_rows(&self, id: ItemId, tile: Tile, limit: usize) -> StoreResult<TileRows> {
        content::tile_rows(self, id, tile, limit)
    }

    fn conflicts(
        &self,
        status: Option<&str>,
        limit: usize,
        offset: usize,
    ) -> StoreResult<Vec<ferry_proto::twoway::ConflictRecord>> {
        self.read(|c| twoway::conflicts(c, status, limit, offset))
    }

    fn conflict(&self, id: &str) -> StoreResult<ferry_proto::twoway::ConflictRecord> {
        self.read(|c| twoway::conflict(c, id))
    }

    fn resolve_conflict(
        &self,
        id: &str,
        plan: &EditPlan,
        actor: &str,
    ) -> StoreResult<ferry_proto::twoway::ConflictRecord> {
        self.write(|tx| content::resolve_conflict(tx, id, plan, actor))
    }

    fn scan_rows(
        &self,
        id: ItemId,
        visit: &mut dyn FnMut(RawRow<'_>) -> StoreResult<()>,
    ) -> StoreResult<()> {
        content::scan_rows(self, id, visit)
    }

    fn row(&self, id: ItemId, key: &Key) -> StoreResult<Option<Row>> {
        content::row(self, id, key)
    }

    fn file_chunks(&self, id: ItemId) -> StoreResult<Vec<ChunkRef>> {
        content::file_chunks(self, id)
    }

    fn chunk_in_use(&self, hash: &ChunkHash) -> StoreResult<bool> {
        content::chunk_in_use(self, hash)
    }

    fn items_with_chunk(&self, hash: &ChunkHash) -> StoreResult<Vec<ItemId>> {
        content::items_with_chunk(self, hash)
    }

    fn changes(&self, space_ref: &str, after: i64, limit: usize) -> StoreResult<ChangePage> {
        content::changes(self, space_ref, after, limit)
    }

    fn raw_changes(
        &self,
        space_ref: &str,
        after: i64,
        limit: usize,
        skip_rows: &[ItemId],
        pending_only: &[ItemId],
    ) -> StoreResult<RawChangePage> {
        content::raw_changes(self, space_ref, after, limit, skip_rows, pending_only)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::Connection;

    /// A store in a temporary directory that lives as long as the store.
    pub(crate) struct TempStore {
        store: SqliteStore,
        _dir: tempfile::TempDir,
    }

    impl std::ops::Deref for TempStore {
        type Target = SqliteStore;
        fn deref(&self) -> &SqliteStore {
            &self.store
        }
    }

    fn open_temp() -> TempStore {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path().join("ferry.db")).unwrap();
        TempStore { store, _dir: dir }
    }

    crate::store_conformance_tests!(open_temp());

    /// Points written exactly as `{"type":"Point","coordinates":[...]}` keep their coordinates
    /// alone; every other text is kept whole.
    #[test]
    fn points_are_stored_as_their_coordinates() {
        let store = open_temp();
        crate::conformance::geometry_text_reads_back_as_written(&*store);
        let conn = store.writer.lock().unwrap();
        let stored: Vec<Option<String>> = conn
            .prepare("SELECT geom FROM rows ORDER BY key")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let texts = crate::conformance::GEOMETRY_TEXTS;
        let expected = [
            Some("1.5,-2.25"),
            Some("1,2"),
            Some(texts[2]),
            Some("1,2,3"),
            Some(texts[4]),
            Some(texts[5]),
            None,
        ];
        assert_eq!(stored, expected.map(|g| g.map(str::to_string)));
    }

    /// "Changes after N" must walk indexes, never scan rows: its cost follows the changes.
    #[test]
    fn change_feed_queries_use_their_indexes() {
        let store = open_temp();
        let conn = store.writer.lock().unwrap();
        let plan = |sql: &str| -> String {
            let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
            let rows = stmt.query_map([1, 2], |r| r.get::<_, String>(3)).unwrap();
            rows.map(Result::unwrap).collect::<Vec<_>>().join("; ")
        };
        let items = plan(&items_query(
            "i.space_rid = ?1 AND i.seq > ?2 ORDER BY i.seq LIMIT 10",
        ));
        assert!(items.contains("items_by_space_seq"), "{items}");
        assert!(!items.contains("TEMP B-TREE"), "no sort step: {items}");
        let rows = plan(&ROW_CHANGES.replace("?3", "10").replace("?4", "'[]'"));
        assert!(
            rows.contains("COVERING INDEX rows_by_space_seq"),
            "skipped rows are never read: {rows}"
        );
        assert!(!rows.contains("TEMP B-TREE"), "no sort step: {rows}");
    }

    #[test]
    fn reopening_keeps_identity_and_data() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ferry.db");
        let first = SqliteStore::open(&path).unwrap();
        first
            .create_space(&NewSpace {
                name: "kept".into(),
                description: String::new(),
            })
            .unwrap();
        let before = first.instance().unwrap();
        drop(first);
        let again = SqliteStore::open(&path).unwrap();
        assert_eq!(again.instance().unwrap(), before);
        assert_eq!(again.space("kept").unwrap().name, "kept");
    }

    #[test]
    fn databases_run_in_wal_mode_with_migrations_applied() {
        let store = open_temp();
        let conn = store.writer.lock().unwrap();
        let mode: String = conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, super::connections::MIGRATIONS.len() as i64);
    }

    /// A database written by a newer Ferry (here: one migration ahead) is refused, not misread.
    #[test]
    fn a_database_from_a_newer_version_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ferry.db");
        SqliteStore::open(&path).unwrap().close().unwrap();
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(
            None,
            "user_version",
            super::connections::MIGRATIONS.len() as i64 + 1,
        )
        .unwrap();
        drop(conn);
        let Err(e) = SqliteStore::open(&path) else {
            panic!("a newer database opened");
        };
        assert!(e.to_string().contains("migrating"), "{e}");
    }

    /// After `close` the database file alone holds everything: a backup that copies only
    /// `ferry.db` is complete.
    #[test]
    fn close_leaves_a_self_contained_database_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ferry.db");
        let store = SqliteStore::open(&path).unwrap();
        store
            .create_space(&NewSpace {
                name: "flushed".into(),
                description: String::new(),
            })
            .unwrap();
        store.close().unwrap();
        let copy = dir.path().join("copy.db");
        std::fs::copy(&path, &copy).unwrap();
        let copied = SqliteStore::open(&copy).unwrap();
        assert_eq!(copied.space("flushed").unwrap().name, "flushed");
        // The closed store still answers.
        assert_eq!(store.list_spaces().unwrap().len(), 1);
    }

    /// After a large write and nothing after it, the checkpoint thread truncates a WAL grown
    /// past its limit once every frame is in the database: it does not stay as large as the
    /// copy that grew it.
    #[test]
    fn a_grown_wal_is_truncated_after_the_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ferry.db");
        let keep = 16 * 1024;
        let store = SqliteStore::open_keeping_wal(&path, keep).unwrap();
        store
            .create_space(&NewSpace {
                name: "s".into(),
                description: String::new(),
            })
            .unwrap();
        crate::conformance::layer(&store, "s", 150);
        let wal = super::connections::wal_path(&path);
        let grown = std::fs::metadata(&wal).unwrap().len();
        assert!(grown > keep, "the import grew the WAL: {grown} bytes");
        let truncated = (0..100).any(|_| {
            std::thread::sleep(std::time::Duration::from_millis(50));
            std::fs::metadata(&wal).is_ok_and(|m| m.len() <= keep)
        });
        assert!(
            truncated,
            "the WAL stays at {} bytes",
            std::fs::metadata(&wal).unwrap().len()
        );
        assert_eq!(
            store.list_items(None).unwrap()[0].row_count,
            150,
            "the data is there"
        );
    }

    /// Rows written by a version before the map's index get their map cells when the database
    /// is upgraded: the map finds them as it finds new ones.
    #[test]
    fn rows_written_before_the_map_index_get_their_cells_on_upgrade() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ferry.db");
        let store = SqliteStore::open(&path).unwrap();
        store
            .create_space(&NewSpace {
                name: "s".into(),
                description: String::new(),
            })
            .unwrap();
        let item = crate::conformance::layer_of_geometry_texts(&store, "s");
        let world = Tile::new(0, 0, 0).unwrap();
        let before = store.tile_rows(item.id, world, 100).unwrap();
        assert_eq!((before.rows.len(), before.complete), (6, true));
        store.close().unwrap();
        drop(store);
        let conn = Connection::open(&path).unwrap();
        // Back to before the map cells: that migration and the ones after it undone.
        conn.execute_batch(
            "ALTER TABLE collab_links DROP COLUMN share; DROP TABLE edit_graces; DROP TABLE schema_accepts; DROP TABLE conflicts; DROP INDEX rows_pending; ALTER TABLE rows DROP COLUMN pending;
             ALTER TABLE rows DROP COLUMN twoway; ALTER TABLE items DROP COLUMN two_way;
             DROP INDEX rows_by_map_cell; ALTER TABLE rows DROP COLUMN map_cell;",
        )
        .unwrap();
        let version = super::connections::MAP_CELLS_MIGRATION as i64;
        conn.pragma_update(None, "user_version", version).unwrap();
        drop(conn);
        let upgraded = SqliteStore::open(&path).unwrap();
        assert_eq!(upgraded.tile_rows(item.id, world, 100).unwrap(), before);
    }
}
