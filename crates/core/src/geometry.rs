//! GeoJSON geometries (RFC 7946): parsing, validation, bounding boxes and canonical text.
//!
//! Geometries are stored as canonical GeoJSON text so that export and sync pass them through without
//! re-encoding. Parsing goes straight from the byte stream into [`Coords`] (no intermediate
//! `serde_json::Value`), which keeps million-feature imports fast.

use crate::error::{CoreError, CoreResult};
use ferry_proto::GeometryType;
use serde::de::{Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// Nested coordinate arrays as they appear in GeoJSON.
#[derive(Debug, Clone, PartialEq)]
pub enum Coords {
    Num(f64),
    List(Vec<Coords>),
}

impl<'de> Deserialize<'de> for Coords {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Coords;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a number or an array of coordinates")
            }
            fn visit_f64<E>(self, v: f64) -> Result<Coords, E> {
                Ok(Coords::Num(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Coords, E> {
                Ok(Coords::Num(v as f64))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Coords, E> {
                Ok(Coords::Num(v as f64))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Coords, A::Error> {
                let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(2));
                while let Some(c) = seq.next_element()? {
                    items.push(c);
                }
                Ok(Coords::List(items))
            }
        }
        d.deserialize_any(V)
    }
}

impl Serialize for Coords {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Coords::Num(n) => s.serialize_f64(*n),
            Coords::List(items) => items.serialize(s),
        }
    }
}

/// A GeoJSON geometry object as received, before validation.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct RawGeometry {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coordinates: Option<Coords>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub geometries: Option<Vec<RawGeometry>>,
}

/// Axis-aligned bounding box.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BBox {
    pub min_x: f64,
    pub min_y: f64,
    pub max_x: f64,
    pub max_y: f64,
}

impl BBox {
    fn empty() -> BBox {
        BBox {
            min_x: f64::INFINITY,
            min_y: f64::INFINITY,
            max_x: f64::NEG_INFINITY,
            max_y: f64::NEG_INFINITY,
        }
    }

    fn add(&mut self, x: f64, y: f64) {
        self.min_x = self.min_x.min(x);
        self.min_y = self.min_y.min(y);
        self.max_x = self.max_x.max(x);
        self.max_y = self.max_y.max(y);
    }

    fn merge(&mut self, other: BBox) {
        self.add(other.min_x, other.min_y);
        self.add(other.max_x, other.max_y);
    }

    pub fn intersects(&self, other: &BBox) -> bool {
        self.min_x <= other.max_x
            && other.min_x <= self.max_x
            && self.min_y <= other.max_y
            && other.min_y <= self.max_y
    }

    /// Parses `minx,miny,maxx,maxy`.
    pub fn parse(s: &str) -> CoreResult<BBox> {
        let bad = || {
            CoreError::InvalidRequest(format!(
                "bbox '{s}' is not valid: give min_x,min_y,max_x,max_y as four numbers"
            ))
        };
        let n: Vec<f64> = s
            .split(',')
            .map(|p| p.trim().parse::<f64>())
            .collect::<Result<_, _>>()
            .map_err(|_| bad())?;
        match n[..] {
            [a, b, c, d] if a <= c && b <= d && n.iter().all(|v| v.is_finite()) => Ok(BBox {
                min_x: a,
                min_y: b,
                max_x: c,
                max_y: d,
            }),
            _ => Err(bad()),
        }
    }
}

/// A validated geometry, ready to store.
#[derive(Debug, Clone, PartialEq)]
pub struct Geometry {
    pub geometry_type: GeometryType,
    /// `None` for an empty geometry (e.g. a MultiPoint with no points).
    pub bbox: Option<BBox>,
    /// Canonical GeoJSON text.
    pub text: String,
}

/// How most points are written (by Ferry, and by most tools). Such text is checked without
/// building a geometry, and the store keeps only the coordinates between the two.
pub const POINT_PREFIX: &str = r#"{"type":"Point","coordinates":["#;
pub const POINT_SUFFIX: &str = "]}";

/// The text between [`POINT_PREFIX`] and [`POINT_SUFFIX`], if `text` is a point written so
/// (checked or not).
pub fn plain_point_coordinates(text: &str) -> Option<&str> {
    text.strip_prefix(POINT_PREFIX)?.strip_suffix(POINT_SUFFIX)
}

/// Whether coordinates must be longitude/latitude (EPSG:4326, the GeoJSON default).
pub fn is_geographic(crs: &str) -> bool {
    matches!(crs, "EPSG:4326" | "OGC:CRS84")
}

