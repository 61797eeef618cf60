//! JSON read with exact numbers. Without its `float_roundtrip` feature (which costs a whole
//! copy about a quarter more CPU) serde_json may read a float one bit off its digits. Values
//! written by people and scripts (edits) are read through here instead: each number is parsed
//! from its own text by the standard library, which rounds correctly, so it reads back digit for
//! digit.

use serde::Deserialize;
use serde::de::{Deserializer, Error as _, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Number, Value};

/// A JSON value from its text, numbers exact.
pub fn value(raw: &RawValue) -> Result<Value, serde_json::Error> {
    let text = raw.get().trim();
    match text.as_bytes().first() {
        Some(b'{') => {
            let entries: Entries = serde_json::from_str(text)?;
            let mut map = Map::with_capacity(entries.0.len());
            for (name, raw) in entries.0 {
                map.insert(name, value(&raw)?);
            }
            Ok(Value::Object(map))
        }
        Some(b'[') => {
            let items: Vec<Box<RawValue>> = serde_json::from_str(text)?;
            items.iter().map(|raw| value(raw)).collect()
        }
        Some(b'-' | b'0'..=b'9') => number(text).map(Value::Number),
        _ => serde_json::from_str(text),
    }
}

/// A JSON value from a text, numbers exact.
pub fn from_text(text: &str) -> Result<Value, serde_json::Error> {
    value(serde_json::from_str::<&RawValue>(text)?)
}

/// A number from its text: an integer when it is one and fits, else the f64 its digits name.
fn number(text: &str) -> Result<Number, serde_json::Error> {
    let integer = !text.contains(['.', 'e', 'E']);
    if integer {
        if let Ok(i) = text.parse::<i64>() {
            return Ok(i.into());
        }
        if let Ok(u) = text.parse::<u64>() {
            return Ok(u.into());
        }
    }
    // Checked by serde_json first: the standard parser takes forms JSON does not ("1.", "+1").
    serde_json::from_str::<Number>(text)?;
    text.parse::<f64>()
        .ok()
        .and_then(Number::from_f64)
        .ok_or_else(|| serde_json::Error::custom(format!("{text} is not a finite number")))
}

/// An object's members in order, each value still text.
struct Entries(Vec<(String, Box<RawValue>)>);

impl<'de> Deserialize<'de> for Entries {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Members;
        impl<'de> Visitor<'de> for Members {
            type Value = Entries;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Entries, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry::<String, Box<RawValue>>()? {
                    entries.push(entry);
                }
                Ok(Entries(entries))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<Entries, A::Error> {
                Err(A::Error::custom("expected a JSON object, found an array"))
            }
        }
        d.deserialize_map(Members)
    }
}

/// `deserialize_with` for an object whose numbers must be exact.
pub fn object<'de, D: Deserializer<'de>>(d: D) -> Result<Map<String, Value>, D::Error> {
    let raw = Box::<RawValue>::deserialize(d)?;
    match value(&raw).map_err(D::Error::custom)? {
        Value::Object(map) => Ok(map),
        Value::Null => Ok(Map::new()),
        _ => Err(D::Error::custom("expected a JSON object")),
    }
}

/// `deserialize_with` for a value whose numbers must be exact.
pub fn any<'de, D: Deserializer<'de>>(d: D) -> Result<Value, D::Error> {
    let raw = Box::<RawValue>::deserialize(d)?;
    value(&raw).map_err(D::Error::custom)
}

/// `deserialize_with` for an optional value whose numbers must be exact; `null` is `Some(Null)`,
/// so a present `null` stays apart from an absent member (with `#[serde(default)]`).
pub fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    let raw = Box::<RawValue>::deserialize(d)?;
    value(&raw).map(Some).map_err(D::Error::custom)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exact(text: &str) -> Value {
        value(&RawValue::from_string(text.to_string()).unwrap()).unwrap()
    }

    #[test]
    fn numbers_read_back_digit_for_digit() {
        for digits in [
            "-116916.63774434407",
            "0.1",
            "5e-324",
            "1.7976931348623157e308",
            "2.2250738585072014e-308",
            "123456789.12345679",
        ] {
            let read = exact(digits);
            assert_eq!(
                read.as_f64(),
                Some(digits.parse::<f64>().unwrap()),
                "{digits}"
            );
        }
        assert_eq!(
            exact("-116916.63774434407").to_string(),
            "-116916.63774434407"
        );
        assert_eq!(exact("9223372036854775807"), Value::from(i64::MAX));
        assert_eq!(exact("18446744073709551615"), Value::from(u64::MAX));
        let nested = exact(r#"{"b": [1, -0.30000000000000004, {"c": null}], "a": "x"}"#);
        assert_eq!(
            nested.to_string(),
            r#"{"b":[1,-0.30000000000000004,{"c":null}],"a":"x"}"#,
            "order and values kept"
        );
        for bad in ["1.", "+1", "01", "1e999", "-", "[1,]"] {
            let read = RawValue::from_string(bad.to_string())
                .map_err(drop)
                .and_then(|raw| value(&raw).map_err(drop));
            assert!(read.is_err(), "{bad}");
        }
    }
}
