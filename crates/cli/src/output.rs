//! Output: tables for people, JSON for scripts, progress bars for long transfers.

use anyhow::Result;
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;
use std::io::IsTerminal;

#[derive(Debug, Clone, Copy)]
pub(crate) struct Output {
    pub(crate) json: bool,
    /// `--get FIELD`: print only this field of the answer (a dotted path), one line per value.
    pub(crate) get: Option<&'static str>,
}

impl Output {
    /// Whether the answer goes to people (tables, sentences) rather than to a script (JSON or
    /// one field): notes for people are printed only then, so a script's stdout stays clean.
    pub(crate) fn for_people(&self) -> bool {
        !self.json && self.get.is_none()
    }

    /// Prints `value` as JSON, or as the table `render` builds.
    pub(crate) fn show<T: Serialize>(
        &self,
        value: &T,
        render: impl FnOnce(&T) -> Table,
    ) -> Result<()> {
        if !self.for_script(value)? {
            println!("{}", for_terminal(&render(value).to_string()));
        }
        Ok(())
    }

    /// Prints a short confirmation, or `value` as JSON.
    pub(crate) fn done<T: Serialize>(&self, value: &T, message: &str) -> Result<()> {
        if !self.for_script(value)? {
            println!("{}", for_terminal(message));
        }
        Ok(())
    }

    /// Prints `value` as a script asked for it, if it did; false when the answer is for people.
    fn for_script<T: Serialize>(&self, value: &T) -> Result<bool> {
        if let Some(path) = self.get {
            for line in field_lines(&serde_json::to_value(value)?, path)? {
                println!("{}", for_terminal(&line));
            }
            return Ok(true);
        }
        if self.json {
            println!("{}", serde_json::to_string_pretty(value)?);
            return Ok(true);
        }
        Ok(false)
    }
}

/// The values of the field at `path` (`id`, `connection.id`) in an answer: one for an object,
/// one per element for a list. Text comes unquoted (ids, codes, URLs for shell variables),
/// other values as compact JSON, a null as an empty line.
fn field_lines(answer: &serde_json::Value, path: &str) -> Result<Vec<String>> {
    let records: Vec<&serde_json::Value> = match answer {
        serde_json::Value::Array(list) => list.iter().collect(),
        one => vec![one],
    };
    records
        .into_iter()
        .map(|record| {
            let mut value = record;
            for name in path.split('.') {
                value = value.get(name).ok_or_else(|| {
                    let known = value
                        .as_object()
                        .map(|o| o.keys().cloned().collect::<Vec<_>>().join(", "))
                        .unwrap_or_default();
                    anyhow::anyhow!(
                        "the answer has no field '{path}' (`--json` shows the whole answer; its fields here: {known})"
                    )
                })?;
            }
            Ok(match value {
                serde_json::Value::String(text) => text.clone(),
                serde_json::Value::Null => String::new(),
                other => other.to_string(),
            })
        })
        .collect()
}

/// Text made safe for a terminal: every control character but the newline is shown as an
/// escape (`\x1b`, `\r`, `\u{9b}`), so a title another instance chose cannot move the cursor,
/// rewrite lines or change colours on the admin's screen. JSON output needs no such care: it
/// escapes control characters itself.
pub(crate) fn for_terminal(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(|c| c.is_control() && c != '\n') {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut safe = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '\n' => safe.push('\n'),
            '\r' => safe.push_str("\\r"),
            '\t' => safe.push_str("\\t"),
            c if c.is_control() && (c as u32) < 0x80 => {
                safe.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if c.is_control() => safe.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => safe.push(c),
        }
    }
    std::borrow::Cow::Owned(safe)
}

pub(crate) fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED)
        .set_header(header.to_vec());
    t
}

/// Two columns: field and value.
pub(crate) fn fields(rows: &[(&str, String)]) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED);
    for (k, v) in rows {
        t.add_row(vec![k.to_string(), v.clone()]);
    }
    t
}

/// A byte progress bar on stderr; hidden when stderr is not a terminal.
pub(crate) fn progress(total: Option<u64>, what: &str) -> ProgressBar {
    let bar = match total {
        Some(n) => ProgressBar::new(n),
        None => ProgressBar::new_spinner(),
    };
    if !std::io::stderr().is_terminal() {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    let template = if total.is_some() {
        "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}"
    } else {
        "{msg} {spinner} {bytes} {bytes_per_sec}"
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(what.to_string());
    bar
}

#[cfg(test)]
mod tests {
    use super::{field_lines, for_terminal};
    use serde_json::json;

    #[test]
    fn control_characters_are_shown_not_obeyed() {
        assert_eq!(for_terminal("Harbor\nPilots"), "Harbor\nPilots");
        assert_eq!(
            for_terminal("\u{1b}[2J\u{1b}]0;pwned\u{7}Evil\r\u{9b}31m"),
            "\\x1b[2J\\x1b]0;pwned\\x07Evil\\r\\u{9b}31m"
        );
        assert_eq!(for_terminal("Città"), "Città");
    }

    #[test]
    fn get_prints_one_field_per_record() {
        let one = json!({"id": "c1", "code": "ferry1-peer-x", "peer": {"title": "City"}, "n": 3});
        assert_eq!(field_lines(&one, "code").unwrap(), ["ferry1-peer-x"]);
        assert_eq!(field_lines(&one, "peer.title").unwrap(), ["City"]);
        assert_eq!(field_lines(&one, "n").unwrap(), ["3"]);
        let list = json!([{"id": "a", "x": null}, {"id": "b", "x": [1]}]);
        assert_eq!(field_lines(&list, "id").unwrap(), ["a", "b"]);
        assert_eq!(field_lines(&list, "x").unwrap(), ["", "[1]"]);
        assert!(field_lines(&json!([]), "id").unwrap().is_empty());
        let missing = field_lines(&one, "state").unwrap_err().to_string();
        assert!(
            missing.contains("no field 'state'") && missing.contains("code"),
            "{missing}"
        );
    }
}
