//! API bodies. Times are RFC 3339 strings in UTC.

use crate::ids::{ItemId, SpaceId, TokenId};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

/// What `GET /api/v1/instance` answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct InstanceInfo {
    /// Stable id of this instance, minted at first start.
    pub id: String,
    pub title: String,
    pub public_url: String,
    /// Public Ed25519 identity key, base64url without padding.
    pub public_key: String,
    /// Short, human-comparable digest of the public key.
    pub fingerprint: String,
    /// Data epoch: changes when the instance's data is restored or rebuilt.
    pub epoch: String,
    /// Last value of the change sequence.
    pub last_seq: i64,
    pub api_version: u32,
    pub software_version: String,
}

/// Access level of a token. Ordered: `viewer < editor < admin`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Reads everything.
    Viewer,
    /// Reads, and edits item data and metadata.
    Editor,
    /// Everything, including spaces, tokens and deletion.
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Editor => "editor",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "viewer" => Some(Role::Viewer),
            "editor" => Some(Role::Editor),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TokenInfo {
    pub id: TokenId,
    /// Who the token is for.
    pub name: String,
    pub role: Role,
    pub created_at: String,
    #[serde(default)]
    pub revoked_at: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct NewToken {
    pub name: String,
    pub role: Role,
}

/// Asks for a one-time console sign-in link for the newest live token with this name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct NewLoginLink {
    pub name: String,
}

/// A one-time console sign-in link: good once, for 15 minutes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LoginLink {
    pub url: String,
}

/// Returned once, when a token is created: the secret is never shown again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CreatedToken {
    pub token: String,
    pub info: TokenInfo,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Space {
    pub id: SpaceId,
    pub name: String,
    pub description: String,
    pub item_count: i64,
    pub created_at: String,
    pub updated_at: String,
    /// The peer connections and collaboration workspaces this space is linked to, as this
    /// instance sees them (never another participant's space).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<SpaceLink>,
}

/// One link of a space: a peer connection or a collaboration workspace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SpaceLink {
    /// `peer:<connection id>` or `collab:<collaboration id>:<workspace id>`, as `ferry sync`
    /// names links.
    pub link: String,
    /// `peer` or `collaboration`.
    pub kind: String,
    /// The other instance's title, or `collaboration / workspace`.
    pub name: String,
    /// This instance's role on the link: `originator`, `acceptor`, `host` or `guest`.
    pub role: String,
    /// A peer connection's state; this instance's access mode in a workspace (`send`,
    /// `receive`, `send_receive`).
    pub mode: String,
    /// How this instance's feature layers go over the link: `copies` or `references`, and for
    /// a guest's own choice that follows the host's, `workspace (copies)` or `workspace
    /// (references)`. A peer connection sends copies (an item may ask for a reference).
    #[serde(default)]
    pub share: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct NewSpace {
    pub name: String,
    #[serde(default)]
    pub description: String,
}

/// Fields left out are unchanged.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SpacePatch {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ItemKind {
    /// Rows with a typed schema and a primary key.
    Dataset,
    /// Features: id, geometry, typed properties.
    FeatureLayer,
    /// Bytes.
    File,
}

