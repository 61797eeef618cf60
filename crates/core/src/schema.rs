//! Schemas: inference from data, checking values against a schema, and row keys.
//!
//! Inference is progressive so that imports can stream: a [`SchemaBuilder`] sees each row once and
//! widens field types where the values already stored stay valid (integer → number,
//! timestamp → string, unknown → anything). A widening that would invalidate stored values is an
//! error that tells the user to pass an explicit schema.

use crate::error::{CoreError, CoreResult};
use ferry_proto::{Field, FieldType, Schema};
pub use seen::Seen;
use serde_json::{Map, Value};

/// Name of the key column Ferry adds to a dataset imported without a primary key.
pub const GENERATED_KEY: &str = "_id";

/// A row's identity: the primary-key value of a dataset row or the id of a feature.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Key {
    Int(i64),
    Text(String),
}

impl Key {
    /// Keys are integers or non-empty strings; anything else is refused.
    pub fn from_value(value: &Value) -> CoreResult<Key> {
        match value {
            Value::Number(n) => n.as_i64().map(Key::Int).ok_or_else(|| {
                CoreError::SchemaMismatch(format!("key {n} is not an integer or a string"))
            }),
            Value::String(s) if !s.is_empty() => Ok(Key::Text(s.clone())),
            other => Err(CoreError::SchemaMismatch(format!(
                "key {other} is not an integer or a non-empty string"
            ))),
        }
    }

    pub fn to_value(&self) -> Value {
        match self {
            Key::Int(i) => Value::from(*i),
            Key::Text(s) => Value::from(s.as_str()),
        }
    }
}

impl std::fmt::Display for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Key::Int(i) => write!(f, "{i}"),
            Key::Text(s) => write!(f, "'{s}'"),
        }
    }
}

/// Checks a client-given schema.
pub fn check_schema(schema: &Schema, needs_primary_key: bool) -> CoreResult<()> {
    let mut seen = std::collections::HashSet::new();
    for field in &schema.fields {
        if field.name.is_empty() || field.name.len() > 128 {
            return Err(CoreError::InvalidSchema(
                "field names have 1-128 characters".to_string(),
            ));
        }
        if !seen.insert(field.name.as_str()) {
            return Err(CoreError::InvalidSchema(format!(
                "field '{}' appears twice",
                field.name
            )));
        }
    }
    match (&schema.primary_key, needs_primary_key) {
        (None, true) => Err(CoreError::InvalidSchema(
            "a dataset needs a primary key: name one of its fields".to_string(),
        )),
        (Some(_), false) => Err(CoreError::InvalidSchema(
            "a feature layer is keyed by its feature ids; leave primary_key out".to_string(),
        )),
        (Some(pk), true) => match schema.field(pk) {
            Some(f) if matches!(f.field_type, FieldType::Integer | FieldType::String) => Ok(()),
            Some(_) => Err(CoreError::InvalidSchema(format!(
                "primary key '{pk}' must be an integer or string field"
            ))),
            None => Err(CoreError::InvalidSchema(format!(
                "primary key '{pk}' is not one of the fields"
            ))),
        },
        (None, false) => Ok(()),
    }
}

/// The type a value suggests, or `None` for null.
fn type_of(seen: &Seen<'_>) -> Option<FieldType> {
    match seen {
        Seen::Null => None,
        Seen::Bool => Some(FieldType::Boolean),
        Seen::Int => Some(FieldType::Integer),
        Seen::Float => Some(FieldType::Number),
        Seen::Str(s) if looks_like_timestamp(s) => Some(FieldType::Timestamp),
        Seen::Str(_) => Some(FieldType::String),
        Seen::Nested => Some(FieldType::Json),
    }
}

pub fn looks_like_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 20
        && b[..4].iter().all(u8::is_ascii_digit)
        && b[4] == b'-'
        && s.parse::<jiff::Timestamp>().is_ok()
}

/// The common type of two observations, if the values already stored stay valid under it.
fn widen(old: FieldType, new: FieldType) -> Option<FieldType> {
    use FieldType::*;
    match (old, new) {
        (a, b) if a == b => Some(a),
        (Integer, Number) | (Number, Integer) => Some(Number),
        (Timestamp, String) | (String, Timestamp) => Some(String),
        (Json, _) => Some(Json),
        _ => None,
    }
}

