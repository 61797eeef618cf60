//! The SQLite implementation of [`Store`]: one writer connection, a small pool of readers, WAL mode
//! so readers never wait for the writer.

mod collabs;
mod sync;

use crate::types::*;
use crate::{Store, StoreError, StoreResult};
use ferry_core::Key;
use ferry_core::geometry::{POINT_PREFIX, POINT_SUFFIX, plain_point_coordinates};
use ferry_proto::{
    ApiErrorBrief, AuditEntry, Change, ChangePage, ChunkHash, EditOp, EditResult, ErrorCode,
    GeometryType, Item, ItemId, ItemKind, ItemPatch, NewPolicyRule, NewSpace, PolicyRule, Role,
    Row, Space, SpaceId, SpacePatch, SyncAs, TokenId, TokenInfo,
};
use rusqlite::types::{ToSqlOutput, Value as SqlValue, ValueRef};
use rusqlite::{Connection, OptionalExtension, ToSql, Transaction, TransactionBehavior, params};
use rusqlite_migration::{M, Migrations};
use serde_json::{Map, Value};
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

fn now() -> String {
    ferry_core::time::now()
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

/// `execute` and `query_row` through the connection's prepared-statement cache.
trait CachedStatements {
    fn execute_cached(&self, sql: &str, params: impl rusqlite::Params) -> rusqlite::Result<usize>;
    fn query_row_cached<T>(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
        f: impl FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<T>;
}

impl CachedStatements for Connection {
    fn execute_cached(&self, sql: &str, params: impl rusqlite::Params) -> rusqlite::Result<usize> {
        self.prepare_cached(sql)?.execute(params)
    }

    fn query_row_cached<T>(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
        f: impl FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<T> {
        self.prepare_cached(sql)?.query_row(params, f)
    }
}

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

/// Hands out change-feed sequence numbers inside one write transaction. SQLite has one writer at a
/// time, so reading the counter at the start and storing it at the end is race-free.
struct SeqAlloc {
    last: i64,
}

impl SeqAlloc {
    fn begin(tx: &Transaction<'_>) -> StoreResult<SeqAlloc> {
        Ok(SeqAlloc {
            last: meta_i64(tx, "seq")?,
        })
    }

    fn take(&mut self) -> i64 {
        self.last += 1;
        self.last
    }

    fn finish(self, tx: &Transaction<'_>) -> StoreResult<()> {
        tx.execute_cached(
            "UPDATE meta SET value = ?1 WHERE key = 'seq'",
            [self.last.to_string()],
        )?;
        Ok(())
    }
}

fn meta(conn: &Connection, key: &str) -> StoreResult<String> {
    conn.query_row_cached("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
        .map_err(Into::into)
}

fn meta_i64(conn: &Connection, key: &str) -> StoreResult<i64> {
    meta(conn, key)?
        .parse()
        .map_err(|_| StoreError::Backend(format!("meta '{key}' is not a number")))
}

impl ToSql for KeySql<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self.0 {
            Key::Int(i) => ToSqlOutput::Owned(SqlValue::Integer(*i)),
            Key::Text(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
        })
    }
}

struct KeySql<'a>(&'a Key);

fn key_from_sql(v: ValueRef<'_>) -> rusqlite::Result<Key> {
    match v {
        ValueRef::Integer(i) => Ok(Key::Int(i)),
        ValueRef::Text(t) => Ok(Key::Text(String::from_utf8_lossy(t).into_owned())),
        other => Err(rusqlite::Error::InvalidColumnType(
            0,
            "key".into(),
            other.data_type(),
        )),
    }
}

fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _)
        if f.code == rusqlite::ErrorCode::ConstraintViolation)
}

// ---- tokens -------------------------------------------------------------------------------------

fn token_from_row(
    r: &rusqlite::Row<'_>,
) -> rusqlite::Result<(String, String, String, String, Option<String>)> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
}

fn token_info(raw: (String, String, String, String, Option<String>)) -> StoreResult<TokenInfo> {
    let (id, name, role, created_at, revoked_at) = raw;
    Ok(TokenInfo {
        id: id
            .parse()
            .map_err(|_| StoreError::Backend(format!("bad token id {id}")))?,
        name,
        role: Role::parse(&role).ok_or_else(|| StoreError::Backend(format!("bad role {role}")))?,
        created_at,
        revoked_at,
    })
}

