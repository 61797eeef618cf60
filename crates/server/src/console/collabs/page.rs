//! The collaboration pages: the list of collaborations this instance hosts or joined, and one
//! collaboration with its workspaces, the access matrix, participants, invitations and the
//! actions this instance's role allows. Only this instance's own linked spaces are ever shown:
//! the node never knows another participant's.

use super::parts::{MODES, mode_label};
use crate::console::layout::{csrf_field, failure, failure_page, page};
use ferry_node::sessions::Session;
use ferry_node::{Node, NodeError};
use ferry_proto::{Collaboration, InvitationView, Role, Space, WorkspaceView};
use maud::{Markup, html};

/// What a collaboration page shows besides the collaboration: what an action did, or why it
/// failed.
#[derive(Default)]
pub(super) struct Said {
    pub(super) notice: Option<Markup>,
    pub(super) problem: Option<Markup>,
}

impl Said {
    pub(super) fn notice(notice: Markup) -> Said {
        Said {
            notice: Some(notice),
            problem: None,
        }
    }

    pub(super) fn failed(error: &NodeError) -> Said {
        Said {
            notice: None,
            problem: Some(failure(&error.0.message, error.0.code.as_str())),
        }
    }

    fn show(&self) -> Markup {
        html! {
            @if let Some(notice) = &self.notice { div.notice role="status" { (notice) } }
            @if let Some(problem) = &self.problem { (problem) }
        }
    }
}

/// The list of collaborations.
pub(super) async fn render_list(
    node: &Node,
    session: &Session,
    said: Said,
    status: axum::http::StatusCode,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let collabs = match ferry_node::collabs::list_collabs(node, &session.caller).await {
        Ok(collabs) => collabs,
        Err(e) => return failure_page(node, session, "Collaborations", &e),
    };
    let body = html! {
        div.page-head {
            h1 { "Collaborations" }
            div.actions {
                a.button #accept-invitation href="/collabs/accept" { "Accept an invitation" }
                a.button.primary #new-collab href="/collabs/new" { "Create a collaboration" }
            }
        }
        (said.show())
        @if collabs.is_empty() {
            p.empty { "No collaboration yet. Create one and invite guests, or accept an invitation a host sent you." }
        } @else {
            table.list #collabs {
                thead { tr { th { "Name" } th { "Role" } th { "State" } th { "Host" } th { "Workspaces" } } }
                tbody {
                    @for c in &collabs {
                        tr data-collab=(c.id) {
                            td { a href={ "/collabs/" (c.id) } { (c.name) } }
                            td { (c.role) }
                            td { span.badge data-state=(c.state) { (c.state) } }
                            td { (c.host.title) }
                            td { (c.workspaces.len()) }
                        }
                    }
                }
            }
        }
    };
    (
        status,
        axum::response::Html(page(node, Some(session), "Collaborations", body).into_string()),
    )
        .into_response()
}

/// One collaboration's page.
pub(super) async fn render(
    node: &Node,
    session: &Session,
    id: &str,
    said: Said,
    status: axum::http::StatusCode,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let caller = &session.caller;
    let loaded = tokio::try_join!(
        ferry_node::collabs::show_collab(node, caller, id.to_string()),
        ferry_node::spaces::list_spaces(node, caller)
    );
    let (detail, spaces) = match loaded {
        Ok(found) => found,
        Err(e) => return failure_page(node, session, "Collaboration", &e),
    };
    let c = &detail.collaboration;
    let host = c.role == "host";
    let admin = caller.role == Role::Admin;
    let over = matches!(c.state.as_str(), "left" | "removed" | "deleted");
    let invitations = if host && admin {
        ferry_node::collabs::host::list_invitations(node, caller, id.to_string())
            .await
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    let editable = admin && !over;
    let body = html! {
        h1 { (c.name) }
        @if !c.description.is_empty() { p.lead { (c.description) } }
        (said.show())
        dl.facts #collab-facts {
            dt { "Our role" } dd #collab-role { (c.role) }
            dt { "State" } dd #collab-state { (c.state) }
            dt { "Host" } dd { (c.host.title) }
            dt { "Host URL" } dd { (c.host.url) }
            dt { "Host key fingerprint" } dd #host-fingerprint { (c.host.fingerprint) }
            dt { "Received items when a workspace ends" } dd #delete-policy { (c.delete_policy) }
        }
        @for warning in &c.warnings { p.warning { (warning) } }
        h2 { "Workspaces" }
        (workspaces(c, &spaces, editable, session))
        @if host { h2 { "Access" } (access_matrix(c, editable, session)) }
        h2 { "Participants" }
        (participants(c, host && editable, session))
        @if host && editable {
            (super::host_forms::forms(c, &spaces, session))
            h2 { "Invitations" }
            (invitation_list(c, &invitations, session))
        }
        @if !host && editable { (super::guest_forms::forms(c, session)) }
        h2 { "History" }
        ol.history {
            @for entry in &detail.history {
                li { (entry.at) " · " code { (entry.event) } " · " (entry.actor) }
            }
        }
        @if editable {
            div.panel-foot {
                @if host {
                    a.button.danger #delete-collab href={ "/collabs/" (c.id) "/delete" } { "Delete collaboration" }
                } @else {
                    a.button.danger #leave-collab href={ "/collabs/" (c.id) "/leave" } { "Leave collaboration" }
                }
            }
        }
    };
    (
        status,
        axum::response::Html(page(node, Some(session), &c.name, body).into_string()),
    )
        .into_response()
}

