//! Values passed to and from the [`crate::Store`].

use ferry_core::geometry::BBox;
pub use ferry_core::rows::{AddKey, EditPlan, RowAdd, RowRecord, RowUpdate};
use ferry_core::{CoreResult, Key};
use ferry_proto::{EditResult, FileInfo, GeometryType, Item, ItemKind, Schema};
use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
pub struct InstanceRecord {
    pub id: String,
    pub epoch: String,
    pub last_seq: i64,
}

/// An item about to be created.
#[derive(Debug, Clone)]
pub struct ItemDraft {
    pub space_ref: String,
    pub kind: ItemKind,
    pub title: String,
    pub description: String,
    pub tags: Vec<String>,
    pub markings: Vec<String>,
    pub owner: String,
    pub crs: Option<String>,
    /// For files: the content and its chunks.
    pub file: Option<(FileInfo, Vec<ChunkRef>)>,
}

/// The schema and geometry type an import settled on, known once its rows are read.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ItemShape {
    pub schema: Option<Schema>,
    pub geometry_type: Option<GeometryType>,
    /// A CRS the input declared; overrides the draft's.
    pub crs: Option<String>,
}

/// A stream of rows for [`crate::Store::create_item`]. An error aborts the whole import.
pub trait RowSource {
    fn next_row(&mut self) -> CoreResult<Option<RowRecord>>;
    /// Called after the last row.
    fn shape(&self) -> ItemShape;
}

/// A source with no rows and a fixed shape (empty items, files).
#[derive(Debug, Clone, Default)]
pub struct NoRows(pub ItemShape);

impl RowSource for NoRows {
    fn next_row(&mut self) -> CoreResult<Option<RowRecord>> {
        Ok(None)
    }
    fn shape(&self) -> ItemShape {
        self.0.clone()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct EditOutcome {
    pub item: Item,
    pub results: Vec<EditResult>,
}

#[derive(Debug, Clone, Default)]
pub struct RowQuery {
    /// Rows with keys after this one.
    pub after: Option<Key>,
    pub limit: usize,
    pub bbox: Option<BBox>,
    /// Attribute equality filters, all of which must hold.
    pub equals: Vec<(String, Value)>,
}

/// The features of one map tile.
#[derive(Debug, Clone, PartialEq)]
pub struct TileRows {
    pub rows: Vec<ferry_proto::Row>,
    /// Every feature that touches the tile is in `rows`.
    pub complete: bool,
}

/// A row as stored, borrowed for the duration of a scan: export writes it without re-encoding.
#[derive(Debug, Clone, Copy)]
pub struct RawRow<'a> {
    pub key: &'a Key,
    /// JSON object text.
    pub values: &'a str,
    /// GeoJSON geometry text.
    pub geometry: Option<&'a str>,
    /// Change-feed sequence of the row's last change.
    pub seq: i64,
    /// Two-way editing's state of the row (see [`RowTwoWay::twoway`]), for a two-way item.
    pub two_way: Option<&'a str>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkRef {
    pub hash: ferry_proto::ChunkHash,
    pub len: u64,
}

/// An audit event about to be recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAuditEntry {
    pub actor: String,
    pub event: String,
    pub subject: Option<String>,
    pub detail: Value,
}