const TOKEN_COLS: &str = "id, name, role, created_at, revoked_at";

// ---- spaces -------------------------------------------------------------------------------------

const SPACE_COLS: &str = "s.rid, s.id, s.name, s.description, s.created_at, s.updated_at,
    (SELECT count(*) FROM items i WHERE i.space_rid = s.rid AND i.deleted = 0)";

fn space_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(i64, Space)> {
    let id: String = r.get(1)?;
    Ok((
        r.get(0)?,
        Space {
            id: SpaceId(id.parse().unwrap_or_default()),
            name: r.get(2)?,
            description: r.get(3)?,
            created_at: r.get(4)?,
            updated_at: r.get(5)?,
            item_count: r.get(6)?,
        },
    ))
}

/// Finds a space by id or by name.
fn find_space(conn: &Connection, space_ref: &str) -> StoreResult<(i64, Space)> {
    let by = if uuid::Uuid::parse_str(space_ref).is_ok() {
        "id"
    } else {
        "name"
    };
    conn.query_row_cached(
        &format!("SELECT {SPACE_COLS} FROM spaces s WHERE s.{by} = ?1"),
        [space_ref],
        space_from_row,
    )
    .optional()?
    .ok_or_else(|| StoreError::SpaceNotFound(space_ref.to_string()))
}

// ---- items --------------------------------------------------------------------------------------

/// Moves an item and its rows to another space, at the item's new feed position (the last
/// one `seqs` gave): the old space's feed records the departure (its receivers retract the
/// item), and in the new one the item is as if created there: created at that position, its
/// rows after it in key order. So the rule "an item created after a receiver's cursor has all
/// its rows after it too" holds for the moved item, in a delta and in a full pass alike.
fn move_item(
    tx: &Transaction<'_>,
    rid: i64,
    item: &Item,
    space_ref: &str,
    seqs: &mut SeqAlloc,
) -> StoreResult<()> {
    let (to, _) = find_space(tx, space_ref)?;
    let (from, _) = find_space(tx, &item.space_id.to_string())?;
    if to == from {
        return Ok(());
    }
    let seq = seqs.last;
    tx.execute_cached(
        "UPDATE items SET space_rid = ?2, created_seq = ?3 WHERE rid = ?1",
        params![rid, to, seq],
    )?;
    let moved = tx.execute_cached(
        "UPDATE rows SET space_rid = ?2, seq = ?3 + n.place
         FROM (SELECT key AS k, row_number() OVER (ORDER BY key) AS place
               FROM rows WHERE item_rid = ?1) AS n
         WHERE rows.item_rid = ?1 AND rows.key = n.k",
        params![rid, to, seq],
    )?;
    seqs.last += moved as i64;
    let id = item.id.to_string();
    tx.execute_cached(
        "INSERT OR REPLACE INTO item_departures (space_rid, item_id, seq) VALUES (?1, ?2, ?3)",
        params![from, id, seq],
    )?;
    tx.execute_cached(
        "DELETE FROM item_departures WHERE space_rid = ?1 AND item_id = ?2",
        params![to, id],
    )?;
    Ok(())
}

const ITEM_COLS: &str = "i.rid, i.id, s.id, i.kind, i.title, i.description, i.tags, i.markings,
    i.owner, i.created_at, i.updated_at, i.version, i.seq, i.schema, i.geometry_type, i.crs,
    i.file, i.row_count, i.deleted, i.created_seq, i.sync_as, i.reference";

/// An item id as stored in a text column.
fn stored_item_id(text: &str) -> StoreResult<ItemId> {
    text.parse()
        .map_err(|_| StoreError::Backend(format!("stored item id '{text}' is corrupt")))
}

/// An item row as read, before its JSON columns are decoded.
struct ItemRow {
    rid: i64,
    deleted: bool,
    columns: [Option<String>; 10],
    version: i64,
    seq: i64,
    row_count: i64,
    created_seq: i64,
    sync_as: String,
    reference: bool,
}

fn item_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ItemRow> {
    let text = |i: usize| r.get::<_, Option<String>>(i);
    Ok(ItemRow {
        rid: r.get(0)?,
        columns: [
            text(1)?,
            text(2)?,
            text(3)?,
            text(4)?,
            text(5)?,
            text(6)?,
            text(7)?,
            text(8)?,
            text(9)?,
            text(10)?,
        ],
        version: r.get(11)?,
        seq: r.get(12)?,
        row_count: r.get(17)?,
        deleted: r.get::<_, i64>(18)? != 0,
        created_seq: r.get(19)?,
        sync_as: r.get(20)?,
        reference: r.get::<_, i64>(21)? != 0,
    })
}

