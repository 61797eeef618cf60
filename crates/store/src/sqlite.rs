//! The SQLite implementation of [`Store`]: one writer connection, a small pool of readers, WAL mode
//! so readers never wait for the writer.

mod collabs;
mod records;
mod sync;

use records::*;

use crate::types::*;
use crate::{Store, StoreError, StoreResult};
use ferry_core::Key;
use ferry_proto::{
    AuditEntry, Change, ChangePage, ChunkHash, EditOp, Item, ItemId, ItemKind, ItemPatch,
    NewPolicyRule, NewSpace, PolicyRule, Role, Row, Space, SpaceId, SpacePatch, TokenId, TokenInfo,
};
use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};
use rusqlite_migration::{M, Migrations};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, sync_channel};

const MIGRATIONS: &[&str] = &[
    include_str!("../migrations/sqlite/0001_foundation.sql"),
    include_str!("../migrations/sqlite/0002_trust.sql"),
    include_str!("../migrations/sqlite/0003_peers.sql"),
    include_str!("../migrations/sqlite/0004_collaborations.sql"),
    include_str!("../migrations/sqlite/0005_sync.sql"),
    include_str!("../migrations/sqlite/0006_references.sql"),
    include_str!("../migrations/sqlite/0007_point_coordinates.sql"),
    include_str!("../migrations/sqlite/0008_send_runs.sql"),
    include_str!("../migrations/sqlite/0009_item_departures.sql"),
    include_str!("../migrations/sqlite/0010_kept_origins.sql"),
    include_str!("../migrations/sqlite/0011_arrival_markings.sql"),
    include_str!("../migrations/sqlite/0012_inline_arrivals.sql"),
];
const MAX_IDLE_READERS: usize = 4;

pub struct SqliteStore {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
    /// Wakes the checkpoint thread after a commit; `None` once the store is closed.
    checkpoint: Mutex<Option<SyncSender<()>>>,
    checkpointer: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish()
    }
}

/// Page cache of the writer, which does the heavy work (imports, received batches). Imports and
/// copies append in key and sequence order, and a delta's changed rows are scattered over far
/// more pages than any cache holds, so a larger cache only adds memory: with 32 MB the sync
/// benchmark ran no faster, and a sender peaked at 104 MiB where it now stays under 60.
const WRITER_CACHE_KIB: i64 = 8_000;
/// Page cache of each reader: up to [`MAX_IDLE_READERS`] of them stay open, so together they
/// must stay small (a feed scan would otherwise fill every reader's cache with the whole table).
/// A cache is never emptied while its connection lives, so idle readers hold at most 4 × 2 MB;
/// that is enough for the interior pages of a million-row table, and scans read each leaf once
/// anyway (the benchmarks ran as fast as with 8 of 4 MB).
const READER_CACHE_KIB: i64 = 2_000;

/// How many prepared statements each connection keeps, least recently used dropped first. The
/// store has about a hundred in all, few of them on any one path; parsing one again costs more
/// than running it when it touches a row or two, which is most of a sync with nothing to do.
const STATEMENT_CACHE: usize = 96;

