//! Rows on their way into the store: imported records and checked edit batches.

use crate::Key;
use crate::geometry::Geometry;
use ferry_proto::GeometryType;
use serde_json::{Map, Value};

/// One row ready to store: checked against the schema, values as a JSON object text.
#[derive(Debug, Clone, PartialEq)]
pub struct RowRecord {
    pub key: Key,
    pub values: String,
    pub geometry: Option<Geometry>,
}

/// A row update: the values named replace the stored ones; `geometry: None` keeps the geometry.
#[derive(Debug, Clone, PartialEq)]
pub struct RowUpdate {
    pub key: Key,
    pub values: Map<String, Value>,
    pub geometry: Option<Option<Geometry>>,
}

/// An add whose key the store assigns (a feature added without an id).
#[derive(Debug, Clone, PartialEq)]
pub enum AddKey {
    Given(Key),
    Generate,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RowAdd {
    pub key: AddKey,
    pub values: Map<String, Value>,
    pub geometry: Option<Geometry>,
}

/// A batch of edits checked against the schema, to apply all or nothing.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct EditPlan {
    pub adds: Vec<RowAdd>,
    pub updates: Vec<RowUpdate>,
    pub deletes: Vec<Key>,
    /// Geometry type of the geometries the batch writes (the store combines it with the layer's).
    pub geometry_type: Option<GeometryType>,
    /// For a two-way item: this instance's clock reading for the batch, which the store keeps
    /// with what changed (on the origin as change stamps, on a copy in its pending edit).
    pub stamp: Option<ferry_proto::twoway::Stamp>,
}
