//! The guest's side: accept an invitation (paste or upload it, see what it offers and the host's
//! fingerprint, give a contact, accept online or as a response file); link one of its own spaces
//! per workspace; what happens to received items when a workspace ends; sync a workspace now;
//! leave after a confirmation. Linking and unlinking serve the host too.

use super::page::{Said, render, render_list};
use super::parts::{handover, mode_label};
use crate::console::layout::{
    Checked, Confirmation, NoFields, confirmation, csrf_field, failure, failure_page, needs_admin,
    page,
};
use crate::console::session::SignedIn;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use ferry_node::Node;
use ferry_node::sessions::Session;
use ferry_proto::{
    AcceptInvitation, InvitationCode, InvitationPreview, LinkSpace, SetDeletePolicy,
};
use maud::{Markup, html};
use serde::Deserialize;

fn paste_page(node: &Node, session: &Session, typed: &str, problem: Option<Markup>) -> Markup {
    let body = html! {
        h1 { "Accept an invitation" }
        p.lead { "Paste the invitation a host's admin sent you, or pick its file. Its details appear next; nothing is sent to the host until you accept." }
        @if let Some(problem) = problem { (problem) }
        form.stacked method="post" action="/collabs/accept" {
            (csrf_field(session))
            label for="invitation-file" { "Invitation file" }
            input #invitation-file type="file" accept=".txt,text/plain" data-into="invitation";
            label for="invitation" { "Invitation (filled from the file, or paste it)" }
            textarea #invitation name="code" required rows="5" { (typed) }
            button #preview-invitation type="submit" { "Show what it offers" }
        }
    };
    page(node, Some(session), "Accept an invitation", body)
}

pub(crate) async fn accept_form(State(node): State<Node>, signed_in: SignedIn) -> Response {
    if let Some(refusal) = needs_admin(&node, &signed_in) {
        return refusal;
    }
    Html(paste_page(&node, &signed_in.session, "", None).into_string()).into_response()
}

#[derive(Deserialize, Default)]
pub(crate) struct CodeFields {
    #[serde(default)]
    code: String,
}

fn preview_page(
    node: &Node,
    session: &Session,
    code: &str,
    preview: &InvitationPreview,
    problem: Option<Markup>,
) -> Markup {
    let body = html! {
        h1 { "Invitation to " (preview.collaboration) }
        p.notice #nothing-sent { "Nothing has been sent to " strong { (preview.host.title) } " yet. Check the host's fingerprint with its admin before you accept." }
        @if let Some(problem) = problem { (problem) }
        dl.facts #invitation-facts {
            dt { "Host" } dd #host-title { (preview.host.title) }
            dt { "Host URL" } dd { (preview.host.url) }
            dt { "Host instance id" } dd { (preview.host.instance_id) }
            dt { "Host key fingerprint" } dd #host-fingerprint { (preview.host.fingerprint) }
            dt { "Valid until" } dd { (preview.expires_at) }
        }
        table.list #offered {
            thead { tr { th { "Workspace" } th { "Our access" } } }
            tbody {
                @for w in &preview.workspaces {
                    tr { td { strong { (w.name) } @if !w.description.is_empty() { br; span.hint { (w.description) } } } td { (mode_label(&w.mode)) } }
                }
            }
        }
        form.stacked method="post" action="/collabs/accept/confirm" {
            (csrf_field(session))
            input type="hidden" name="code" value=(code);
            label for="contact" { "Who the host can contact here (name, e-mail, phone)" }
            input #contact type="text" name="contact";
            div.buttons {
                button #accept type="submit" name="delivery" value="online" { "Accept invitation" }
                button.secondary #accept-file type="submit" name="delivery" value="file" { "Accept with a response file" }
            }
            p.hint { "No network path to the host? Accept with a response file and hand it to its admin." }
        }
    };
    page(node, Some(session), "Accept an invitation", body)
}

pub(crate) async fn preview(
    State(node): State<Node>,
    Checked { signed_in, fields }: Checked<CodeFields>,
) -> Response {
    let session = &signed_in.session;
    let code = fields.code.trim().to_string();
    let body = InvitationCode { code: code.clone() };
    match ferry_node::collabs::guest::preview(&node, &session.caller, body).await {
        Ok(preview) => {
            Html(preview_page(&node, session, &code, &preview, None).into_string()).into_response()
        }
        Err(e) => {
            let problem = failure(&e.0.message, e.0.code.as_str());
            let page = paste_page(&node, session, &fields.code, Some(problem));
            (crate::status_of(e.0.code), Html(page.into_string())).into_response()
        }
    }
}

#[derive(Deserialize, Default)]
pub(crate) struct AcceptFields {
    #[serde(default)]
    code: String,
    #[serde(default)]
    contact: String,
    #[serde(default)]
    delivery: String,
}

