//! Ferry's storage.
//!
//! **API Boundary:** [`Store`] is the only way the server touches the database. It is deliberately
//! narrow and synchronous: every method is one transaction, callers run it on a blocking thread, and
//! a second backend (PostgreSQL) implements the same trait and passes the same
//! [`conformance`] suite.
//!
//! **Architecture Invariant:** every change to an item's metadata or to one of its rows takes the
//! next value of one instance-wide sequence, in the same transaction as the change. Rows keep the
//! sequence of their last change; deleted rows stay as tombstones until their item is deleted.

mod blobs;
pub mod conformance;
mod error;
mod sqlite;
mod types;

pub use blobs::{CHUNK_SIZE, ChunkStore, ChunkWriter, WrittenFile, sweep_orphans};
pub use error::{StoreError, StoreResult};
pub use sqlite::SqliteStore;
pub use types::*;

use ferry_core::Key;
use ferry_core::tiles::Tile;
use ferry_proto::{
    AuditEntry, ChangePage, ChunkHash, Item, ItemId, ItemPatch, NewPolicyRule, NewSpace,
    PolicyRule, Role, Row, Space, SpacePatch, TokenId, TokenInfo,
};

/// Everything Ferry persists, behind one narrow interface. Spaces are named by id or by name
/// (`space_ref`).
pub trait Store: Send + Sync + 'static {
    /// Makes the database files complete and self-contained (everything flushed, background work
    /// stopped), as at a clean shutdown. Reads and writes may still follow.
    fn close(&self) -> StoreResult<()>;

    /// This instance's id and current data epoch.
    fn instance(&self) -> StoreResult<InstanceRecord>;
    /// Mints a new data epoch (after a restore or rebuild); receivers then resync.
    fn rotate_epoch(&self) -> StoreResult<String>;

    /// Creates a token and audits it (`token.created`, by `actor`), in one transaction.
    fn create_token(
        &self,
        name: &str,
        role: Role,
        secret_hash: [u8; 32],
        actor: &str,
    ) -> StoreResult<TokenInfo>;
    /// The token with this secret hash, revoked or not.
    fn token_by_hash(&self, secret_hash: [u8; 32]) -> StoreResult<Option<TokenInfo>>;
    /// The token with this id, revoked or not.
    fn token(&self, id: TokenId) -> StoreResult<TokenInfo>;
    fn list_tokens(&self) -> StoreResult<Vec<TokenInfo>>;
    /// Revokes a token and audits it (`token.revoked`). Refuses the last live admin token:
    /// without one, nobody could administer the instance over its API.
    fn revoke_token(&self, id: TokenId, actor: &str) -> StoreResult<TokenInfo>;

    fn create_space(&self, new: &NewSpace) -> StoreResult<Space>;
    fn list_spaces(&self) -> StoreResult<Vec<Space>>;
    fn space(&self, space_ref: &str) -> StoreResult<Space>;
    fn update_space(&self, space_ref: &str, patch: &SpacePatch) -> StoreResult<Space>;
    /// Refuses a space that holds items unless `force`, which deletes them too.
    /// Returns the chunks no item references any more.
    fn delete_space(&self, space_ref: &str, force: bool) -> StoreResult<Vec<ChunkHash>>;

    /// Creates an item and its rows in one transaction: all rows or nothing.
    fn create_item(&self, draft: &ItemDraft, rows: &mut dyn RowSource) -> StoreResult<Item>;
    fn item(&self, id: ItemId) -> StoreResult<Item>;
    fn list_items(&self, space_ref: Option<&str>) -> StoreResult<Vec<Item>>;
    /// Items `offset..offset + limit` of a space, in the order `list_items` gives them: a page
    /// of a space too large to list whole.
    fn list_items_page(
        &self,
        space_ref: &str,
        offset: usize,
        limit: usize,
    ) -> StoreResult<Vec<Item>>;
    /// Changes an item; a change of its markings (`item.markings_changed`) or its space
    /// (`item.moved`) is audited, by `actor`, in the same transaction.
    fn update_item(&self, id: ItemId, patch: &ItemPatch, actor: &str) -> StoreResult<Item>;
    /// Leaves a tombstone for the change feed. Returns the chunks no item references any more.
    fn delete_item(&self, id: ItemId) -> StoreResult<Vec<ChunkHash>>;

    /// Applies a checked batch all or nothing. On any failure nothing is written and the error
    /// carries the result of every edit.
    fn apply_edits(&self, id: ItemId, plan: &EditPlan) -> StoreResult<EditOutcome>;
    /// Live rows in key order.
    fn query_rows(&self, id: ItemId, query: &RowQuery) -> StoreResult<Vec<Row>>;
    /// Up to `limit` live features of a layer that touch a map tile, found through the map's
    /// index and, when more touch it, thinned to an even sample ([`ferry_core::tiles`]): the
    /// sparsest tiers first, so any prefix is an even sample too.
    fn tile_rows(&self, id: ItemId, tile: Tile, limit: usize) -> StoreResult<TileRows>;
    /// Conflicts found here by two-way editing, newest first; `status`: `open`, `settled` or
    /// `resolved`, or all.
    fn conflicts(
        &self,
        status: Option<&str>,
        limit: usize,
        offset: usize,
    ) -> StoreResult<Vec<ferry_proto::twoway::ConflictRecord>>;
    fn conflict(&self, id: &str) -> StoreResult<ferry_proto::twoway::ConflictRecord>;
    /// Applies `plan` (the admin's choice, an edit like any other) and marks the conflict
    /// resolved, all or nothing.
    fn resolve_conflict(
        &self,
        id: &str,
        plan: &EditPlan,
        actor: &str,
    ) -> StoreResult<ferry_proto::twoway::ConflictRecord>;
    /// Visits every live row in key order, from one consistent snapshot.
    fn scan_rows(
        &self,
        id: ItemId,
        visit: &mut dyn FnMut(RawRow<'_>) -> StoreResult<()>,
    ) -> StoreResult<()>;
    fn row(&self, id: ItemId, key: &Key) -> StoreResult<Option<Row>>;

    /// The chunks of a file item, in order.
    fn file_chunks(&self, id: ItemId) -> StoreResult<Vec<ChunkRef>>;
    /// Whether any item references the chunk.
    fn chunk_in_use(&self, hash: &ChunkHash) -> StoreResult<bool>;
    /// The live items whose files use the chunk.
    fn items_with_chunk(&self, hash: &ChunkHash) -> StoreResult<Vec<ItemId>>;

    /// Adds a network policy rule (checked by the caller) and its audit entry, in one
    /// transaction; adding a rule that exists returns it unchanged.
    fn add_policy_rule(&self, rule: &NewPolicyRule, actor: &str) -> StoreResult<PolicyRule>;
    fn list_policy_rules(&self) -> StoreResult<Vec<PolicyRule>>;
    /// Removes a rule and records it in the audit log, in one transaction.
    fn remove_policy_rule(&self, id: &str, actor: &str) -> StoreResult<PolicyRule>;

    /// Appends to the audit log.
    fn audit(&self, entry: &NewAuditEntry) -> StoreResult<()>;
    /// Audit entries after `after`, oldest first.
    fn list_audit(&self, after: i64, limit: usize) -> StoreResult<Vec<AuditEntry>>;
    /// Audit entries before `before`, newest first.
    fn list_audit_newest(&self, before: i64, limit: usize) -> StoreResult<Vec<AuditEntry>>;
    /// Every audit entry about one subject (a connection, a rule), oldest first.
    fn audit_of(&self, subject: &str) -> StoreResult<Vec<AuditEntry>>;

    /// Records a signed request's nonce; false if it was seen before (a replay). Forgets nonces
    /// whose `expires_at` is before `now`.
    fn remember_nonce(
        &self,
        key_id: &str,
        nonce: &[u8; 16],
        expires_at: i64,
        now: i64,
    ) -> StoreResult<bool>;

    /// Stores a new peer connection record and its audit entry, in one transaction. Refuses a
    /// second record for the same role and request.
    fn insert_peer(&self, record: &PeerRecord, audit: &NewAuditEntry) -> StoreResult<PeerRecord>;
    /// Replaces a peer connection record (by id) and appends its audit entry, in one transaction.
    fn update_peer(&self, record: &PeerRecord, audit: &NewAuditEntry) -> StoreResult<PeerRecord>;
    fn peer(&self, id: &str) -> StoreResult<PeerRecord>;
    fn peer_by_request(
        &self,
        role: ferry_core::peering::Role,
        request_id: &str,
    ) -> StoreResult<Option<PeerRecord>>;
    fn list_peers(&self) -> StoreResult<Vec<PeerRecord>>;

    /// Records a collaboration new to this instance, with its audit entry.
    fn insert_collab(
        &self,
        record: &CollabRecord,
        audit: &NewAuditEntry,
    ) -> StoreResult<CollabRecord>;
    /// Replaces a collaboration (document and links) if nobody changed it since `record` was
    /// read, with its audit entry, in one transaction.
    fn update_collab(
        &self,
        record: &CollabRecord,
        audit: &NewAuditEntry,
    ) -> StoreResult<CollabRecord>;
    fn collab(&self, id: &str) -> StoreResult<CollabRecord>;
    fn list_collabs(&self) -> StoreResult<Vec<CollabRecord>>;

    /// Notes that live item `item` arrived by `link` as a copy of `origin_item` on
    /// `origin_instance`.
    fn record_arrival(
        &self,
        item: ItemId,
        link: &str,
        origin_instance: &str,
        origin_item: &str,
    ) -> StoreResult<()>;
    /// Forgets the arrivals `which` names. Live items that no other link brought are returned;
    /// with `delete_orphans` they are deleted too, and `audit` (its detail extended with the
    /// deleted item ids) is recorded, all in one transaction.
    fn end_arrivals(
        &self,
        which: Arrivals<'_>,
        delete_orphans: bool,
        audit: &NewAuditEntry,
    ) -> StoreResult<EndedArrivals>;

    /// Where an inbound sync channel stands.
    fn sync_cursor(&self, channel: &str) -> StoreResult<Option<SyncCursor>>;
    /// Starts a full pass on a channel: its cursor goes back to 0 under `cursor`'s epoch and
    /// scope, and every arrival by `link` is stale until the pass brings it again.
    fn begin_resync(&self, channel: &str, link: &str, cursor: &SyncCursor) -> StoreResult<()>;
    /// Applies a batch of received changes and the channel's new cursor, in one transaction.
    fn apply_sync_batch(&self, batch: &SyncBatch<'_>) -> StoreResult<BatchOutcome>;
    /// A channel's stream reached its end record: the items that came new in it, rows inline,
    /// are all here (see [`Store::arriving_items`]).
    fn end_stream(&self, channel: &str) -> StoreResult<()>;
    /// Applies one part of a whole copy of one item, in its own transaction; the cursor stays.
    /// The first part marks where the copy starts; the last removes the rows no part brought
    /// (they are gone at the origin) and clears the item from the channel's pending copies.
    fn apply_item_copy(
        &self,
        batch: &SyncBatch<'_>,
        origin_instance: &str,
        origin_item: &str,
        part: &mut CopyPart,
    ) -> StoreResult<BatchOutcome>;
    /// Ends a full pass: sweeps what it did not bring, retracts items it did not mention, and
    /// stores the final cursor.
    fn finish_resync(&self, batch: &SyncBatch<'_>) -> StoreResult<BatchOutcome>;
    /// Items a channel must copy whole at its next run (new ones, and refused ones to retry).
    fn pending_copies(&self, channel: &str) -> StoreResult<Vec<PendingCopy>>;
    /// Items still arriving here: a channel has yet to finish a whole copy of them, so what
    /// this instance holds of them may be part of it. A relaying instance passes none of them on.
    fn arriving_items(&self) -> StoreResult<Vec<ItemId>>;
    /// Every arrival of the live items of `space` (id or name; all spaces when `None`): which
    /// link brought each received item, from which origin. Own items have none.
    fn arrivals_in(&self, space_ref: Option<&str>) -> StoreResult<Vec<(ItemId, ItemLink)>>;
    /// Received items whose latest version a channel refused (they wait, pending, with the
    /// refusal): each with why, as `reason (code)`.
    fn stale_items(&self) -> StoreResult<Vec<(ItemId, String)>>;
    /// Records an item a channel could not take, with why; the next run tries again.
    fn mark_pending(&self, channel: &str, copy: &PendingCopy) -> StoreResult<()>;
    /// Where an item came from (`origin instance`, `origin item`); `None` for its own items.
    fn item_origin(&self, id: ItemId) -> StoreResult<Option<(String, String)>>;
    /// The links that brought an item, each with the origin it named.
    fn item_links(&self, id: ItemId) -> StoreResult<Vec<ItemLink>>;
    /// The live local item that is a copy of `origin_item` from `origin_instance`.
    fn item_by_origin(
        &self,
        origin_instance: &str,
        origin_item: &str,
    ) -> StoreResult<Option<ItemId>>;
    /// Lets a copy take its origin's next schema, whatever it removes or retypes.
    fn accept_schema(&self, id: ItemId) -> StoreResult<()>;
    /// Whether a copy's admin accepted its origin's next schema (until it arrives).
    fn schema_accepted(&self, id: ItemId) -> StoreResult<bool>;
    /// Opens (or widens) the grace of an inbound channel whose sender lost edit rights: the
    /// types are added to those already in grace, and the time is the latest change's.
    fn open_edit_grace(&self, grace: &EditGrace) -> StoreResult<()>;
    /// Every open grace.
    fn edit_graces(&self) -> StoreResult<Vec<EditGrace>>;
    /// Ends a channel's grace opened at `until_ms` or before (its run completed).
    fn close_edit_grace(&self, channel: &str, until_ms: i64) -> StoreResult<()>;
    /// Sets a link's schedule.
    fn set_schedule(&self, link: &str, schedule: &ferry_core::sync::Schedule) -> StoreResult<()>;
    /// Every schedule set, by link.
    fn schedules(&self) -> StoreResult<Vec<(String, ferry_core::sync::Schedule)>>;
    /// Inserts or replaces a sync run.
    fn record_run(&self, run: &SyncRunRecord) -> StoreResult<()>;
    /// Adds what one served request sent to the send run of the other side's run it belongs
    /// to, creating it on the first request.
    fn record_sent(&self, sent: &SentPart) -> StoreResult<()>;
    /// The latest runs, newest first, of one link or of all, of one direction (`receive` or
    /// `send`) or both.
    fn list_runs(
        &self,
        link: Option<&str>,
        direction: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<SyncRunRecord>>;

    /// What changed in a space after `after`, in sequence order, at most `limit` entries.
    /// Costs time proportional to the changes returned, not to the data in the space.
    fn changes(&self, space_ref: &str, after: i64, limit: usize) -> StoreResult<ChangePage>;
    /// [`Store::changes`] with rows as their stored JSON text, for passing on without decoding.
    /// Rows of the items in `skip_rows` are left out, cheaply: a page holds up to `limit` of the
    /// other entries, however many skipped rows lie between them.
    /// `skip_rows`: items whose row changes are left out, unread; `pending_only`: items of
    /// which only rows with a pending two-way edit come (found through their own index).
    fn raw_changes(
        &self,
        space_ref: &str,
        after: i64,
        limit: usize,
        skip_rows: &[ItemId],
        pending_only: &[ItemId],
    ) -> StoreResult<RawChangePage>;
}