fn open_connection(path: &Path, cache_kib: i64) -> StoreResult<Connection> {
    let conn = Connection::open(path)?;
    conn.execute_batch(&format!(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = NORMAL;
         PRAGMA foreign_keys = ON;
         PRAGMA busy_timeout = 10000;
         PRAGMA cache_size = -{cache_kib};"
    ))?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(conn)
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and applies pending migrations.
    pub fn open(path: impl AsRef<Path>) -> StoreResult<SqliteStore> {
        let path = path.as_ref().to_path_buf();
        let mut conn = open_connection(&path, WRITER_CACHE_KIB)?;
        let migrations = Migrations::new(MIGRATIONS.iter().map(|sql| M::up(sql)).collect());
        migrations
            .to_latest(&mut conn)
            .map_err(|e| StoreError::Backend(format!("migrating {}: {e}", path.display())))?;
        let tx = conn.transaction()?;
        for (key, value) in [
            ("instance_id", uuid::Uuid::now_v7().to_string()),
            ("epoch", uuid::Uuid::new_v4().to_string()),
            ("seq", "0".to_string()),
        ] {
            tx.execute_cached(
                "INSERT OR IGNORE INTO meta (key, value) VALUES (?1, ?2)",
                params![key, value],
            )?;
        }
        tx.commit()?;
        // Commits never copy the WAL into the database themselves: a thread does it after them,
        // so a large import answers as soon as its transaction commits.
        conn.execute_batch("PRAGMA wal_autocheckpoint = 0; PRAGMA journal_size_limit = 67108864;")?;
        let (wake, wakes) = sync_channel(1);
        let checkpoint_conn = open_connection(&path, READER_CACHE_KIB)?;
        let checkpointer = std::thread::Builder::new()
            .name("ferry-checkpoint".into())
            .spawn(move || checkpoint_loop(&checkpoint_conn, &wakes))?;
        Ok(SqliteStore {
            path,
            writer: Mutex::new(conn),
            readers: Mutex::new(Vec::new()),
            checkpoint: Mutex::new(Some(wake)),
            checkpointer: Mutex::new(Some(checkpointer)),
        })
    }

    /// Stops the checkpoint thread and waits until its connection is closed.
    fn stop_checkpointer(&self) {
        if let Ok(mut wake) = self.checkpoint.lock() {
            wake.take();
        }
        let thread = self.checkpointer.lock().ok().and_then(|mut t| t.take());
        if let Some(thread) = thread {
            let _ = thread.join();
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn read<T>(&self, f: impl FnOnce(&Connection) -> StoreResult<T>) -> StoreResult<T> {
        let pooled = self.readers.lock().map_err(poisoned)?.pop();
        let conn = match pooled {
            Some(c) => c,
            None => open_connection(&self.path, READER_CACHE_KIB)?,
        };
        let result = f(&conn);
        let mut pool = self.readers.lock().map_err(poisoned)?;
        if pool.len() < MAX_IDLE_READERS {
            pool.push(conn);
        }
        result
    }

    /// Runs `f` in one write transaction; any error rolls everything back.
    fn write<T>(&self, f: impl FnOnce(&Transaction<'_>) -> StoreResult<T>) -> StoreResult<T> {
        let mut conn = self.writer.lock().map_err(poisoned)?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let value = f(&tx)?;
        tx.commit()?;
        // A full channel means a checkpoint is already due; one more wake adds nothing.
        if let Some(wake) = self.checkpoint.lock().map_err(poisoned)?.as_ref() {
            let _ = wake.try_send(());
        }
        Ok(value)
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        self.stop_checkpointer();
    }
}

/// How long a checkpoint waits after the commit that asked for it. A burst of commits (a sync
/// applying batch after batch) is checkpointed a few times a second, not once per commit, and a
/// short burst only once it is over, off its path: pages that every commit touches (the right
/// edge of a growing table, its index, the item) are copied once per checkpoint, and each
/// checkpoint syncs the files to disk.
const CHECKPOINT_DELAY: std::time::Duration = std::time::Duration::from_millis(250);

/// Copies committed WAL frames into the database after writes, until the store is closed.
fn checkpoint_loop(conn: &Connection, wakes: &Receiver<()>) {
    while wakes.recv().is_ok() {
        // Commits meanwhile wake it again: this checkpoint takes them all. A store that closes
        // meanwhile checkpoints on its own (`close`), so the thread ends at once.
        let due = std::time::Instant::now() + CHECKPOINT_DELAY;
        loop {
            match wakes.recv_timeout(due.saturating_duration_since(std::time::Instant::now())) {
                Ok(()) => continue,
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
        // PASSIVE never blocks readers or the writer; frames it cannot copy yet wait for the next.
        if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::warn!(error = %e, "WAL checkpoint failed; it is retried after the next write");
        }
    }
}

fn poisoned<T>(_: T) -> StoreError {
    StoreError::Backend("a database connection lock was poisoned by an earlier panic".into())
}

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
        self.write(|tx| {
            if let Some(existing) = tx
                .query_row_cached(
                    "SELECT id FROM peer_connections WHERE role = ?1 AND request_id = ?2",
                    params![record.role.as_str(), record.request_id],
                    |r| r.get::<_, String>(0),
                )
                .optional()?
            {
                return Err(StoreError::PeerExists(existing));
            }
            write_peer(tx, record, false)?;
            audit_in(tx, audit)?;
            find_peer(tx, "p.id = ?1", &record.id)?
                .ok_or_else(|| StoreError::PeerNotFound(record.id.clone()))
        })
    }

    fn update_peer(&self, record: &PeerRecord, audit: &NewAuditEntry) -> StoreResult<PeerRecord> {
        self.write(|tx| {
            let current = find_peer(tx, "p.id = ?1", &record.id)?
                .ok_or_else(|| StoreError::PeerNotFound(record.id.clone()))?;
            // One writer at a time, so this compare-and-set is atomic.
            if current.version != record.version {
                return Err(StoreError::PeerChanged(record.id.clone()));
            }
            write_peer(tx, record, true)?;
            audit_in(tx, audit)?;
            find_peer(tx, "p.id = ?1", &record.id)?
                .ok_or_else(|| StoreError::PeerNotFound(record.id.clone()))
        })
    }

    fn peer(&self, id: &str) -> StoreResult<PeerRecord> {
        self.read(|c| {
            find_peer(c, "p.id = ?1", &id)?.ok_or_else(|| StoreError::PeerNotFound(id.to_string()))
        })
    }

    fn peer_by_request(
        &self,
        role: ferry_core::peering::Role,
        request_id: &str,
    ) -> StoreResult<Option<PeerRecord>> {
        self.read(|c| {
            c.query_row_cached(
                &peers_query("p.role = ?1 AND p.request_id = ?2"),
                params![role.as_str(), request_id],
                peer_row,
            )
            .optional()?
            .map(build_peer)
            .transpose()
        })
    }

    fn list_peers(&self) -> StoreResult<Vec<PeerRecord>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(&peers_query("1 = 1 ORDER BY p.created_at, p.id"))?;
            let rows = stmt.query_map([], peer_row)?;
            rows.map(|r| build_peer(r?)).collect()
        })
    }

    fn add_policy_rule(&self, rule: &NewPolicyRule, actor: &str) -> StoreResult<PolicyRule> {
        self.write(|tx| {
            let existing = tx
                .query_row_cached(
                    &format!("SELECT {RULE_COLS} FROM policy_rules WHERE direction = ?1 AND effect = ?2 AND pattern = ?3"),
                    params![rule.direction, rule.effect, rule.pattern],
                    rule_from_row,
                )
                .optional()?;
            if let Some(found) = existing {
                return Ok(found);
            }
            let added = PolicyRule {
                id: uuid::Uuid::now_v7().to_string(),
                direction: rule.direction.clone(),
                effect: rule.effect.clone(),
                pattern: rule.pattern.clone(),
                created_at: now(),
            };
            tx.execute_cached(
                "INSERT INTO policy_rules (id, direction, effect, pattern, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![added.id, added.direction, added.effect, added.pattern, added.created_at],
            )?;
            audit_in(tx, &rule_audit(actor, "policy.added", &added))?;
            Ok(added)
        })
    }

    fn list_policy_rules(&self) -> StoreResult<Vec<PolicyRule>> {
        self.read(|c| {
            c.prepare_cached(&format!(
                "SELECT {RULE_COLS} FROM policy_rules ORDER BY direction, created_at, id"
            ))?
            .query_map([], rule_from_row)?
            .collect::<Result<_, _>>()
            .map_err(Into::into)
        })
    }

    fn remove_policy_rule(&self, id: &str, actor: &str) -> StoreResult<PolicyRule> {
        self.write(|tx| {
            let rule = tx
                .query_row_cached(
                    &format!("SELECT {RULE_COLS} FROM policy_rules WHERE id = ?1"),
                    [id],
                    rule_from_row,
                )
                .optional()?
                .ok_or_else(|| StoreError::PolicyRuleNotFound(id.to_string()))?;
            tx.execute_cached("DELETE FROM policy_rules WHERE id = ?1", [id])?;
            audit_in(tx, &rule_audit(actor, "policy.removed", &rule))?;
            Ok(rule)
        })
    }

    fn audit(&self, entry: &NewAuditEntry) -> StoreResult<()> {
        self.write(|tx| audit_in(tx, entry))
    }

    fn list_audit(&self, after: i64, limit: usize) -> StoreResult<Vec<AuditEntry>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT seq, at, actor, event, subject, detail FROM audit_log WHERE seq > ?1 ORDER BY seq LIMIT ?2",
            )?;
            audit_rows(&mut stmt, params![after, limit as i64])
        })
    }

    fn list_audit_newest(&self, before: i64, limit: usize) -> StoreResult<Vec<AuditEntry>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT seq, at, actor, event, subject, detail FROM audit_log WHERE seq < ?1 ORDER BY seq DESC LIMIT ?2",
            )?;
            audit_rows(&mut stmt, params![before, limit as i64])
        })
    }

    fn audit_of(&self, subject: &str) -> StoreResult<Vec<AuditEntry>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT seq, at, actor, event, subject, detail FROM audit_log WHERE subject = ?1 ORDER BY seq",
            )?;
            audit_rows(&mut stmt, params![subject])
        })
    }

    fn remember_nonce(
        &self,
        key_id: &str,
        nonce: &[u8; 16],
        expires_at: i64,
        now: i64,
    ) -> StoreResult<bool> {
        self.write(|tx| {
            tx.execute_cached("DELETE FROM seen_nonces WHERE expires_at < ?1", [now])?;
            let inserted = tx.execute_cached(
                "INSERT OR IGNORE INTO seen_nonces (key_id, nonce, expires_at) VALUES (?1, ?2, ?3)",
                params![key_id, &nonce[..], expires_at],
            )?;
            Ok(inserted == 1)
        })
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
        let info = TokenInfo {
            id: TokenId::generate(),
            name: name.to_string(),
            role,
            created_at: now(),
            revoked_at: None,
        };
        self.write(|tx| {
            tx.execute_cached(
                "INSERT INTO tokens (id, name, role, secret_hash, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![info.id.to_string(), info.name, role.as_str(), &secret_hash[..], info.created_at],
            )?;
            audit_in(tx, &token_audit(actor, "token.created", &info))
        })?;
        Ok(info)
    }

    fn token_by_hash(&self, secret_hash: [u8; 32]) -> StoreResult<Option<TokenInfo>> {
        self.read(|c| {
            c.prepare_cached(&format!(
                "SELECT {TOKEN_COLS} FROM tokens WHERE secret_hash = ?1"
            ))?
            .query_row([&secret_hash[..]], token_from_row)
            .optional()?
            .map(token_info)
            .transpose()
        })
    }

    fn list_tokens(&self) -> StoreResult<Vec<TokenInfo>> {
        self.read(|c| {
            c.prepare_cached(&format!(
                "SELECT {TOKEN_COLS} FROM tokens ORDER BY created_at, id"
            ))?
            .query_map([], token_from_row)?
            .map(|r| token_info(r?))
            .collect()
        })
    }

    fn revoke_token(&self, id: TokenId, actor: &str) -> StoreResult<TokenInfo> {
        self.write(|tx| {
            let find = |tx: &Transaction<'_>| -> StoreResult<TokenInfo> {
                tx.query_row_cached(
                    &format!("SELECT {TOKEN_COLS} FROM tokens WHERE id = ?1"),
                    [id.to_string()],
                    token_from_row,
                )
                .optional()?
                .map(token_info)
                .transpose()?
                .ok_or_else(|| StoreError::TokenNotFound(id.to_string()))
            };
            let token = find(tx)?;
            if token.revoked_at.is_some() {
                return Ok(token);
            }
            if token.role == Role::Admin {
                let live_admins: i64 = tx.query_row_cached(
                    "SELECT count(*) FROM tokens WHERE role = 'admin' AND revoked_at IS NULL",
                    [],
                    |r| r.get(0),
                )?;
                if live_admins <= 1 {
                    return Err(StoreError::LastAdminToken(id.to_string()));
                }
            }
            tx.execute_cached(
                "UPDATE tokens SET revoked_at = ?2 WHERE id = ?1",
                params![id.to_string(), now()],
            )?;
            let revoked = find(tx)?;
            audit_in(tx, &token_audit(actor, "token.revoked", &revoked))?;
            Ok(revoked)
        })
    }

    fn create_space(&self, new: &NewSpace) -> StoreResult<Space> {
        self.write(|tx| {
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

    fn list_spaces(&self) -> StoreResult<Vec<Space>> {
        self.read(|c| {
            c.prepare_cached(&format!(
                "SELECT {SPACE_COLS} FROM spaces s ORDER BY s.name"
            ))?
            .query_map([], space_from_row)?
            .map(|r| Ok(r?.1))
            .collect()
        })
    }

    fn space(&self, space_ref: &str) -> StoreResult<Space> {
        self.read(|c| Ok(find_space(c, space_ref)?.1))
    }

    fn update_space(&self, space_ref: &str, patch: &SpacePatch) -> StoreResult<Space> {
        self.write(|tx| {
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

    fn delete_space(&self, space_ref: &str, force: bool) -> StoreResult<Vec<ChunkHash>> {
        self.write(|tx| {
            let (rid, space) = find_space(tx, space_ref)?;
            let links = collabs::links_to_space(tx, rid)?;
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

    fn create_item(&self, draft: &ItemDraft, rows: &mut dyn RowSource) -> StoreResult<Item> {
        self.write(|tx| {
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

    fn item(&self, id: ItemId) -> StoreResult<Item> {
        self.read(|c| Ok(find_item(c, id)?.1))
    }

    fn list_items(&self, space_ref: Option<&str>) -> StoreResult<Vec<Item>> {
        self.read(|c| {
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
                    let mut stmt =
                        c.prepare_cached(&items_query("i.deleted = 0 ORDER BY i.rid"))?;
                    for r in stmt.query_map([], decode_item)? {
                        raw.push(r?);
                    }
                }
            }
            raw.into_iter().map(|r| Ok(build_item(r)?.2)).collect()
        })
    }

    fn update_item(&self, id: ItemId, patch: &ItemPatch, actor: &str) -> StoreResult<Item> {
        self.write(|tx| {
            let (rid, item) = find_item(tx, id)?;
            let mut seqs = SeqAlloc::begin(tx)?;
            let seq = seqs.take();
            tx.execute_cached(
                "UPDATE items SET title = ?2, description = ?3, tags = ?4, markings = ?5,
                     version = version + 1, seq = ?6, updated_at = ?7, sync_as = ?8 WHERE rid = ?1",
                params![
                    rid,
                    patch.title.as_ref().unwrap_or(&item.title),
                    patch.description.as_ref().unwrap_or(&item.description),
                    to_json(patch.tags.as_ref().unwrap_or(&item.tags))?,
                    to_json(patch.markings.as_ref().unwrap_or(&item.markings))?,
                    seq,
                    now(),
                    patch.sync_as.unwrap_or(item.sync_as).as_str(),
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

    fn delete_item(&self, id: ItemId) -> StoreResult<Vec<ChunkHash>> {
        self.write(|tx| {
            let (rid, _) = find_item(tx, id)?;
            let mut seqs = SeqAlloc::begin(tx)?;
            let freed = tombstone_item(tx, rid, seqs.take())?;
            seqs.finish(tx)?;
            Ok(freed)
        })
    }

    fn apply_edits(&self, id: ItemId, plan: &EditPlan) -> StoreResult<EditOutcome> {
        self.write(|tx| {
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
            for (i, add) in plan.adds.iter().enumerate() {
                let (key, outcome) = run.add(add);
                run.record(EditOp::Add, i, key.as_ref(), outcome);
            }
            for (i, update) in plan.updates.iter().enumerate() {
                let outcome = run.update(update);
                run.record(EditOp::Update, i, Some(&update.key), outcome);
            }
            for (i, key) in plan.deletes.iter().enumerate() {
                let outcome = run.delete(key);
                run.record(EditOp::Delete, i, Some(key), outcome);
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
        })
    }

    fn query_rows(&self, id: ItemId, query: &RowQuery) -> StoreResult<Vec<Row>> {
        self.read(|c| {
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

    fn scan_rows(
        &self,
        id: ItemId,
        visit: &mut dyn FnMut(RawRow<'_>) -> StoreResult<()>,
    ) -> StoreResult<()> {
        self.read(|c| {
            // One read transaction: the scan sees one snapshot even while edits commit.
            let tx = c.unchecked_transaction()?;
            let (rid, item) = find_item(&tx, id)?;
            require_rows(id, &item)?;
            let mut stmt = tx.prepare_cached(
                "SELECT key, vals, geom FROM rows WHERE item_rid = ?1 AND deleted = 0 ORDER BY key",
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
                visit(RawRow {
                    key: &key,
                    values: vals,
                    geometry: geom.as_deref(),
                })?;
            }
            Ok(())
        })
    }

    fn row(&self, id: ItemId, key: &Key) -> StoreResult<Option<Row>> {
        self.read(|c| {
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

    fn file_chunks(&self, id: ItemId) -> StoreResult<Vec<ChunkRef>> {
        self.read(|c| {
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

    fn chunk_in_use(&self, hash: &ChunkHash) -> StoreResult<bool> {
        self.read(|c| Ok(unused_chunks(c, vec![*hash])?.is_empty()))
    }

    fn items_with_chunk(&self, hash: &ChunkHash) -> StoreResult<Vec<ItemId>> {
        self.read(|c| {
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

    fn changes(&self, space_ref: &str, after: i64, limit: usize) -> StoreResult<ChangePage> {
        let raw = self.raw_changes(space_ref, after, limit, &[])?;
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
                } => Change::Row {
                    seq,
                    item_id,
                    row: parse_row(key, seq, &values, geometry.as_deref())?,
                },
                RawChange::RowDeleted { item_id, key } => Change::RowDeleted {
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

    fn raw_changes(
        &self,
        space_ref: &str,
        after: i64,
        limit: usize,
        skip_rows: &[ItemId],
    ) -> StoreResult<RawChangePage> {
        let skip_rows = to_json(&skip_rows)?;
        self.read(|c| {
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
            let found = rows.query_map(params![space_rid, after, page, skip_rows], |r| {
                Ok((
                    key_from_sql(r.get_ref(0)?)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)? != 0,
                    r.get::<_, Option<String>>(3)?,
                    r.get::<_, Option<String>>(4)?,
                    r.get::<_, String>(5)?,
                ))
            })?;
            for r in found {
                let (key, seq, deleted, vals, geometry, item_id) = r?;
                let item_id = stored_item_id(&item_id)?;
                changes.push(if deleted {
                    (seq, RawChange::RowDeleted { item_id, key })
                } else {
                    let values = vals.unwrap_or_else(|| "{}".to_string());
                    (
                        seq,
                        RawChange::Row {
                            item_id,
                            key,
                            values,
                            geometry: geometry.map(owned_geometry_text),
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
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(version, MIGRATIONS.len() as i64);
    }

    /// A database written by a newer Ferry (here: one migration ahead) is refused, not misread.
    #[test]
    fn a_database_from_a_newer_version_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ferry.db");
        SqliteStore::open(&path).unwrap().close().unwrap();
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", MIGRATIONS.len() as i64 + 1)
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
}