/// Whether `value` is acceptable in a field of type `t` (null always is).
pub fn value_fits(t: FieldType, value: &Value) -> bool {
    seen_fits(t, &Seen::of(value))
}

fn seen_fits(t: FieldType, seen: &Seen<'_>) -> bool {
    match (t, seen) {
        (_, Seen::Null) | (FieldType::Json, _) => true,
        (FieldType::Boolean, Seen::Bool) => true,
        (FieldType::Integer, Seen::Int) => true,
        (FieldType::Number, Seen::Int | Seen::Float) => true,
        (FieldType::String, Seen::Str(_)) => true,
        (FieldType::Timestamp, Seen::Str(s)) => s.parse::<jiff::Timestamp>().is_ok(),
        _ => false,
    }
}

/// Builds or enforces a schema while rows stream past.
#[derive(Debug, Clone)]
pub struct SchemaBuilder {
    /// `None` until a non-null value was seen.
    fields: Vec<(String, Option<FieldType>)>,
    index: crate::collections::FastMap<String, usize>,
    /// The field after the last one seen: rows mostly list their fields in the schema's order,
    /// so it is tried before the map.
    expected: usize,
    primary_key: Option<String>,
    /// An explicit schema: no new fields, no widening.
    strict: bool,
    /// Which row each field was last seen in (by `row`), so a name given twice in one row is
    /// caught: JSON text may repeat a key, and a stored row must read back as it was meant.
    seen_in: Vec<u64>,
    /// The row being observed, counted from 1.
    row: u64,
}

impl SchemaBuilder {
    /// Infers a schema from the rows it observes.
    pub fn infer(primary_key: Option<String>) -> SchemaBuilder {
        SchemaBuilder {
            fields: Vec::new(),
            index: crate::collections::FastMap::default(),
            expected: 0,
            primary_key,
            strict: false,
            seen_in: Vec::new(),
            row: 0,
        }
    }

    fn push_field(&mut self, name: &str, field_type: Option<FieldType>) {
        self.index.insert(name.to_string(), self.fields.len());
        self.fields.push((name.to_string(), field_type));
        self.seen_in.push(self.row);
    }

    /// Enforces a given schema.
    pub fn enforce(schema: &Schema) -> SchemaBuilder {
        let mut b = SchemaBuilder::infer(schema.primary_key.clone());
        for f in &schema.fields {
            b.push_field(&f.name, Some(f.field_type));
        }
        b.strict = true;
        b
    }

    pub fn is_strict(&self) -> bool {
        self.strict
    }

    /// Checks one row's values and, when inferring, learns from them.
    pub fn observe(&mut self, values: &Map<String, Value>) -> CoreResult<()> {
        self.expected = 0;
        self.row += 1;
        for (name, value) in values {
            // The values object is level 1.
            if 1 + depth_of(value) > MAX_JSON_DEPTH {
                return Err(too_deep(name));
            }
            self.observe_value(name, Seen::of(value))?;
        }
        Ok(())
    }

    /// Like [`SchemaBuilder::observe`], for a JSON object given as text: no map is built, which
    /// keeps large imports fast. Refuses text that is not a JSON object.
    pub fn observe_raw(&mut self, object: &str) -> CoreResult<()> {
        self.expected = 0;
        self.row += 1;
        // A feature's `"properties": null`: no values, kept as written.
        if object.trim() == "null" {
            return Ok(());
        }
        if let Some(fields) = flat::fields(object) {
            for (name, seen) in fields {
                self.observe_value(name, seen)?;
            }
            return Ok(());
        }
        let mut failure = None;
        let mut de = serde_json::Deserializer::from_str(object);
        let parsed = serde::Deserializer::deserialize_map(
            &mut de,
            raw::Fields {
                builder: self,
                failure: &mut failure,
            },
        );
        // Text after the object is refused too: a compact row's values end where its tab is.
        let parsed = parsed.and_then(|()| de.end());
        match (failure, parsed) {
            (Some(e), _) => Err(e),
            (None, Ok(())) => Ok(()),
            (None, Err(e)) => Err(CoreError::SchemaMismatch(format!(
                "properties must be a JSON object: {e}"
            ))),
        }
    }

