//! Where a feature sits on the map, so a map tile of a large layer is found through an index and
//! thinned to an even sample, never read whole.
//!
//! Every feature with a bounding box gets a *map cell*: one integer that the store keeps in an
//! index beside the feature's layer. It packs two things:
//!
//! - Its **quadtree cell**: the smallest Web Mercator tile (zoom 0 to [`MAX_LEVEL`]) that holds
//!   the feature's whole bounding box, numbered so that the cells inside a tile are one contiguous
//!   range of integers (a cell's number ends in a one bit at a place that says its level, as the
//!   cells of a spherical quadtree are usually numbered). The features that touch a tile are then
//!   the features of that range plus the few whose cell *contains* the tile (its ancestors: large
//!   features, or small ones lying across a tile line), which need their box checked.
//! - Its **tier** (0 to [`TOP_TIER`]), drawn from a hash of the feature's key: one feature in
//!   four has a tier below the top, one in sixteen below that, and so on. The tiers up to `t`
//!   hold a random `4^(t - TOP_TIER)` of the layer, the same sample whatever the tile; reading a
//!   tile tier by tier and stopping at the tier that would overflow it gives an even thinning of
//!   any layer at any zoom, with no precomputed pyramid to keep up to date.
//!
//! Laws (tested below): a cell's range holds exactly its descendants; the cell of a box is the
//! deepest tile holding it; every tier's share of keys is close to its expected share.

use crate::geometry::BBox;
use crate::schema::Key;

/// The deepest quadtree level a feature's cell can have (tiles about 2.4 m wide at the equator).
pub const MAX_LEVEL: u32 = 24;
/// The deepest tile the map asks for.
pub const MAX_ZOOM: u32 = 22;
/// Tiers are `0..=TOP_TIER`; three features in four are in the top one.
pub const TOP_TIER: u32 = 10;
/// Bits of a map cell below its tier.
const CELL_BITS: u32 = 2 * MAX_LEVEL + 1;
/// The latitude where the Web Mercator square ends.
const MAX_LATITUDE: f64 = 85.051_128_779_806_59;

/// One Web Mercator tile: zoom `z`, column `x` from the west, row `y` from the north.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tile {
    pub z: u32,
    pub x: u32,
    pub y: u32,
}

impl Tile {
    /// A tile that exists, or `None`.
    pub fn new(z: u32, x: u32, y: u32) -> Option<Tile> {
        (z <= MAX_ZOOM && x < 1 << z && y < 1 << z).then_some(Tile { z, x, y })
    }

    /// Its bounds in longitude and latitude.
    pub fn bounds(&self) -> BBox {
        let n = f64::from(1u32 << self.z);
        let lon = |x: f64| x / n * 360.0 - 180.0;
        let lat = |y: f64| {
            (std::f64::consts::PI * (1.0 - 2.0 * y / n))
                .sinh()
                .atan()
                .to_degrees()
        };
        let (x, y) = (f64::from(self.x), f64::from(self.y));
        BBox {
            min_x: lon(x),
            min_y: lat(y + 1.0),
            max_x: lon(x + 1.0),
            max_y: lat(y),
        }
    }

    /// The map cells of one tier that lie inside this tile: `lo..=hi`.
    pub fn inside(&self, tier: u32) -> (i64, i64) {
        let cell = cell_number(self.z, self.x, self.y);
        let half = cell & cell.wrapping_neg();
        (
            with_tier(tier, cell - half + 1),
            with_tier(tier, cell + half - 1),
        )
    }

    /// The map cells of one tier that contain this tile (its ancestors, from zoom 0): their
    /// features may or may not touch it.
    pub fn around(&self, tier: u32) -> impl Iterator<Item = i64> + '_ {
        (0..self.z).map(move |level| {
            let shift = self.z - level;
            with_tier(tier, cell_number(level, self.x >> shift, self.y >> shift))
        })
    }

    /// Decimal places that keep a coordinate within a quarter of this tile's pixels (256 to a
    /// tile), with one to spare for the squeeze of Mercator's high latitudes.
    pub fn decimals(&self) -> u32 {
        let pixel = 360.0 / f64::from(1u32 << self.z) / 1024.0;
        (-pixel.log10()).ceil() as u32 + 1
    }
}

