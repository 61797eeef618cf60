//! The Peer Manager page: the list of connections, a page at a time, and the selected one's
//! panel; every action comes back to it with what it did.

use super::panel;
use super::shown::{Shown, Typed, state_of, title_of, types};
use crate::console::layout::{failure_page, needs_admin, page, paged};
use crate::console::session::SignedIn;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use ferry_node::{Node, NodeError};
use ferry_proto::PeerConnection;
use maud::{Markup, html};
use serde::Deserialize;
use std::collections::HashMap;

#[derive(Deserialize, Default)]
pub(crate) struct Selected {
    id: Option<String>,
    page: Option<usize>,
}

/// The page after an action on a connection: what it did, or why it failed (with the failure's
/// status, and `base`'s typed values back in their form).
pub(super) async fn after<T>(
    node: &Node,
    signed_in: &SignedIn,
    base: Shown,
    result: Result<T, NodeError>,
    said: impl FnOnce(T) -> Markup,
) -> Response {
    let (shown, status) = match result {
        Ok(done) => (
            Shown {
                typed: Typed::default(),
                ..base
            }
            .notice(said(done)),
            StatusCode::OK,
        ),
        Err(e) => {
            let status = crate::status_of(e.0.code);
            (base.failed(&e), status)
        }
    };
    render(node, signed_in, shown, status).await
}

pub(crate) async fn list(
    State(node): State<Node>,
    signed_in: SignedIn,
    Query(selected): Query<Selected>,
) -> Response {
    if let Some(refusal) = needs_admin(&node, &signed_in) {
        return refusal;
    }
    let shown = Shown {
        selected: selected.id,
        page: selected.page.unwrap_or(1),
        ..Shown::default()
    };
    render(&node, &signed_in, shown, StatusCode::OK).await
}

/// The Peer Manager page: the list, and the selected connection's panel.
pub(crate) async fn render(
    node: &Node,
    signed_in: &SignedIn,
    shown: Shown,
    status: StatusCode,
) -> Response {
    let session = &signed_in.session;
    let caller = &session.caller;
    let (peers, spaces) = match tokio::try_join!(
        ferry_node::peers::list_peers(node, caller),
        ferry_node::spaces::list_spaces(node, caller)
    ) {
        Ok(found) => found,
        Err(e) => return failure_page(node, session, "Peer Manager", &e),
    };
    let space_names: HashMap<String, String> = spaces
        .iter()
        .map(|s| (s.id.to_string(), s.name.clone()))
        .collect();
    let space_of = |connection: &PeerConnection| {
        connection
            .space
            .as_ref()
            .map(|id| space_names.get(id).cloned().unwrap_or_else(|| id.clone()))
    };
    let panel = match &shown.selected {
        Some(id) => match panel::load(node, caller, id).await {
            Ok(loaded) => {
                let our_space = space_of(&loaded.detail.connection);
                Some(panel::render(&loaded, our_space, &spaces, &shown, session))
            }
            Err(e) => return failure_page(node, session, "Peer Manager", &e),
        },
        None => None,
    };
    let page_of = |n: usize| format!("/peers?page={n}");
    let (rows, pager) = paged(&peers, shown.page, page_of);
    let row_link = |id: &str| match shown.page {
        0 | 1 => format!("/peers?id={id}"),
        n => format!("/peers?page={n}&id={id}"),
    };
    let body = html! {
        div.page-head {
            h1 { "Peer Manager" }
            div.actions {
                a.button #enter-code href="/peers/enter" { "Enter invite code" }
                a.button #upload-response href="/peers/response" { "Upload response file" }
                a.button.primary #new-request href="/peers/new" { "Create a peer request" }
            }
        }
        @if let Some(notice) = &shown.notice { div.notice role="status" { (notice) } }
        @if let Some(problem) = &shown.problem { (problem) }
        div.split {
            div.primary {
                @if peers.is_empty() {
                    p.empty { "No peer connection yet. Create a peer request and send its invite code to the other instance's admin, or enter a code you were sent." }
                } @else {
                    table.list #peers {
                        thead { tr {
                            th { "State" } th { "Other instance" } th { "Our space" }
                            th { "Offered space" } th { "We send" } th { "We receive" }
                        } }
                        tbody {
                            @for connection in rows {
                                tr data-connection=(connection.id)
                                    aria-current=[(shown.selected.as_deref() == Some(connection.id.as_str())).then_some("true")] {
                                    td { span.badge data-state=(connection.state) { (state_of(connection)) } }
                                    td { a href=(row_link(&connection.id)) { (title_of(connection)) } }
                                    td { (space_of(connection).unwrap_or_else(|| "not chosen yet".into())) }
                                    td { (connection.offered_space) }
                                    td { (types(&connection.sends)) }
                                    td { (types(&connection.receives)) }
                                }
                            }
                        }
                    }
                    (pager)
                }
            }
            @if let Some(panel) = panel { (panel) }
        }
    };
    (
        status,
        Html(page(node, Some(session), "Peer Manager", body).into_string()),
    )
        .into_response()
}