    fn observe_value(&mut self, name: &str, seen: Seen<'_>) -> CoreResult<()> {
        let Some(i) = self.position(name) else {
            if self.strict {
                return Err(CoreError::SchemaMismatch(format!(
                    "field '{name}' is not in the schema"
                )));
            }
            self.push_field(name, type_of(&seen));
            self.expected = self.fields.len();
            return Ok(());
        };
        if std::mem::replace(&mut self.seen_in[i], self.row) == self.row {
            return Err(CoreError::SchemaMismatch(format!(
                "property '{name}' appears twice in one row; give each property once"
            )));
        }
        self.expected = i + 1;
        let slot = &mut self.fields[i].1;
        // Most values fit the type their field has: that is checked first, and alone (a
        // timestamp is parsed once).
        if let Some(old) = *slot
            && seen_fits(old, &seen)
        {
            return Ok(());
        }
        match (*slot, type_of(&seen)) {
            (_, None) => Ok(()),
            (None, Some(new)) if !self.strict => {
                *slot = Some(new);
                Ok(())
            }
            (Some(old), Some(_)) if seen_fits(old, &seen) => Ok(()),
            (Some(old), Some(new)) if !self.strict => match widen(old, new) {
                Some(wider) => {
                    *slot = Some(wider);
                    Ok(())
                }
                None => Err(mismatch(name, old, &seen, true)),
            },
            (old, _) => Err(mismatch(
                name,
                old.unwrap_or(FieldType::String),
                &seen,
                false,
            )),
        }
    }

    fn position(&self, name: &str) -> Option<usize> {
        match self.fields.get(self.expected) {
            Some((field, _)) if field == name => Some(self.expected),
            _ => self.index.get(name).copied(),
        }
    }

    /// The schema as learnt so far. Fields that only ever held nulls become strings.
    pub fn schema(&self) -> Schema {
        Schema {
            fields: self
                .fields
                .iter()
                .map(|(name, t)| Field {
                    name: name.clone(),
                    field_type: t.unwrap_or(FieldType::String),
                })
                .collect(),
            primary_key: self.primary_key.clone(),
        }
    }

    pub fn field_type(&self, name: &str) -> Option<FieldType> {
        self.index.get(name).and_then(|&i| self.fields[i].1)
    }
}

fn mismatch(name: &str, expected: FieldType, seen: &Seen<'_>, inferred: bool) -> CoreError {
    let shown = seen.shown();
    let hint = if inferred {
        "; earlier rows decided the type, so pass an explicit schema to import this data"
    } else {
        ""
    };
    CoreError::SchemaMismatch(format!(
        "field '{name}' is {} but got {shown}{hint}",
        expected.as_str()
    ))
}

/// The type a column of CSV text suggests, from a sample of its cells (empty cells are null).
pub fn infer_text_type<'a>(cells: impl Iterator<Item = &'a str>) -> FieldType {
    let mut best: Option<FieldType> = None;
    for cell in cells.filter(|c| !c.is_empty()) {
        let t = text_type(cell);
        best = Some(match best {
            None => t,
            Some(b) => widen(b, t).unwrap_or(FieldType::String),
        });
        if best == Some(FieldType::String) {
            break;
        }
    }
    best.unwrap_or(FieldType::String)
}

/// A cell's type, as its text says. A cell is a number only if writing that number back gives
/// the same text: `07585` (a postcode), `+5` or `1.50` would come back changed, so they are text.
fn text_type(cell: &str) -> FieldType {
    if cell.parse::<i64>().is_ok_and(|n| n.to_string() == cell) {
        FieldType::Integer
    } else if cell
        .parse::<f64>()
        .ok()
        .and_then(serde_json::Number::from_f64)
        .is_some_and(|n| n.to_string() == cell)
    {
        FieldType::Number
    } else if cell == "true" || cell == "false" {
        FieldType::Boolean
    } else if looks_like_timestamp(cell) {
        FieldType::Timestamp
    } else {
        FieldType::String
    }
}

