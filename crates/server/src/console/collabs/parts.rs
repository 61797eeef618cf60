//! Pieces every collaboration page uses: the access modes and their names, and a signed text
//! to hand over (shown, copied, downloaded).

use maud::{Markup, html};

/// Access modes a host gives a guest in a workspace.
pub(super) const MODES: [(&str, &str); 4] = [
    ("send_receive", "send and receive"),
    ("send", "send"),
    ("receive", "receive"),
    ("none", "none"),
];

pub(super) fn mode_label(mode: &str) -> &str {
    MODES
        .iter()
        .find(|(value, _)| *value == mode)
        .map_or(mode, |(_, label)| label)
}

/// A signed text to hand over (an invitation, a guest's response): shown, with Copy and a
/// download of it as a file.
pub(super) fn handover(id: &str, label: &str, text: &str, file_name: &str) -> Markup {
    let href = format!(
        "data:text/plain;charset=utf-8,{}",
        form_urlencoded::byte_serialize(format!("{text}\n").as_bytes())
            .collect::<String>()
            .replace('+', "%20")
    );
    html! {
        label for=(id) { (label) }
        textarea #(id) readonly rows="5" { (text) }
        div.buttons {
            button type="button" data-copy=(id) #{ "copy-" (id) } { "Copy" }
            a.button.secondary #{ "download-" (id) } href=(href) download=(file_name) { "Download as a file" }
            span #{ (id) "-status" } role="status" {}
        }
    }
}
