//! JSON read with exact numbers. Without its `float_roundtrip` feature (which costs a whole
//! copy about a quarter more CPU) serde_json may read a float one bit off its digits. Values
//! written by people and scripts (edits) are read through here instead: each number is parsed
//! from its own text by the standard library, which rounds correctly, so it reads back digit for
//! digit.

use serde::Deserialize;
use serde::de::{Deserializer, Error as _};
use serde_json::value::RawValue;
use serde_json::{Map, Number, Value};

/// A JSON value from its text, numbers exact.
pub fn value(raw: &RawValue) -> Result<Value, serde_json::Error> {
    from_text(raw.get())
}

/// A JSON value from a text, numbers exact.
///
/// One pass of serde_json (its nesting limit holds), then one pass over the text's number
/// tokens, which come in the order the value holds them (objects keep their members' order):
/// each float is replaced by the f64 its own digits name.
pub fn from_text(text: &str) -> Result<Value, serde_json::Error> {
    let mut value: Value = serde_json::from_str(text)?;
    let mut tokens = NumberTokens { text, at: 0 };
    exact_numbers(&mut value, &mut tokens)?;
    if tokens.next().is_some() {
        // A member named twice: the value kept one of them, so the numbers no longer line up.
        return Err(serde_json::Error::custom(
            "an object names the same member twice",
        ));
    }
    Ok(value)
}

fn exact_numbers(
    value: &mut Value,
    tokens: &mut NumberTokens<'_>,
) -> Result<(), serde_json::Error> {
    match value {
        Value::Number(n) => {
            let token = tokens.next().ok_or_else(|| {
                serde_json::Error::custom("an object names the same member twice")
            })?;
            *n = number(token)?;
        }
        Value::Array(items) => {
            for item in items {
                exact_numbers(item, tokens)?;
            }
        }
        Value::Object(members) => {
            for member in members.values_mut() {
                exact_numbers(member, tokens)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// The number tokens of a JSON text (already checked by serde_json), in order.
struct NumberTokens<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Iterator for NumberTokens<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let bytes = self.text.as_bytes();
        while self.at < bytes.len() {
            match bytes[self.at] {
                b'"' => {
                    self.at += 1;
                    while self.at < bytes.len() && bytes[self.at] != b'"' {
                        self.at += if bytes[self.at] == b'\\' { 2 } else { 1 };
                    }
                    self.at += 1;
                }
                b'-' | b'0'..=b'9' => {
                    let start = self.at;
                    while self.at < bytes.len()
                        && matches!(
                            bytes[self.at],
                            b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9'
                        )
                    {
                        self.at += 1;
                    }
                    return Some(&self.text[start..self.at]);
                }
                _ => self.at += 1,
            }
        }
        None
    }
}

/// A number from its text: an integer when it is one and fits, else the f64 its digits name
/// (integers beyond 64 bits too: JSON values here hold no wider integers).
fn number(text: &str) -> Result<Number, serde_json::Error> {
    let integer = !text.contains(['.', 'e', 'E']);
    if integer && !(text.starts_with('-') && text.trim_start_matches(['-', '0']).is_empty()) {
        if let Ok(i) = text.parse::<i64>() {
            return Ok(i.into());
        }
        if let Ok(u) = text.parse::<u64>() {
            return Ok(u.into());
        }
    }
    text.parse::<f64>()
        .ok()
        .and_then(Number::from_f64)
        .ok_or_else(|| serde_json::Error::custom(format!("{text} is not a finite number")))
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
        assert_eq!(exact("-0").to_string(), "-0.0", "the sign of zero is kept");
        assert!(
            from_text(r#"{"a": 1, "b": 2.5, "a": 3}"#).is_err(),
            "a member twice"
        );
        let deep = "[".repeat(100_000) + &"]".repeat(100_000);
        assert!(
            from_text(&deep).is_err(),
            "nesting is limited, not a stack overflow"
        );
        assert_eq!(
            exact(r#"{"1e5": "2.5", "x": ["\"3", 4.5]}"#).to_string(),
            r#"{"1e5":"2.5","x":["\"3",4.5]}"#
        );
        for bad in ["1.", "+1", "01", "1e999", "-", "[1,]"] {
            let read = RawValue::from_string(bad.to_string())
                .map_err(drop)
                .and_then(|raw| value(&raw).map_err(drop));
            assert!(read.is_err(), "{bad}");
        }
    }
}