/// A peer connection as stored: the server applies the rules (`ferry_core::peering`), the store
/// keeps the record.
#[derive(Debug, Clone, PartialEq)]
pub struct PeerRecord {
    pub id: String,
    pub role: ferry_core::peering::Role,
    pub request_id: String,
    pub status: ferry_core::peering::Status,
    /// The local space the connection links (name), once chosen.
    pub space: Option<String>,
    /// The originator's space name, as offered in the code.
    pub offered_space: String,
    pub sends: ferry_proto::ticket::DataTypes,
    pub receives: ferry_proto::ticket::DataTypes,
    pub peer: Option<PeerIdentity>,
    pub secret: Option<Vec<u8>>,
    /// Unix seconds.
    pub expires_at: Option<i64>,
    pub security: ferry_proto::PeerSecurity,
    pub pending_security: Option<ferry_proto::PendingSecurity>,
    /// Bumped by every update; [`crate::Store::update_peer`] refuses a record read before the last
    /// update.
    pub version: i64,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerIdentity {
    pub instance_id: String,
    pub title: String,
    pub url: String,
    pub public_key: [u8; 32],
}

/// A collaboration as this instance keeps it: one document, read and written whole, with a
/// version for compare-and-set. The host keeps every guest's modes and the invitations; a guest
/// keeps what the host's latest snapshot told it. `links` are this instance's own and never leave
/// it.
#[derive(Debug, Clone, PartialEq)]
pub struct CollabRecord {
    /// Shared by every participant's record of the same collaboration.
    pub id: String,
    pub role: ferry_core::collab::CollabRole,
    pub name: String,
    pub description: String,
    pub state: ferry_core::collab::CollabState,
    /// The host (this instance itself when it hosts).
    pub host: PeerIdentity,
    /// This instance's participant id.
    pub self_participant: String,
    /// Host: bumped by every change guests should hear of. Guest: the last snapshot applied.
    pub revision: i64,
    pub delete_policy: ferry_core::collab::DeletePolicy,
    /// This instance's own security for the collaboration: what may leave, what it marks.
    pub security: ferry_proto::PeerSecurity,
    pub workspaces: Vec<WorkspaceRecord>,
    pub participants: Vec<ParticipantRecord>,
    /// Host only.
    pub invitations: Vec<InvitationRecord>,
    /// Workspace id to the local space linked to it.
    pub links: std::collections::BTreeMap<String, LinkedSpace>,
    /// Bumped by every update; [`crate::Store::update_collab`] refuses a stale record.
    pub version: i64,
    pub created_at: String,
    pub updated_at: String,
}

/// A local space linked to a workspace: held by id, so a renamed space stays linked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkedSpace {
    pub space_id: ferry_proto::SpaceId,
    pub name: String,
    /// How a guest's link sends its own feature layers.
    pub share: ferry_proto::ShareMode,
}

impl From<&ferry_proto::Space> for LinkedSpace {
    fn from(space: &ferry_proto::Space) -> Self {
        LinkedSpace {
            space_id: space.id,
            name: space.name.clone(),
            share: ferry_proto::ShareMode::Workspace,
        }
    }
}

/// Which arrivals end: those of one link, or of every link under a prefix (a collaboration).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrivals<'a> {
    Link(&'a str),
    Under(&'a str),
}

/// What ending arrivals did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EndedArrivals {
    /// Live items no other link brought.
    pub orphaned: Vec<ferry_proto::ItemId>,
    /// Whether those were deleted.
    pub deleted: bool,
    /// Chunks no item uses any more, for the chunk store to remove.
    pub freed_chunks: Vec<ferry_proto::ChunkHash>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct WorkspaceRecord {
    pub id: String,
    pub name: String,
    pub description: String,
    pub config: ferry_proto::WorkspaceConfig,
    /// Participant id to access mode (`send`, `receive`, `send_receive`). Host: every guest in
    /// the workspace. Guest: itself only.
    pub modes: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ParticipantRecord {
    pub id: String,
    /// `host` or `guest`.
    pub role: String,
    pub title: String,
    /// `active`, `left` or `removed`.
    pub status: String,
    /// Host only, for guests: who they are and how to reach their people.
    #[serde(default)]
    pub identity: Option<StoredIdentity>,
    #[serde(default)]
    pub contact: Option<String>,
    /// Guest only: the participant's instance id, as the host's snapshot gives it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_id: Option<String>,
}

impl ParticipantRecord {
    /// The participant's instance, where this instance knows it.
    pub fn instance(&self) -> Option<&str> {
        self.identity
            .as_ref()
            .map(|i| i.instance_id.as_str())
            .or(self.instance_id.as_deref())
    }
}

/// A pinned identity in a form that serializes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StoredIdentity {
    pub instance_id: String,
    pub title: String,
    pub url: String,
    pub public_key: [u8; 32],
}

impl From<&StoredIdentity> for PeerIdentity {
    fn from(s: &StoredIdentity) -> Self {
        PeerIdentity {
            instance_id: s.instance_id.clone(),
            title: s.title.clone(),
            url: s.url.clone(),
            public_key: s.public_key,
        }
    }
}

impl From<&PeerIdentity> for StoredIdentity {
    fn from(p: &PeerIdentity) -> Self {
        StoredIdentity {
            instance_id: p.instance_id.clone(),
            title: p.title.clone(),
            url: p.url.clone(),
            public_key: p.public_key,
        }
    }
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct InvitationRecord {
    pub id: String,
    pub guest_url: String,
    /// Workspace id to the offered mode.
    pub access: std::collections::BTreeMap<String, String>,
    /// BLAKE3 of the current code's one-time secret, hex.
    pub secret_hash: String,
    /// Unix seconds.
    pub expires_at: i64,
    /// `open`, `accepted` or `invalidated`.
    pub state: String,
    /// The participant that accepted it, and the response it accepted (BLAKE3, hex), so a
    /// retried delivery of the same response is recognised.
    #[serde(default)]
    pub accepted_by: Option<String>,
    #[serde(default)]
    pub response_hash: Option<String>,
    /// How often a new code replaced the previous one.
    #[serde(default)]
    pub refreshes: u32,
    pub created_at: String,
}

impl CollabRecord {
    pub fn workspace(&self, id_or_name: &str) -> Option<&WorkspaceRecord> {
        self.workspaces
            .iter()
            .find(|w| w.id == id_or_name)
            .or_else(|| self.workspaces.iter().find(|w| w.name == id_or_name))
    }

    pub fn participant(&self, id: &str) -> Option<&ParticipantRecord> {
        self.participants.iter().find(|p| p.id == id)
    }

    /// A participant's part in a workspace, if it takes part: the host always, a guest by its
    /// mode there. The input of [`ferry_core::collab::directions`] and
    /// [`ferry_core::collab::channel`].
    pub fn part_in(
        &self,
        workspace_id: &str,
        participant_id: &str,
    ) -> Option<ferry_core::collab::Participant> {
        use ferry_core::collab::{AccessMode, Participant};
        let participant = self.participant(participant_id)?;
        if participant.status != "active" {
            return None;
        }
        let workspace = self.workspaces.iter().find(|w| w.id == workspace_id)?;
        if participant.role == "host" {
            return Some(Participant::Host);
        }
        let mode = AccessMode::parse(workspace.modes.get(participant_id)?).ok()?;
        Some(Participant::Guest(mode))
    }
}

/// Where an inbound channel stands: the sender's epoch and scope, and the feed position applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncCursor {
    pub epoch: String,
    pub scope: String,
    pub seq: i64,
    /// A full pass is under way: at its end, what it did not bring is retracted.
    pub resync: bool,
}

/// Where a whole copy of an item stands: parts apply one after the other, so a copy of any size
/// holds one part in memory. A copy cut between parts starts again; its end sweeps what the new
/// copy did not bring.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CopyPart {
    /// The feed position the copy started at; set by the first part.
    pub start: Option<i64>,
    /// This part ends the copy.
    pub last: bool,
    /// The item held live rows when the copy started: the last part sweeps those the copy did
    /// not bring again. A first copy has nothing to sweep and skips the scan of its rows.
    pub had_rows: bool,
}