impl ItemKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ItemKind::Dataset => "dataset",
            ItemKind::FeatureLayer => "feature_layer",
            ItemKind::File => "file",
        }
    }

    pub fn parse(s: &str) -> Option<ItemKind> {
        match s {
            "dataset" => Some(ItemKind::Dataset),
            "feature_layer" => Some(ItemKind::FeatureLayer),
            "file" => Some(ItemKind::File),
            _ => None,
        }
    }

    /// Whether the item holds rows (datasets and layers) rather than bytes.
    pub fn has_rows(self) -> bool {
        !matches!(self, ItemKind::File)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FieldType {
    Integer,
    Number,
    String,
    Boolean,
    /// RFC 3339 date-time, carried as a string.
    Timestamp,
    /// Any JSON value (objects and arrays included).
    Json,
}

impl FieldType {
    pub fn as_str(self) -> &'static str {
        match self {
            FieldType::Integer => "integer",
            FieldType::Number => "number",
            FieldType::String => "string",
            FieldType::Boolean => "boolean",
            FieldType::Timestamp => "timestamp",
            FieldType::Json => "json",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Field {
    pub name: String,
    #[serde(rename = "type")]
    pub field_type: FieldType,
}

/// Columns of a dataset or properties of a layer. Every field is nullable except the primary key.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
pub struct Schema {
    pub fields: Vec<Field>,
    /// The dataset column whose value identifies a row. Layers use the feature id instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_key: Option<String>,
}

impl Schema {
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
pub enum GeometryType {
    Point,
    MultiPoint,
    LineString,
    MultiLineString,
    Polygon,
    MultiPolygon,
    GeometryCollection,
    /// Features of several geometry types.
    Geometry,
}

impl GeometryType {
    pub fn as_str(self) -> &'static str {
        match self {
            GeometryType::Point => "Point",
            GeometryType::MultiPoint => "MultiPoint",
            GeometryType::LineString => "LineString",
            GeometryType::MultiLineString => "MultiLineString",
            GeometryType::Polygon => "Polygon",
            GeometryType::MultiPolygon => "MultiPolygon",
            GeometryType::GeometryCollection => "GeometryCollection",
            GeometryType::Geometry => "Geometry",
        }
    }

    pub fn parse(s: &str) -> Option<GeometryType> {
        [
            GeometryType::Point,
            GeometryType::MultiPoint,
            GeometryType::LineString,
            GeometryType::MultiLineString,
            GeometryType::Polygon,
            GeometryType::MultiPolygon,
            GeometryType::GeometryCollection,
            GeometryType::Geometry,
        ]
        .into_iter()
        .find(|t| t.as_str() == s)
    }
}

/// Content of a `file` item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FileInfo {
    pub size: u64,
    /// BLAKE3 of the whole content, hex.
    pub content_hash: String,
    pub media_type: String,
    #[serde(default)]
    pub file_name: Option<String>,
    pub chunk_count: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Item {
    pub id: ItemId,
    pub space_id: SpaceId,
    pub kind: ItemKind,
    pub title: String,
    pub description: String,
    pub tags: Vec<String>,
    /// Security labels.
    pub markings: Vec<String>,
    pub owner: String,
    pub created_at: String,
    pub updated_at: String,
    /// Increments with every committed change to the item, its metadata or its rows.
    pub version: i64,
    /// Change-feed sequence of the item's last change.
    pub seq: i64,
    /// Change-feed position when the item was created: its rows are all newer than this.
    #[serde(default)]
    pub created_seq: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<Schema>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub geometry_type: Option<GeometryType>,
    /// Coordinate reference system of a layer, e.g. `EPSG:4326`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crs: Option<String>,
    /// Live rows (datasets, layers).
    pub row_count: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<FileInfo>,
    /// How links send the item: as their config says (`link`), or always as a `copy` or a
    /// `reference` (datasets and layers only).
    #[serde(default)]
    pub sync_as: SyncAs,
    /// A received reference: this instance holds the metadata only and reads rows from the
    /// item's origin when asked.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reference: bool,
    /// A received item whose latest version was refused here (why, with the code): it no
    /// longer follows its origin, and its rows are those of the version last accepted. Each
    /// run tries again; the mark goes once a version is accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stale: Option<String>,
    /// Where a received item came from; absent for this instance's own items. A received item
    /// changes only at its origin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub received: Option<Received>,
    /// Two-way editing, when the item's owner turned it on (on a copy: as its origin says).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub two_way: Option<crate::twoway::TwoWay>,
}

/// Where a received item came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Received {
    /// The instance the item was made on.
    pub origin_instance: String,
    /// Its id there.
    pub origin_item: String,
    /// The links that brought it here (`peer:<connection id>`, `collab:<id>:<workspace id>`).
    pub links: Vec<String>,
}

/// How an item travels over links.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SyncAs {
    /// As the link's config says (feature layers in a `reference` workspace go as references,
    /// everything else as copies).
    #[default]
    Link,
    /// Receivers hold the data.
    Copy,
    /// Receivers hold the metadata and read rows from this instance on demand.
    Reference,
}

impl SyncAs {
    pub fn as_str(self) -> &'static str {
        match self {
            SyncAs::Link => "link",
            SyncAs::Copy => "copy",
            SyncAs::Reference => "reference",
        }
    }

    pub fn parse(s: &str) -> Option<SyncAs> {
        match s {
            "link" => Some(SyncAs::Link),
            "copy" => Some(SyncAs::Copy),
            "reference" => Some(SyncAs::Reference),
            _ => None,
        }
    }
}

