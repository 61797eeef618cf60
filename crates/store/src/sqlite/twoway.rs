//! Two-way editing in the store: what an edit on a two-way item leaves beside its rows (change
//! stamps at the origin, the pending edit on a copy), what a copy does with a row version from
//! the origin, and the origin's judgement of an edit from a copy with the conflict it may make.
//! The rules are `ferry_core::twoway`'s; this file reads and writes their state.

use super::records::{CachedStatements, KeySql, geometry_text};
use crate::{StoreError, StoreResult};
use ferry_core::Key;
use ferry_core::twoway::{Change, Fields, GEOMETRY, OriginRow, Pending};
use ferry_proto::twoway::{RowVersion, Stamp};
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What the origin keeps beside a row of a two-way item (its version is the row's `seq`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(super) struct OriginMeta {
    #[serde(default)]
    changes: BTreeMap<String, Change>,
    #[serde(default)]
    life: Option<Change>,
    #[serde(default)]
    seen: BTreeMap<String, i64>,
}

/// A row as two-way editing reads it.
pub(super) struct TwoWayRow {
    /// `None`: deleted or absent.
    pub(super) fields: Option<Fields>,
    pub(super) seq: i64,
    pub(super) exists: bool,
    pub(super) twoway: Option<String>,
    pub(super) pending: Option<String>,
}

impl TwoWayRow {
    pub(super) fn origin(&self) -> StoreResult<OriginRow> {
        let meta: OriginMeta = parse_or_default(self.twoway.as_deref())?;
        Ok(OriginRow {
            fields: self.fields.clone(),
            version: self.seq,
            changes: meta.changes,
            life: meta.life,
            seen: meta.seen,
        })
    }

    /// A copy's view of the row's version at the origin.
    pub(super) fn version(&self) -> StoreResult<Option<RowVersion>> {
        self.twoway
            .as_deref()
            .map(serde_json::from_str)
            .transpose()
            .map_err(Into::into)
    }

    pub(super) fn pending(&self) -> StoreResult<Option<Pending>> {
        self.pending
            .as_deref()
            .map(serde_json::from_str)
            .transpose()
            .map_err(Into::into)
    }
}

fn parse_or_default<T: Default + for<'de> Deserialize<'de>>(text: Option<&str>) -> StoreResult<T> {
    Ok(text
        .map(serde_json::from_str)
        .transpose()?
        .unwrap_or_default())
}

pub(super) fn read_row(conn: &Connection, rid: i64, key: &Key) -> StoreResult<TwoWayRow> {
    let found = conn
        .prepare_cached(
            "SELECT deleted, vals, geom, seq, twoway, pending FROM rows
             WHERE item_rid = ?1 AND key = ?2",
        )?
        .query_row(params![rid, KeySql(key)], |r| {
            Ok((
                r.get::<_, i64>(0)? != 0,
                r.get::<_, Option<String>>(1)?,
                r.get::<_, Option<String>>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, Option<String>>(4)?,
                r.get::<_, Option<String>>(5)?,
            ))
        })
        .optional()?;
    Ok(match found {
        None => TwoWayRow {
            fields: None,
            seq: 0,
            exists: false,
            twoway: None,
            pending: None,
        },
        Some((deleted, vals, geom, seq, twoway, pending)) => TwoWayRow {
            fields: if deleted {
                None
            } else {
                Some(fields_of(vals.as_deref(), geom.as_deref())?)
            },
            seq,
            exists: true,
            twoway,
            pending,
        },
    })
}

/// A stored row as fields: its values, and its geometry as [`GEOMETRY`].
pub(super) fn fields_of(vals: Option<&str>, geom: Option<&str>) -> StoreResult<Fields> {
    let mut fields = match vals.map(ferry_proto::exact::from_text).transpose()? {
        Some(serde_json::Value::Object(map)) => map.into_iter().collect(),
        _ => Fields::new(),
    };
    if let Some(g) = geom {
        fields.insert(
            GEOMETRY.into(),
            ferry_proto::exact::from_text(&geometry_text(g))?,
        );
    }
    Ok(fields)
}