impl RawGeometry {
    /// Validates the structure (RFC 7946 §3.1) and, for geographic CRSs, the coordinate ranges.
    pub fn validate(self, geographic: bool) -> CoreResult<Geometry> {
        let mut bbox = BBox::empty();
        let geometry_type = self.check(geographic, &mut bbox, 0)?;
        let text = serde_json::to_string(&self)
            .map_err(|e| CoreError::InvalidGeometry(format!("cannot encode geometry: {e}")))?;
        let bbox = bbox.min_x.is_finite().then_some(bbox);
        Ok(Geometry {
            geometry_type,
            bbox,
            text,
        })
    }

    /// Parses and validates a geometry given as JSON text, keeping that text as the stored form
    /// (imports: nothing is re-encoded).
    pub fn validate_text(text: &str, geographic: bool) -> CoreResult<Geometry> {
        let text = text.trim_matches(|c| matches!(c, ' ' | '\t' | '\n' | '\r'));
        if let Some(point) = plain_point(text, geographic)? {
            return Ok(point);
        }
        // A geometry is an object: serde would also fill the struct from an array.
        if !text.starts_with('{') {
            return Err(invalid("a GeoJSON geometry is a JSON object"));
        }
        let raw: RawGeometry = serde_json::from_str(text)
            .map_err(|e| CoreError::InvalidGeometry(format!("not a GeoJSON geometry: {e}")))?;
        let mut bbox = BBox::empty();
        let geometry_type = raw.check(geographic, &mut bbox, 0)?;
        Ok(Geometry {
            geometry_type,
            bbox: bbox.min_x.is_finite().then_some(bbox),
            text: text.to_string(),
        })
    }

    /// Parses a geometry given as a JSON value (edits).
    pub fn from_value(value: &serde_json::Value) -> CoreResult<RawGeometry> {
        RawGeometry::deserialize(value)
            .map_err(|e| CoreError::InvalidGeometry(format!("not a GeoJSON geometry: {e}")))
    }

    fn check(&self, geographic: bool, bbox: &mut BBox, depth: u32) -> CoreResult<GeometryType> {
        let t = GeometryType::parse(&self.kind)
            .filter(|t| *t != GeometryType::Geometry)
            .ok_or_else(|| {
                CoreError::InvalidGeometry(format!("unknown geometry type '{}'", self.kind))
            })?;
        if t == GeometryType::GeometryCollection {
            if depth > 0 {
                return Err(invalid("GeometryCollections may not be nested"));
            }
            let parts = self
                .geometries
                .as_ref()
                .ok_or_else(|| invalid("a GeometryCollection needs 'geometries'"))?;
            for g in parts {
                let mut b = BBox::empty();
                g.check(geographic, &mut b, depth + 1)?;
                if b.min_x.is_finite() {
                    bbox.merge(b);
                }
            }
            return Ok(t);
        }
        let coords = self
            .coordinates
            .as_ref()
            .ok_or_else(|| invalid(&format!("a {} needs 'coordinates'", self.kind)))?;
        let mut ctx = Check { geographic, bbox };
        match t {
            GeometryType::Point => ctx.position(coords)?,
            GeometryType::MultiPoint => ctx.each(coords, |c, p| c.position(p))?,
            GeometryType::LineString => ctx.line(coords)?,
            GeometryType::MultiLineString => ctx.each(coords, |c, l| c.line(l))?,
            GeometryType::Polygon => ctx.polygon(coords)?,
            GeometryType::MultiPolygon => ctx.each(coords, |c, p| c.polygon(p))?,
            GeometryType::GeometryCollection | GeometryType::Geometry => {
                unreachable!("handled above")
            }
        }
        Ok(t)
    }
}

/// A point written exactly as [`POINT_PREFIX`] `x,y` [`POINT_SUFFIX`] (most rows of most layers),
/// checked without building a geometry; `None` for any other text, which the full parse judges
/// (and explains). The numbers are read by the same JSON parser, so the box is the same.
fn plain_point(text: &str, geographic: bool) -> CoreResult<Option<Geometry>> {
    let Some(coordinates) = plain_point_coordinates(text) else {
        return Ok(None);
    };
    let mut xyz = [0.0; 3];
    let mut count = 0;
    for part in coordinates.split(',') {
        let (Some(slot), Ok(number)) = (xyz.get_mut(count), serde_json::from_str::<f64>(part))
        else {
            return Ok(None);
        };
        *slot = number;
        count += 1;
    }
    if count < 2 {
        return Ok(None);
    }
    let mut bbox = BBox::empty();
    Check {
        geographic,
        bbox: &mut bbox,
    }
    .point(&xyz[..count])?;
    Ok(Some(Geometry {
        geometry_type: GeometryType::Point,
        bbox: Some(bbox),
        text: text.to_string(),
    }))
}