fn decode_item(r: &rusqlite::Row<'_>) -> rusqlite::Result<(ItemRow, [Option<String>; 4])> {
    let extra = [r.get(13)?, r.get(14)?, r.get(15)?, r.get(16)?];
    Ok((item_row(r)?, extra))
}

fn build_item(raw: (ItemRow, [Option<String>; 4])) -> StoreResult<(i64, bool, Item)> {
    let (row, [schema, geometry_type, crs, file]) = raw;
    let c = |i: usize| row.columns[i].clone().unwrap_or_default();
    let corrupt = |what: &str| StoreError::Backend(format!("stored item has a bad {what}"));
    let item = Item {
        id: c(0).parse().map_err(|_| corrupt("id"))?,
        space_id: c(1).parse().map_err(|_| corrupt("space id"))?,
        kind: ItemKind::parse(&c(2)).ok_or_else(|| corrupt("kind"))?,
        title: c(3),
        description: c(4),
        tags: serde_json::from_str(&c(5))?,
        markings: serde_json::from_str(&c(6))?,
        owner: c(7),
        created_at: c(8),
        updated_at: c(9),
        version: row.version,
        seq: row.seq,
        created_seq: row.created_seq,
        schema: schema.map(|s| serde_json::from_str(&s)).transpose()?,
        geometry_type: geometry_type.and_then(|g| GeometryType::parse(&g)),
        crs,
        row_count: row.row_count,
        file: file.map(|f| serde_json::from_str(&f)).transpose()?,
        sync_as: SyncAs::parse(&row.sync_as).ok_or_else(|| corrupt("sync_as"))?,
        reference: row.reference,
        stale: None,
    };
    Ok((row.rid, row.deleted, item))
}

fn items_query(filter: &str) -> String {
    format!("SELECT {ITEM_COLS} FROM items i JOIN spaces s ON s.rid = i.space_rid WHERE {filter}")
}

/// A live item and its row id.
fn find_item(conn: &Connection, id: ItemId) -> StoreResult<(i64, Item)> {
    let raw = conn
        .query_row_cached(&items_query("i.id = ?1"), [id.to_string()], decode_item)
        .optional()?;
    match raw.map(build_item).transpose()? {
        Some((rid, false, item)) => Ok((rid, item)),
        _ => Err(StoreError::ItemNotFound(id.to_string())),
    }
}

fn require_rows(id: ItemId, item: &Item) -> StoreResult<()> {
    if item.kind.has_rows() {
        Ok(())
    } else {
        Err(StoreError::WrongItemKind {
            id: id.to_string(),
            actual: item.kind.as_str(),
            expected: "dataset or feature_layer",
        })
    }
}

fn to_json<T: serde::Serialize>(v: &T) -> StoreResult<String> {
    serde_json::to_string(v).map_err(|e| StoreError::Backend(e.to_string()))
}

/// Removes an item's rows and chunks and leaves its tombstone. Returns chunks no longer used.
fn tombstone_item(tx: &Transaction<'_>, rid: i64, seq: i64) -> StoreResult<Vec<ChunkHash>> {
    let hashes = item_chunk_hashes(tx, rid)?;
    tx.execute_cached("DELETE FROM rows WHERE item_rid = ?1", [rid])?;
    tx.execute_cached("DELETE FROM file_chunks WHERE item_rid = ?1", [rid])?;
    tx.execute_cached(
        "UPDATE items SET deleted = 1, seq = ?2, version = version + 1, updated_at = ?3,
             row_count = 0 WHERE rid = ?1",
        params![rid, seq, now()],
    )?;
    unused_chunks(tx, hashes)
}

/// The distinct chunks an item's file uses.
fn item_chunk_hashes(conn: &Connection, rid: i64) -> StoreResult<Vec<ChunkHash>> {
    conn.prepare_cached("SELECT DISTINCT hash FROM file_chunks WHERE item_rid = ?1")?
        .query_map([rid], |r| stored_chunk_hash(r, 0))?
        .collect::<Result<_, _>>()
        .map_err(Into::into)
}

