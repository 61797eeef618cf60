//! Peer Manager: every connection with its state, the other instance and what goes each way;
//! the selected one opens in the right-hand panel with its identity, security, history, the
//! policy check and the actions its state allows. Creating a request (`request.rs`), answering
//! a code (`answer.rs`) and the panel's actions (`actions.rs`) all come back to this page.
//! Admins only.

mod actions;
mod answer;
mod panel;
mod request;

pub(crate) use actions::{
    activate, approve_security, confirm_delete, delete, disable, enable, narrow_sends,
    propose_security, reject_security,
};
pub(crate) use answer::{
    accept_response, approve, download_response_file, enter_code, enter_code_form, response_form,
};
pub(crate) use request::{create_request, invalidate, new_request_form, refresh};

use super::layout::{failure, failure_page, needs_admin, page, paged};
use super::session::SignedIn;
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

/// Security settings as typed in a form: markings separated by commas.
#[derive(Deserialize, Default, Clone)]
pub(crate) struct SecurityFields {
    #[serde(default)]
    ceiling: String,
    #[serde(default)]
    mark: String,
}

impl SecurityFields {
    fn of(security: &ferry_proto::PeerSecurity) -> SecurityFields {
        SecurityFields {
            ceiling: security.ceiling.as_deref().unwrap_or_default().join(", "),
            mark: security.mark.join(", "),
        }
    }

    /// An empty ceiling lets no marked item leave, as `None` says.
    fn security(&self) -> ferry_proto::PeerSecurity {
        let ceiling = markings(&self.ceiling);
        ferry_proto::PeerSecurity {
            ceiling: (!ceiling.is_empty()).then_some(ceiling),
            mark: markings(&self.mark),
        }
    }
}

fn markings(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .map(str::to_string)
        .collect()
}

/// What the page shows besides the list: the selected connection, what an action did or why it
/// failed, and what was typed into a form that failed.
#[derive(Default)]
pub(crate) struct Shown {
    selected: Option<String>,
    /// The page of the list, from 1.
    page: usize,
    notice: Option<Markup>,
    problem: Option<Markup>,
    typed: Typed,
}

/// A failed form's values, put back into it.
#[derive(Default)]
struct Typed {
    space: String,
    security: Option<SecurityFields>,
}

impl Shown {
    fn of(id: &str) -> Shown {
        Shown {
            selected: Some(id.to_string()),
            ..Shown::default()
        }
    }

    fn notice(mut self, notice: Markup) -> Shown {
        self.notice = Some(notice);
        self
    }

    fn failed(mut self, error: &NodeError) -> Shown {
        self.problem = Some(failure(&error.0.message, error.0.code.as_str()));
        self
    }
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

fn title_of(connection: &PeerConnection) -> &str {
    connection
        .peer
        .as_ref()
        .map_or("(not answered yet)", |p| p.title.as_str())
}

/// The page after an action on a connection: what it did, or why it failed (with the failure's
/// status, and `base`'s typed values back in their form).
async fn after<T>(
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
