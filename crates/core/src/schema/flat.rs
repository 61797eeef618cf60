//! A shortcut for the common case of row values: a flat JSON object of plain scalars (keys and
//! strings without escapes, numbers short enough to need no range check). It reads such text in
//! one pass without serde's machinery and gives exactly the observations the full parse would;
//! anything else (nesting, escapes, exponents, odd bytes, syntax errors) makes it step aside, and
//! the full parse judges the text and explains what is wrong.

use super::seen::Seen;
use std::borrow::Cow;

/// Fields read before the shortcut steps aside: rows wider than this take the full parse.
const MAX_FIELDS: usize = 64;

/// Numbers longer than this take the full parse, which decides whether they are in range.
const MAX_NUMBER_LEN: usize = 24;

/// The fields of `text` as (name, what the value looks like), in order; `None` when the text is
/// not a flat object of plain scalars, or has more than [`MAX_FIELDS`] fields.
pub(super) fn fields(text: &str) -> Option<Vec<(&str, Seen<'_>)>> {
    let mut reader = Reader {
        text,
        bytes: text.as_bytes(),
        at: 0,
    };
    let mut fields = Vec::with_capacity(16);
    reader.skip_space();
    reader.expect(b'{')?;
    reader.skip_space();
    if reader.peek() == Some(b'}') {
        reader.at += 1;
    } else {
        loop {
            if fields.len() == MAX_FIELDS {
                return None;
            }
            let name = reader.string()?;
            reader.skip_space();
            reader.expect(b':')?;
            reader.skip_space();
            let seen = reader.scalar()?;
            fields.push((name, seen));
            reader.skip_space();
            match reader.next()? {
                b',' => reader.skip_space(),
                b'}' => break,
                _ => return None,
            }
        }
    }
    reader.skip_space();
    (reader.at == reader.bytes.len()).then_some(fields)
}