/// A chunk hash read back from `file_chunks`: written from a [`ChunkHash`], so anything else is a
/// damaged database, refused rather than used as a file name.
fn stored_chunk_hash(row: &rusqlite::Row<'_>, idx: usize) -> rusqlite::Result<ChunkHash> {
    let text: String = row.get(idx)?;
    text.parse().map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(idx, rusqlite::types::Type::Text, Box::new(e))
    })
}

fn unused_chunks(conn: &Connection, hashes: Vec<ChunkHash>) -> StoreResult<Vec<ChunkHash>> {
    let mut stmt = conn.prepare_cached("SELECT 1 FROM file_chunks WHERE hash = ?1 LIMIT 1")?;
    let mut unused = Vec::new();
    for h in hashes {
        if !stmt.exists([h.to_hex()])? {
            unused.push(h);
        }
    }
    Ok(unused)
}

// ---- rows ---------------------------------------------------------------------------------------

const INSERT_ROW: &str = "INSERT INTO rows
     (item_rid, space_rid, key, seq, deleted, vals, geom, min_x, min_y, max_x, max_y)
     VALUES (?1, ?2, ?3, ?4, 0, ?5, ?6, ?7, ?8, ?9, ?10)";
const UPSERT_ROW: &str = "INSERT OR REPLACE INTO rows
     (item_rid, space_rid, key, seq, deleted, vals, geom, min_x, min_y, max_x, max_y)
     VALUES (?1, ?2, ?3, ?4, 0, ?5, ?6, ?7, ?8, ?9, ?10)";

/// Row changes of a space after a sequence, in sequence order. The inner query walks the rows
/// index alone (it covers every column the inner query reads), so rows of the items in `?4` (a
/// JSON array of item ids) are skipped on their index entries, never read; only the rows of the
/// page are looked up. The co-routine yields in index order: no sort step.
const ROW_CHANGES: &str = "SELECT r.key, r.seq, r.deleted, r.vals, r.geom, i.id
     FROM (SELECT item_rid, key FROM rows INDEXED BY rows_by_space_seq
           WHERE space_rid = ?1 AND seq > ?2
               AND item_rid NOT IN (SELECT s.rid FROM items AS s
                                    WHERE s.id IN (SELECT value FROM json_each(?4)))
           ORDER BY seq LIMIT ?3) AS c
     CROSS JOIN rows AS r ON r.item_rid = c.item_rid AND r.key = c.key
     CROSS JOIN items AS i ON i.rid = r.item_rid";

/// Which item a row belongs to, and that item's space.
#[derive(Debug, Clone, Copy)]
struct RowOwner {
    item_rid: i64,
    space_rid: i64,
}

fn row_owner(conn: &Connection, item_rid: i64) -> StoreResult<RowOwner> {
    let space_rid = conn.query_row_cached(
        "SELECT space_rid FROM items WHERE rid = ?1",
        [item_rid],
        |r| r.get(0),
    )?;
    Ok(RowOwner {
        item_rid,
        space_rid,
    })
}

fn write_row(
    stmt: &mut rusqlite::CachedStatement<'_>,
    owner: RowOwner,
    key: &Key,
    seq: i64,
    values: &str,
    geometry: Option<&ferry_core::geometry::Geometry>,
) -> rusqlite::Result<usize> {
    let [min_x, min_y, max_x, max_y] = stored_bbox(geometry);
    stmt.execute(params![
        owner.item_rid,
        owner.space_rid,
        KeySql(key),
        seq,
        values,
        geometry.map(|g| stored_geometry(&g.text)),
        min_x,
        min_y,
        max_x,
        max_y,
    ])
}

/// A geometry's bounding box as stored: `min_x, min_y, max_x, max_y`, where a maximum equal to
/// its minimum (always, for a point) is left NULL and read back as the minimum (`coalesce`):
/// most layers are points, and their rows are 16 bytes shorter.
fn stored_bbox(geometry: Option<&ferry_core::geometry::Geometry>) -> [Option<f64>; 4] {
    match geometry.and_then(|g| g.bbox) {
        Some(b) => [
            Some(b.min_x),
            Some(b.min_y),
            (b.max_x != b.min_x).then_some(b.max_x),
            (b.max_y != b.min_y).then_some(b.max_y),
        ],
        None => [None; 4],
    }
}