/// Fields as stored: the values' JSON text, and the geometry checked (lon/lat when
/// `geographic`).
pub(super) fn stored_of(
    fields: &Fields,
    geographic: bool,
) -> StoreResult<(String, Option<ferry_core::geometry::Geometry>)> {
    let values: serde_json::Map<String, serde_json::Value> = fields
        .iter()
        .filter(|(k, _)| k.as_str() != GEOMETRY)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let geometry = match fields.get(GEOMETRY) {
        None | Some(serde_json::Value::Null) => None,
        Some(g) => Some(
            ferry_core::geometry::RawGeometry::from_value(g)
                .and_then(|raw| raw.validate(geographic))
                .map_err(StoreError::from)?,
        ),
    };
    Ok((serde_json::Value::Object(values).to_string(), geometry))
}

/// Whether an item is a copy received here (it has an origin elsewhere).
pub(super) fn is_received(conn: &Connection, rid: i64) -> StoreResult<bool> {
    Ok(conn.query_row_cached(
        "SELECT EXISTS (SELECT 1 FROM item_arrivals WHERE item_rid = ?1)
             OR EXISTS (SELECT 1 FROM kept_origins WHERE item_rid = ?1)",
        [rid],
        |r| r.get(0),
    )?)
}

/// Which side of two-way editing a batch of edits is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// The item's own instance: changes get stamps.
    Origin,
    /// A copy: changes become its pending edit.
    Copy,
}

/// What one batch of edits to a two-way item must leave beside the rows it changes.
pub(super) struct TwoWayEdits {
    role: Role,
    at: Stamp,
    /// Each key the batch touches, with its row before the batch.
    before: Vec<(Key, Option<Fields>, TwoWayRow)>,
    noted: ferry_core::FastSet<Key>,
}

impl TwoWayEdits {
    /// For a batch on a two-way item carrying a clock reading; `None` otherwise.
    pub(super) fn begin(
        item: &ferry_proto::Item,
        received: bool,
        stamp: Option<&Stamp>,
    ) -> Option<TwoWayEdits> {
        let at = stamp?.clone();
        item.two_way?;
        Some(TwoWayEdits {
            role: if received { Role::Copy } else { Role::Origin },
            at,
            before: Vec::new(),
            noted: ferry_core::FastSet::default(),
        })
    }

    /// Notes a key before the batch changes it (once per key).
    pub(super) fn note(&mut self, conn: &Connection, rid: i64, key: &Key) -> StoreResult<()> {
        if !self.noted.insert(key.clone()) {
            return Ok(());
        }
        let row = read_row(conn, rid, key)?;
        self.before.push((key.clone(), row.fields.clone(), row));
        Ok(())
    }

    /// Writes, for every key noted, the stamps (origin) or the pending edit (copy) of what the
    /// batch changed.
    pub(super) fn finish(self, conn: &Connection, rid: i64) -> StoreResult<()> {
        for (key, before, old) in &self.before {
            let after = read_row(conn, rid, key)?;
            if !after.exists || (after.fields == *before && after.seq == old.seq) {
                continue;
            }
            match self.role {
                Role::Origin => self.stamp(conn, rid, key, before.as_ref(), &after)?,
                Role::Copy => self.keep_pending(conn, rid, key, before.as_ref(), old, &after)?,
            }
        }
        Ok(())
    }

    fn stamp(
        &self,
        conn: &Connection,
        rid: i64,
        key: &Key,
        before: Option<&Fields>,
        after: &TwoWayRow,
    ) -> StoreResult<()> {
        let mut meta: OriginMeta = parse_or_default(after.twoway.as_deref())?;
        let change = Change {
            version: after.seq,
            by: self.at.instance.clone(),
            at: self.at.clone(),
        };
        if before.is_some() != after.fields.is_some() {
            meta.life = Some(change.clone());
        }
        if let Some(fields) = &after.fields {
            let empty = Fields::new();
            let before = before.unwrap_or(&empty);
            let names = fields.keys().chain(before.keys());
            for name in names {
                if fields.get(name) != before.get(name) {
                    meta.changes.insert(name.clone(), change.clone());
                }
            }
        }
        write_meta(conn, rid, key, Some(&serde_json::to_string(&meta)?))
    }

