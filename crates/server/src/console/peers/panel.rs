//! The right-hand panel of one connection: who is on the other end, what goes each way, its
//! security, the policy check, what the linked space holds, the history, and the actions the
//! connection's state allows (Activate in the lower right, as the originator's last step).

use super::shown::{SecurityFields, Shown, state_of, title_of, types};
use crate::console::layout::csrf_field;
use ferry_node::sessions::Session;
use ferry_node::{Caller, Node, NodeResult};
use ferry_proto::{Item, PeerConnection, PeerDetail, PolicyCheck, Space};
use maud::{Markup, html};

/// How many of the linked space's items the panel names; the space's own page lists them all.
const ITEMS_SHOWN: usize = 20;

/// Validity choices for an invite code, as `peering::parse_validity` reads them.
const VALIDITIES: [(&str, &str); 4] = [
    ("1h", "1 hour"),
    ("24h", "24 hours"),
    ("7d", "7 days"),
    ("30d", "30 days"),
];

pub(super) struct Loaded {
    pub(super) detail: PeerDetail,
    check: Option<PolicyCheck>,
    items: Vec<Item>,
}

pub(super) async fn load(node: &Node, caller: &Caller, id: &str) -> NodeResult<Loaded> {
    let detail = ferry_node::peers::show_peer(node, caller, id.to_string()).await?;
    // A connection whose other side is not known yet has no policy to check.
    let check = ferry_node::peers::check(node, caller, id.to_string())
        .await
        .ok();
    let items = match &detail.connection.space {
        Some(space) => {
            // One more than shown: enough to say there are more.
            let query = format!("space={space}&limit={}", ITEMS_SHOWN + 1);
            ferry_node::items::list_items(node, caller, Some(query)).await?
        }
        None => Vec::new(),
    };
    Ok(Loaded {
        detail,
        check,
        items,
    })
}

pub(super) fn render(
    loaded: &Loaded,
    our_space: Option<String>,
    spaces: &[Space],
    shown: &Shown,
    session: &Session,
) -> Markup {
    let connection = &loaded.detail.connection;
    let title = title_of(connection);
    html! {
        aside.panel #connection aria-label="Connection" {
            h2 { (connection.peer.as_ref().map_or("Connection", |p| p.title.as_str())) }
            @if connection.state == "imported" {
                p.notice #nothing-sent {
                    "Nothing has been sent to " strong { (title) } " yet. Check these details with its admin, then approve."
                }
            }
            (facts(connection, our_space.as_deref()))
            @for warning in &connection.warnings { p.warning { (warning) } }
            @if let Some(check) = &loaded.check {
                h3 { "Network policy" }
                ul.findings {
                    @for finding in &check.findings {
                        li data-ok=(finding.ok) { (finding.message) }
                    }
                }
                @if matches!(connection.state.as_str(), "requested" | "imported") {
                    p.hint { "The other side's rules are checked once the connection is approved: until then nothing is sent to it." }
                }
            }
            (forms(connection, spaces, shown, session))
            @if let Some(space) = &our_space {
                (space_items(space, &loaded.items))
            }
            h3 { "History" }
            ol.history {
                @for entry in &loaded.detail.history {
                    li { (entry.at) " · " code { (entry.event) } " · " (entry.actor) }
                }
            }
            (foot(connection, session))
        }
    }
}

fn facts(connection: &PeerConnection, our_space: Option<&str>) -> Markup {
    html! {
        dl.facts {
            dt { "State" } dd #connection-state { (state_of(connection)) }
            dt { "Role here" } dd { (connection.role) }
            @if let Some(peer) = &connection.peer {
                dt { "Instance id" } dd #peer-id { (peer.instance_id) }
                dt { "URL" } dd #peer-url { (peer.url) }
                dt { "Key fingerprint" } dd #peer-fingerprint { (peer.fingerprint) }
            }
            dt { "Our space" } dd #our-space { (our_space.unwrap_or("not chosen yet")) }
            dt { "Offered space" } dd #offered-space { (connection.offered_space) }
            dt { "We send" } dd #we-send { (types(&connection.sends)) }
            dt { "We receive" } dd #we-receive { (types(&connection.receives)) }
            @if matches!(connection.state.as_str(), "requested" | "imported") {
                @if let Some(expires) = &connection.expires_at {
                    dt { "Code expires" } dd #code-expires { (expires) }
                }
            }
            dt { "Items that may leave" } dd #ceiling { (ceiling(&connection.security)) }
            dt { "Marks given on arrival" } dd #marks { (types(&connection.security.mark)) }
        }
    }
}