fn invalid(msg: &str) -> CoreError {
    CoreError::InvalidGeometry(msg.to_string())
}

struct Check<'a> {
    geographic: bool,
    bbox: &'a mut BBox,
}

impl Check<'_> {
    fn list<'c>(&self, c: &'c Coords) -> CoreResult<&'c [Coords]> {
        match c {
            Coords::List(items) => Ok(items),
            Coords::Num(_) => Err(invalid("expected an array of coordinates, found a number")),
        }
    }

    fn each(
        &mut self,
        c: &Coords,
        mut f: impl FnMut(&mut Self, &Coords) -> CoreResult<()>,
    ) -> CoreResult<()> {
        for part in self.list(c)? {
            f(self, part)?;
        }
        Ok(())
    }

    fn position(&mut self, c: &Coords) -> CoreResult<()> {
        let items = self.list(c)?;
        if !(2..=3).contains(&items.len()) {
            return Err(invalid("a position has 2 or 3 numbers"));
        }
        let mut xyz = [0.0; 3];
        for (slot, item) in xyz.iter_mut().zip(items) {
            match item {
                Coords::Num(n) => *slot = *n,
                Coords::List(_) => return Err(invalid("a position holds finite numbers only")),
            }
        }
        self.point(&xyz[..items.len()])
    }

    /// Checks a position of 2 or 3 numbers and adds it to the box.
    fn point(&mut self, xyz: &[f64]) -> CoreResult<()> {
        if !xyz.iter().all(|n| n.is_finite()) {
            return Err(invalid("a position holds finite numbers only"));
        }
        let (x, y) = (xyz[0], xyz[1]);
        if self.geographic && !((-180.0..=180.0).contains(&x) && (-90.0..=90.0).contains(&y)) {
            return Err(invalid(&format!(
                "position [{x}, {y}] is outside longitude -180..180 / latitude -90..90 (EPSG:4326); coordinates in another CRS need it named: import with --crs (e.g. --crs EPSG:28992) or a GeoJSON \"crs\" member"
            )));
        }
        self.bbox.add(x, y);
        Ok(())
    }

    fn line(&mut self, c: &Coords) -> CoreResult<()> {
        let n = self.list(c)?.len();
        if n < 2 {
            return Err(invalid("a LineString needs at least 2 positions"));
        }
        self.each(c, |s, p| s.position(p))
    }

    fn polygon(&mut self, c: &Coords) -> CoreResult<()> {
        for ring in self.list(c)? {
            let points = self.list(ring)?;
            if points.len() < 4 {
                return Err(invalid("a polygon ring needs at least 4 positions"));
            }
            if points.first() != points.last() {
                return Err(invalid(
                    "a polygon ring must be closed: its last position must equal its first",
                ));
            }
            self.each(ring, |s, p| s.position(p))?;
        }
        Ok(())
    }
}

