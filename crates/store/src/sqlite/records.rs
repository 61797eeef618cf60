//! Records as SQL stores them: tokens, spaces, items and their rows, policy rules, audit
//! entries and peer connections, with the helpers every part of the store shares.

use crate::types::*;
use crate::{StoreError, StoreResult};
use ferry_core::Key;
use ferry_core::geometry::{POINT_PREFIX, POINT_SUFFIX, plain_point_coordinates};
use ferry_proto::{
    ApiErrorBrief, AuditEntry, ChunkHash, EditOp, EditResult, ErrorCode, GeometryType, Item,
    ItemId, ItemKind, PolicyRule, Role, Row, Space, SpaceId, SyncAs, TokenInfo,
};
use rusqlite::types::{ToSqlOutput, Value as SqlValue, ValueRef};
use rusqlite::{Connection, OptionalExtension, ToSql, Transaction, params};
use serde_json::{Map, Value};

pub(super) fn now() -> String {
    ferry_core::time::now()
}

/// `execute` and `query_row` through the connection's prepared-statement cache.
pub(super) trait CachedStatements {
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

/// Hands out change-feed sequence numbers inside one write transaction. SQLite has one writer at a
/// time, so reading the counter at the start and storing it at the end is race-free.
pub(super) struct SeqAlloc {
    pub(super) last: i64,
}

impl SeqAlloc {
    pub(super) fn begin(tx: &Transaction<'_>) -> StoreResult<SeqAlloc> {
        Ok(SeqAlloc {
            last: meta_i64(tx, "seq")?,
        })
    }

    pub(super) fn take(&mut self) -> i64 {
        self.last += 1;
        self.last
    }

    pub(super) fn finish(self, tx: &Transaction<'_>) -> StoreResult<()> {
        tx.execute_cached(
            "UPDATE meta SET value = ?1 WHERE key = 'seq'",
            [self.last.to_string()],
        )?;
        Ok(())
    }
}

pub(super) fn meta(conn: &Connection, key: &str) -> StoreResult<String> {
    conn.query_row_cached("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
        .map_err(Into::into)
}

pub(super) fn meta_i64(conn: &Connection, key: &str) -> StoreResult<i64> {
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

pub(super) struct KeySql<'a>(pub(super) &'a Key);

pub(super) fn key_from_sql(v: ValueRef<'_>) -> rusqlite::Result<Key> {
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

pub(super) fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _)
        if f.code == rusqlite::ErrorCode::ConstraintViolation)
}

// ---- tokens -------------------------------------------------------------------------------------

pub(super) fn token_from_row(
    r: &rusqlite::Row<'_>,
) -> rusqlite::Result<(String, String, String, String, Option<String>)> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
}

pub(super) fn token_info(
    raw: (String, String, String, String, Option<String>),
) -> StoreResult<TokenInfo> {
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

pub(super) const TOKEN_COLS: &str = "id, name, role, created_at, revoked_at";

// ---- spaces -------------------------------------------------------------------------------------

pub(super) const SPACE_COLS: &str =
    "s.rid, s.id, s.name, s.description, s.created_at, s.updated_at,
    (SELECT count(*) FROM items i WHERE i.space_rid = s.rid AND i.deleted = 0)";

pub(super) fn space_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(i64, Space)> {
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
            links: Vec::new(),
        },
    ))
}

/// Finds a space by id or by name.
pub(super) fn find_space(conn: &Connection, space_ref: &str) -> StoreResult<(i64, Space)> {
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
pub(super) fn move_item(
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

pub(super) const ITEM_COLS: &str =
    "i.rid, i.id, s.id, i.kind, i.title, i.description, i.tags, i.markings,
    i.owner, i.created_at, i.updated_at, i.version, i.seq, i.schema, i.geometry_type, i.crs,
    i.file, i.row_count, i.deleted, i.created_seq, i.sync_as, i.reference, i.two_way";

/// An item id as stored in a text column.
pub(super) fn stored_item_id(text: &str) -> StoreResult<ItemId> {
    text.parse()
        .map_err(|_| StoreError::Backend(format!("stored item id '{text}' is corrupt")))
}

/// An item row as read, before its JSON columns are decoded.
pub(super) struct ItemRow {
    pub(super) rid: i64,
    pub(super) deleted: bool,
    pub(super) columns: [Option<String>; 10],
    pub(super) version: i64,
    pub(super) seq: i64,
    pub(super) row_count: i64,
    pub(super) created_seq: i64,
    pub(super) sync_as: String,
    pub(super) reference: bool,
    pub(super) two_way: Option<String>,
}

pub(super) fn item_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ItemRow> {
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
        two_way: r.get(22)?,
    })
}