/// How a point written exactly as [`POINT_PREFIX`] ... [`POINT_SUFFIX`] is stored: the
/// coordinates between the two alone. Most layers are points, and this makes their rows about 15%
/// smaller; every other geometry text is stored as it is, and the two are told apart by their first
/// character (coordinates start with a number). Nothing is parsed or formatted, so the text reads
/// back byte for byte.
fn stored_geometry(text: &str) -> &str {
    plain_point_coordinates(text)
        .filter(|coordinates| is_coordinates(coordinates))
        .unwrap_or(text)
}

/// Coordinates start with a number; a geometry's text never does.
fn is_coordinates(stored: &str) -> bool {
    stored.starts_with(|c: char| c == '-' || c.is_ascii_digit())
}

/// The geometry text a stored form stands for (see [`stored_geometry`]).
fn geometry_text(stored: &str) -> std::borrow::Cow<'_, str> {
    if !is_coordinates(stored) {
        stored.into()
    } else {
        let mut text =
            String::with_capacity(POINT_PREFIX.len() + stored.len() + POINT_SUFFIX.len());
        text.push_str(POINT_PREFIX);
        text.push_str(stored);
        text.push_str(POINT_SUFFIX);
        text.into()
    }
}

fn owned_geometry_text(stored: String) -> String {
    match is_coordinates(&stored) {
        false => stored,
        true => geometry_text(&stored).into_owned(),
    }
}