/// The map cell of a feature: its tier (from its key) above the quadtree cell of its bounding
/// box. `None` for a feature wholly beyond the Web Mercator square (nearer a pole than 85.05°),
/// which no tile shows.
pub fn map_cell(key: &Key, bbox: &BBox) -> Option<i64> {
    let on_the_map = bbox.max_y >= -MAX_LATITUDE && bbox.min_y <= MAX_LATITUDE;
    on_the_map.then(|| with_tier(tier(key_hash(key)), box_cell(bbox)))
}

/// The tier of a key's hash: the top tier less one per two leading zero bits.
pub fn tier(hash: u64) -> u32 {
    TOP_TIER - (hash.leading_zeros() / 2).min(TOP_TIER)
}

/// The tier a map cell holds.
pub fn tier_of_cell(map_cell: i64) -> u32 {
    (map_cell >> CELL_BITS) as u32
}

/// A well-mixed 64-bit hash of a key, the same on every machine and in every version (it decides
/// which features a thinned tile keeps, and the index stores the result).
pub fn key_hash(key: &Key) -> u64 {
    match key {
        Key::Int(i) => mix(*i as u64),
        Key::Text(s) => {
            // FNV-1a, then mixed: text keys hash apart from the integers they might spell.
            let fnv = s.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
            });
            mix(fnv ^ 0x9e37_79b9_7f4a_7c15)
        }
    }
}

/// The finalizer of SplitMix64: every input bit reaches every output bit.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn with_tier(tier: u32, cell: i64) -> i64 {
    (i64::from(tier) << CELL_BITS) | cell
}

/// Cell `(x, y)` of quadtree level `level`: its Morton number, a one bit, then two zero bits per
/// level below it down to [`MAX_LEVEL`].
fn cell_number(level: u32, x: u32, y: u32) -> i64 {
    let morton = spread(x) | (spread(y) << 1);
    (((morton << 1) | 1) << (2 * (MAX_LEVEL - level))) as i64
}

/// The bits of `v` moved to the even places of a `u64`.
fn spread(v: u32) -> u64 {
    let mut v = u64::from(v);
    v = (v | (v << 16)) & 0x0000_ffff_0000_ffff;
    v = (v | (v << 8)) & 0x00ff_00ff_00ff_00ff;
    v = (v | (v << 4)) & 0x0f0f_0f0f_0f0f_0f0f;
    v = (v | (v << 2)) & 0x3333_3333_3333_3333;
    (v | (v << 1)) & 0x5555_5555_5555_5555
}

/// The quadtree cell of the deepest tile that holds the whole box. Positions beyond the Web
/// Mercator square count as on its edge.
fn box_cell(bbox: &BBox) -> i64 {
    let (x0, y0) = deepest_position(bbox.min_x, bbox.max_y);
    let (x1, y1) = deepest_position(bbox.max_x, bbox.min_y);
    let differ = (x0 ^ x1) | (y0 ^ y1);
    let climb = 32 - differ.leading_zeros();
    cell_number(MAX_LEVEL - climb, x0 >> climb, y0 >> climb)
}

/// Column and row of a position among the tiles of [`MAX_LEVEL`].
fn deepest_position(lon: f64, lat: f64) -> (u32, u32) {
    let n = f64::from(1u32 << MAX_LEVEL);
    let last = (1u32 << MAX_LEVEL) - 1;
    let lat = lat.clamp(-MAX_LATITUDE, MAX_LATITUDE).to_radians();
    let x = (lon + 180.0) / 360.0 * n;
    let y = (1.0 - lat.tan().asinh() / std::f64::consts::PI) / 2.0 * n;
    // `as` turns NaN into 0 and saturates: a position off the square lands on its edge.
    ((x as u32).min(last), (y as u32).min(last))
}