pub(super) fn decode_item(
    r: &rusqlite::Row<'_>,
) -> rusqlite::Result<(ItemRow, [Option<String>; 4])> {
    let extra = [r.get(13)?, r.get(14)?, r.get(15)?, r.get(16)?];
    Ok((item_row(r)?, extra))
}

pub(super) fn build_item(raw: (ItemRow, [Option<String>; 4])) -> StoreResult<(i64, bool, Item)> {
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
        received: None,
        two_way: row.two_way.map(|t| serde_json::from_str(&t)).transpose()?,
    };
    Ok((row.rid, row.deleted, item))
}

pub(super) fn items_query(filter: &str) -> String {
    format!("SELECT {ITEM_COLS} FROM items i JOIN spaces s ON s.rid = i.space_rid WHERE {filter}")
}

/// A live item and its row id.
pub(super) fn find_item(conn: &Connection, id: ItemId) -> StoreResult<(i64, Item)> {
    let raw = conn
        .query_row_cached(&items_query("i.id = ?1"), [id.to_string()], decode_item)
        .optional()?;
    match raw.map(build_item).transpose()? {
        Some((rid, false, item)) => Ok((rid, item)),
        _ => Err(StoreError::ItemNotFound(id.to_string())),
    }
}

pub(super) fn require_rows(id: ItemId, item: &Item) -> StoreResult<()> {
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

pub(super) fn to_json<T: serde::Serialize>(v: &T) -> StoreResult<String> {
    serde_json::to_string(v).map_err(|e| StoreError::Backend(e.to_string()))
}

/// Removes an item's rows and chunks and leaves its tombstone. Returns chunks no longer used.
pub(super) fn tombstone_item(
    tx: &Transaction<'_>,
    rid: i64,
    seq: i64,
) -> StoreResult<Vec<ChunkHash>> {
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
pub(super) fn item_chunk_hashes(conn: &Connection, rid: i64) -> StoreResult<Vec<ChunkHash>> {
    conn.prepare_cached("SELECT DISTINCT hash FROM file_chunks WHERE item_rid = ?1")?
        .query_map([rid], |r| stored_chunk_hash(r, 0))?
        .collect::<Result<_, _>>()
        .map_err(Into::into)
}

/// A chunk hash read back from `file_chunks`: written from a [`ChunkHash`], so anything else is a
/// damaged database, refused rather than used as a file name.
pub(super) fn stored_chunk_hash(
    row: &rusqlite::Row<'_>,
    idx: usize,
) -> rusqlite::Result<ChunkHash> {
    let text: String = row.get(idx)?;
    text.parse().map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(idx, rusqlite::types::Type::Text, Box::new(e))
    })
}

