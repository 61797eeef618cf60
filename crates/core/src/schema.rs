//! Schemas: inference from data, checking values against a schema, and row keys.
//!
//! Inference is progressive so that imports can stream: a [`SchemaBuilder`] sees each row once and
//! widens field types where the values already stored stay valid (integer → number,
//! timestamp → string, unknown → anything). A widening that would invalidate stored values is an
//! error that tells the user to pass an explicit schema.

use crate::{CoreError, CoreResult};
use ferry_proto::{Field, FieldType, Schema};
use serde_json::{Map, Value};
use std::collections::HashMap;

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

/// The type a JSON value suggests, or `None` for null.
fn type_of(value: &Value) -> Option<FieldType> {
    match value {
        Value::Null => None,
        Value::Bool(_) => Some(FieldType::Boolean),
        Value::Number(n) if n.is_i64() => Some(FieldType::Integer),
        Value::Number(_) => Some(FieldType::Number),
        Value::String(s) if looks_like_timestamp(s) => Some(FieldType::Timestamp),
        Value::String(_) => Some(FieldType::String),
        Value::Array(_) | Value::Object(_) => Some(FieldType::Json),
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
    match (t, value) {
        (_, Value::Null) => true,
        (FieldType::Json, _) => true,
        (FieldType::Boolean, Value::Bool(_)) => true,
        (FieldType::Integer, Value::Number(n)) => n.is_i64(),
        (FieldType::Number, Value::Number(_)) => true,
        (FieldType::String, Value::String(_)) => true,
        (FieldType::Timestamp, Value::String(s)) => s.parse::<jiff::Timestamp>().is_ok(),
        _ => false,
    }
}

/// Builds or enforces a schema while rows stream past.
#[derive(Debug, Clone)]
pub struct SchemaBuilder {
    /// `None` until a non-null value was seen.
    fields: Vec<(String, Option<FieldType>)>,
    index: HashMap<String, usize>,
    primary_key: Option<String>,
    /// An explicit schema: no new fields, no widening.
    strict: bool,
}

impl SchemaBuilder {
    /// Infers a schema from the rows it observes.
    pub fn infer(primary_key: Option<String>) -> SchemaBuilder {
        SchemaBuilder {
            fields: Vec::new(),
            index: HashMap::new(),
            primary_key,
            strict: false,
        }
    }

    /// Enforces a given schema.
    pub fn enforce(schema: &Schema) -> SchemaBuilder {
        let mut b = SchemaBuilder::infer(schema.primary_key.clone());
        for f in &schema.fields {
            b.index.insert(f.name.clone(), b.fields.len());
            b.fields.push((f.name.clone(), Some(f.field_type)));
        }
        b.strict = true;
        b
    }

    pub fn is_strict(&self) -> bool {
        self.strict
    }

    /// Checks one row's values and, when inferring, learns from them.
    pub fn observe(&mut self, values: &Map<String, Value>) -> CoreResult<()> {
        for (name, value) in values {
            self.observe_value(name, value)?;
        }
        Ok(())
    }

    fn observe_value(&mut self, name: &str, value: &Value) -> CoreResult<()> {
        let Some(&i) = self.index.get(name) else {
            if self.strict {
                return Err(CoreError::SchemaMismatch(format!(
                    "field '{name}' is not in the schema"
                )));
            }
            self.index.insert(name.to_string(), self.fields.len());
            self.fields.push((name.to_string(), type_of(value)));
            return Ok(());
        };
        let slot = &mut self.fields[i].1;
        match (*slot, type_of(value)) {
            (_, None) => Ok(()),
            (None, Some(new)) if !self.strict => {
                *slot = Some(new);
                Ok(())
            }
            (Some(old), Some(_)) if value_fits(old, value) => Ok(()),
            (Some(old), Some(new)) if !self.strict => match widen(old, new) {
                Some(wider) => {
                    *slot = Some(wider);
                    Ok(())
                }
                None => Err(mismatch(name, old, value, true)),
            },
            (old, _) => Err(mismatch(name, old.unwrap_or(FieldType::String), value, false)),
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

fn mismatch(name: &str, expected: FieldType, value: &Value, inferred: bool) -> CoreError {
    let shown = shorten(&value.to_string());
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

fn shorten(s: &str) -> String {
    if s.chars().count() > 40 {
        format!("{}…", s.chars().take(40).collect::<String>())
    } else {
        s.to_string()
    }
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

fn text_type(cell: &str) -> FieldType {
    if cell.parse::<i64>().is_ok() {
        FieldType::Integer
    } else if cell.parse::<f64>().is_ok_and(f64::is_finite) {
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
    let bad = || format!("'{}' is not {}", shorten(cell), t.as_str());
    match t {
        FieldType::String => Ok(Value::from(cell)),
        FieldType::Integer => cell.parse::<i64>().map(Value::from).map_err(|_| bad()),
        // Whole numbers stay integers so that "80" exports as 80, not 80.0.
        FieldType::Number if cell.parse::<i64>().is_ok() => cell.parse::<i64>().map(Value::from).map_err(|_| bad()),
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn inference_widens_integer_to_number_and_timestamp_to_string() {
        let mut b = SchemaBuilder::infer(None);
        b.observe(&obj(json!({"a": 1, "t": "2024-01-01T00:00:00Z", "n": null})))
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
    fn csv_cells() {
        assert_eq!(infer_text_type(["1", "", "2"].into_iter()), FieldType::Integer);
        assert_eq!(infer_text_type(["1", "2.5"].into_iter()), FieldType::Number);
        assert_eq!(infer_text_type(["1", "x"].into_iter()), FieldType::String);
        assert_eq!(infer_text_type(["true", "false"].into_iter()), FieldType::Boolean);
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