/// A link that brought an item here, and the origin identity it gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemLink {
    pub link: String,
    pub origin_instance: String,
    pub origin_item: String,
}

/// An item as received: its origin and metadata (markings already include the link's own).
#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedItem {
    pub origin_instance: String,
    pub origin_item: String,
    pub kind: ItemKind,
    pub title: String,
    pub description: String,
    pub tags: Vec<String>,
    pub markings: Vec<String>,
    pub schema: Option<ferry_proto::Schema>,
    pub geometry_type: Option<GeometryType>,
    pub crs: Option<String>,
    pub file: Option<(FileInfo, Vec<ChunkRef>)>,
    /// All the item's rows follow in the same stream (it was created after the receiver's
    /// cursor): no whole copy is needed, unless `copy_whole`.
    pub whole: bool,
    /// None of the item's rows are in the stream: the item is copied whole.
    pub copy_whole: bool,
    /// A reference: the rows stay at the origin; `row_count` is the origin's.
    pub reference: bool,
    pub row_count: i64,
    /// The owner's choice of copy or reference, kept so it holds on every further hop.
    pub sync_as: ferry_proto::SyncAs,
    /// Two-way editing as the origin set it.
    pub two_way: Option<ferry_proto::twoway::TwoWay>,
}

impl ReceivedItem {
    pub fn origin(&self) -> Origin {
        Origin::new(&self.origin_instance, &self.origin_item)
    }
}

/// A received item's global identity: the instance where it was created, and its id there.
/// Received items are found by both, never by the item id alone: ids are chosen by whoever
/// created the item, so only the pair tells one instance's item from another's.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Origin {
    pub instance: String,
    pub item: String,
}

impl Origin {
    pub fn new(instance: impl Into<String>, item: impl Into<String>) -> Origin {
        Origin {
            instance: instance.into(),
            item: item.into(),
        }
    }
}