/// A GeoJSON geometry's coordinates rounded to `decimals` places, with positions that rounding
/// made equal to the one before dropped from lines and rings (as long as a line keeps two
/// positions and a ring four): a tile carries what its pixels can show, not more.
pub fn round_geometry(geometry: &mut serde_json::Value, decimals: u32) {
    let scale = 10f64.powi(decimals as i32);
    let kind = geometry
        .get("type")
        .and_then(|t| t.as_str())
        .unwrap_or("")
        .to_owned();
    if kind == "GeometryCollection" {
        if let Some(serde_json::Value::Array(parts)) = geometry.get_mut("geometries") {
            parts.iter_mut().for_each(|g| round_geometry(g, decimals));
        }
        return;
    }
    let depth = match kind.as_str() {
        "Point" => 0,
        "MultiPoint" | "LineString" => 1,
        "MultiLineString" | "Polygon" => 2,
        "MultiPolygon" => 3,
        _ => return,
    };
    if let Some(coordinates) = geometry.get_mut("coordinates") {
        round_nested(coordinates, depth, kind != "MultiPoint", scale);
    }
}

/// Rounds positions `depth` lists deep; `thin` drops repeats from the innermost lists.
fn round_nested(value: &mut serde_json::Value, depth: u32, thin: bool, scale: f64) {
    let serde_json::Value::Array(items) = value else {
        return;
    };
    if depth == 0 {
        for number in items.iter_mut() {
            if let Some(v) = number.as_f64() {
                *number = serde_json::json!((v * scale).round() / scale);
            }
        }
        return;
    }
    for item in items.iter_mut() {
        round_nested(item, depth - 1, thin, scale);
    }
    if depth == 1 && thin {
        let closed = items.len() >= 4 && items.first() == items.last();
        let keep = if closed { 4 } else { 2 };
        let mut kept: Vec<serde_json::Value> = Vec::with_capacity(items.len());
        for (i, position) in items.iter().enumerate() {
            let last = i + 1 == items.len();
            if kept.last() != Some(position) || (last && closed) {
                kept.push(position.clone());
            }
        }
        if kept.len() >= keep {
            *items = kept;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(lon: f64, lat: f64) -> BBox {
        BBox {
            min_x: lon,
            min_y: lat,
            max_x: lon,
            max_y: lat,
        }
    }

    /// The tile of zoom `z` that holds a position.
    fn tile_at(z: u32, lon: f64, lat: f64) -> Tile {
        let (x, y) = deepest_position(lon, lat);
        Tile::new(z, x >> (MAX_LEVEL - z), y >> (MAX_LEVEL - z)).unwrap()
    }

    #[test]
    fn a_point_is_inside_every_tile_that_holds_it_and_no_other() {
        let (lon, lat) = (4.8952, 52.3702);
        let cell = map_cell(&Key::Int(7), &point(lon, lat)).unwrap();
        assert_eq!(
            map_cell(&Key::Int(7), &point(lon, 86.0)),
            None,
            "off the map"
        );
        let tier = tier_of_cell(cell);
        for z in 0..=MAX_ZOOM {
            let tile = tile_at(z, lon, lat);
            let (lo, hi) = tile.inside(tier);
            assert!((lo..=hi).contains(&cell), "zoom {z}");
            assert!(!tile.around(tier).any(|c| c == cell));
            if tile.x + 1 < 1 << z {
                let next = Tile::new(z, tile.x + 1, tile.y).unwrap();
                let (lo, hi) = next.inside(tier);
                assert!(!(lo..=hi).contains(&cell), "zoom {z}: a neighbour holds it");
            }
            let b = tile.bounds();
            assert!(b.min_x <= lon && lon <= b.max_x && b.min_y <= lat && lat <= b.max_y);
        }
    }

    #[test]
    fn a_box_across_a_tile_line_is_an_ancestor_of_the_tiles_it_touches() {
        // Across the prime meridian: only the world tile holds it whole.
        let across = BBox {
            min_x: -0.001,
            min_y: 10.0,
            max_x: 0.001,
            max_y: 10.001,
        };
        let cell = map_cell(&Key::Int(1), &across).unwrap();
        let tier = tier_of_cell(cell);
        assert_eq!(cell, with_tier(tier, cell_number(0, 0, 0)));
        for z in 1..=MAX_ZOOM {
            for lon in [-0.0005, 0.0005] {
                let tile = tile_at(z, lon, 10.0005);
                assert!(tile.around(tier).any(|c| c == cell), "zoom {z}");
                let (lo, hi) = tile.inside(tier);
                assert!(!(lo..=hi).contains(&cell));
            }
        }
        // Within one zoom-5 tile but across a zoom-6 line.
        let tile5 = tile_at(5, 12.0, 40.0);
        let b = tile5.bounds();
        let middle = (b.min_x + b.max_x) / 2.0;
        let inside = BBox {
            min_x: middle - 0.01,
            min_y: 40.0,
            max_x: middle + 0.01,
            max_y: 40.01,
        };
        let cell = box_cell(&inside);
        assert_eq!(cell, cell_number(5, tile5.x, tile5.y));
    }

    #[test]
    fn ranges_of_children_lie_inside_their_parent_and_apart() {
        for (z, x, y) in [(0, 0, 0), (3, 5, 2), (21, 12345, 67890)] {
            let parent = Tile::new(z, x, y).unwrap();
            let (lo, hi) = parent.inside(3);
            let mut children: Vec<(i64, i64)> = (0..4)
                .map(|q| {
                    Tile::new(z + 1, 2 * x + q % 2, 2 * y + q / 2)
                        .unwrap()
                        .inside(3)
                })
                .collect();
            children.sort();
            let own = with_tier(3, cell_number(z, x, y));
            for (i, (clo, chi)) in children.iter().enumerate() {
                assert!(lo <= *clo && *chi <= hi, "child inside the parent");
                assert!(
                    !(clo..=chi).contains(&&own),
                    "the parent's own cell is no child's"
                );
                if let Some((next_lo, _)) = children.get(i + 1) {
                    assert!(chi < next_lo, "children apart");
                }
            }
        }
    }

    #[test]
    fn tiers_thin_by_four() {
        let mut counts = [0u32; TOP_TIER as usize + 1];
        let n = 1_000_000;
        for i in 0..n {
            counts[tier(key_hash(&Key::Int(i))) as usize] += 1;
        }
        // The share at or below each tier is close to 4^(t - TOP_TIER).
        let mut below = 0;
        for (t, count) in counts.iter().enumerate().take(TOP_TIER as usize) {
            below += count;
            let expected = f64::from(n as u32) * 4f64.powi(t as i32 - TOP_TIER as i32);
            if expected >= 1000.0 {
                let ratio = f64::from(below) / expected;
                assert!(
                    (0.9..1.1).contains(&ratio),
                    "tier {t}: {below} for {expected}"
                );
            }
        }
        assert_ne!(
            key_hash(&Key::Text("7".into())),
            key_hash(&Key::Int(7)),
            "text keys hash apart from integers"
        );
    }

    #[test]
    fn rounding_keeps_what_a_tile_can_show() {
        let tile = Tile::new(2, 1, 1).unwrap();
        assert_eq!(tile.decimals(), 3);
        assert_eq!(Tile::new(22, 0, 0).unwrap().decimals(), 9);
        let mut line = serde_json::json!({"type": "LineString",
            "coordinates": [[1.000_01, 2.0], [1.000_02, 2.0], [3.123_456, 4.0]]});
        round_geometry(&mut line, 4);
        assert_eq!(
            line["coordinates"],
            serde_json::json!([[1.0, 2.0], [3.1235, 4.0]])
        );
        let mut ring = serde_json::json!({"type": "Polygon", "coordinates": [[
            [0.0, 0.0], [0.000_01, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 0.0]]]});
        round_geometry(&mut ring, 2);
        assert_eq!(
            ring["coordinates"],
            serde_json::json!([[[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 0.0]]])
        );
        // A ring rounding would shrink below four positions stays as it was rounded.
        let mut tiny = serde_json::json!({"type": "Polygon", "coordinates": [[
            [0.0, 0.0], [0.000_01, 0.0], [0.000_01, 0.000_01], [0.0, 0.0]]]});
        round_geometry(&mut tiny, 2);
        assert_eq!(tiny["coordinates"][0].as_array().unwrap().len(), 4);
        let mut points = serde_json::json!({"type": "MultiPoint",
            "coordinates": [[0.001, 0.0], [0.002, 0.0]]});
        round_geometry(&mut points, 1);
        assert_eq!(points["coordinates"].as_array().unwrap().len(), 2);
    }
}