    fn keep_pending(
        &self,
        conn: &Connection,
        rid: i64,
        key: &Key,
        before: Option<&Fields>,
        old: &TwoWayRow,
        after: &TwoWayRow,
    ) -> StoreResult<()> {
        let pending = match old.pending()? {
            Some(p) => p,
            None => {
                let version = old.version()?;
                let base = version.as_ref().map_or(0, |v| v.version);
                Pending::new(base, before.is_none() && version.is_none())
            }
        };
        let pending = pending.then(before, after.fields.as_ref(), after.seq, self.at.clone());
        if pending.seq() == 0 {
            // The edit changed nothing: nothing to send.
            return Ok(());
        }
        conn.prepare_cached("UPDATE rows SET pending = ?3 WHERE item_rid = ?1 AND key = ?2")?
            .execute(params![rid, KeySql(key), serde_json::to_string(&pending)?])?;
        Ok(())
    }
}

pub(super) fn write_meta(
    conn: &Connection,
    rid: i64,
    key: &Key,
    twoway: Option<&str>,
) -> StoreResult<()> {
    conn.prepare_cached("UPDATE rows SET twoway = ?3 WHERE item_rid = ?1 AND key = ?2")?
        .execute(params![rid, KeySql(key), twoway])?;
    Ok(())
}

/// The origin's stamps and `seen` of a judged row, as stored.
pub(super) fn meta_of(row: &OriginRow) -> StoreResult<String> {
    Ok(serde_json::to_string(&OriginMeta {
        changes: row.changes.clone(),
        life: row.life.clone(),
        seen: row.seen.clone(),
    })?)
}

/// What a copy does with a row version from the origin, after writing the origin's content:
/// the part of its pending edit the origin has not seen stays, over the origin's content (which
/// it returns, to be written instead); the rest goes.
pub(super) fn received_version(
    conn: &Connection,
    rid: i64,
    key: &Key,
    version: &RowVersion,
    me: &str,
) -> StoreResult<Option<Option<Fields>>> {
    let pending: Option<String> = conn
        .prepare_cached("SELECT pending FROM rows WHERE item_rid = ?1 AND key = ?2")?
        .query_row(params![rid, KeySql(key)], |r| r.get(0))
        .optional()?
        .flatten();
    let version_text = serde_json::to_string(version)?;
    let Some(pending) = pending else {
        // Nothing of this copy's own waits: the row is the origin's.
        write_meta(conn, rid, key, Some(&version_text))?;
        return Ok(None);
    };
    let pending: Pending = serde_json::from_str(&pending)?;
    let seen = version.seen.get(me).copied().unwrap_or(0);
    let left = pending.after_seen(seen, version.version);
    let row = read_row(conn, rid, key)?;
    conn.prepare_cached(
        "UPDATE rows SET twoway = ?3, pending = ?4 WHERE item_rid = ?1 AND key = ?2",
    )?
    .execute(params![
        rid,
        KeySql(key),
        version_text,
        left.as_ref().map(serde_json::to_string).transpose()?,
    ])?;
    Ok(left.map(|p| p.over(row.fields.as_ref())))
}

/// A row's tombstone at `seq`, written whether the row was live, deleted or never here (the
/// origin acknowledges a copy's delete of a row it never had with one); the change in live rows.
pub(super) fn tombstone(
    conn: &Connection,
    owner: super::records::RowOwner,
    key: &Key,
    seq: i64,
) -> StoreResult<i64> {
    let was_live = conn
        .prepare_cached("SELECT deleted = 0 FROM rows WHERE item_rid = ?1 AND key = ?2")?
        .query_row(params![owner.item_rid, KeySql(key)], |r| {
            r.get::<_, bool>(0)
        })
        .optional()?
        .unwrap_or(false);
    conn.prepare_cached(
        "INSERT INTO rows (item_rid, space_rid, key, seq, deleted) VALUES (?1, ?2, ?3, ?4, 1)
         ON CONFLICT (item_rid, key) DO UPDATE SET deleted = 1, seq = excluded.seq, vals = NULL,
             geom = NULL, min_x = NULL, min_y = NULL, max_x = NULL, max_y = NULL,
             map_cell = NULL",
    )?
    .execute(params![owner.item_rid, owner.space_rid, KeySql(key), seq])?;
    Ok(-i64::from(was_live))
}