/// Creates an empty dataset or layer (to be filled by edits). Imports use `POST /api/v1/items/import`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct NewItem {
    pub space: String,
    pub kind: ItemKind,
    pub title: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub markings: Vec<String>,
    pub schema: Schema,
    #[serde(default)]
    pub geometry_type: Option<GeometryType>,
    #[serde(default)]
    pub crs: Option<String>,
}

/// Fields left out are unchanged.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ItemPatch {
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub tags: Option<Vec<String>>,
    #[serde(default)]
    pub markings: Option<Vec<String>>,
    /// How links send the item (`reference` for datasets and layers only).
    #[serde(default)]
    pub sync_as: Option<SyncAs>,
    /// Turns two-way editing on or off (the owner's instance only; datasets and layers).
    #[serde(default)]
    pub two_way: Option<bool>,
    /// How concurrent edits to the same field are settled; setting it turns two-way on.
    #[serde(default)]
    pub conflict_policy: Option<crate::twoway::ConflictPolicy>,
    /// Moves the item to this space (id or name; admins only): links of the space it leaves
    /// retract it, links of the new one send it.
    #[serde(default)]
    pub space: Option<String>,
    /// A new schema for a dataset or layer of this instance (admins only), whole: the same
    /// primary key; removed fields leave every row; a retyped field's values must fit its new
    /// type. Copies take added fields on their own, and removed or retyped ones once their
    /// admin accepts them.
    #[serde(default)]
    pub schema: Option<Schema>,
}

/// One row of a dataset or one feature of a layer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Row {
    /// Primary-key value (datasets) or feature id (layers): a string or an integer.
    #[schema(value_type = Object)]
    pub key: Value,
    /// Change-feed sequence of the row's last change.
    pub seq: i64,
    /// An object; `null` for a feature imported with `"properties": null`. Numbers are read
    /// exactly ([`crate::exact`]).
    #[serde(deserialize_with = "crate::exact::any")]
    #[schema(value_type = Object)]
    pub values: Value,
    /// GeoJSON geometry (layers only).
    #[serde(
        default,
        deserialize_with = "crate::exact::present",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Object)]
    pub geometry: Option<Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RowPage {
    pub rows: Vec<Row>,
    /// Pass as `after` to get the next page; absent on the last page.
    #[serde(default)]
    pub next: Option<String>,
}

/// A row to add or update. For datasets the key is taken from the primary-key column in `values`;
/// for layers from `key` (generated on add when absent).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
/// Numbers in it are read exactly ([`crate::exact`]): they read back digit for digit. Anything
/// but `key`, `values` and `geometry` is refused: a value put beside `values` is a mistake.
pub struct RowInput {
    // Left out when absent: a client that reads a batch and sends it on (the CLI) must not
    // turn "no key" into `"key": null`.
    #[serde(
        default,
        deserialize_with = "crate::exact::present",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Object)]
    pub key: Option<Value>,
    #[serde(default, deserialize_with = "crate::exact::object")]
    #[schema(value_type = Object)]
    pub values: Map<String, Value>,
    /// GeoJSON geometry. On update, absent means unchanged; `null` clears it.
    #[serde(
        default,
        deserialize_with = "crate::exact::present",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Object)]
    pub geometry: Option<Value>,
}