/// The geometry type of a layer, given the types seen so far.
pub fn combine_types(current: Option<GeometryType>, next: GeometryType) -> GeometryType {
    match current {
        None => next,
        Some(c) if c == next => c,
        Some(_) => GeometryType::Geometry,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: serde_json::Value) -> CoreResult<Geometry> {
        RawGeometry::from_value(&v)?.validate(true)
    }

    #[test]
    fn valid_geometries_and_bboxes() {
        let p = parse(json!({"type": "Point", "coordinates": [10, 20.5]})).unwrap();
        assert_eq!(p.geometry_type, GeometryType::Point);
        assert_eq!(p.text, r#"{"type":"Point","coordinates":[10.0,20.5]}"#);
        let poly =
            parse(json!({"type": "Polygon", "coordinates": [[[0,0],[4,0],[4,3],[0,0]]]})).unwrap();
        let b = poly.bbox.unwrap();
        assert_eq!((b.min_x, b.min_y, b.max_x, b.max_y), (0.0, 0.0, 4.0, 3.0));
        let gc = parse(json!({"type": "GeometryCollection", "geometries": [
            {"type": "Point", "coordinates": [1, 1]},
            {"type": "LineString", "coordinates": [[2, 2], [3, 5]]}
        ]}))
        .unwrap();
        assert_eq!(gc.bbox.unwrap().max_y, 5.0);
        let empty = parse(json!({"type": "MultiPoint", "coordinates": []})).unwrap();
        assert_eq!(empty.bbox, None);
    }

    #[test]
    fn invalid_geometries() {
        for bad in [
            json!({"type": "Point", "coordinates": [1]}),
            json!({"type": "Point", "coordinates": [200, 0]}),
            json!({"type": "Point"}),
            json!({"type": "Circle", "coordinates": [0, 0]}),
            json!({"type": "LineString", "coordinates": [[0, 0]]}),
            json!({"type": "Polygon", "coordinates": [[[0,0],[1,0],[1,1],[0,1]]]}),
            json!({"type": "Polygon", "coordinates": [[[0,0],[1,0],[0,0]]]}),
            json!({"type": "MultiPoint", "coordinates": [1, 2]}),
            json!({"coordinates": [1, 2]}),
            json!("POINT(1 2)"),
        ] {
            let err = parse(bad.clone()).unwrap_err();
            assert_eq!(err.code(), ferry_proto::ErrorCode::InvalidGeometry, "{bad}");
        }
    }

    #[test]
    fn projected_crs_allows_large_coordinates() {
        let g =
            RawGeometry::from_value(&json!({"type": "Point", "coordinates": [500000, 6000000]}))
                .unwrap();
        assert!(g.clone().validate(false).is_ok());
        assert!(g.validate(true).is_err());
    }

    #[test]
    fn bbox_parsing() {
        assert!(BBox::parse("0,0,1,1").is_ok());
        assert!(BBox::parse("1,0,0,1").is_err());
        assert!(BBox::parse("0,0,1").is_err());
        assert!(BBox::parse("a,b,c,d").is_err());
    }

    /// Points in the plain form take a shortcut; it must judge exactly as the full parse does.
    #[test]
    fn plain_points_are_judged_as_the_full_parse_judges_them() {
        let full = |text: &str, geographic| {
            serde_json::from_str::<RawGeometry>(text)
                .map_err(|e| CoreError::InvalidGeometry(e.to_string()))
                .and_then(|raw| {
                    let mut bbox = BBox::empty();
                    let t = raw.check(geographic, &mut bbox, 0)?;
                    Ok((t, bbox))
                })
        };
        let cases = [
            "[1.5,-2.25]",
            "[1,2]",
            "[-0,1e-3]",
            "[0.1,0.30000000000000004]",
            "[1,2,3]",
            "[ 1 , 2 ]",
            "[500,1]",
            "[1e999,1]",
            "[1]",
            "[1,2,3,4]",
            "[1,\"2\"]",
            "[[1,2]]",
            "[1,2],[3,4]",
            "[]",
        ];
        for case in cases {
            let text = format!(r#"{{"type":"Point","coordinates":{case}}}"#);
            for geographic in [true, false] {
                let fast = RawGeometry::validate_text(&text, geographic);
                match (fast, full(&text, geographic)) {
                    (Ok(g), Ok((t, bbox))) => {
                        assert_eq!((g.geometry_type, g.bbox), (t, Some(bbox)), "{text}");
                        assert_eq!(g.text, text);
                    }
                    (Err(a), Err(_)) => {
                        assert_eq!(a.code(), ferry_proto::ErrorCode::InvalidGeometry, "{text}")
                    }
                    (fast, full) => panic!("{text}: {fast:?} but {full:?}"),
                }
            }
        }
        // Arrays are not geometries, whatever serde would make of them; only JSON whitespace
        // surrounds a geometry.
        for text in [
            r#"["Point",[1,2]]"#,
            "\u{a0}{\"type\":\"Point\",\"coordinates\":[1,2]}",
            "\u{b}{\"type\":\"LineString\",\"coordinates\":[[1,2],[3,4]]}",
        ] {
            assert!(RawGeometry::validate_text(text, true).is_err(), "{text}");
        }
        let padded =
            RawGeometry::validate_text(" \n{\"type\":\"Point\",\"coordinates\":[1,2]}\t", true);
        assert_eq!(
            padded.unwrap().text,
            r#"{"type":"Point","coordinates":[1,2]}"#
        );
        assert!(
            plain_point(r#"{"type":"Point","coordinates":[1,2]}"#, true)
                .unwrap()
                .is_some()
        );
        assert!(
            plain_point(r#"{"type":"Point","coordinates":[[1,2]]}"#, true)
                .unwrap()
                .is_none()
        );
    }
}