fn space_items(space: &str, items: &[Item]) -> Markup {
    html! {
        h3 { "In " (space) }
        @if items.is_empty() {
            p.empty { "No item yet." }
        } @else {
            ul.items #space-items {
                @for item in items.iter().take(ITEMS_SHOWN) {
                    li { (item.title) " " span.kind { (item.kind.as_str()) } }
                }
            }
            @if items.len() > ITEMS_SHOWN {
                p.hint { a href={ "/spaces/" (space) } { "All items of " (space) } }
            }
        }
    }
}

/// The forms the connection's state allows, and nothing else.
fn forms(
    connection: &PeerConnection,
    spaces: &[Space],
    shown: &Shown,
    session: &Session,
) -> Markup {
    let state = connection.state.as_str();
    let originator = connection.role == "originator";
    html! {
        @if originator && state == "requested" { (open_request(&connection.id, session)) }
        @if !originator && state == "imported" { (approve_form(connection, spaces, shown, session)) }
        @if connection.response_file_ready {
            p.notice {
                "Approved with a response file. Give it to " strong { (title_of(connection)) } "'s admin, who uploads it in their Peer Manager. "
                a #download-response href={ "/peers/" (connection.id) "/response-file" } download { "Download response file" }
            }
        }
        @if matches!(state, "approved" | "active") {
            (security(connection, shown, session))
            (narrow(connection, session))
        }
    }
}

/// The panel's last row: Delete on the left; Disable or Enable, and the originator's Activate,
/// in the lower right.
fn foot(connection: &PeerConnection, session: &Session) -> Markup {
    let id = &connection.id;
    let state = connection.state.as_str();
    html! {
        @if !matches!(state, "invalidated" | "deleted" | "revoked") {
            div.panel-foot {
                a.button.danger #delete href={ "/peers/" (id) "/delete" } { "Delete" }
                @if state == "active" {
                    @if connection.disabled_here {
                        (button(id, "enable", "Enable", session))
                    } @else {
                        (button(id, "disable", "Disable", session))
                    }
                }
                @if connection.role == "originator" && state == "approved" {
                    (button(id, "activate", "Activate", session))
                }
            }
        }
    }
}

/// A one-button form posting to `/peers/{id}/{action}`.
fn button(id: &str, action: &str, label: &str, session: &Session) -> Markup {
    html! {
        form.button method="post" action={ "/peers/" (id) "/" (action) } {
            (csrf_field(session))
            button #(action.replace('/', "-")) type="submit" { (label) }
        }
    }
}

/// How long a new invite code stays valid, `chosen` selected (24 hours when nothing is).
pub(super) fn validity_select(id: &str, chosen: &str) -> Markup {
    let chosen = if chosen.is_empty() { "24h" } else { chosen };
    html! {
        select #(id) name="expires_in" {
            @for (value, label) in VALIDITIES {
                option value=(value) selected[value == chosen] { (label) }
            }
        }
    }
}

fn open_request(id: &str, session: &Session) -> Markup {
    html! {
        h3 { "Open request" }
        p.hint { "Its code is shown once, when made. A new code replaces the old one, which stops working." }
        form.inline method="post" action={ "/peers/" (id) "/refresh" } {
            (csrf_field(session))
            label for="refresh-expiry" { "Valid for" }
            (validity_select("refresh-expiry", ""))
            button #refresh type="submit" { "Refresh code" }
        }
        form.inline method="post" action={ "/peers/" (id) "/invalidate" } {
            (csrf_field(session))
            button.danger #invalidate type="submit" { "Invalidate request" }
        }
    }
}

