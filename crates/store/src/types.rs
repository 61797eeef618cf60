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

/// A row as stored, borrowed for the duration of a scan: export writes it without re-encoding.
#[derive(Debug, Clone, Copy)]
pub struct RawRow<'a> {
    pub key: &'a Key,
    /// JSON object text.
    pub values: &'a str,
    /// GeoJSON geometry text.
    pub geometry: Option<&'a str>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkRef {
    /// BLAKE3, hex.
    pub hash: String,
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
