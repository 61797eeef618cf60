//! Peer Manager: every connection with its state, the other instance and what goes each way;
//! the selected one opens in the right-hand panel with its identity, security, history and the
//! policy check. Admins only. (Its actions come with the next pages.)

use super::layout::{failure_page, needs_admin, page};
use super::session::SignedIn;
use axum::extract::{Query, State};
use axum::response::{Html, IntoResponse, Response};
use ferry_node::Node;
use ferry_proto::{PeerConnection, PeerDetail, PolicyCheck};
use maud::{Markup, html};
use serde::Deserialize;
use std::collections::HashMap;

#[derive(Deserialize, Default)]
pub(crate) struct Selected {
    id: Option<String>,
}

/// The state a person reads: `disabled` (and by which side) wins over the phase.
fn state_of(connection: &PeerConnection) -> String {
    match (connection.disabled_here, connection.disabled_there) {
        (true, _) => "disabled here".into(),
        (_, true) => "disabled there".into(),
        _ => connection.state.clone(),
    }
}

fn types(names: &[String]) -> String {
    if names.is_empty() {
        "nothing".into()
    } else {
        names.join(", ")
    }
}

pub(crate) async fn list(
    State(node): State<Node>,
    signed_in: SignedIn,
    Query(selected): Query<Selected>,
) -> Response {
    if let Some(refusal) = needs_admin(&node, &signed_in) {
        return refusal;
    }
    let session = &signed_in.session;
    let caller = &session.caller;
    let (peers, spaces) = match tokio::try_join!(
        ferry_node::peers::list_peers(&node, caller),
        ferry_node::spaces::list_spaces(&node, caller)
    ) {
        Ok(found) => found,
        Err(e) => return failure_page(&node, session, "Peer Manager", &e),
    };
    let space_names: HashMap<String, String> = spaces
        .into_iter()
        .map(|s| (s.id.to_string(), s.name))
        .collect();
    let space_of = |connection: &PeerConnection| {
        connection
            .space
            .as_ref()
            .map(|id| space_names.get(id).cloned().unwrap_or_else(|| id.clone()))
            .unwrap_or_else(|| "not chosen yet".into())
    };
    let panel = match &selected.id {
        Some(id) => {
            let detail = ferry_node::peers::show_peer(&node, caller, id.clone()).await;
            let check = ferry_node::peers::check(&node, caller, id.clone()).await;
            match detail {
                Ok(detail) => Some(detail_panel(
                    &detail,
                    check.ok(),
                    &space_of(&detail.connection),
                )),
                Err(e) => return failure_page(&node, session, "Peer Manager", &e),
            }
        }
        None => None,
    };
    let body = html! {
        h1 { "Peer Manager" }
        div.split {
            div.primary {
                @if peers.is_empty() {
                    p.empty { "No peer connection yet." }
                } @else {
                    table.list #peers {
                        thead { tr {
                            th { "State" } th { "Other instance" } th { "Our space" }
                            th { "Offered space" } th { "We send" } th { "We receive" }
                        } }
                        tbody {
                            @for connection in &peers {
                                @let state = state_of(connection);
                                tr data-connection=(connection.id) {
                                    td { span.badge data-state=(connection.state) { (state) } }
                                    td {
                                        a href={ "/peers?id=" (connection.id) } {
                                            (connection.peer.as_ref().map_or("(not answered yet)", |p| p.title.as_str()))
                                        }
                                    }
                                    td { (space_of(connection)) }
                                    td { (connection.offered_space) }
                                    td { (types(&connection.sends)) }
                                    td { (types(&connection.receives)) }
                                }
                            }
                        }
                    }
                }
            }
            @if let Some(panel) = panel { (panel) }
        }
    };
    Html(page(&node, Some(session), "Peer Manager", body).into_string()).into_response()
}

/// The right-hand panel of one connection.
fn detail_panel(detail: &PeerDetail, check: Option<PolicyCheck>, our_space: &str) -> Markup {
    let connection = &detail.connection;
    html! {
        aside.panel #connection aria-label="Connection" {
            h2 { (connection.peer.as_ref().map_or("Connection", |p| p.title.as_str())) }
            dl.facts {
                dt { "State" } dd #connection-state { (state_of(connection)) }
                dt { "Role here" } dd { (connection.role) }
                @if let Some(peer) = &connection.peer {
                    dt { "Instance id" } dd { (peer.instance_id) }
                    dt { "URL" } dd { (peer.url) }
                    dt { "Key fingerprint" } dd { (peer.fingerprint) }
                }
                dt { "Our space" } dd { (our_space) }
                dt { "Offered space" } dd { (connection.offered_space) }
                dt { "We send" } dd { (types(&connection.sends)) }
                dt { "We receive" } dd { (types(&connection.receives)) }
                dt { "Markings that may leave" } dd {
                    (connection.security.ceiling.as_ref().map_or("none".to_string(), |c| c.join(", ")))
                }
                dt { "Marks given on arrival" } dd { (types(&connection.security.mark)) }
            }
            @for warning in &connection.warnings { p.warning { (warning) } }
            @if let Some(check) = check {
                h3 { "Network policy" }
                ul.findings {
                    @for finding in &check.findings {
                        li data-ok=(finding.ok) { (finding.message) }
                    }
                }
            }
            h3 { "History" }
            ol.history {
                @for entry in &detail.history {
                    li { (entry.at) " · " code { (entry.event) } " · " (entry.actor) }
                }
            }
        }
    }
}
