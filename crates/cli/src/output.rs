//! Output: tables for people, JSON for scripts, progress bars for long transfers.

use anyhow::Result;
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;
use std::io::IsTerminal;

#[derive(Debug, Clone, Copy)]
pub(crate) struct Output {
    pub(crate) json: bool,
}

impl Output {
    /// Prints `value` as JSON, or as the table `render` builds.
    pub(crate) fn show<T: Serialize>(
        &self,
        value: &T,
        render: impl FnOnce(&T) -> Table,
    ) -> Result<()> {
        if self.json {
            println!("{}", serde_json::to_string_pretty(value)?);
        } else {
            println!("{}", for_terminal(&render(value).to_string()));
        }
        Ok(())
    }

    /// Prints a short confirmation, or `value` as JSON.
    pub(crate) fn done<T: Serialize>(&self, value: &T, message: &str) -> Result<()> {
        if self.json {
            println!("{}", serde_json::to_string_pretty(value)?);
        } else {
            println!("{}", for_terminal(message));
        }
        Ok(())
    }
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
    use super::for_terminal;

    #[test]
    fn control_characters_are_shown_not_obeyed() {
        assert_eq!(for_terminal("Harbor\nPilots"), "Harbor\nPilots");
        assert_eq!(
            for_terminal("\u{1b}[2J\u{1b}]0;pwned\u{7}Evil\r\u{9b}31m"),
            "\\x1b[2J\\x1b]0;pwned\\x07Evil\\r\\u{9b}31m"
        );
        assert_eq!(for_terminal("Città"), "Città");
    }
}