/// Converts one CSV cell to a typed JSON value. An empty cell is null.
pub fn coerce_text(t: FieldType, cell: &str) -> Result<Value, String> {
    if cell.is_empty() {
        return Ok(Value::Null);
    }
    let bad = || format!("'{}' is not {}", seen::shorten(cell), t.as_str());
    match t {
        FieldType::String => Ok(Value::from(cell)),
        FieldType::Integer => cell.parse::<i64>().map(Value::from).map_err(|_| bad()),
        // Whole numbers stay integers so that "80" exports as 80, not 80.0.
        FieldType::Number if cell.parse::<i64>().is_ok() => {
            cell.parse::<i64>().map(Value::from).map_err(|_| bad())
        }
        FieldType::Number => cell
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
            .ok_or_else(bad),
        FieldType::Boolean => match cell {
            "true" => Ok(Value::Bool(true)),
            "false" => Ok(Value::Bool(false)),
            _ => Err(bad()),
        },
        FieldType::Timestamp => {
            if cell.parse::<jiff::Timestamp>().is_ok() {
                Ok(Value::from(cell))
            } else {
                Err(bad())
            }
        }
        FieldType::Json => serde_json::from_str(cell).map_err(|_| bad()),
    }
}

/// Text of a value for a CSV cell: strings bare, null empty, everything else as JSON.
pub fn value_to_text(value: &Value) -> std::borrow::Cow<'_, str> {
    match value {
        Value::Null => "".into(),
        Value::String(s) => s.as_str().into(),
        other => other.to_string().into(),
    }
}

/// How deep a row's values may nest: the values object is level 1, an array or object in one of
/// its properties level 2, and so on. Imports, edits and received rows are all held to it, so
/// stored values always read back: readers parse with serde_json's limit of 128 levels, which
/// leaves room for the envelopes (row pages, change pages, sync records) around the values.
pub const MAX_JSON_DEPTH: usize = 64;

fn too_deep(name: &str) -> CoreError {
    CoreError::SchemaMismatch(format!(
        "property '{name}' nests arrays or objects more than {} levels deep; flatten it",
        MAX_JSON_DEPTH - 1
    ))
}

/// How many levels of arrays and objects a value has (0 for a scalar), without recursion.
fn depth_of(value: &Value) -> usize {
    let mut deepest = 0;
    let mut stack = vec![(value, 0usize)];
    while let Some((value, depth)) = stack.pop() {
        let children: Box<dyn Iterator<Item = &Value>> = match value {
            Value::Array(items) => Box::new(items.iter()),
            Value::Object(fields) => Box::new(fields.values()),
            _ => continue,
        };
        deepest = deepest.max(depth + 1);
        stack.extend(children.map(|child| (child, depth + 1)));
    }
    deepest
}

/// Serde visitors that read a JSON object's fields without building a map.
mod flat;
mod seen;

mod raw {
    use super::{MAX_JSON_DEPTH, SchemaBuilder, Seen};
    use crate::CoreError;
    use serde::de::{
        self, Deserialize, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor,
    };
    use std::borrow::Cow;
    use std::fmt;