/// One checked change from a sender.
#[derive(Debug, Clone, PartialEq)]
pub enum SyncOp {
    Item(Box<ReceivedItem>),
    Row {
        origin: std::sync::Arc<Origin>,
        row: RowRecord,
    },
    RowDeleted {
        origin: std::sync::Arc<Origin>,
        key: Key,
    },
    Retract {
        origin_instance: String,
        origin_item: String,
    },
    /// The origin's version of a row of a two-way item, following the row's change: a copy
    /// keeps the part of its pending edit the origin has not seen over the origin's content.
    RowVersion {
        origin: std::sync::Arc<Origin>,
        key: Key,
        version: ferry_proto::twoway::RowVersion,
    },
    /// An edit from a copy of this instance's own two-way item, to judge here.
    Edit {
        item: ferry_proto::ItemId,
        key: Key,
        edit: Box<ferry_proto::twoway::RowEdit>,
    },
    /// An edit from an instance that may edit the item, whose row this instance cannot take
    /// (`reason`, e.g. a field removed since the copy edited): acknowledged to the editor and
    /// kept as an open conflict, changing no field.
    RefusedEdit {
        item: ferry_proto::ItemId,
        key: Key,
        edit: Box<ferry_proto::twoway::RowEdit>,
        reason: String,
    },
}

/// An inbound channel whose sender may still send the edits of `types` it made before
/// `until_ms`, though it may no longer edit them (see the `edit_graces` table).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EditGrace {
    pub channel: String,
    pub types: ferry_proto::ticket::DataTypes,
    pub until_ms: i64,
}

/// A batch to apply in one transaction with the channel's new cursor.
#[derive(Debug, Clone)]
pub struct SyncBatch<'a> {
    /// The cursor's key: one per inbound channel.
    pub channel: &'a str,
    /// The arrival link received items are tied to.
    pub link: &'a str,
    /// The local space received items land in.
    pub space: &'a str,
    /// Who owns received items here.
    pub owner: &'a str,
    pub ops: &'a [SyncOp],
    pub cursor: &'a SyncCursor,
    /// Whether a retracted item is deleted (the delete policy) or kept, untied from the link.
    pub delete_retracted: bool,
}

/// What a batch did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchOutcome {
    pub items: i64,
    pub rows: i64,
    pub retracted: i64,
    pub freed_chunks: Vec<ferry_proto::ChunkHash>,
    /// Edits from copies judged here, and the conflicts they made.
    pub edits: i64,
    pub conflicts: i64,
    /// Edits refused (item, key, code, why): nothing of them was applied.
    pub refused_edits: Vec<(ferry_proto::ItemId, Key, ferry_proto::ErrorCode, String)>,
}

/// An item a channel must copy whole at its next run, and why, if it failed before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingCopy {
    pub origin_instance: String,
    pub origin_item: String,
    pub title: String,
    pub error_code: Option<String>,
    pub error: Option<String>,
}

/// A run as stored.
pub type SyncRunRecord = ferry_proto::SyncRun;

/// What one served request (a pull, an item copy, a chunk) sent over a link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentPart {
    pub link: String,
    /// The other side's run the request belongs to; `None` makes a send run of its own.
    pub peer_run: Option<String>,
    pub trigger: String,
    pub items: i64,
    pub rows: i64,
    pub retracted: i64,
    pub bytes: i64,
    /// Why the request stopped early (the receiver went away, a store error); the send run is
    /// then `failed`, whatever its other requests did.
    pub failure: Option<String>,
}

/// One entry of the change feed with rows as stored text.
#[derive(Debug, Clone, PartialEq)]
pub enum RawChange {
    Item(Box<Item>),
    ItemDeleted(ferry_proto::ItemId),
    /// The item moved to another space.
    ItemLeft(ferry_proto::ItemId),
    Row {
        item_id: ferry_proto::ItemId,
        key: Key,
        /// JSON object text.
        values: String,
        /// GeoJSON geometry text.
        geometry: Option<String>,
        /// Two-way editing's state of the row, for a two-way item.
        two_way: Option<Box<RowTwoWay>>,
    },
    RowDeleted {
        item_id: ferry_proto::ItemId,
        key: Key,
        two_way: Option<Box<RowTwoWay>>,
    },
}

/// What two-way editing keeps beside a row, as stored JSON text.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RowTwoWay {
    /// At the origin: stamps and `seen`; on a copy: the origin's [`RowVersion`] of it.
    ///
    /// [`RowVersion`]: ferry_proto::twoway::RowVersion
    pub twoway: Option<String>,
    /// On a copy: the local edit the origin has not judged ([`ferry_core::twoway::Pending`]).
    pub pending: Option<String>,
}

/// A page of [`RawChange`]s with their sequences, in order.
#[derive(Debug, Clone, PartialEq)]
pub struct RawChangePage {
    pub epoch: String,
    pub changes: Vec<(i64, RawChange)>,
    pub next_after: i64,
    pub has_more: bool,
}