/// A batch applied all or nothing. Updates change only the values they name.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EditBatch {
    #[serde(default)]
    pub adds: Vec<RowInput>,
    #[serde(default)]
    pub updates: Vec<RowInput>,
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    pub deletes: Vec<Value>,
}

impl EditBatch {
    pub fn len(&self) -> usize {
        self.adds.len() + self.updates.len() + self.deletes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EditOp {
    Add,
    Update,
    Delete,
}

/// Outcome of one edit of a batch, in the order adds, updates, deletes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EditResult {
    pub op: EditOp,
    /// Position of the edit within its list (`adds`, `updates` or `deletes`).
    pub index: usize,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub key: Option<Value>,
    pub success: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ApiErrorBrief>,
}

/// Code and message of a failed edit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ApiErrorBrief {
    pub code: crate::ErrorCode,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EditResults {
    pub item: Item,
    pub results: Vec<EditResult>,
}

/// One entry of the change feed.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum Change {
    /// The item was created or its metadata changed; carries the current metadata.
    Item { seq: i64, item: Box<Item> },
    /// The item was deleted (a tombstone).
    ItemDeleted { seq: i64, item_id: ItemId },
    /// The item moved to another space.
    ItemLeft { seq: i64, item_id: ItemId },
    /// A row was added or updated; carries its current content.
    Row { seq: i64, item_id: ItemId, row: Row },
    /// A row was deleted (a tombstone).
    RowDeleted {
        seq: i64,
        item_id: ItemId,
        #[schema(value_type = Object)]
        key: Value,
    },
}

/// Read by hand: an internally tagged enum buffers its fields first, which would read a row's
/// numbers through the f64 serde_json parses them to; a row is read from its own text, exactly.
impl<'de> Deserialize<'de> for Change {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        #[derive(Deserialize)]
        struct Tag {
            change: String,
        }
        #[derive(Deserialize)]
        struct RowChange {
            seq: i64,
            item_id: ItemId,
            row: Row,
        }
        #[derive(Deserialize)]
        #[serde(tag = "change", rename_all = "snake_case")]
        enum Other {
            Item {
                seq: i64,
                item: Box<Item>,
            },
            ItemDeleted {
                seq: i64,
                item_id: ItemId,
            },
            ItemLeft {
                seq: i64,
                item_id: ItemId,
            },
            RowDeleted {
                seq: i64,
                item_id: ItemId,
                key: Value,
            },
        }
        let raw = Box::<serde_json::value::RawValue>::deserialize(d)?;
        let text = raw.get();
        let tag: Tag = serde_json::from_str(text).map_err(D::Error::custom)?;
        if tag.change == "row" {
            let RowChange { seq, item_id, row } =
                serde_json::from_str(text).map_err(D::Error::custom)?;
            return Ok(Change::Row { seq, item_id, row });
        }
        Ok(
            match serde_json::from_str::<Other>(text).map_err(D::Error::custom)? {
                Other::Item { seq, item } => Change::Item { seq, item },
                Other::ItemDeleted { seq, item_id } => Change::ItemDeleted { seq, item_id },
                Other::ItemLeft { seq, item_id } => Change::ItemLeft { seq, item_id },
                Other::RowDeleted { seq, item_id, key } => Change::RowDeleted { seq, item_id, key },
            },
        )
    }
}

impl Change {
    pub fn seq(&self) -> i64 {
        match self {
            Change::Item { seq, .. }
            | Change::ItemDeleted { seq, .. }
            | Change::ItemLeft { seq, .. }
            | Change::Row { seq, .. }
            | Change::RowDeleted { seq, .. } => *seq,
        }
    }
}

/// `changes after N` for one space.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ChangePage {
    pub epoch: String,
    /// In increasing `seq` order.
    pub changes: Vec<Change>,
    /// Resume from here (`after=`); equals the request's `after` when nothing changed.
    pub next_after: i64,
    /// True when more changes wait beyond this page.
    pub has_more: bool,
}

