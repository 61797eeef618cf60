//! GeoJSON FeatureCollection reader. The `features` array is visited one feature at a time
//! (serde's `DeserializeSeed`), so a collection of any size streams through bounded memory.

use crate::sink::Sink;
use ferry_core::geometry::RawGeometry;
use ferry_core::{CoreError, CoreResult};
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::{Map, Value};
use std::fmt;
use std::io::{BufReader, Read};

pub(crate) fn read<R: Read>(reader: R, sink: &mut Sink) -> CoreResult<()> {
    let mut failure = None;
    let mut de = serde_json::Deserializer::from_reader(BufReader::with_capacity(1 << 18, reader));
    let parsed = de
        .deserialize_map(Collection {
            sink,
            failure: &mut failure,
        })
        .and_then(|()| de.end());
    match (failure, parsed) {
        // A rule of ours broke inside the parse: report it as is.
        (Some(e), _) => Err(e),
        (None, Ok(())) => Ok(()),
        (None, Err(e)) => Err(CoreError::MalformedGeojson(describe(&e))),
    }
}

fn describe(e: &serde_json::Error) -> String {
    if e.is_io() {
        return format!("reading the input failed: {e}");
    }
    format!("not valid GeoJSON: {e}")
}

struct Collection<'a> {
    sink: &'a mut Sink,
    failure: &'a mut Option<CoreError>,
}

/// Records a rule violation and turns it into a serde error that stops the parse.
fn fail<E: de::Error>(slot: &mut Option<CoreError>, e: CoreError) -> E {
    let msg = e.to_string();
    *slot = Some(e);
    E::custom(msg)
}

impl<'de> Visitor<'de> for Collection<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a GeoJSON FeatureCollection object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut saw_features = false;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "type" => {
                    let t: String = map.next_value()?;
                    if t != "FeatureCollection" {
                        return Err(fail(self.failure, CoreError::MalformedGeojson(format!(
                            "expected a FeatureCollection, found a '{t}'; wrap single features in a FeatureCollection"
                        ))));
                    }
                }
                "features" => {
                    map.next_value_seed(Features {
                        sink: self.sink,
                        failure: self.failure,
                    })?;
                    saw_features = true;
                }
                "crs" => {
                    let crs: LegacyCrs = map.next_value()?;
                    if let Some(name) = crs.epsg_name() {
                        self.sink
                            .set_crs(name)
                            .map_err(|e| fail(self.failure, e))?;
                    }
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        if !saw_features {
            return Err(fail(
                self.failure,
                CoreError::MalformedGeojson("a FeatureCollection needs a 'features' array".into()),
            ));
        }
        Ok(())
    }
}

/// The pre-RFC 7946 `crs` member, as written by GDAL and others.
#[derive(Deserialize)]
struct LegacyCrs {
    #[serde(default)]
    properties: Option<LegacyCrsProperties>,
}

#[derive(Deserialize)]
struct LegacyCrsProperties {
    name: String,
}

impl LegacyCrs {
    /// `urn:ogc:def:crs:EPSG::3857` → `EPSG:3857`; CRS84 → `OGC:CRS84`.
    fn epsg_name(&self) -> Option<String> {
        let name = &self.properties.as_ref()?.name;
        if name.ends_with("CRS84") {
            return Some("OGC:CRS84".into());
        }
        let code = name.rsplit(':').next()?;
        code.parse::<u32>().ok().map(|c| format!("EPSG:{c}"))
    }
}

struct Features<'a> {
    sink: &'a mut Sink,
    failure: &'a mut Option<CoreError>,
}

impl<'de> DeserializeSeed<'de> for Features<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Features<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of features")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        loop {
            let n = self.sink.rows() + 1;
            let feature = match seq.next_element::<FeatureIn>() {
                Ok(Some(f)) => f,
                Ok(None) => return Ok(()),
                Err(e) => {
                    let err = CoreError::MalformedGeojson(format!("feature {n}: {e}"));
                    return Err(fail(self.failure, err));
                }
            };
            feature
                .into_row(self.sink)
                .map_err(|e| fail(self.failure, e.at(format_args!("feature {n}"))))?;
        }
    }
}

#[derive(Deserialize)]
struct FeatureIn {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    id: Option<Value>,
    #[serde(default)]
    geometry: Option<RawGeometry>,
    #[serde(default)]
    properties: Option<Map<String, Value>>,
}

impl FeatureIn {
    fn into_row(self, sink: &mut Sink) -> CoreResult<()> {
        if self.kind != "Feature" {
            return Err(CoreError::MalformedGeojson(format!(
                "expected a Feature, found a '{}'",
                self.kind
            )));
        }
        let geometry = self
            .geometry
            .map(|g| g.validate(sink.geographic))
            .transpose()?;
        sink.feature(self.id.as_ref(), &self.properties.unwrap_or_default(), geometry)
    }
}
