//! What a value looks like, for type checks.

use serde_json::Value;

/// What a value looks like, for type checks: borrowed from a parsed `Value` or straight from raw
/// JSON text (see [`SchemaBuilder::observe_raw`]), so both paths share one set of rules.
#[derive(Debug, Clone, PartialEq)]
pub enum Seen<'a> {
    Null,
    Bool,
    Int,
    Float,
    Str(std::borrow::Cow<'a, str>),
    Nested,
}

impl<'a> Seen<'a> {
    pub fn of(value: &'a Value) -> Seen<'a> {
        match value {
            Value::Null => Seen::Null,
            Value::Bool(_) => Seen::Bool,
            Value::Number(n) if n.is_i64() => Seen::Int,
            Value::Number(_) => Seen::Float,
            Value::String(s) => Seen::Str(s.as_str().into()),
            Value::Array(_) | Value::Object(_) => Seen::Nested,
        }
    }

    pub(crate) fn shown(&self) -> String {
        match self {
            Seen::Null => "null".into(),
            Seen::Bool => "a boolean".into(),
            Seen::Int => "an integer".into(),
            Seen::Float => "a number".into(),
            Seen::Str(s) => format!("\"{}\"", shorten(s)),
            Seen::Nested => "an object or array".into(),
        }
    }
}

/// Long text cut for an error message.
pub(crate) fn shorten(s: &str) -> String {
    if s.chars().count() > 40 {
        format!("{}…", s.chars().take(40).collect::<String>())
    } else {
        s.to_string()
    }
}
