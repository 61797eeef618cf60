//! Tokens, peer connections, policy rules, the audit log and request nonces, as the store keeps
//! them.

use super::connections::SqliteStore;
use super::records::*;
use crate::types::*;
use crate::{StoreError, StoreResult};
use ferry_proto::{AuditEntry, NewPolicyRule, PolicyRule, Role, TokenId, TokenInfo};
use rusqlite::{OptionalExtension, Transaction, params};

pub(super) fn insert_peer(
    store: &SqliteStore,
    record: &PeerRecord,
    audit: &NewAuditEntry,
) -> StoreResult<PeerRecord> {
    store.write(|tx| {
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

pub(super) fn update_peer(
    store: &SqliteStore,
    record: &PeerRecord,
    audit: &NewAuditEntry,
) -> StoreResult<PeerRecord> {
    store.write(|tx| {
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

pub(super) fn peer(store: &SqliteStore, id: &str) -> StoreResult<PeerRecord> {
    store.read(|c| {
        find_peer(c, "p.id = ?1", &id)?.ok_or_else(|| StoreError::PeerNotFound(id.to_string()))
    })
}

pub(super) fn peer_by_request(
    store: &SqliteStore,
    role: ferry_core::peering::Role,
    request_id: &str,
) -> StoreResult<Option<PeerRecord>> {
    store.read(|c| {
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

pub(super) fn list_peers(store: &SqliteStore) -> StoreResult<Vec<PeerRecord>> {
    store.read(|c| {
        let mut stmt = c.prepare_cached(&peers_query("1 = 1 ORDER BY p.created_at, p.id"))?;
        let rows = stmt.query_map([], peer_row)?;
        rows.map(|r| build_peer(r?)).collect()
    })
}

pub(super) fn add_policy_rule(
    store: &SqliteStore,
    rule: &NewPolicyRule,
    actor: &str,
) -> StoreResult<PolicyRule> {
    store.write(|tx| {
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

pub(super) fn list_policy_rules(store: &SqliteStore) -> StoreResult<Vec<PolicyRule>> {
    store.read(|c| {
        c.prepare_cached(&format!(
            "SELECT {RULE_COLS} FROM policy_rules ORDER BY direction, created_at, id"
        ))?
        .query_map([], rule_from_row)?
        .collect::<Result<_, _>>()
        .map_err(Into::into)
    })
}

pub(super) fn remove_policy_rule(
    store: &SqliteStore,
    id: &str,
    actor: &str,
) -> StoreResult<PolicyRule> {
    store.write(|tx| {
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

pub(super) fn audit(store: &SqliteStore, entry: &NewAuditEntry) -> StoreResult<()> {
    store.write(|tx| audit_in(tx, entry))
}

pub(super) fn list_audit(
    store: &SqliteStore,
    after: i64,
    limit: usize,
) -> StoreResult<Vec<AuditEntry>> {
    store.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT seq, at, actor, event, subject, detail FROM audit_log WHERE seq > ?1 ORDER BY seq LIMIT ?2",
            )?;
            audit_rows(&mut stmt, params![after, limit as i64])
        })
}

pub(super) fn list_audit_newest(
    store: &SqliteStore,
    before: i64,
    limit: usize,
) -> StoreResult<Vec<AuditEntry>> {
    store.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT seq, at, actor, event, subject, detail FROM audit_log WHERE seq < ?1 ORDER BY seq DESC LIMIT ?2",
            )?;
            audit_rows(&mut stmt, params![before, limit as i64])
        })
}

pub(super) fn audit_of(store: &SqliteStore, subject: &str) -> StoreResult<Vec<AuditEntry>> {
    store.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT seq, at, actor, event, subject, detail FROM audit_log WHERE subject = ?1 ORDER BY seq",
            )?;
            audit_rows(&mut stmt, params![subject])
        })
}

pub(super) fn remember_nonce(
    store: &SqliteStore,
    key_id: &str,
    nonce: &[u8; 16],
    expires_at: i64,
    now: i64,
) -> StoreResult<bool> {
    store.write(|tx| {
        tx.execute_cached("DELETE FROM seen_nonces WHERE expires_at < ?1", [now])?;
        let inserted = tx.execute_cached(
            "INSERT OR IGNORE INTO seen_nonces (key_id, nonce, expires_at) VALUES (?1, ?2, ?3)",
            params![key_id, &nonce[..], expires_at],
        )?;
        Ok(inserted == 1)
    })
}

pub(super) fn create_token(
    store: &SqliteStore,
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
    store.write(|tx| {
            tx.execute_cached(
                "INSERT INTO tokens (id, name, role, secret_hash, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![info.id.to_string(), info.name, role.as_str(), &secret_hash[..], info.created_at],
            )?;
            audit_in(tx, &token_audit(actor, "token.created", &info))
        })?;
    Ok(info)
}

pub(super) fn token_by_hash(
    store: &SqliteStore,
    secret_hash: [u8; 32],
) -> StoreResult<Option<TokenInfo>> {
    store.read(|c| {
        c.prepare_cached(&format!(
            "SELECT {TOKEN_COLS} FROM tokens WHERE secret_hash = ?1"
        ))?
        .query_row([&secret_hash[..]], token_from_row)
        .optional()?
        .map(token_info)
        .transpose()
    })
}

pub(super) fn token(store: &SqliteStore, id: TokenId) -> StoreResult<TokenInfo> {
    store.read(|c| {
        c.prepare_cached(&format!("SELECT {TOKEN_COLS} FROM tokens WHERE id = ?1"))?
            .query_row([id.to_string()], token_from_row)
            .optional()?
            .map(token_info)
            .transpose()?
            .ok_or(StoreError::TokenNotFound(id.to_string()))
    })
}

pub(super) fn list_tokens(store: &SqliteStore) -> StoreResult<Vec<TokenInfo>> {
    store.read(|c| {
        c.prepare_cached(&format!(
            "SELECT {TOKEN_COLS} FROM tokens ORDER BY created_at, id"
        ))?
        .query_map([], token_from_row)?
        .map(|r| token_info(r?))
        .collect()
    })
}

pub(super) fn revoke_token(
    store: &SqliteStore,
    id: TokenId,
    actor: &str,
) -> StoreResult<TokenInfo> {
    store.write(|tx| {
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