/// A row's values after an update naming `changes`: the stored text itself when the update
/// names none (a geometry edit leaves the values exactly as they were, `null` included), else
/// the stored values, read exactly, with the changes over them.
fn merged_values(stored: Option<String>, changes: &Map<String, Value>) -> StoreResult<String> {
    let stored = stored.unwrap_or_else(|| "{}".into());
    if changes.is_empty() {
        return Ok(stored);
    }
    let mut merged = match ferry_proto::exact::from_text(&stored)? {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    merged.extend(changes.clone());
    to_json(&merged)
}

fn parse_row(key: Key, seq: i64, vals: &str, geom: Option<&str>) -> StoreResult<Row> {
    Ok(Row {
        key: key.to_value(),
        seq,
        // Exactly: a row reads back the numbers its stored digits name.
        values: ferry_proto::exact::from_text(vals)?,
        geometry: geom
            .map(|g| ferry_proto::exact::from_text(&geometry_text(g)))
            .transpose()?,
    })
}

/// A stored row: (deleted, values, geometry as stored).
type StoredRow = (bool, Option<String>, Option<String>);

fn stored_row(tx: &Connection, rid: i64, key: &Key) -> StoreResult<Option<StoredRow>> {
    tx.prepare_cached("SELECT deleted, vals, geom FROM rows WHERE item_rid = ?1 AND key = ?2")?
        .query_row(params![rid, KeySql(key)], |r| {
            Ok((r.get::<_, i64>(0)? != 0, r.get(1)?, r.get(2)?))
        })
        .optional()
        .map_err(Into::into)
}

fn sql_of_json(v: &Value) -> SqlValue {
    match v {
        Value::Null => SqlValue::Null,
        Value::Bool(b) => SqlValue::Integer(*b as i64),
        Value::Number(n) => n
            .as_i64()
            .map(SqlValue::Integer)
            .unwrap_or_else(|| SqlValue::Real(n.as_f64().unwrap_or(f64::NAN))),
        Value::String(s) => SqlValue::Text(s.clone()),
        other => SqlValue::Text(other.to_string()),
    }
}

/// Applies one batch inside `tx`; returns the per-edit results and the change in row count.
struct EditRun<'t, 'c> {
    tx: &'t Transaction<'c>,
    rid: i64,
    owner: RowOwner,
    seqs: SeqAlloc,
    results: Vec<EditResult>,
    failed: usize,
    row_delta: i64,
    next_int_key: Option<i64>,
}

impl EditRun<'_, '_> {
    fn record(&mut self, op: EditOp, index: usize, key: Option<&Key>, outcome: StoreResult<()>) {
        let error = match outcome {
            Ok(()) => None,
            Err(e) => {
                self.failed += 1;
                let code = match &e {
                    StoreError::Invalid(c) => c.code(),
                    _ => ErrorCode::Internal,
                };
                Some(ApiErrorBrief {
                    code,
                    message: e.to_string(),
                })
            }
        };
        self.results.push(EditResult {
            op,
            index,
            key: key.map(Key::to_value),
            success: error.is_none(),
            error,
        });
    }

    /// The next integer key above every integer key stored or added so far in this batch.
    fn generated_key(&mut self) -> StoreResult<Key> {
        let next = match self.next_int_key {
            Some(n) => n,
            None => {
                let max: Option<i64> = self.tx.query_row_cached(
                    "SELECT max(key) FROM rows WHERE item_rid = ?1 AND typeof(key) = 'integer'",
                    [self.rid],
                    |r| r.get(0),
                )?;
                max.map_or(Some(1), |m| m.checked_add(1))
                    .ok_or_else(no_key_left)?
            }
        };
        self.next_int_key = Some(next.checked_add(1).ok_or_else(no_key_left)?);
        Ok(Key::Int(next))
    }

    /// Keeps generated keys clear of an integer key the batch gives explicitly.
    fn note_given_key(&mut self, key: &Key) {
        if let (Key::Int(k), Some(next)) = (key, self.next_int_key)
            && *k >= next
        {
            self.next_int_key = k.checked_add(1);
        }
    }

    fn add(&mut self, add: &RowAdd) -> (Option<Key>, StoreResult<()>) {
        let key = match &add.key {
            AddKey::Given(k) => {
                self.note_given_key(k);
                k.clone()
            }
            AddKey::Generate => match self.generated_key() {
                Ok(k) => k,
                Err(e) => return (None, Err(e)),
            },
        };
        let outcome = (|| {
            if let Some((false, _, _)) = stored_row(self.tx, self.rid, &key)? {
                return Err(ferry_core::CoreError::DuplicateKey(format!(
                    "a row with key {key} already exists; use an update instead"
                ))
                .into());
            }
            let seq = self.seqs.take();
            let mut stmt = self.tx.prepare_cached(UPSERT_ROW)?;
            write_row(
                &mut stmt,
                self.owner,
                &key,
                seq,
                &to_json(&add.values)?,
                add.geometry.as_ref(),
            )?;
            self.row_delta += 1;
            Ok(())
        })();
        (Some(key), outcome)
    }

    fn update(&mut self, update: &RowUpdate) -> StoreResult<()> {
        let (values, geom) = match stored_row(self.tx, self.rid, &update.key)? {
            Some((false, values, geom)) => (values, geom),
            _ => return Err(row_not_found(&update.key)),
        };
        let values = merged_values(values, &update.values)?;
        let seq = self.seqs.take();
        let mut stmt = self.tx.prepare_cached(UPSERT_ROW)?;
        match &update.geometry {
            Some(g) => write_row(&mut stmt, self.owner, &update.key, seq, &values, g.as_ref())?,
            None => {
                // Geometry unchanged: keep the stored text and bounding box.
                drop(stmt);
                self.tx.execute_cached(
                    "UPDATE rows SET seq = ?3, vals = ?4, geom = ?5 WHERE item_rid = ?1 AND key = ?2",
                    params![self.rid, KeySql(&update.key), seq, values, geom],
                )?
            }
        };
        Ok(())
    }

    fn delete(&mut self, key: &Key) -> StoreResult<()> {
        if !matches!(stored_row(self.tx, self.rid, key)?, Some((false, _, _))) {
            return Err(row_not_found(key));
        }
        let seq = self.seqs.take();
        self.tx.execute_cached(
            "UPDATE rows SET deleted = 1, seq = ?3, vals = NULL, geom = NULL,
                 min_x = NULL, min_y = NULL, max_x = NULL, max_y = NULL
             WHERE item_rid = ?1 AND key = ?2",
            params![self.rid, KeySql(key), seq],
        )?;
        self.row_delta -= 1;
        Ok(())
    }
}

fn no_key_left() -> StoreError {
    ferry_core::CoreError::InvalidRequest(
        "no integer key is left above the largest one; give the row a key".into(),
    )
    .into()
}

fn row_not_found(key: &Key) -> StoreError {
    ferry_core::CoreError::RowNotFound(format!(
        "no row with key {key}; `ferry item rows` lists the rows"
    ))
    .into()
}

// ---- trust: policy, audit, nonces -----------------------------------------------------------------

const RULE_COLS: &str = "id, direction, effect, pattern, created_at";

fn rule_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<PolicyRule> {
    Ok(PolicyRule {
        id: r.get(0)?,
        direction: r.get(1)?,
        effect: r.get(2)?,
        pattern: r.get(3)?,
        created_at: r.get(4)?,
    })
}

fn audit_rows(
    stmt: &mut rusqlite::Statement<'_>,
    params: impl rusqlite::Params,
) -> StoreResult<Vec<AuditEntry>> {
    let rows = stmt.query_map(params, |r| {
        Ok((
            r.get(0)?,
            r.get(1)?,
            r.get(2)?,
            r.get(3)?,
            r.get(4)?,
            r.get::<_, String>(5)?,
        ))
    })?;
    rows.map(|r| {
        let (seq, at, actor, event, subject, detail) = r?;
        Ok(AuditEntry {
            seq,
            at,
            actor,
            event,
            subject,
            detail: serde_json::from_str(&detail)?,
        })
    })
    .collect()
}

/// Appends an audit entry inside the caller's transaction, so a change and its record commit
/// together.
fn audit_in(conn: &Connection, entry: &NewAuditEntry) -> StoreResult<()> {
    conn.execute_cached(
        "INSERT INTO audit_log (at, actor, event, subject, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            now(),
            entry.actor,
            entry.event,
            entry.subject,
            entry.detail.to_string()
        ],
    )?;
    Ok(())
}

