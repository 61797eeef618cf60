//! A feature layer's map, a Web Mercator tile at a time: what the console's map draws. A tile
//! never carries the whole of a large layer: the store's map index finds the features that touch
//! it and thins them to an even sample ([`ferry_core::tiles`]), coordinates are rounded to what
//! the tile's pixels can show, and the answer stops at a feature count and a byte size.

use crate::caller::Caller;
use crate::error::{NodeError, NodeResult};
use crate::items::parse_item_id;
use crate::node::Node;
use crate::task::blocking;
pub use ferry_core::tiles::MAX_ZOOM;
use ferry_core::tiles::Tile;
use ferry_proto::{ErrorCode, ItemKind};
use serde::Serialize;
use serde_json::Value;

/// The most features one tile carries.
pub const MAX_TILE_FEATURES: usize = 2_000;

/// The most bytes of features one tile carries (large polygons fill it before the count).
pub const MAX_TILE_BYTES: usize = 1_000_000;

/// One tile's features.
#[derive(Debug, Clone, Serialize)]
pub struct MapTile {
    pub features: Vec<TileFeature>,
    /// More features touch the tile than it carries: zooming in shows more.
    pub truncated: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct TileFeature {
    pub key: Value,
    pub values: Value,
    pub geometry: Option<Value>,
}

/// Whether the map can draw an item: a feature layer in longitude and latitude (the map and its
/// index are Web Mercator over EPSG:4326; a layer in another CRS is not reprojected).
pub fn drawable(item: &ferry_proto::Item) -> bool {
    item.kind == ItemKind::FeatureLayer
        && item
            .crs
            .as_deref()
            .is_none_or(ferry_core::geometry::is_geographic)
}

/// The features of a feature layer that touch tile `z/x/y`, for anyone signed in.
pub async fn tile(
    node: &Node,
    caller: &Caller,
    id: &str,
    (z, x, y): (u32, u32, u32),
) -> NodeResult<MapTile> {
    caller.require(ferry_proto::Role::Viewer)?;
    let id = parse_item_id(id)?;
    let tile = Tile::new(z, x, y).ok_or_else(|| {
        NodeError::new(
            ErrorCode::InvalidRequest,
            format!(
                "there is no map tile {z}/{x}/{y}: zoom goes from 0 to {}, and x and y from 0 to 2^zoom - 1",
                ferry_core::tiles::MAX_ZOOM
            ),
        )
    })?;
    let store = node.store.clone();
    let item = blocking(move || store.item(id)).await?;
    if !drawable(&item) {
        return Err(NodeError::new(
            ErrorCode::InvalidRequest,
            format!(
                "{} is not a feature layer in longitude and latitude: only those have a map",
                item.id
            ),
        ));
    }
    let (rows, complete) = if item.reference {
        // A reference's rows stay at its origin: ask it for the tile's box.
        let b = tile.bounds();
        let query = format!(
            "bbox={},{},{},{}&limit={MAX_TILE_FEATURES}",
            b.min_x, b.min_y, b.max_x, b.max_y
        );
        let page = crate::sync::reference::row_page(node, id, query, Vec::new())
            .await?
            .page;
        let complete = page.next.is_none();
        (page.rows, complete)
    } else {
        let store = node.store.clone();
        let found = blocking(move || store.tile_rows(id, tile, MAX_TILE_FEATURES)).await?;
        (found.rows, found.complete)
    };
    let decimals = tile.decimals();
    let features = rows.into_iter().map(|row| {
        let mut geometry = row.geometry;
        if let Some(g) = geometry.as_mut() {
            ferry_core::tiles::round_geometry(g, decimals);
        }
        TileFeature {
            key: row.key,
            values: row.values,
            geometry,
        }
    });
    let (features, cut) = within_bytes(features, MAX_TILE_BYTES);
    Ok(MapTile {
        features,
        truncated: cut || !complete,
    })
}

/// The features, in order, while their JSON stays within `max_bytes`; and whether some were
/// left out.
fn within_bytes(
    features: impl Iterator<Item = TileFeature>,
    max_bytes: usize,
) -> (Vec<TileFeature>, bool) {
    let mut kept = Vec::new();
    let mut bytes = 0;
    for feature in features {
        bytes += serde_json::to_vec(&feature).map_or(0, |v| v.len()) + 1;
        if bytes > max_bytes {
            return (kept, true);
        }
        kept.push(feature);
    }
    (kept, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tile_stops_before_its_byte_bound() {
        let feature = |i: i64| TileFeature {
            key: i.into(),
            values: serde_json::json!({"name": "x".repeat(100)}),
            geometry: None,
        };
        let one = serde_json::to_vec(&feature(0)).unwrap().len() + 1;
        let (kept, cut) = within_bytes((0..10).map(feature), one * 4 + 1);
        assert_eq!((kept.len(), cut), (4, true));
        let (kept, cut) = within_bytes((0..3).map(feature), one * 4);
        assert_eq!((kept.len(), cut), (3, false));
    }
}
