//! GeoJSON readers: a FeatureCollection, or a GeoJSON text sequence (RFC 8142: features each
//! after an ASCII record separator, or one feature per line as in `.geojsonl`).
//!
//! A small scanner cuts the input into top-level members and single features without parsing
//! them (it tracks only nesting and strings); each feature is then parsed from its own byte slice,
//! borrowing its text. Properties and geometry are checked and stored as the text they came in,
//! so nothing is re-encoded. Memory stays bounded by the largest single feature.

use crate::format::{ImportFormat, io_error};
use crate::sink::Sink;
use ferry_core::geometry::RawGeometry;
use ferry_core::{CoreError, CoreResult};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::io::Read;

const BUFFER: usize = 1 << 18;

/// The record separator that starts each text of an RFC 8142 sequence.
const RECORD_SEPARATOR: u8 = 0x1e;

pub(crate) fn read<R: Read>(reader: R, sink: &mut Sink) -> CoreResult<()> {
    let mut scan = Scanner::new(reader);
    scan.skip_ws()?;
    // A text sequence says so with its first byte.
    if scan.peek()? == Some(RECORD_SEPARATOR) {
        return sequence(&mut scan, sink);
    }
    if scan.peek()? != Some(b'{') {
        return Err(malformed(
            scan.offset(),
            "expected a GeoJSON FeatureCollection object",
        ));
    }
    scan.bump();
    let mut saw_features = false;
    let mut first = true;
    loop {
        scan.skip_ws()?;
        match scan.peek()? {
            Some(b'}') if first => {
                scan.bump();
                break;
            }
            Some(b'"') => {}
            _ => return Err(malformed(scan.offset(), "expected a member name")),
        }
        first = false;
        let at = scan.offset();
        let key: String = parse(scan.value()?, at)?;
        scan.skip_ws()?;
        scan.expect(b':')?;
        scan.skip_ws()?;
        let at = scan.offset();
        match key.as_str() {
            "features" => {
                features(&mut scan, sink)?;
                saw_features = true;
            }
            "type" => {
                let t: String = parse(scan.value()?, at)?;
                if t == "Feature" {
                    return Err(CoreError::MalformedGeojson(
                        "expected a FeatureCollection, found a Feature: import a file of one feature per line as a GeoJSON text sequence (a .geojsonl or .geojsons file, format=geojsonseq), or wrap the features in a FeatureCollection".into(),
                    ));
                }
                if t != "FeatureCollection" {
                    return Err(CoreError::MalformedGeojson(format!(
                        "expected a FeatureCollection, found a '{t}'; wrap single features in a FeatureCollection"
                    )));
                }
            }
            "crs" => {
                let crs: LegacyCrs = parse(scan.value()?, at)?;
                if let Some(name) = crs.epsg_name() {
                    sink.set_crs(name)?;
                }
            }
            _ => {
                parse::<serde::de::IgnoredAny>(scan.value()?, at)?;
            }
        }
        scan.skip_ws()?;
        match scan.next_byte()? {
            Some(b',') => continue,
            Some(b'}') => break,
            _ => {
                return Err(malformed(
                    scan.offset(),
                    "expected ',' or '}' after a member",
                ));
            }
        }
    }
    scan.skip_ws()?;
    if scan.peek()?.is_some() {
        return Err(malformed(
            scan.offset(),
            "unexpected data after the FeatureCollection",
        ));
    }
    if !saw_features {
        return Err(CoreError::MalformedGeojson(
            "a FeatureCollection needs a 'features' array".into(),
        ));
    }
    Ok(())
}

/// A GeoJSON text sequence: features one after another, each optionally after a record
/// separator (RFC 8142) and separated by whitespace (one per line in `.geojsonl`).
pub(crate) fn read_sequence<R: Read>(reader: R, sink: &mut Sink) -> CoreResult<()> {
    sequence(&mut Scanner::new(reader), sink)
}

fn sequence<R: Read>(scan: &mut Scanner<R>, sink: &mut Sink) -> CoreResult<()> {
    loop {
        while let Some(b) = scan.peek()? {
            if !matches!(b, RECORD_SEPARATOR | b' ' | b'\n' | b'\r' | b'\t') {
                break;
            }
            scan.bump();
        }
        if scan.peek()?.is_none() {
            return Ok(());
        }
        if scan.peek()? != Some(b'{') {
            return Err(malformed(
                scan.offset(),
                "expected a feature (a JSON object)",
            ));
        }
        feature(scan, sink)?;
    }
}

/// Reads the next value as one feature and adds it to the sink.
fn feature<R: Read>(scan: &mut Scanner<R>, sink: &mut Sink) -> CoreResult<()> {
    let n = sink.rows() + 1;
    let at = scan.offset();
    let bytes = scan.value()?;
    let feature: FeatureIn<'_> = serde_json::from_slice(bytes)
        .map_err(|e| CoreError::MalformedGeojson(format!("feature {n} (byte {at}): {e}")))?;
    feature
        .into_row(sink)
        .map_err(|e| e.at(format_args!("feature {n}")))
}

fn features<R: Read>(scan: &mut Scanner<R>, sink: &mut Sink) -> CoreResult<()> {
    if scan.next_byte()? != Some(b'[') {
        return Err(malformed(scan.offset(), "'features' must be an array"));
    }
    scan.skip_ws()?;
    if scan.peek()? == Some(b']') {
        scan.bump();
        return Ok(());
    }
    loop {
        feature(scan, sink)?;
        scan.skip_ws()?;
        match scan.next_byte()? {
            Some(b',') => scan.skip_ws()?,
            Some(b']') => return Ok(()),
            _ => {
                return Err(malformed(
                    scan.offset(),
                    "expected ',' or ']' after a feature",
                ));
            }
        }
    }
}