pub(crate) async fn accept(
    State(node): State<Node>,
    Checked { signed_in, fields }: Checked<AcceptFields>,
) -> Response {
    let session = &signed_in.session;
    let by_file = fields.delivery == "file";
    let body = AcceptInvitation {
        code: fields.code.clone(),
        contact: fields.contact.clone(),
        response_file: by_file,
    };
    match ferry_node::collabs::guest::accept(&node, &session.caller, body).await {
        Ok(accepted) => match accepted.response {
            Some(response) if by_file => {
                let c = &accepted.collaboration;
                let body = html! {
                    h1 { "Response for " (c.host.title) }
                    p.lead { "Accepted here. Give this response to " strong { (c.host.title) } "'s admin, who imports it on the collaboration's page; then the workspaces start." }
                    (handover("guest-response", "Response", &response, "ferry-guest-response.txt"))
                    p { a #to-collab href={ "/collabs/" (c.id) } { "On to the collaboration" } }
                };
                Html(page(&node, Some(session), "Response", body).into_string()).into_response()
            }
            _ => Redirect::to(&format!("/collabs/{}", accepted.collaboration.id)).into_response(),
        },
        Err(e) => {
            let problem = failure(&e.0.message, e.0.code.as_str());
            let preview = ferry_node::collabs::guest::preview(
                &node,
                &session.caller,
                InvitationCode {
                    code: fields.code.clone(),
                },
            )
            .await;
            let page = match preview {
                Ok(preview) => preview_page(&node, session, &fields.code, &preview, Some(problem)),
                Err(_) => paste_page(&node, session, &fields.code, Some(problem)),
            };
            (crate::status_of(e.0.code), Html(page.into_string())).into_response()
        }
    }
}

#[derive(Deserialize, Default)]
pub(crate) struct LinkFields {
    #[serde(default)]
    space: String,
}

pub(crate) async fn link(
    State(node): State<Node>,
    Path((id, workspace)): Path<(String, String)>,
    Checked { signed_in, fields }: Checked<LinkFields>,
) -> Response {
    let session = &signed_in.session;
    let body = LinkSpace {
        share: Default::default(),
        space: fields.space.clone(),
    };
    let said = match ferry_node::collabs::link(&node, &session.caller, id.clone(), workspace, body)
        .await
    {
        Ok(_) => Said::notice(
            html! { "Linked " strong { (fields.space) } ": what the workspace holds comes now, both ways as the mode allows." },
        ),
        Err(e) => Said::failed(&e),
    };
    render(&node, session, &id, said, StatusCode::OK).await
}

pub(crate) async fn unlink(
    State(node): State<Node>,
    Path((id, workspace)): Path<(String, String)>,
    Checked { signed_in, .. }: Checked<NoFields>,
) -> Response {
    let session = &signed_in.session;
    let said =
        match ferry_node::collabs::unlink(&node, &session.caller, id.clone(), workspace).await {
            Ok(_) => Said::notice(html! { "Unlinked: the space and its items stay." }),
            Err(e) => Said::failed(&e),
        };
    render(&node, session, &id, said, StatusCode::OK).await
}

#[derive(Deserialize, Default)]
pub(crate) struct PolicyFields {
    #[serde(default)]
    delete_policy: String,
}

pub(crate) async fn set_delete_policy(
    State(node): State<Node>,
    Path(id): Path<String>,
    Checked { signed_in, fields }: Checked<PolicyFields>,
) -> Response {
    let session = &signed_in.session;
    let body = SetDeletePolicy {
        delete_policy: fields.delete_policy,
    };
    let said = match ferry_node::collabs::set_delete_policy(
        &node,
        &session.caller,
        id.clone(),
        body,
    )
    .await
    {
        Ok(_) => Said::notice(html! { "Saved." }),
        Err(e) => Said::failed(&e),
    };
    render(&node, session, &id, said, StatusCode::OK).await
}

pub(crate) async fn confirm_leave(
    State(node): State<Node>,
    Path(id): Path<String>,
    signed_in: SignedIn,
) -> Response {
    let session = &signed_in.session;
    let detail = match ferry_node::collabs::show_collab(&node, &session.caller, id.clone()).await {
        Ok(detail) => detail,
        Err(e) => return failure_page(&node, session, "Leave collaboration", &e),
    };
    let c = &detail.collaboration;
    let consequences = html! {
        li { strong { (c.host.title) } " is told, and nothing more is sent or received in its workspaces." }
        li { "Our linked spaces stay; received items " (if c.delete_policy == "delete" { "are deleted here, as our setting says" } else { "stay here, as our setting says" }) "." }
        li { "Taking part again needs a new invitation." }
    };
    confirmation(
        &node,
        session,
        Confirmation {
            heading: format!("Leave {}?", c.name),
            consequences,
            action: format!("/collabs/{}/leave", c.id),
            button_id: "confirm-leave",
            button: "Leave collaboration",
            cancel: format!("/collabs/{}", c.id),
        },
    )
}

pub(crate) async fn leave(
    State(node): State<Node>,
    Path(id): Path<String>,
    Checked { signed_in, .. }: Checked<NoFields>,
) -> Response {
    let session = &signed_in.session;
    match ferry_node::collabs::guest::leave(&node, &session.caller, id.clone()).await {
        Ok(changed) => {
            let said =
                Said::notice(html! { "We left " strong { (changed.collaboration.name) } "." });
            render_list(&node, session, said, StatusCode::OK).await
        }
        Err(e) => {
            let status = crate::status_of(e.0.code);
            render(&node, session, &id, Said::failed(&e), status).await
        }
    }
}