/// How an edit came to a conflict: the edit, what judging it found, under which policy, and
/// why it was refused if it was.
pub(super) struct Found<'a> {
    pub(super) edit: &'a ferry_proto::twoway::RowEdit,
    pub(super) conflict: &'a ferry_core::twoway::Conflict,
    pub(super) policy: ferry_proto::twoway::ConflictPolicy,
    pub(super) reason: Option<&'a str>,
}

/// Records a conflict found at the origin, with both versions of the row.
pub(super) fn record_conflict(
    conn: &Connection,
    rid: i64,
    item: ferry_proto::ItemId,
    key: &Key,
    found: Found<'_>,
) -> StoreResult<()> {
    let Found {
        edit,
        conflict,
        policy,
        reason,
    } = found;
    let created_at = ferry_core::time::now();
    let status = if conflict.open { "open" } else { "settled" };
    let record = ferry_proto::twoway::ConflictRecord {
        id: uuid::Uuid::now_v7().to_string(),
        item_id: item,
        key: key.to_value(),
        kind: conflict.kind.as_str().to_string(),
        reason: reason.map(str::to_string),
        fields: conflict.fields.clone(),
        ours: conflict.ours.clone(),
        theirs: conflict.theirs.clone(),
        our_instance: conflict.our_change.as_ref().map(|c| c.by.clone()),
        our_at: conflict.our_change.as_ref().map(|c| c.at.clone()),
        their_instance: edit.editor.clone(),
        their_at: edit.at.clone(),
        policy,
        kept: if conflict.theirs_won {
            "theirs"
        } else {
            "ours"
        }
        .to_string(),
        status: status.to_string(),
        created_at: created_at.clone(),
        resolved_at: None,
        resolved_by: None,
    };
    if reason.is_some() {
        // One open refusal per row and editor: the newer holds the editor's whole row as it
        // is now, so an editor cannot fill the queue with refusals of one row.
        conn.prepare_cached(
            "DELETE FROM conflicts WHERE item_rid = ?1 AND key = ?2 AND kind = 'refused'
             AND status = 'open' AND json_extract(body, '$.their_instance') = ?3",
        )?
        .execute(params![rid, KeySql(key), edit.editor])?;
    }
    conn.prepare_cached(
        "INSERT INTO conflicts (id, item_rid, key, kind, body, status, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        record.id,
        rid,
        KeySql(key),
        record.kind,
        serde_json::to_string(&record)?,
        status,
        created_at,
    ])?;
    Ok(())
}

pub(super) fn conflicts(
    conn: &Connection,
    status: Option<&str>,
    limit: usize,
    offset: usize,
) -> StoreResult<Vec<ferry_proto::twoway::ConflictRecord>> {
    let bound = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
    // One statement per case, so that a status filter walks its index newest first.
    let bodies = match status {
        Some(status) => conn
            .prepare_cached(
                "SELECT body FROM conflicts WHERE status = ?1
                 ORDER BY created_at DESC, id DESC LIMIT ?2 OFFSET ?3",
            )?
            .query_map(params![status, bound(limit), bound(offset)], |r| r.get(0))?
            .collect::<Result<Vec<String>, _>>()?,
        None => conn
            .prepare_cached(
                "SELECT body FROM conflicts ORDER BY created_at DESC, id DESC LIMIT ?1 OFFSET ?2",
            )?
            .query_map(params![bound(limit), bound(offset)], |r| r.get(0))?
            .collect::<Result<Vec<String>, _>>()?,
    };
    bodies
        .iter()
        .map(|b| serde_json::from_str(b).map_err(Into::into))
        .collect()
}

pub(super) fn conflict(
    conn: &Connection,
    id: &str,
) -> StoreResult<ferry_proto::twoway::ConflictRecord> {
    let body: Option<String> = conn
        .prepare_cached("SELECT body FROM conflicts WHERE id = ?1")?
        .query_row([id], |r| r.get(0))
        .optional()?;
    let body = body.ok_or_else(|| StoreError::ConflictNotFound(id.to_string()))?;
    Ok(serde_json::from_str(&body)?)
}