fn malformed(offset: u64, what: &str) -> CoreError {
    CoreError::MalformedGeojson(format!("not valid GeoJSON at byte {offset}: {what}"))
}

fn parse<'a, T: Deserialize<'a>>(bytes: &'a [u8], offset: u64) -> CoreResult<T> {
    serde_json::from_slice(bytes).map_err(|e| {
        CoreError::MalformedGeojson(format!("not valid GeoJSON at byte {offset}: {e}"))
    })
}

/// Cuts a JSON byte stream into complete values without parsing them.
struct Scanner<R> {
    reader: R,
    buf: Vec<u8>,
    pos: usize,
    len: usize,
    eof: bool,
    /// Bytes dropped from the front of `buf` so far, for error offsets.
    dropped: u64,
}

impl<R: Read> Scanner<R> {
    fn new(reader: R) -> Scanner<R> {
        Scanner {
            reader,
            buf: vec![0; BUFFER],
            pos: 0,
            len: 0,
            eof: false,
            dropped: 0,
        }
    }

    fn offset(&self) -> u64 {
        self.dropped + self.pos as u64
    }

    /// Reads more input, keeping bytes from `keep` on; returns false at end of input.
    fn fill(&mut self, keep: usize) -> CoreResult<bool> {
        if self.eof {
            return Ok(false);
        }
        if keep > 0 {
            self.buf.copy_within(keep..self.len, 0);
            self.len -= keep;
            self.pos -= keep;
            self.dropped += keep as u64;
        }
        if self.len == self.buf.len() {
            let bigger = self.buf.len() * 2;
            self.buf.resize(bigger, 0);
        }
        let n = loop {
            match self.reader.read(&mut self.buf[self.len..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(io_error(ImportFormat::GeoJson, e)),
            }
        };
        self.len += n;
        self.eof = n == 0;
        Ok(n > 0)
    }

    fn peek(&mut self) -> CoreResult<Option<u8>> {
        if self.pos == self.len && !self.fill(self.pos)? {
            return Ok(None);
        }
        Ok(Some(self.buf[self.pos]))
    }

    fn bump(&mut self) {
        self.pos += 1;
    }

    fn next_byte(&mut self) -> CoreResult<Option<u8>> {
        let b = self.peek()?;
        if b.is_some() {
            self.bump();
        }
        Ok(b)
    }

    fn expect(&mut self, byte: u8) -> CoreResult<()> {
        if self.next_byte()? == Some(byte) {
            Ok(())
        } else {
            Err(malformed(
                self.offset(),
                &format!("expected '{}'", byte as char),
            ))
        }
    }

    fn skip_ws(&mut self) -> CoreResult<()> {
        while let Some(b) = self.peek()? {
            if !matches!(b, b' ' | b'\n' | b'\r' | b'\t') {
                break;
            }
            self.bump();
        }
        Ok(())
    }

    /// The bytes of the next complete value (object, array, string or scalar).
    fn value(&mut self) -> CoreResult<&[u8]> {
        let Some(first) = self.peek()? else {
            return Err(malformed(
                self.offset(),
                "the input ends where a value was expected",
            ));
        };
        let mut start = self.pos;
        let mut i = start + 1;
        let mut depth: u32 = u32::from(matches!(first, b'{' | b'['));
        let mut in_string = first == b'"';
        let mut escaped = false;
        let scalar = depth == 0 && !in_string;
        loop {
            if i == self.len {
                let had = self.pos;
                if !self.fill(start)? {
                    if scalar {
                        break;
                    }
                    return Err(CoreError::MalformedGeojson(format!(
                        "the input ends inside a value that starts at byte {}; was the upload cut off?",
                        self.dropped + start as u64
                    )));
                }
                let moved = had - self.pos;
                start -= moved;
                i -= moved;
                continue;
            }
            let b = self.buf[i];
            if in_string {
                if escaped {
                    escaped = false;
                } else if b == b'\\' {
                    escaped = true;
                } else if b == b'"' {
                    in_string = false;
                    if depth == 0 {
                        i += 1;
                        break;
                    }
                }
            } else if scalar {
                if matches!(b, b',' | b'}' | b']' | b' ' | b'\n' | b'\r' | b'\t') {
                    break;
                }
            } else {
                match b {
                    b'"' => in_string = true,
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            i += 1;
                            break;
                        }
                    }
                    _ => {}
                }
            }
            i += 1;
        }
        self.pos = i;
        Ok(&self.buf[start..i])
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

#[derive(Deserialize)]
struct FeatureIn<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(default, borrow)]
    id: Option<&'a RawValue>,
    #[serde(default, borrow)]
    geometry: Option<&'a RawValue>,
    /// `None` when absent; `null` is kept as it came, apart from `{}`.
    #[serde(default, borrow, deserialize_with = "present_raw")]
    properties: Option<&'a RawValue>,
}

/// A member that is present, `null` included, as its text.
fn present_raw<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&'de RawValue>::deserialize(d).map(Some)
}

impl FeatureIn<'_> {
    fn into_row(self, sink: &mut Sink) -> CoreResult<()> {
        if self.kind != "Feature" {
            return Err(CoreError::MalformedGeojson(format!(
                "expected a Feature, found a '{}'",
                self.kind
            )));
        }
        let id = self
            .id
            .map(|raw| serde_json::from_str::<serde_json::Value>(raw.get()))
            .transpose()
            .map_err(|e| CoreError::MalformedGeojson(format!("bad id: {e}")))?;
        let geometry = self
            .geometry
            .map(|raw| RawGeometry::validate_text(raw.get(), sink.geographic))
            .transpose()?;
        let properties = self.properties.map_or("{}", RawValue::get);
        sink.feature(id.as_ref(), properties, geometry)
    }
}
