//! One writer connection and a small pool of readers over one database file, and the thread
//! that checkpoints the WAL after writes.

use super::records::CachedStatements;
use crate::{StoreError, StoreResult};
use rusqlite::{Connection, Transaction, TransactionBehavior, params};
use rusqlite_migration::{M, Migrations};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, sync_channel};

pub(super) const MIGRATIONS: &[&str] = &[
    include_str!("../../migrations/sqlite/0001_foundation.sql"),
    include_str!("../../migrations/sqlite/0002_trust.sql"),
    include_str!("../../migrations/sqlite/0003_peers.sql"),
    include_str!("../../migrations/sqlite/0004_collaborations.sql"),
    include_str!("../../migrations/sqlite/0005_sync.sql"),
    include_str!("../../migrations/sqlite/0006_references.sql"),
    include_str!("../../migrations/sqlite/0007_point_coordinates.sql"),
    include_str!("../../migrations/sqlite/0008_send_runs.sql"),
    include_str!("../../migrations/sqlite/0009_item_departures.sql"),
    include_str!("../../migrations/sqlite/0010_kept_origins.sql"),
    include_str!("../../migrations/sqlite/0011_arrival_markings.sql"),
    include_str!("../../migrations/sqlite/0012_inline_arrivals.sql"),
    include_str!("../../migrations/sqlite/0013_map_cells.sql"),
    include_str!("../../migrations/sqlite/0014_two_way.sql"),
    include_str!("../../migrations/sqlite/0015_schema_accepts.sql"),
    include_str!("../../migrations/sqlite/0016_edit_graces.sql"),
    include_str!("../../migrations/sqlite/0017_link_share.sql"),
];
/// Migrations whose rows need values SQL cannot compute, by their index in [`MIGRATIONS`].
pub(super) const MAP_CELLS_MIGRATION: usize = 12;
const MAX_IDLE_READERS: usize = 4;

pub struct SqliteStore {
    pub(super) path: PathBuf,
    pub(super) writer: Mutex<Connection>,
    pub(super) readers: Mutex<Vec<Connection>>,
    /// Wakes the checkpoint thread after a commit; `None` once the store is closed.
    pub(super) checkpoint: Mutex<Option<SyncSender<()>>>,
    pub(super) checkpointer: Mutex<Option<std::thread::JoinHandle<()>>>,
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

/// How long a connection waits for a lock another holds.
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

fn open_connection(path: &Path, cache_kib: i64) -> StoreResult<Connection> {
    let busy_ms = BUSY_TIMEOUT.as_millis();
    let conn = Connection::open(path)?;
    conn.execute_batch(&format!(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = NORMAL;
         PRAGMA foreign_keys = ON;
         PRAGMA busy_timeout = {busy_ms};
         PRAGMA cache_size = -{cache_kib};"
    ))?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(conn)
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and applies pending migrations.
    pub fn open(path: impl AsRef<Path>) -> StoreResult<SqliteStore> {
        SqliteStore::open_keeping_wal(path, WAL_KEEP_BYTES)
    }

    /// [`SqliteStore::open`], truncating the WAL once it outgrows `wal_keep_bytes` (tests give
    /// a small size).
    pub(crate) fn open_keeping_wal(
        path: impl AsRef<Path>,
        wal_keep_bytes: u64,
    ) -> StoreResult<SqliteStore> {
        let path = path.as_ref().to_path_buf();
        let mut conn = open_connection(&path, WRITER_CACHE_KIB)?;
        let migrations = Migrations::new(
            MIGRATIONS
                .iter()
                .enumerate()
                .map(|(i, sql)| match i {
                    MAP_CELLS_MIGRATION => M::up_with_hook(sql, super::records::fill_map_cells),
                    _ => M::up(sql),
                })
                .collect(),
        );
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
        conn.execute_batch(&format!(
            "PRAGMA wal_autocheckpoint = 0; PRAGMA journal_size_limit = {wal_keep_bytes};"
        ))?;
        let (wake, wakes) = sync_channel(1);
        let checkpoint_conn = open_connection(&path, READER_CACHE_KIB)?;
        let checkpointer = std::thread::Builder::new()
            .name("ferry-checkpoint".into())
            .spawn({
                let wal = wal_path(&path);
                move || checkpoint_loop(&checkpoint_conn, &wakes, &wal, wal_keep_bytes)
            })?;
        Ok(SqliteStore {
            path,
            writer: Mutex::new(conn),
            readers: Mutex::new(Vec::new()),
            checkpoint: Mutex::new(Some(wake)),
            checkpointer: Mutex::new(Some(checkpointer)),
        })
    }

    /// Stops the checkpoint thread and waits until its connection is closed.
    pub(super) fn stop_checkpointer(&self) {
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

    pub(super) fn read<T>(&self, f: impl FnOnce(&Connection) -> StoreResult<T>) -> StoreResult<T> {
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
    pub(super) fn write<T>(
        &self,
        f: impl FnOnce(&Transaction<'_>) -> StoreResult<T>,
    ) -> StoreResult<T> {
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

/// How long the store must have been written to no more before a grown WAL is truncated.
const TRUNCATE_AFTER_IDLE: std::time::Duration = std::time::Duration::from_secs(1);

/// How large the WAL may stay between checkpoints. SQLite reuses the file from its start once a
/// checkpoint has copied every frame, and trims it to this size only at the next write: after a
/// large copy with nothing written after it, the checkpoint thread truncates it itself.
const WAL_KEEP_BYTES: u64 = 64 << 20;

pub(super) fn wal_path(db: &Path) -> std::path::PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push("-wal");
    name.into()
}

/// Copies committed WAL frames into the database after writes, until the store is closed; a WAL
/// grown past `keep_bytes` is truncated once every frame is in the database.
fn checkpoint_loop(conn: &Connection, wakes: &Receiver<()>, wal: &Path, keep_bytes: u64) {
    let mut woken = wakes.recv().is_ok();
    while woken {
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
        let copied = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
            Ok(r.get::<_, i64>(0)? == 0 && r.get::<_, i64>(1)? == r.get::<_, i64>(2)?)
        });
        let grown = std::fs::metadata(wal).is_ok_and(|m| m.len() > keep_bytes);
        woken = match copied {
            // Truncated only once writes have stopped: truncating syncs the database file and
            // makes the next commits grow the WAL again, which a copy in progress must not pay.
            Ok(true) if grown => match wakes.recv_timeout(TRUNCATE_AFTER_IDLE) {
                Err(RecvTimeoutError::Timeout) => {
                    truncate_wal(conn);
                    wakes.recv().is_ok()
                }
                Err(RecvTimeoutError::Disconnected) => return,
                // A write came: checkpoint it first, truncate when quiet.
                Ok(()) => true,
            },
            Ok(_) => wakes.recv().is_ok(),
            Err(e) => {
                tracing::warn!(error = %e, "WAL checkpoint failed; it is retried after the next write");
                wakes.recv().is_ok()
            }
        };
    }
}

/// Truncates a WAL whose frames are all in the database, if no reader holds an older snapshot
/// right now: it does not wait (a writer would wait behind it), the next checkpoint tries again.
fn truncate_wal(conn: &Connection) {
    let _ = conn.busy_timeout(std::time::Duration::ZERO);
    if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())) {
        tracing::debug!(error = %e, "the WAL stays as it is until the next checkpoint");
    }
    let _ = conn.busy_timeout(BUSY_TIMEOUT);
}

pub(super) fn poisoned<T>(_: T) -> StoreError {
    StoreError::Backend("a database connection lock was poisoned by an earlier panic".into())
}