/// A network policy rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PolicyRule {
    pub id: String,
    /// `ingress` (data from the instances it matches may come here) or `egress` (data may go
    /// to them). Data from S to R needs S's egress rule and R's ingress rule.
    pub direction: String,
    /// `allow` or `deny`; a matching deny wins.
    pub effect: String,
    /// `instance:<id>`, `cidr:<range>` or `host:<name>` (`*.domain` for subdomains).
    pub pattern: String,
    pub created_at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct NewPolicyRule {
    pub direction: String,
    pub effect: String,
    pub pattern: String,
}

/// One trust or security event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AuditEntry {
    pub seq: i64,
    pub at: String,
    /// Who did it: a token's name, or `peer:<instance id>` for another instance.
    pub actor: String,
    /// What happened, e.g. `policy.added`.
    pub event: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[schema(value_type = Object)]
    pub detail: Value,
}

/// The other instance of a peer connection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PeerInfo {
    pub instance_id: String,
    pub title: String,
    pub url: String,
    /// Compare it with what the other admin sees in `ferry instance show`.
    pub fingerprint: String,
}

/// Security settings of one side of a peer connection.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PeerSecurity {
    /// Only items whose markings are all in this list leave over the connection; `None`: no
    /// marked item leaves.
    #[serde(default)]
    pub ceiling: Option<Vec<String>>,
    /// Markings given to every item received over the connection.
    #[serde(default)]
    pub mark: Vec<String>,
}

/// A change to one side's security settings, waiting for the other side's approval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PendingSecurity {
    pub change_id: String,
    /// `here` (this instance proposed it for its own settings) or `there` (the peer did).
    pub proposed_by: String,
    pub security: PeerSecurity,
}

/// The data types this side of a connection sends from now on: the ones it sends already, or
/// fewer (the other side approved no more).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PeerSends {
    /// Any of `datasets`, `features`, `files`; at least one (to send nothing, disable the
    /// connection).
    pub sends: Vec<String>,
}

/// Proposes new security settings for this side of a connection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ProposeSecurity {
    pub security: PeerSecurity,
}

/// A security proposal, or a decision on one, sent between instances.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SecurityNotice {
    pub request_id: String,
    pub change_id: String,
    /// `proposed` (with `security`), `approved` or `rejected`.
    pub action: String,
    #[serde(default)]
    pub security: Option<PeerSecurity>,
}

/// A peer connection as this instance sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PeerConnection {
    pub id: String,
    /// `originator` (created the request) or `acceptor` (imported the code).
    pub role: String,
    /// Shared by both sides' records of the same connection.
    pub request_id: String,
    /// `requested`, `imported`, `approved`, `active`, `invalidated`, `deleted` or `revoked`.
    pub state: String,
    pub disabled_here: bool,
    pub disabled_there: bool,
    /// Whether data may flow now: active and disabled by neither side.
    pub carries_data: bool,
    /// The local space the connection links, once chosen.
    #[serde(default)]
    pub space: Option<String>,
    /// The originator's space, as offered in the code.
    pub offered_space: String,
    /// Data types this instance sends over the connection.
    pub sends: Vec<String>,
    /// Data types this instance receives.
    pub receives: Vec<String>,
    #[serde(default)]
    pub peer: Option<PeerInfo>,
    /// When the invite code expires (requests and imported codes).
    #[serde(default)]
    pub expires_at: Option<String>,
    #[serde(default)]
    pub security: PeerSecurity,
    #[serde(default)]
    pub pending_security: Option<PendingSecurity>,
    /// Approved with a response file that the originator has not used yet: the file can be
    /// downloaded again (`GET /api/v1/peers/{id}/response-file`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub response_file_ready: bool,
    pub created_at: String,
    pub updated_at: String,
    /// What an admin should know about the connection, such as a peer URL on plain HTTP.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// Approves an imported code: the local space that receives, and security settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ApprovePeer {
    pub space: String,
    #[serde(default)]
    pub security: PeerSecurity,
    /// Return the signed response for a file instead of sending it to the originator.
    #[serde(default)]
    pub response_file: bool,
}