pub(super) fn unused_chunks(
    conn: &Connection,
    hashes: Vec<ChunkHash>,
) -> StoreResult<Vec<ChunkHash>> {
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

pub(super) const INSERT_ROW: &str = "INSERT INTO rows
     (item_rid, space_rid, key, seq, deleted, vals, geom, min_x, min_y, max_x, max_y, map_cell)
     VALUES (?1, ?2, ?3, ?4, 0, ?5, ?6, ?7, ?8, ?9, ?10, ?11)";
/// Writes a row whether or not it is there (live or a tombstone). An update in place, not a
/// replace: two-way editing's state beside the row (`twoway`, `pending`) stays.
pub(super) const UPSERT_ROW: &str = "INSERT INTO rows
     (item_rid, space_rid, key, seq, deleted, vals, geom, min_x, min_y, max_x, max_y, map_cell)
     VALUES (?1, ?2, ?3, ?4, 0, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
     ON CONFLICT (item_rid, key) DO UPDATE SET space_rid = excluded.space_rid,
         seq = excluded.seq, deleted = 0, vals = excluded.vals, geom = excluded.geom,
         min_x = excluded.min_x, min_y = excluded.min_y, max_x = excluded.max_x,
         max_y = excluded.max_y, map_cell = excluded.map_cell";

/// Row changes of a space after a sequence, in sequence order. The inner query walks the rows
/// index alone (it covers every column the inner query reads), so rows of the items in `?4` (a
/// JSON array of item ids) are skipped on their index entries, never read; only the rows of the
/// page are looked up. The co-routine yields in index order: no sort step.
pub(super) const ROW_CHANGES: &str = "SELECT r.key, r.seq, r.deleted, r.vals, r.geom, i.id,
     r.twoway, r.pending
     FROM (SELECT item_rid, key FROM rows INDEXED BY rows_by_space_seq
           WHERE space_rid = ?1 AND seq > ?2
               AND item_rid NOT IN (SELECT s.rid FROM items AS s
                                    WHERE s.id IN (SELECT value FROM json_each(?4)))
           ORDER BY seq LIMIT ?3) AS c
     CROSS JOIN rows AS r ON r.item_rid = c.item_rid AND r.key = c.key
     CROSS JOIN items AS i ON i.rid = r.item_rid";

/// Row changes of a space after a sequence that carry a pending two-way edit, of the items in
/// `?4` (a JSON array of item ids): a copy's edits on their way back to the origin, found
/// through their own small index rather than among every row the copy received.
pub(super) const PENDING_CHANGES: &str = "SELECT r.key, r.seq, r.deleted, r.vals, r.geom, i.id,
     r.twoway, r.pending
     FROM rows AS r INDEXED BY rows_pending
     CROSS JOIN items AS i ON i.rid = r.item_rid
     WHERE r.space_rid = ?1 AND r.seq > ?2 AND r.pending IS NOT NULL
         AND i.id IN (SELECT value FROM json_each(?4))
     ORDER BY r.seq LIMIT ?3";

/// Which item a row belongs to, and that item's space.
#[derive(Debug, Clone, Copy)]
pub(super) struct RowOwner {
    pub(super) item_rid: i64,
    pub(super) space_rid: i64,
}

pub(super) fn row_owner(conn: &Connection, item_rid: i64) -> StoreResult<RowOwner> {
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

pub(super) fn write_row(
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
        map_cell(key, geometry),
    ])
}

/// Where the map's index finds a row ([`ferry_core::tiles`]): `None` without a bounding box.
pub(super) fn map_cell(
    key: &Key,
    geometry: Option<&ferry_core::geometry::Geometry>,
) -> Option<i64> {
    geometry
        .and_then(|g| g.bbox)
        .and_then(|b| ferry_core::tiles::map_cell(key, &b))
}

/// The hook of the migration that adds `rows.map_cell`: the cells of rows written before it.
pub(super) fn fill_map_cells(tx: &rusqlite::Transaction<'_>) -> rusqlite_migration::HookResult {
    let mut read = tx.prepare(
        "SELECT item_rid, key, min_x, min_y, coalesce(max_x, min_x), coalesce(max_y, min_y)
         FROM rows WHERE min_x IS NOT NULL AND deleted = 0",
    )?;
    let mut write = tx.prepare("UPDATE rows SET map_cell = ?3 WHERE item_rid = ?1 AND key = ?2")?;
    let mut rows = read.query([])?;
    while let Some(r) = rows.next()? {
        let key = key_from_sql(r.get_ref(1)?)?;
        let bbox = ferry_core::geometry::BBox {
            min_x: r.get(2)?,
            min_y: r.get(3)?,
            max_x: r.get(4)?,
            max_y: r.get(5)?,
        };
        let cell = ferry_core::tiles::map_cell(&key, &bbox);
        write.execute(params![r.get::<_, i64>(0)?, KeySql(&key), cell])?;
    }
    Ok(())
}

/// A geometry's bounding box as stored: `min_x, min_y, max_x, max_y`, where a maximum equal to
/// its minimum (always, for a point) is left NULL and read back as the minimum (`coalesce`):
/// most layers are points, and their rows are 16 bytes shorter.
pub(super) fn stored_bbox(geometry: Option<&ferry_core::geometry::Geometry>) -> [Option<f64>; 4] {
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
pub(super) fn stored_geometry(text: &str) -> &str {
    plain_point_coordinates(text)
        .filter(|coordinates| is_coordinates(coordinates))
        .unwrap_or(text)
}

/// Coordinates start with a number; a geometry's text never does.
pub(super) fn is_coordinates(stored: &str) -> bool {
    stored.starts_with(|c: char| c == '-' || c.is_ascii_digit())
}

/// The geometry text a stored form stands for (see [`stored_geometry`]).
pub(super) fn geometry_text(stored: &str) -> std::borrow::Cow<'_, str> {
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

pub(super) fn owned_geometry_text(stored: String) -> String {
    match is_coordinates(&stored) {
        false => stored,
        true => geometry_text(&stored).into_owned(),
    }
}

/// A row's values after an update naming `changes`: the stored text itself when the update
/// names none (a geometry edit leaves the values exactly as they were, `null` included), else
/// the stored values, read exactly, with the changes over them.
pub(super) fn merged_values(
    stored: Option<String>,
    changes: &Map<String, Value>,
) -> StoreResult<String> {
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

pub(super) fn parse_row(key: Key, seq: i64, vals: &str, geom: Option<&str>) -> StoreResult<Row> {
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
pub(super) type StoredRow = (bool, Option<String>, Option<String>);

pub(super) fn stored_row(tx: &Connection, rid: i64, key: &Key) -> StoreResult<Option<StoredRow>> {
    tx.prepare_cached("SELECT deleted, vals, geom FROM rows WHERE item_rid = ?1 AND key = ?2")?
        .query_row(params![rid, KeySql(key)], |r| {
            Ok((r.get::<_, i64>(0)? != 0, r.get(1)?, r.get(2)?))
        })
        .optional()
        .map_err(Into::into)
}

pub(super) fn sql_of_json(v: &Value) -> SqlValue {
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
pub(super) struct EditRun<'t, 'c> {
    pub(super) tx: &'t Transaction<'c>,
    pub(super) rid: i64,
    pub(super) owner: RowOwner,
    pub(super) seqs: SeqAlloc,
    pub(super) results: Vec<EditResult>,
    pub(super) failed: usize,
    pub(super) row_delta: i64,
    pub(super) next_int_key: Option<i64>,
}

impl EditRun<'_, '_> {
    pub(super) fn record(
        &mut self,
        op: EditOp,
        index: usize,
        key: Option<&Key>,
        outcome: StoreResult<()>,
    ) {
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
    pub(super) fn generated_key(&mut self) -> StoreResult<Key> {
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
    pub(super) fn note_given_key(&mut self, key: &Key) {
        if let (Key::Int(k), Some(next)) = (key, self.next_int_key)
            && *k >= next
        {
            self.next_int_key = k.checked_add(1);
        }
    }

    pub(super) fn add(&mut self, add: &RowAdd) -> (Option<Key>, StoreResult<()>) {
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

    pub(super) fn update(&mut self, update: &RowUpdate) -> StoreResult<()> {
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

    pub(super) fn delete(&mut self, key: &Key) -> StoreResult<()> {
        if !matches!(stored_row(self.tx, self.rid, key)?, Some((false, _, _))) {
            return Err(row_not_found(key));
        }
        let seq = self.seqs.take();
        self.tx.execute_cached(
            "UPDATE rows SET deleted = 1, seq = ?3, vals = NULL, geom = NULL,
                 min_x = NULL, min_y = NULL, max_x = NULL, max_y = NULL, map_cell = NULL
             WHERE item_rid = ?1 AND key = ?2",
            params![self.rid, KeySql(key), seq],
        )?;
        self.row_delta -= 1;
        Ok(())
    }
}

pub(super) fn no_key_left() -> StoreError {
    ferry_core::CoreError::InvalidRequest(
        "no integer key is left above the largest one; give the row a key".into(),
    )
    .into()
}

pub(super) fn row_not_found(key: &Key) -> StoreError {
    ferry_core::CoreError::RowNotFound(format!(
        "no row with key {key}; `ferry item rows` lists the rows"
    ))
    .into()
}

// ---- trust: policy, audit, nonces -----------------------------------------------------------------

pub(super) const RULE_COLS: &str = "id, direction, effect, pattern, created_at";

pub(super) fn rule_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<PolicyRule> {
    Ok(PolicyRule {
        id: r.get(0)?,
        direction: r.get(1)?,
        effect: r.get(2)?,
        pattern: r.get(3)?,
        created_at: r.get(4)?,
    })
}

pub(super) fn audit_rows(
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
pub(super) fn audit_in(conn: &Connection, entry: &NewAuditEntry) -> StoreResult<()> {
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

pub(super) fn token_audit(actor: &str, event: &str, token: &TokenInfo) -> NewAuditEntry {
    NewAuditEntry {
        actor: actor.to_string(),
        event: event.to_string(),
        subject: Some(token.id.to_string()),
        detail: serde_json::json!({"name": token.name, "role": token.role.as_str()}),
    }
}

/// The audit entries of an item change: its markings and its space, each when it changes.
pub(super) fn item_change_audits(
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

pub(super) fn rule_audit(actor: &str, event: &str, rule: &PolicyRule) -> NewAuditEntry {
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

pub(super) const PEER_COLS: &str =
    "p.id, p.role, p.request_id, p.phase, p.disabled_here, p.disabled_there,
    s.name, p.offered_space, p.sends, p.receives, p.peer_instance_id, p.peer_title, p.peer_url,
    p.peer_public_key, p.secret, p.expires_at, p.created_at, p.updated_at, p.security,
    p.pending_security, p.version";

pub(super) fn peers_query(filter: &str) -> String {
    format!(
        "SELECT {PEER_COLS} FROM peer_connections p LEFT JOIN spaces s ON s.rid = p.space_rid WHERE {filter}"
    )
}

/// A peer row with its text columns still encoded.
pub(super) struct PeerRow {
    pub(super) text: [Option<String>; 15],
    pub(super) flags: [bool; 2],
    pub(super) public_key: Option<Vec<u8>>,
    pub(super) secret: Option<Vec<u8>>,
    pub(super) expires_at: Option<i64>,
    pub(super) version: i64,
}

pub(super) fn peer_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<PeerRow> {
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

pub(super) fn build_peer(row: PeerRow) -> StoreResult<PeerRecord> {
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

pub(super) fn find_peer(
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
pub(super) fn write_peer(
    tx: &Transaction<'_>,
    record: &PeerRecord,
    replace: bool,
) -> StoreResult<()> {
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