struct Reader<'a> {
    text: &'a str,
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.at += 1;
        Some(b)
    }

    fn expect(&mut self, byte: u8) -> Option<()> {
        (self.next()? == byte).then_some(())
    }

    /// JSON whitespace: space, tab, newline, carriage return.
    fn skip_space(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    /// A string without escapes or control characters, as the slice between its quotes.
    fn string(&mut self) -> Option<&'a str> {
        self.expect(b'"')?;
        let start = self.at;
        let len = self.bytes[start..]
            .iter()
            .position(|&b| b == b'"' || b == b'\\' || b < 0x20)?;
        self.at = start + len;
        self.expect(b'"')?;
        // Both ends sit next to an ASCII quote, so they are character boundaries.
        Some(&self.text[start..start + len])
    }

    fn scalar(&mut self) -> Option<Seen<'a>> {
        match self.peek()? {
            b'"' => self.string().map(|s| Seen::Str(Cow::Borrowed(s))),
            b't' => self.word("true", Seen::Bool),
            b'f' => self.word("false", Seen::Bool),
            b'n' => self.word("null", Seen::Null),
            b'-' | b'0'..=b'9' => self.number(),
            _ => None,
        }
    }

    fn word(&mut self, word: &str, seen: Seen<'a>) -> Option<Seen<'a>> {
        let end = self.at + word.len();
        (self.bytes.get(self.at..end)? == word.as_bytes()).then(|| {
            self.at = end;
            seen
        })
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?`: an integer when it has no fraction and fits an `i64`,
    /// otherwise a float (as the full parse sees it).
    fn number(&mut self) -> Option<Seen<'a>> {
        let start = self.at;
        if self.peek() == Some(b'-') {
            self.at += 1;
        }
        match self.next()? {
            b'0' => {}
            b'1'..=b'9' => self.digits(),
            _ => return None,
        }
        let integral = self.peek() != Some(b'.');
        if !integral {
            self.at += 1;
            let before = self.at;
            self.digits();
            if self.at == before {
                return None;
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) || self.at - start > MAX_NUMBER_LEN {
            return None;
        }
        let number = &self.text[start..self.at];
        // The full parse reads `-0` as a float, to keep its sign.
        let fits = integral && number != "-0" && number.parse::<i64>().is_ok();
        Some(if fits { Seen::Int } else { Seen::Float })
    }

    fn digits(&mut self) {
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.at += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// What the full parse observes, in order, for comparison.
    fn full(text: &str) -> Option<Vec<(String, Seen<'static>)>> {
        struct Collect;
        impl<'de> serde::de::Visitor<'de> for Collect {
            type Value = Vec<(String, Seen<'static>)>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(name) = map.next_key::<Cow<'de, str>>()? {
                    let seen = map.next_value::<super::super::raw::Scalar<'de>>()?.0;
                    out.push((name.into_owned(), owned_seen(seen)));
                }
                Ok(out)
            }
        }
        let mut de = serde_json::Deserializer::from_str(text);
        let fields = serde::Deserializer::deserialize_map(&mut de, Collect).ok()?;
        de.end().ok()?;
        Some(fields)
    }

    fn owned_seen(seen: Seen<'_>) -> Seen<'static> {
        match seen {
            Seen::Str(s) => Seen::Str(Cow::Owned(s.into_owned())),
            Seen::Null => Seen::Null,
            Seen::Bool => Seen::Bool,
            Seen::Int => Seen::Int,
            Seen::Float => Seen::Float,
            Seen::Nested => Seen::Nested,
        }
    }

    fn owned(fields: Vec<(&str, Seen<'_>)>) -> Vec<(String, Seen<'static>)> {
        fields
            .into_iter()
            .map(|(k, v)| (k.to_string(), owned_seen(v)))
            .collect()
    }

    #[test]
    fn flat_objects_read_as_the_full_parse_reads_them() {
        let text = r#" { "b": 1, "a": -2.50, "c": "x y", "d": true, "e": false, "f": null,
            "g": 0, "h": -0.0, "i": 9223372036854775807, "j": 9223372036854775808, "é": "ü",
            "k": -9223372036854775809, "-0": -0, "b": "again" } "#;
        assert_eq!(owned(fields(text).unwrap()), full(text).unwrap());
        assert_eq!(fields("{}").unwrap(), vec![]);
    }

    #[test]
    fn anything_else_steps_aside() {
        for text in [
            r#"{"a":[1]}"#,
            r#"{"a":{"b":1}}"#,
            r#"{"a":"x\"y"}"#,
            r#"{"a\n":1}"#,
            r#"{"a":1e3}"#,
            r#"{"a":1.}"#,
            r#"{"a":01}"#,
            r#"{"a":-}"#,
            r#"{"a":+1}"#,
            r#"{"a":1,}"#,
            r#"{"a":1"#,
            r#"{"a":1} x"#,
            r#"{"a" 1}"#,
            r#"{a:1}"#,
            r#"{"a":tru}"#,
            r#"{"a":"tab	inside"}"#,
            r#"{"a":123456789012345678901234567890}"#,
            "[1]",
            "",
        ] {
            assert!(fields(text).is_none(), "{text}");
        }
        let wide = format!(
            "{{{}}}",
            (0..=MAX_FIELDS)
                .map(|i| format!("\"f{i}\":1"))
                .collect::<Vec<_>>()
                .join(",")
        );
        assert!(fields(&wide).is_none());
    }

    proptest! {
        /// Whatever the text, the shortcut either steps aside or agrees with the full parse.
        #[test]
        fn never_disagrees_with_the_full_parse(text in r#"[{}":,\[\] a-c0-9.eE+\-tfnrul\\\n\t\ré\x01]{0,40}"#) {
            if let Some(fields) = fields(&text) {
                prop_assert_eq!(Some(owned(fields)), full(&text));
            }
        }

        #[test]
        fn agrees_on_generated_flat_objects(
            values in proptest::collection::vec(
                prop_oneof![
                    any::<i64>().prop_map(|n| n.to_string()),
                    any::<u64>().prop_map(|n| n.to_string()),
                    (-1e6f64..1e6).prop_map(|f| format!("{f:.4}")),
                    "[a-z ]{0,8}".prop_map(|s| format!("\"{s}\"")),
                    Just("true".to_string()),
                    Just("null".to_string()),
                ],
                0..8,
            )
        ) {
            let text = format!(
                "{{{}}}",
                values.iter().enumerate().map(|(i, v)| format!("\"k{i}\": {v}")).collect::<Vec<_>>().join(", ")
            );
            prop_assert_eq!(fields(&text).map(owned), full(&text));
        }
    }
}