/// The outcome of an approval: the connection, and the response text when asked for as a file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PeerApproved {
    pub connection: PeerConnection,
    #[serde(default)]
    pub response: Option<String>,
}

/// The outcome of a local change the other side should hear of.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PeerChanged {
    pub connection: PeerConnection,
    /// Whether the other instance confirmed it heard of the change.
    pub notified: bool,
    /// Why it could not be told, when it could not.
    #[serde(default)]
    pub notice_error: Option<String>,
}

/// One rule a flow of data needs, and whether its instance has it. For data from S to R, S
/// needs egress to R and R needs ingress from S.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PolicyFinding {
    /// The flow, `SENDER -> RECEIVER` by titles.
    pub flow: String,
    /// The title of the instance whose rule this is.
    pub instance: String,
    /// `egress` (the sender's) or `ingress` (the receiver's).
    pub rule: String,
    pub ok: bool,
    /// What holds, or which rule is missing and how to add it.
    pub message: String,
}

/// Whether both instances' policies let a link's data flow, per direction, and which rule is
/// missing where.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PolicyCheck {
    pub ok: bool,
    pub findings: Vec<PolicyFinding>,
}

/// A response carried as a file, imported by the originator's admin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AcceptPeerResponse {
    pub response: String,
}

/// What a peer's state change notification says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PeerStateNotice {
    /// Hex request id shared by both sides.
    pub request_id: String,
    /// `activated`, `disabled`, `enabled` or `deleted`.
    pub event: String,
}

/// One connection with its history (its audit entries, oldest first).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PeerDetail {
    pub connection: PeerConnection,
    pub history: Vec<AuditEntry>,
}

/// Creates a peer request: the local space and the data types to export and import.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct NewPeerRequest {
    pub space: String,
    /// Any of `datasets`, `features`, `files`.
    #[serde(default)]
    pub export: Vec<String>,
    #[serde(default)]
    pub import: Vec<String>,
    /// How long the code stays valid, e.g. `24h` (default), `30m`, `7d`.
    #[serde(default)]
    pub expires_in: Option<String>,
}

/// A new or refreshed request, with its invite code (shown once).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PeerRequestCreated {
    pub connection: PeerConnection,
    pub code: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RefreshPeerRequest {
    #[serde(default)]
    pub expires_in: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ImportInviteCode {
    pub code: String,
}

/// `GET /healthz`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Health {
    pub status: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A missing geometry keeps the stored one; `null` clears it. Both must survive a round trip
    /// through a client that re-serializes the batch.
    #[test]
    fn row_input_keeps_absent_and_null_geometry_apart() {
        let absent: RowInput = serde_json::from_str(r#"{"key": 1}"#).unwrap();
        let null: RowInput = serde_json::from_str(r#"{"key": 1, "geometry": null}"#).unwrap();
        assert_eq!(absent.geometry, None);
        assert_eq!(null.geometry, Some(Value::Null));
        let again: RowInput =
            serde_json::from_str(&serde_json::to_string(&absent).unwrap()).unwrap();
        assert_eq!(again.geometry, None);
        let again: RowInput = serde_json::from_str(&serde_json::to_string(&null).unwrap()).unwrap();
        assert_eq!(again.geometry, Some(Value::Null));
    }

    #[test]
    fn unknown_error_codes_from_newer_servers_still_parse() {
        let e: crate::ApiError =
            serde_json::from_str(r#"{"code": "from_the_future", "message": "m"}"#).unwrap();
        assert_eq!(e.code, crate::ErrorCode::Unknown);
        for code in crate::ErrorCode::ALL {
            let text = serde_json::to_value(code).unwrap();
            assert_eq!(text, code.as_str(), "wire spelling matches as_str");
        }
    }
}