fn token_audit(actor: &str, event: &str, token: &TokenInfo) -> NewAuditEntry {
    NewAuditEntry {
        actor: actor.to_string(),
        event: event.to_string(),
        subject: Some(token.id.to_string()),
        detail: serde_json::json!({"name": token.name, "role": token.role.as_str()}),
    }
}

/// The audit entries of an item change: its markings and its space, each when it changes.
fn item_change_audits(
    tx: &Transaction<'_>,
    actor: &str,
    before: &Item,
    after: &Item,
) -> StoreResult<Vec<NewAuditEntry>> {
    let entry = |event: &str, detail: Value| NewAuditEntry {
        actor: actor.to_string(),
        event: event.to_string(),
        subject: Some(before.id.to_string()),
        detail,
    };
    let mut entries = Vec::new();
    if before.markings != after.markings {
        entries.push(entry(
            "item.markings_changed",
            serde_json::json!({"title": after.title, "from": before.markings, "to": after.markings}),
        ));
    }
    if before.space_id != after.space_id {
        let name = |id: SpaceId| find_space(tx, &id.to_string()).map(|(_, space)| space.name);
        entries.push(entry(
            "item.moved",
            serde_json::json!({
                "title": after.title, "from": name(before.space_id)?, "to": name(after.space_id)?
            }),
        ));
    }
    Ok(entries)
}

fn rule_audit(actor: &str, event: &str, rule: &PolicyRule) -> NewAuditEntry {
    NewAuditEntry {
        actor: actor.to_string(),
        event: event.to_string(),
        subject: Some(rule.id.clone()),
        detail: serde_json::json!({
            "direction": rule.direction, "effect": rule.effect, "pattern": rule.pattern
        }),
    }
}

// ---- peer connections ---------------------------------------------------------------------------

const PEER_COLS: &str = "p.id, p.role, p.request_id, p.phase, p.disabled_here, p.disabled_there,
    s.name, p.offered_space, p.sends, p.receives, p.peer_instance_id, p.peer_title, p.peer_url,
    p.peer_public_key, p.secret, p.expires_at, p.created_at, p.updated_at, p.security,
    p.pending_security, p.version";

fn peers_query(filter: &str) -> String {
    format!(
        "SELECT {PEER_COLS} FROM peer_connections p LEFT JOIN spaces s ON s.rid = p.space_rid WHERE {filter}"
    )
}

/// A peer row with its text columns still encoded.
struct PeerRow {
    text: [Option<String>; 15],
    flags: [bool; 2],
    public_key: Option<Vec<u8>>,
    secret: Option<Vec<u8>>,
    expires_at: Option<i64>,
    version: i64,
}

