//! Collaboration documents, their local links, and the arrival records of received items.

use super::records::{CachedStatements, audit_in, find_space, now, to_json};
use crate::types::{Arrivals, CollabRecord, LinkedSpace, NewAuditEntry, PeerIdentity};
use crate::{StoreError, StoreResult};
use ferry_core::collab::{CollabRole, CollabState, DeletePolicy};
use ferry_proto::ItemId;
use rusqlite::{Connection, OptionalExtension, Transaction, params};

const COLS: &str = "id, role, name, description, state, host_instance_id, host_title, host_url,
    host_public_key, self_participant, revision, delete_policy, workspaces, participants,
    invitations, version, created_at, updated_at, security";

fn corrupt(what: &str) -> StoreError {
    StoreError::Backend(format!("stored collaboration has a bad {what}"))
}

fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(Vec<String>, Vec<u8>, [i64; 2])> {
    let mut text = Vec::with_capacity(16);
    for i in [0, 1, 2, 3, 4, 5, 6, 7, 9, 11, 12, 13, 14, 16, 17, 18] {
        text.push(r.get::<_, String>(i)?);
    }
    Ok((text, r.get(8)?, [r.get(10)?, r.get(15)?]))
}

fn build(conn: &Connection, row: (Vec<String>, Vec<u8>, [i64; 2])) -> StoreResult<CollabRecord> {
    let (text, key, [revision, version]) = row;
    let [
        id,
        role,
        name,
        description,
        state,
        host_id,
        host_title,
        host_url,
        self_participant,
        policy,
        workspaces,
        participants,
        invitations,
        created_at,
        updated_at,
        security,
    ]: [String; 16] = text.try_into().map_err(|_| corrupt("row"))?;
    let links = links_of(conn, &id)?;
    Ok(CollabRecord {
        role: CollabRole::parse(&role).ok_or_else(|| corrupt("role"))?,
        state: CollabState::parse(&state).ok_or_else(|| corrupt("state"))?,
        host: PeerIdentity {
            instance_id: host_id,
            title: host_title,
            url: host_url,
            public_key: key.try_into().map_err(|_| corrupt("host key"))?,
        },
        delete_policy: DeletePolicy::parse(&policy).map_err(|_| corrupt("delete policy"))?,
        security: serde_json::from_str(&security)?,
        workspaces: serde_json::from_str(&workspaces)?,
        participants: serde_json::from_str(&participants)?,
        invitations: serde_json::from_str(&invitations)?,
        id,
        name,
        description,
        self_participant,
        revision,
        links,
        version,
        created_at,
        updated_at,
    })
}

fn links_of(
    conn: &Connection,
    collab_id: &str,
) -> StoreResult<std::collections::BTreeMap<String, LinkedSpace>> {
    let mut stmt = conn.prepare_cached(
        "SELECT l.workspace_id, s.id, s.name, l.share FROM collab_links l
         JOIN spaces s ON s.rid = l.space_rid WHERE l.collab_id = ?1",
    )?;
    let rows = stmt.query_map([collab_id], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get(2)?,
            r.get::<_, String>(3)?,
        ))
    })?;
    let mut links = std::collections::BTreeMap::new();
    for row in rows {
        let (workspace, id, name, share) = row?;
        let space_id = id.parse().map_err(|_| corrupt("space id"))?;
        let share = ferry_proto::ShareMode::parse(&share).ok_or_else(|| corrupt("share mode"))?;
        links.insert(
            workspace,
            LinkedSpace {
                space_id,
                name,
                share,
            },
        );
    }
    Ok(links)
}

pub(super) fn find(conn: &Connection, id: &str) -> StoreResult<Option<CollabRecord>> {
    conn.query_row_cached(
        &format!("SELECT {COLS} FROM collaborations WHERE id = ?1"),
        [id],
        from_row,
    )
    .optional()?
    .map(|row| build(conn, row))
    .transpose()
}

pub(super) fn list(conn: &Connection) -> StoreResult<Vec<CollabRecord>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLS} FROM collaborations ORDER BY created_at, id"
    ))?;
    let rows = stmt
        .query_map([], from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    rows.into_iter().map(|row| build(conn, row)).collect()
}

/// Writes the whole document and its links; `replace` for an update of an existing one.
fn write(tx: &Transaction<'_>, record: &CollabRecord, replace: bool) -> StoreResult<()> {
    let verb = if replace { "REPLACE" } else { "INSERT" };
    tx.execute_cached(
        &format!(
            "{verb} INTO collaborations ({COLS}) VALUES
             (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)"
        ),
        params![
            record.id,
            record.role.as_str(),
            record.name,
            record.description,
            record.state.as_str(),
            record.host.instance_id,
            record.host.title,
            record.host.url,
            record.host.public_key.to_vec(),
            record.self_participant,
            record.revision,
            record.delete_policy.as_str(),
            to_json(&record.workspaces)?,
            to_json(&record.participants)?,
            to_json(&record.invitations)?,
            record.version + i64::from(replace),
            record.created_at,
            now(),
            to_json(&record.security)?,
        ],
    )?;
    tx.execute_cached(
        "DELETE FROM collab_links WHERE collab_id = ?1",
        [&record.id],
    )?;
    for (workspace_id, space) in &record.links {
        let (space_rid, _) = find_space(tx, &space.space_id.to_string())?;
        tx.execute_cached(
            "INSERT INTO collab_links (collab_id, workspace_id, space_rid, share)
             VALUES (?1, ?2, ?3, ?4)",
            params![record.id, workspace_id, space_rid, space.share.as_str()],
        )?;
    }
    Ok(())
}