fn approve_form(
    connection: &PeerConnection,
    spaces: &[Space],
    shown: &Shown,
    session: &Session,
) -> Markup {
    let security = shown.typed.security.clone().unwrap_or_default();
    html! {
        h3 { "Approve" }
        form.stacked method="post" action={ "/peers/" (connection.id) "/approve" } {
            (csrf_field(session))
            label for="approve-space" { "Receiving space" }
            @if spaces.is_empty() {
                p.hint { "This instance has no space yet: " code { "ferry space create NAME" } " makes one." }
            }
            select #approve-space name="space" required {
                @for space in spaces {
                    option value=(space.name) selected[shown.typed.space == space.name] { (space.name) }
                }
            }
            fieldset {
                legend { "Set security" }
                (security_fields("approve", &security))
            }
            div.buttons {
                button #approve type="submit" name="delivery" value="online" { "Approve request" }
                button.secondary #approve-file type="submit" name="delivery" value="file" { "Download response file" }
            }
            p.hint { "No network path to " (title_of(connection)) "? Download the response file instead and hand it to its admin." }
        }
    }
}

/// Which items a ceiling lets leave, in words.
fn ceiling(security: &ferry_proto::PeerSecurity) -> String {
    match &security.ceiling {
        Some(allowed) if !allowed.is_empty() => {
            format!("unmarked, or marked only {}", allowed.join(", "))
        }
        _ => "unmarked only".into(),
    }
}

/// The two security inputs, each labelled, with what an empty value means.
fn security_fields(prefix: &str, typed: &SecurityFields) -> Markup {
    html! {
        label for={ (prefix) "-ceiling" } { "Markings that may leave" }
        input #{ (prefix) "-ceiling" } type="text" name="ceiling" value=(typed.ceiling)
            placeholder="e.g. PUBLIC, PARTNER";
        p.hint { "Separate with commas. Items with any other marking stay here; empty: no marked item leaves." }
        label for={ (prefix) "-mark" } { "Marks given to everything that arrives" }
        input #{ (prefix) "-mark" } type="text" name="mark" value=(typed.mark)
            placeholder="e.g. PARTNER";
    }
}

fn security(connection: &PeerConnection, shown: &Shown, session: &Session) -> Markup {
    let id = &connection.id;
    let title = title_of(connection);
    html! {
        h3 { "Security" }
        @match &connection.pending_security {
            Some(pending) if pending.proposed_by == "there" => {
                div.proposal #proposal {
                    p { strong { (title) } " proposes new settings for its side: items that may leave "
                        (ceiling(&pending.security))
                        "; marks given on arrival " (types(&pending.security.mark)) "." }
                    div.buttons {
                        (button(id, "security/approve", "Approve change", session))
                        (button(id, "security/reject", "Reject change", session))
                    }
                }
            }
            Some(pending) => {
                p.hint #proposal { "Waiting for " (title) " to approve our change: items that may leave "
                    (ceiling(&pending.security))
                    "; marks given on arrival " (types(&pending.security.mark)) "." }
            }
            None => {
                details open[shown.typed.security.is_some()] {
                    summary { "Propose a security change" }
                    form.stacked method="post" action={ "/peers/" (id) "/security" } {
                        (csrf_field(session))
                        (security_fields("propose", shown.typed.security.as_ref().unwrap_or(&SecurityFields::of(&connection.security))))
                        p.hint { "It takes effect once " (title) "'s admin approves it." }
                        button #propose type="submit" { "Propose change" }
                    }
                }
            }
        }
    }
}

fn narrow(connection: &PeerConnection, session: &Session) -> Markup {
    html! {
        details {
            summary { "Narrow the types we send" }
            form.stacked method="post" action={ "/peers/" (connection.id) "/sends" } {
                (csrf_field(session))
                fieldset {
                    legend { "Send only" }
                    @for kind in &connection.sends {
                        label.check {
                            input type="checkbox" name={ "send_" (kind) } id={ "send-" (kind) } checked;
                            " " (kind)
                        }
                    }
                }
                p.hint { "Items of a type no longer sent leave the other side's view. Sending more needs a new connection." }
                button #narrow type="submit" { "Send only these" }
            }
        }
    }
}