fn workspaces(c: &Collaboration, spaces: &[Space], editable: bool, session: &Session) -> Markup {
    html! {
        table.list #workspaces {
            thead { tr {
                th { "Workspace" } th { "Feature layers" } th { "Two-way editing" }
                th { "Our part" } th { "Our space" }
            } }
            tbody {
                @for w in &c.workspaces {
                    tr data-workspace=(w.name) {
                        td { strong { (w.name) } @if !w.description.is_empty() { br; span.hint { (w.description) } } }
                        td { (if w.config.feature_layers == "reference" { "as references" } else { "as copies" }) }
                        td { (if w.config.two_way_editing { "yes" } else { "no" }) }
                        td { (if w.my_mode == "host" { "host: send and receive" } else { mode_label(&w.my_mode) }) }
                        td.linked { (linked_space(c, w, spaces, editable, session)) }
                    }
                }
            }
        }
    }
}

/// This instance's linked space, with Unlink; or, unlinked, a dropdown of its spaces to link.
fn linked_space(
    c: &Collaboration,
    w: &WorkspaceView,
    spaces: &[Space],
    editable: bool,
    session: &Session,
) -> Markup {
    html! {
        @if let Some(space) = &w.linked_space {
            a href={ "/spaces/" (space) } { (space) }
            @if editable {
                " "
                form.button method="post" action={ "/collabs/" (c.id) "/workspaces/" (w.id) "/unlink" } {
                    (csrf_field(session))
                    button.secondary type="submit" aria-label={ "Unlink " (space) } { "Unlink" }
                }
            }
        } @else if editable {
            form.inline method="post" action={ "/collabs/" (c.id) "/workspaces/" (w.id) "/link" } {
                (csrf_field(session))
                select name="space" aria-label={ "Space to link to " (w.name) } {
                    @for space in spaces { option value=(space.name) { (space.name) } }
                }
                button.link-space type="submit" { "Link" }
            }
        } @else {
            "not linked"
        }
    }
}

/// Guest × workspace, the host editing a guest's row in place; the host always sends and
/// receives.
fn access_matrix(c: &Collaboration, editable: bool, session: &Session) -> Markup {
    let guests: Vec<_> = c
        .participants
        .iter()
        .filter(|p| p.role == "guest" && p.status == "active")
        .collect();
    html! {
        table.list #access {
            thead { tr { th { "Participant" } @for w in &c.workspaces { th { (w.name) } } th { span.visually-hidden { "Save" } } } }
            tbody {
                tr.host-row { td { (c.host.title) " (host)" } @for _ in &c.workspaces { td { "send and receive" } } td {} }
                @for guest in &guests {
                    tr data-guest=(guest.title) {
                        td { (guest.title) }
                        @if editable {
                            @for w in &c.workspaces {
                                @let mode = w.guests.iter().find(|g| g.participant_id == guest.id).map_or("none", |g| g.mode.as_str());
                                td {
                                    select form={ "access-" (guest.id) } name={ "ws_" (w.id) }
                                        aria-label={ (guest.title) " in " (w.name) } {
                                        @for (value, label) in MODES {
                                            option value=(value) selected[value == mode] { (label) }
                                        }
                                    }
                                }
                            }
                            td {
                                form #{ "access-" (guest.id) } method="post" action={ "/collabs/" (c.id) "/guests/" (guest.id) "/access" } {
                                    (csrf_field(session))
                                    button.save-access type="submit" { "Save" }
                                }
                            }
                        } @else {
                            @for w in &c.workspaces {
                                td { (mode_label(w.guests.iter().find(|g| g.participant_id == guest.id).map_or("none", |g| g.mode.as_str()))) }
                            }
                            td {}
                        }
                    }
                }
            }
        }
    }
}

fn participants(c: &Collaboration, can_remove: bool, session: &Session) -> Markup {
    html! {
        table.list #participants {
            thead { tr { th { "Participant" } th { "Role" } th { "Status" } th { "Instance" } th { "Contact" } th { span.visually-hidden { "Actions" } } } }
            tbody {
                @for p in &c.participants {
                    tr data-participant=(p.title) {
                        td { (p.title) @if p.is_self { " (this instance)" } }
                        td { (p.role) }
                        td { (p.status) }
                        td { @if let Some(i) = &p.instance { (i.url) br; span.hint { (i.fingerprint) } } }
                        td { (p.contact.as_deref().unwrap_or("")) }
                        td {
                            @if can_remove && p.role == "guest" && p.status == "active" {
                                form.button method="post" action={ "/collabs/" (c.id) "/guests/" (p.id) "/remove" } {
                                    (csrf_field(session))
                                    button.danger type="submit" aria-label={ "Remove " (p.title) } { "Remove" }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn invitation_list(c: &Collaboration, invitations: &[InvitationView], session: &Session) -> Markup {
    html! {
        @if invitations.is_empty() {
            p.empty { "No invitation yet." }
        } @else {
            table.list #invitations {
                thead { tr { th { "Guest URL" } th { "Access" } th { "State" } th { "Expires" } th { span.visually-hidden { "Actions" } } } }
                tbody {
                    @for i in invitations {
                        tr data-invitation=(i.id) {
                            td { (i.guest_url) }
                            td { @for a in &i.access { (a.workspace) ": " (mode_label(&a.mode)) br; } }
                            td { (i.state) @if let Some(g) = &i.guest { " by " (g) } }
                            td { (i.expires_at) }
                            td {
                                @if i.state == "open" {
                                    form.button method="post" action={ "/collabs/" (c.id) "/invitations/" (i.id) "/refresh" } {
                                        (csrf_field(session))
                                        button.secondary type="submit" { "Refresh" }
                                    }
                                    " "
                                    form.button method="post" action={ "/collabs/" (c.id) "/invitations/" (i.id) "/invalidate" } {
                                        (csrf_field(session))
                                        button.danger type="submit" { "Invalidate" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