pub(super) fn insert(
    tx: &Transaction<'_>,
    record: &CollabRecord,
    audit: &NewAuditEntry,
) -> StoreResult<CollabRecord> {
    if find(tx, &record.id)?.is_some() {
        return Err(StoreError::CollabExists(record.id.clone()));
    }
    write(tx, record, false)?;
    audit_in(tx, audit)?;
    find(tx, &record.id)?.ok_or_else(|| StoreError::CollabNotFound(record.id.clone()))
}

pub(super) fn update(
    tx: &Transaction<'_>,
    record: &CollabRecord,
    audit: &NewAuditEntry,
) -> StoreResult<CollabRecord> {
    let current =
        find(tx, &record.id)?.ok_or_else(|| StoreError::CollabNotFound(record.id.clone()))?;
    // One writer at a time, so this compare-and-set is atomic.
    if current.version != record.version {
        return Err(StoreError::CollabChanged(record.id.clone()));
    }
    write(tx, record, true)?;
    audit_in(tx, audit)?;
    find(tx, &record.id)?.ok_or_else(|| StoreError::CollabNotFound(record.id.clone()))
}

/// What a space is linked to, for refusing its deletion: workspace and connection names.
pub(super) fn links_to_space(conn: &Connection, space_rid: i64) -> StoreResult<Vec<String>> {
    let mut stmt = conn.prepare_cached(
        "SELECT 'collaboration ' || c.name || ', workspace ' || l.workspace_id
           FROM collab_links l JOIN collaborations c ON c.id = l.collab_id WHERE l.space_rid = ?1
         UNION ALL
         SELECT 'peer connection ' || p.id FROM peer_connections p
          WHERE p.space_rid = ?1 AND p.phase NOT IN ('deleted', 'revoked', 'invalidated')",
    )?;
    let rows = stmt.query_map([space_rid], |r| r.get(0))?;
    rows.collect::<Result<_, _>>().map_err(Into::into)
}

pub(super) fn record_arrival(
    tx: &Transaction<'_>,
    item: ItemId,
    link: &str,
    origin_instance: &str,
    origin_item: &str,
) -> StoreResult<()> {
    let rid: i64 = tx
        .query_row_cached(
            "SELECT rid FROM items WHERE id = ?1 AND deleted = 0",
            [item.to_string()],
            |r| r.get(0),
        )
        .optional()?
        .ok_or_else(|| StoreError::ItemNotFound(item.to_string()))?;
    tx.execute_cached(
        "INSERT OR REPLACE INTO item_arrivals (item_rid, link, origin_instance, origin_item)
         VALUES (?1, ?2, ?3, ?4)",
        params![rid, link, origin_instance, origin_item],
    )?;
    Ok(())
}

/// Forgets the arrivals `which` names; returns the live items (rid, id) no other link brought.
pub(super) fn end_arrivals(
    tx: &Transaction<'_>,
    which: Arrivals<'_>,
) -> StoreResult<Vec<(i64, ItemId, bool)>> {
    let (filter, param) = match which {
        Arrivals::Link(link) => ("link = ?1", link.to_string()),
        Arrivals::Under(prefix) => (
            "link LIKE ?1 ESCAPE '\\'",
            format!(
                "{}%",
                prefix
                    .replace('\\', "\\\\")
                    .replace('%', "\\%")
                    .replace('_', "\\_")
            ),
        ),
    };
    let rids: Vec<i64> = tx
        .prepare_cached(&format!(
            "SELECT DISTINCT item_rid FROM item_arrivals WHERE {filter}"
        ))?
        .query_map([&param], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    for &rid in &rids {
        super::sync::keep_origin(tx, rid)?;
    }
    tx.execute_cached(
        &format!("DELETE FROM item_arrivals WHERE {filter}"),
        [&param],
    )?;
    let mut orphaned = Vec::new();
    for rid in rids {
        let found: Option<(String, bool)> = tx
            .query_row_cached(
                "SELECT i.id, i.reference FROM items i WHERE i.rid = ?1 AND i.deleted = 0
                   AND NOT EXISTS (SELECT 1 FROM item_arrivals a WHERE a.item_rid = i.rid)",
                [rid],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        if let Some((id, reference)) = found {
            orphaned.push((rid, id.parse().map_err(|_| corrupt("item id"))?, reference));
        }
    }
    Ok(orphaned)
}