    pub(super) struct Fields<'b> {
        pub(super) builder: &'b mut SchemaBuilder,
        pub(super) failure: &'b mut Option<CoreError>,
    }

    impl<'de> Visitor<'de> for Fields<'_> {
        type Value = ();
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            while let Some(name) = map.next_key::<Cow<'de, str>>()? {
                let seen: Scalar<'de> = match map.next_value() {
                    Ok(seen) => seen,
                    Err(e) if e.to_string().starts_with(TOO_DEEP) => {
                        let e = super::too_deep(&name);
                        let msg = e.to_string();
                        *self.failure = Some(e);
                        return Err(de::Error::custom(msg));
                    }
                    Err(e) => return Err(e),
                };
                if let Err(e) = self.builder.observe_value(&name, seen.0) {
                    let msg = e.to_string();
                    *self.failure = Some(e);
                    return Err(de::Error::custom(msg));
                }
            }
            Ok(())
        }
    }

    /// A value reduced to what type checks need.
    pub(super) struct Scalar<'a>(pub(super) Seen<'a>);

    impl<'de> Deserialize<'de> for Scalar<'de> {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            d.deserialize_any(ScalarVisitor)
        }
    }

    struct ScalarVisitor;

    impl<'de> Visitor<'de> for ScalarVisitor {
        type Value = Scalar<'de>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a JSON value")
        }
        fn visit_unit<E>(self) -> Result<Scalar<'de>, E> {
            Ok(Scalar(Seen::Null))
        }
        fn visit_none<E>(self) -> Result<Scalar<'de>, E> {
            Ok(Scalar(Seen::Null))
        }
        fn visit_bool<E>(self, _: bool) -> Result<Scalar<'de>, E> {
            Ok(Scalar(Seen::Bool))
        }
        fn visit_i64<E>(self, _: i64) -> Result<Scalar<'de>, E> {
            Ok(Scalar(Seen::Int))
        }
        fn visit_u64<E>(self, v: u64) -> Result<Scalar<'de>, E> {
            Ok(Scalar(if i64::try_from(v).is_ok() {
                Seen::Int
            } else {
                Seen::Float
            }))
        }
        fn visit_f64<E>(self, _: f64) -> Result<Scalar<'de>, E> {
            Ok(Scalar(Seen::Float))
        }
        fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Scalar<'de>, E> {
            Ok(Scalar(Seen::Str(Cow::Borrowed(v))))
        }
        fn visit_str<E>(self, v: &str) -> Result<Scalar<'de>, E> {
            Ok(Scalar(Seen::Str(Cow::Owned(v.to_string()))))
        }
        fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Scalar<'de>, A::Error> {
            Nested { level: 2 }.visit_seq(seq)?;
            Ok(Scalar(Seen::Nested))
        }
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Scalar<'de>, A::Error> {
            Nested { level: 2 }.visit_map(map)?;
            Ok(Scalar(Seen::Nested))
        }
    }

    /// Starts the error of a value nested too deep, so the field's name can be added to it.
    const TOO_DEEP: &str = "nested too deep";

    /// Reads over a nested value whose arrays or objects sit at `level`, refusing any deeper
    /// than [`MAX_JSON_DEPTH`]. (serde's `IgnoredAny` skips without any limit.)
    #[derive(Clone, Copy)]
    struct Nested {
        level: usize,
    }

    impl<'de> DeserializeSeed<'de> for Nested {
        type Value = ();
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_any(self)
        }
    }

    impl<'de> Visitor<'de> for Nested {
        type Value = ();
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a JSON value")
        }
        fn visit_unit<E>(self) -> Result<(), E> {
            Ok(())
        }
        fn visit_bool<E>(self, _: bool) -> Result<(), E> {
            Ok(())
        }
        fn visit_i64<E>(self, _: i64) -> Result<(), E> {
            Ok(())
        }
        fn visit_u64<E>(self, _: u64) -> Result<(), E> {
            Ok(())
        }
        fn visit_f64<E>(self, _: f64) -> Result<(), E> {
            Ok(())
        }
        fn visit_str<E>(self, _: &str) -> Result<(), E> {
            Ok(())
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            let inner = self.entered()?;
            while seq.next_element_seed(inner)?.is_some() {}
            Ok(())
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            let inner = self.entered()?;
            while map.next_key::<IgnoredAny>()?.is_some() {
                map.next_value_seed(inner)?;
            }
            Ok(())
        }
    }

    impl Nested {
        /// Entering an array or object at this level: refused past the limit; else what the
        /// values inside it are read with.
        fn entered<E: de::Error>(self) -> Result<Nested, E> {
            if self.level > MAX_JSON_DEPTH {
                return Err(E::custom(TOO_DEEP));
            }
            Ok(Nested {
                level: self.level + 1,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn a_property_given_twice_in_a_row_is_refused() {
        let mut b = SchemaBuilder::infer(None);
        b.observe_raw(r#"{"a":1,"b":2}"#).unwrap();
        b.observe_raw(r#"{"b":3,"a":1}"#).unwrap();
        for twice in [
            r#"{"a":1,"a":2}"#,
            r#"{"a":1,"b":7,"a":2}"#,
            r#"{"c":1,"c":2}"#,
        ] {
            let e = b.observe_raw(twice).unwrap_err().to_string();
            assert!(e.contains("appears twice"), "{twice}: {e}");
        }
        let mut strict = SchemaBuilder::enforce(&b.schema());
        assert!(strict.observe_raw(r#"{"a":1,"b":2}"#).is_ok());
        assert!(strict.observe_raw(r#"{"b":2,"b":2}"#).is_err());
    }

    #[test]
    fn values_nested_deeper_than_readers_read_are_refused() {
        let nested = |levels: usize| {
            format!(
                r#"{{"deep":{}1{}}}"#,
                "[".repeat(levels - 1),
                "]".repeat(levels - 1)
            )
        };
        for (levels, fits) in [
            (MAX_JSON_DEPTH, true),
            (MAX_JSON_DEPTH + 1, false),
            (200_000, false),
        ] {
            let text = nested(levels);
            let raw = SchemaBuilder::infer(None).observe_raw(&text);
            assert_eq!(raw.is_ok(), fits, "{levels} levels: {raw:?}");
            if !fits {
                let message = raw.unwrap_err().to_string();
                assert!(
                    message.contains("'deep'") && message.contains("levels deep"),
                    "{message}"
                );
            }
            if levels < 120 {
                // What a reader parses back, and the map form imports use.
                let value: Value = serde_json::from_str(&text).unwrap();
                let parsed = SchemaBuilder::infer(None).observe(value.as_object().unwrap());
                assert_eq!(parsed.is_ok(), fits, "{levels} levels");
            }
        }
        let objects = format!(r#"{{"a":{}1{}}}"#, r#"{"b":"#.repeat(70), "}".repeat(70));
        assert!(SchemaBuilder::infer(None).observe_raw(&objects).is_err());
    }

    #[test]
    fn inference_widens_integer_to_number_and_timestamp_to_string() {
        let mut b = SchemaBuilder::infer(None);
        b.observe(&obj(
            json!({"a": 1, "t": "2024-01-01T00:00:00Z", "n": null}),
        ))
        .unwrap();
        assert_eq!(b.field_type("a"), Some(FieldType::Integer));
        assert_eq!(b.field_type("t"), Some(FieldType::Timestamp));
        b.observe(&obj(json!({"a": 1.5, "t": "soon"}))).unwrap();
        let s = b.schema();
        assert_eq!(s.field("a").unwrap().field_type, FieldType::Number);
        assert_eq!(s.field("t").unwrap().field_type, FieldType::String);
        assert_eq!(s.field("n").unwrap().field_type, FieldType::String);
    }

    #[test]
    fn inference_refuses_a_widening_that_invalidates_stored_values() {
        let mut b = SchemaBuilder::infer(None);
        b.observe(&obj(json!({"a": 1}))).unwrap();
        let err = b.observe(&obj(json!({"a": "x"}))).unwrap_err();
        assert_eq!(err.code(), ferry_proto::ErrorCode::SchemaMismatch);
        assert!(err.to_string().contains("explicit schema"), "{err}");
    }

    #[test]
    fn strict_schema_refuses_unknown_fields_and_wrong_types() {
        let schema = Schema {
            fields: vec![Field {
                name: "a".into(),
                field_type: FieldType::Number,
            }],
            primary_key: None,
        };
        let mut b = SchemaBuilder::enforce(&schema);
        b.observe(&obj(json!({"a": 3}))).unwrap();
        assert!(b.observe(&obj(json!({"a": "3"}))).is_err());
        assert!(b.observe(&obj(json!({"b": 1}))).is_err());
        assert_eq!(b.schema(), schema);
    }

    #[test]
    fn raw_and_parsed_observation_agree() {
        let text =
            r#"{"a": 1, "b": "x\\u00e9", "c": [1, {"d": 2}], "e": null, "f": 2.5, "g": true}"#;
        let mut raw = SchemaBuilder::infer(None);
        raw.observe_raw(text).unwrap();
        let mut parsed = SchemaBuilder::infer(None);
        parsed
            .observe(&serde_json::from_str(text).unwrap())
            .unwrap();
        assert_eq!(raw.schema(), parsed.schema());
        assert_eq!(raw.field_type("c"), Some(FieldType::Json));
        let err = raw.observe_raw(r#"{"a": "no"}"#).unwrap_err();
        assert_eq!(err.code(), ferry_proto::ErrorCode::SchemaMismatch);
        assert!(raw.observe_raw("[1]").is_err());
        let err = raw.observe_raw(r#"{"a": 1} {"a": 2}"#).unwrap_err();
        assert!(err.to_string().contains("trailing"), "{err}");
        raw.observe_raw(" {\"a\": 1}\n").unwrap();
    }

    /// Fields in any order are found, whatever order the rows before used.
    #[test]
    fn fields_in_any_order_are_checked_alike() {
        let mut b = SchemaBuilder::infer(None);
        b.observe_raw(r#"{"a": 1, "b": "x", "t": "2024-01-01T00:00:00Z"}"#)
            .unwrap();
        b.observe_raw(r#"{"t": "2024-01-02T00:00:00Z", "b": "y", "a": 2}"#)
            .unwrap();
        b.observe_raw(r#"{"b": "z", "c": 1.5, "a": 3}"#).unwrap();
        let err = b.observe_raw(r#"{"c": 1, "b": 2}"#).unwrap_err();
        assert!(err.to_string().contains("field 'b'"), "{err}");
        let mut strict = SchemaBuilder::enforce(&b.schema());
        strict
            .observe_raw(r#"{"c": 2, "t": "2024-01-03T00:00:00Z", "a": 4}"#)
            .unwrap();
        let err = strict.observe_raw(r#"{"a": 5, "t": "soon"}"#).unwrap_err();
        assert!(err.to_string().contains("field 't'"), "{err}");
        let err = strict.observe_raw(r#"{"a": 5, "d": 1}"#).unwrap_err();
        assert!(err.to_string().contains("not in the schema"), "{err}");
    }

    #[test]
    fn csv_cells() {
        assert_eq!(
            infer_text_type(["1", "", "2"].into_iter()),
            FieldType::Integer
        );
        assert_eq!(infer_text_type(["1", "2.5"].into_iter()), FieldType::Number);
        assert_eq!(infer_text_type(["1", "x"].into_iter()), FieldType::String);
        // Text that would come back changed as a number stays text.
        for changed in ["07585", "+5", "1.50", "1e3", "0x1F", " 7"] {
            assert_eq!(
                infer_text_type(["12", changed].into_iter()),
                FieldType::String,
                "{changed}"
            );
        }
        assert_eq!(
            infer_text_type(["-116916.63774434407", "0.5", "-0.0"].into_iter()),
            FieldType::Number
        );
        assert_eq!(
            infer_text_type(["true", "false"].into_iter()),
            FieldType::Boolean
        );
        assert_eq!(coerce_text(FieldType::Integer, "42").unwrap(), json!(42));
        assert_eq!(coerce_text(FieldType::Integer, "").unwrap(), Value::Null);
        assert!(coerce_text(FieldType::Integer, "4.2").is_err());
        assert!(coerce_text(FieldType::Number, "NaN").is_err());
    }

    #[test]
    fn keys() {
        assert_eq!(Key::from_value(&json!(7)).unwrap(), Key::Int(7));
        assert_eq!(Key::from_value(&json!("a")).unwrap(), Key::Text("a".into()));
        assert!(Key::from_value(&json!(1.5)).is_err());
        assert!(Key::from_value(&json!("")).is_err());
        assert!(Key::from_value(&Value::Null).is_err());
    }

    #[test]
    fn primary_key_rules() {
        let mut s = Schema {
            fields: vec![Field {
                name: "id".into(),
                field_type: FieldType::Integer,
            }],
            primary_key: Some("id".into()),
        };
        assert!(check_schema(&s, true).is_ok());
        assert!(check_schema(&s, false).is_err());
        s.primary_key = Some("nope".into());
        assert!(check_schema(&s, true).is_err());
        s.primary_key = None;
        assert!(check_schema(&s, true).is_err());
    }
}

#[cfg(test)]
mod laws {
    use super::*;
    use proptest::prelude::*;

    fn scalar() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            (-1e9f64..1e9).prop_map(Value::from),
            "[a-z]{0,6}".prop_map(Value::from),
            Just(Value::from("2024-05-06T07:08:09Z")),
            Just(serde_json::json!([1, 2])),
        ]
    }

    proptest! {
        /// Inference never accepts a value that the schema it ends with would refuse: whatever
        /// was stored while streaming stays valid under the final schema.
        #[test]
        fn accepted_values_fit_the_final_schema(values in proptest::collection::vec(scalar(), 1..20)) {
            let mut builder = SchemaBuilder::infer(None);
            let mut accepted = Vec::new();
            for v in values {
                let row: Map<String, Value> = [("f".to_string(), v.clone())].into_iter().collect();
                if builder.observe(&row).is_ok() {
                    accepted.push(v);
                }
            }
            let field_type = builder.schema().field("f").map(|f| f.field_type).unwrap();
            for v in &accepted {
                prop_assert!(value_fits(field_type, v), "{v} does not fit {field_type:?}");
            }
            // And the final schema, enforced strictly, accepts them all again.
            let mut strict = SchemaBuilder::enforce(&builder.schema());
            for v in accepted {
                let row: Map<String, Value> = [("f".to_string(), v)].into_iter().collect();
                prop_assert!(strict.observe(&row).is_ok());
            }
        }
    }
}