fn peer_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<PeerRow> {
    let t = |i: usize| r.get::<_, Option<String>>(i);
    Ok(PeerRow {
        text: [
            t(0)?,
            t(1)?,
            t(2)?,
            t(3)?,
            t(6)?,
            t(7)?,
            t(8)?,
            t(9)?,
            t(10)?,
            t(11)?,
            t(12)?,
            t(16)?,
            t(17)?,
            t(18)?,
            t(19)?,
        ],
        flags: [r.get::<_, i64>(4)? != 0, r.get::<_, i64>(5)? != 0],
        public_key: r.get(13)?,
        secret: r.get(14)?,
        expires_at: r.get(15)?,
        version: r.get(20)?,
    })
}

fn build_peer(row: PeerRow) -> StoreResult<PeerRecord> {
    let corrupt =
        |what: &str| StoreError::Backend(format!("stored peer connection has a bad {what}"));
    let [
        id,
        role,
        request_id,
        phase,
        space,
        offered,
        sends,
        receives,
        peer_id,
        peer_title,
        peer_url,
        created,
        updated,
        security,
        pending,
    ] = row.text;
    let types = |t: Option<String>| -> StoreResult<ferry_proto::ticket::DataTypes> {
        Ok(serde_json::from_str(&t.unwrap_or_default())?)
    };
    let peer = match (peer_id, row.public_key) {
        (Some(instance_id), Some(key)) => Some(PeerIdentity {
            instance_id,
            title: peer_title.unwrap_or_default(),
            url: peer_url.unwrap_or_default(),
            public_key: key.try_into().map_err(|_| corrupt("peer key"))?,
        }),
        _ => None,
    };
    Ok(PeerRecord {
        id: id.unwrap_or_default(),
        role: role
            .as_deref()
            .and_then(ferry_core::peering::Role::parse)
            .ok_or_else(|| corrupt("role"))?,
        request_id: request_id.unwrap_or_default(),
        status: ferry_core::peering::Status {
            phase: phase
                .as_deref()
                .and_then(ferry_core::peering::Phase::parse)
                .ok_or_else(|| corrupt("phase"))?,
            disabled_here: row.flags[0],
            disabled_there: row.flags[1],
        },
        space,
        offered_space: offered.unwrap_or_default(),
        sends: types(sends)?,
        receives: types(receives)?,
        peer,
        secret: row.secret,
        expires_at: row.expires_at,
        security: serde_json::from_str(security.as_deref().unwrap_or("{}"))?,
        pending_security: pending.as_deref().map(serde_json::from_str).transpose()?,
        version: row.version,
        created_at: created.unwrap_or_default(),
        updated_at: updated.unwrap_or_default(),
    })
}

fn find_peer(
    conn: &Connection,
    filter: &str,
    param: &dyn ToSql,
) -> StoreResult<Option<PeerRecord>> {
    conn.query_row_cached(&peers_query(filter), [param], peer_row)
        .optional()?
        .map(build_peer)
        .transpose()
}

/// Writes every column of `record` (insert or replace by id).
fn write_peer(tx: &Transaction<'_>, record: &PeerRecord, replace: bool) -> StoreResult<()> {
    let space_rid = record
        .space
        .as_deref()
        .map(|s| find_space(tx, s).map(|(rid, _)| rid))
        .transpose()?;
    let verb = if replace { "REPLACE" } else { "INSERT" };
    let peer = record.peer.as_ref();
    let written = tx.execute_cached(
        &format!(
            "{verb} INTO peer_connections (id, role, request_id, phase, disabled_here, disabled_there,
                 space_rid, offered_space, sends, receives, peer_instance_id, peer_title, peer_url,
                 peer_public_key, secret, expires_at, created_at, updated_at, security, pending_security,
                 version)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21)"
        ),
        params![
            record.id,
            record.role.as_str(),
            record.request_id,
            record.status.phase.as_str(),
            record.status.disabled_here,
            record.status.disabled_there,
            space_rid,
            record.offered_space,
            to_json(&record.sends)?,
            to_json(&record.receives)?,
            peer.map(|p| p.instance_id.as_str()),
            peer.map(|p| p.title.as_str()),
            peer.map(|p| p.url.as_str()),
            peer.map(|p| p.public_key.to_vec()),
            record.secret,
            record.expires_at,
            record.created_at,
            now(),
            to_json(&record.security)?,
            record.pending_security.as_ref().map(to_json).transpose()?,
            record.version + i64::from(replace),
        ],
    );
    match written {
        Err(e) if is_unique_violation(&e) => Err(StoreError::PeerExists(record.request_id.clone())),
        other => other.map(drop).map_err(Into::into),
    }
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
