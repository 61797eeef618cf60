//! Two-way editing as it crosses the edge: an item's setting, an edit from a copy as it travels
//! to the origin, the version a row of a two-way item carries to its copies, and the conflicts
//! the API lists. The rules that judge edits live in `ferry_core::twoway`.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// A row's content, field by field; a feature's geometry is the field [`GEOMETRY`].
pub type Fields = BTreeMap<String, Value>;

/// The name a feature's geometry has among an edit's fields (no field name may start with `@`).
pub const GEOMETRY: &str = "@geometry";

/// How an item's owner settles concurrent edits to the same field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConflictPolicy {
    /// The origin's value stays (the default).
    #[default]
    OriginWins,
    /// The value with the later hybrid logical clock, ties broken by instance id.
    LatestWins,
    /// The origin's value stays until an admin resolves the conflict.
    Manual,
}

impl ConflictPolicy {
    pub const ALL: [ConflictPolicy; 3] = [
        ConflictPolicy::OriginWins,
        ConflictPolicy::LatestWins,
        ConflictPolicy::Manual,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ConflictPolicy::OriginWins => "origin_wins",
            ConflictPolicy::LatestWins => "latest_wins",
            ConflictPolicy::Manual => "manual",
        }
    }

    pub fn parse(s: &str) -> Option<ConflictPolicy> {
        Self::ALL.into_iter().find(|p| p.as_str() == s)
    }
}

/// An item's two-way editing, when its owner enabled it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
pub struct TwoWay {
    pub conflict_policy: ConflictPolicy,
}

/// A hybrid logical clock reading: wall-clock milliseconds, a counter, and the instance, which
/// breaks ties. It orders edits for `latest_wins`; detection never reads it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema)]
pub struct Stamp {
    pub ms: i64,
    pub count: u32,
    pub instance: String,
}

/// What an edit does to its row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "do", rename_all = "snake_case")]
pub enum EditAction {
    /// Sets these fields; `row` is the editor's whole row, which the origin takes when the row
    /// is absent or deleted there.
    Put {
        #[schema(value_type = Object)]
        set: Fields,
        #[schema(value_type = Object)]
        row: Fields,
    },
    Delete,
}

/// An edit made on a copy, as it travels to the item's origin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RowEdit {
    /// The editing instance.
    pub editor: String,
    /// The editor's feed position of the edit's latest part: the origin acknowledges up to it.
    pub seq: i64,
    /// The origin version the edit was made from; 0 when the editor had none.
    pub base: i64,
    /// The key was new at the editor (it inserted the row).
    #[serde(default)]
    pub inserted: bool,
    pub action: EditAction,
    pub at: Stamp,
}

/// What a row of a two-way item carries to its copies: its version at the origin, and for each
/// instance that edited it, the feed position of its last edit the origin judged.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
pub struct RowVersion {
    pub version: i64,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub seen: BTreeMap<String, i64>,
}

/// A conflict recorded at an item's origin: both versions of the row, so either can be restored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ConflictRecord {
    pub id: String,
    pub item_id: crate::ItemId,
    #[schema(value_type = Object)]
    pub key: Value,
    /// `same_field`, `update_delete`, `delete_update`, `double_insert`, or `refused` (the
    /// origin could not take the edit: see `reason`).
    pub kind: String,
    /// Why a `refused` edit was refused: its error code and message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The fields both sides changed.
    pub fields: Vec<String>,
    /// The origin's row before the edit (`null`: deleted).
    #[schema(value_type = Object)]
    pub ours: Option<Fields>,
    /// The row as the editing instance had it (`null`: deleted).
    #[schema(value_type = Object)]
    pub theirs: Option<Fields>,
    /// Who last changed the row here before the edit, and when.
    pub our_instance: Option<String>,
    pub our_at: Option<Stamp>,
    /// The editing instance, and when it edited.
    pub their_instance: String,
    pub their_at: Stamp,
    pub policy: ConflictPolicy,
    /// Which version the policy kept: `ours` or `theirs`.
    pub kept: String,
    /// `open` (waits for an admin: `manual`), `settled` (by the policy) or `resolved` (by an
    /// admin).
    pub status: String,
    pub created_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_by: Option<String>,
}

/// An admin's decision on a conflict: keep `ours`, `theirs`, or a `merged` row given whole.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ConflictResolution {
    /// `ours`, `theirs` or `merged`.
    pub keep: String,
    /// With `merged`: the row to keep, field by field (a feature's geometry as `@geometry`).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub row: Option<Fields>,
}
