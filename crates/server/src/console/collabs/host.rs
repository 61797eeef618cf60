//! The host's side: create a collaboration with its first workspace; add, edit and delete
//! workspaces; set guests' access in place; invite a guest (the invitation to copy or download);
//! refresh or invalidate invitations; import a guest's response file; remove a guest; delete the
//! collaboration after a confirmation.

use super::host_forms::{WorkspaceFields, workspace_inputs};
use super::page::{Said, render, render_list};
use super::parts::handover;
use crate::console::layout::{
    Checked, Confirmation, NoFields, confirmation, csrf_field, failure, failure_page, needs_admin,
    page,
};
use crate::console::session::SignedIn;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use ferry_node::sessions::Session;
use ferry_node::{Node, NodeError};
use ferry_proto::{
    GuestResponse, InvitationCreated, NewCollab, NewInvitation, RefreshInvitation, SetAccess,
    WorkspacePatch,
};
use maud::{Markup, html};
use serde::Deserialize;
use std::collections::BTreeMap;

async fn new_form(
    node: &Node,
    session: &Session,
    name: &str,
    typed: &WorkspaceFields,
    problem: Option<Markup>,
    status: StatusCode,
) -> Response {
    let spaces = match ferry_node::spaces::list_spaces(node, &session.caller).await {
        Ok(spaces) => spaces,
        Err(e) => return failure_page(node, session, "Create a collaboration", &e),
    };
    let body = html! {
        h1 { "Create a collaboration" }
        p.lead { "This instance hosts it. Each workspace links one of its spaces; guests you invite link one of theirs, and nobody sees another's space." }
        @if let Some(problem) = problem { (problem) }
        form.stacked method="post" action="/collabs/new" {
            (csrf_field(session))
            label for="collab-name" { "Collaboration name" }
            input #collab-name type="text" name="collab_name" required value=(name);
            fieldset {
                legend { "First workspace" }
                (workspace_inputs("first", typed, Some(&spaces)))
            }
            button #create-collab type="submit" { "Create collaboration" }
        }
    };
    (
        status,
        Html(page(node, Some(session), "Create a collaboration", body).into_string()),
    )
        .into_response()
}

pub(crate) async fn create_form(State(node): State<Node>, signed_in: SignedIn) -> Response {
    if let Some(refusal) = needs_admin(&node, &signed_in) {
        return refusal;
    }
    let typed = WorkspaceFields::default();
    new_form(&node, &signed_in.session, "", &typed, None, StatusCode::OK).await
}

#[derive(Deserialize, Default)]
pub(crate) struct NewCollabFields {
    #[serde(default)]
    collab_name: String,
    #[serde(flatten)]
    workspace: WorkspaceFields,
}

pub(crate) async fn create(
    State(node): State<Node>,
    Checked { signed_in, fields }: Checked<NewCollabFields>,
) -> Response {
    let session = &signed_in.session;
    let new = NewCollab {
        name: fields.collab_name.trim().to_string(),
        description: String::new(),
        workspaces: vec![fields.workspace.new_workspace()],
    };
    match ferry_node::collabs::host::create(&node, &session.caller, new).await {
        Ok(c) => Redirect::to(&format!("/collabs/{}", c.id)).into_response(),
        Err(e) => {
            let problem = failure(&e.0.message, e.0.code.as_str());
            let status = crate::status_of(e.0.code);
            new_form(
                &node,
                session,
                &fields.collab_name,
                &fields.workspace,
                Some(problem),
                status,
            )
            .await
        }
    }
}

/// The page after a host action: the collaboration, with what happened.
async fn after<T>(
    node: &Node,
    session: &Session,
    id: &str,
    result: Result<T, NodeError>,
    said: impl FnOnce(T) -> Markup,
) -> Response {
    match result {
        Ok(done) => render(node, session, id, Said::notice(said(done)), StatusCode::OK).await,
        Err(e) => {
            let status = crate::status_of(e.0.code);
            render(node, session, id, Said::failed(&e), status).await
        }
    }
}

fn not_told(changed: &ferry_proto::CollabChanged) -> Markup {
    html! {
        @if !changed.not_notified.is_empty() {
            " Not told yet (they learn at their next contact): " (changed.not_notified.join(", ")) "."
        }
    }
}

pub(crate) async fn add_workspace(
    State(node): State<Node>,
    Path(id): Path<String>,
    Checked { signed_in, fields }: Checked<WorkspaceFields>,
) -> Response {
    let session = &signed_in.session;
    let new = fields.new_workspace();
    let result =
        ferry_node::collabs::host::add_workspace(&node, &session.caller, id.clone(), new).await;
    after(
        &node,
        session,
        &id,
        result,
        |changed| html! { "Workspace added." (not_told(&changed)) },
    )
    .await
}

pub(crate) async fn update_workspace(
    State(node): State<Node>,
    Path((id, workspace)): Path<(String, String)>,
    Checked { signed_in, fields }: Checked<WorkspaceFields>,
) -> Response {
    let session = &signed_in.session;
    let patch = WorkspacePatch {
        name: Some(fields.name.trim().to_string()),
        description: Some(fields.description.clone()),
        config: Some(fields.config()),
    };
    let caller = &session.caller;
    let result =
        ferry_node::collabs::host::update_workspace(&node, caller, id.clone(), workspace, patch)
            .await;
    after(
        &node,
        session,
        &id,
        result,
        |changed| html! { "Workspace saved." (not_told(&changed)) },
    )
    .await
}

pub(crate) async fn delete_workspace(
    State(node): State<Node>,
    Path((id, workspace)): Path<(String, String)>,
    Checked { signed_in, .. }: Checked<NoFields>,
) -> Response {
    let session = &signed_in.session;
    let caller = &session.caller;
    let result =
        ferry_node::collabs::host::delete_workspace(&node, caller, id.clone(), workspace).await;
    after(&node, session, &id, result, |changed| {
        html! { "Workspace deleted; the spaces linked to it and their items stay." (not_told(&changed)) }
    })
    .await
}

/// Workspace modes as a form sends them: `ws_<workspace id>` to a mode.
fn access_of(fields: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    fields
        .iter()
        .filter_map(|(name, mode)| Some((name.strip_prefix("ws_")?.to_string(), mode.clone())))
        .collect()
}

pub(crate) async fn set_access(
    State(node): State<Node>,
    Path((id, guest)): Path<(String, String)>,
    Checked { signed_in, fields }: Checked<BTreeMap<String, String>>,
) -> Response {
    let session = &signed_in.session;
    let body = SetAccess {
        access: access_of(&fields),
    };
    let caller = &session.caller;
    let result =
        ferry_node::collabs::host::set_access(&node, caller, id.clone(), guest, body).await;
    after(
        &node,
        session,
        &id,
        result,
        |changed| html! { "Access saved." (not_told(&changed)) },
    )
    .await
}

pub(crate) async fn remove_guest(
    State(node): State<Node>,
    Path((id, guest)): Path<(String, String)>,
    Checked { signed_in, .. }: Checked<NoFields>,
) -> Response {
    let session = &signed_in.session;
    let caller = &session.caller;
    let result = ferry_node::collabs::host::remove_guest(&node, caller, id.clone(), guest).await;
    after(
        &node,
        session,
        &id,
        result,
        |changed| html! { "Guest removed." (not_told(&changed)) },
    )
    .await
}

#[derive(Deserialize, Default)]
pub(crate) struct InviteFields {
    #[serde(default)]
    guest_url: String,
    #[serde(default)]
    expires_in: String,
    #[serde(flatten)]
    modes: BTreeMap<String, String>,
}

/// The invitation just made, to hand to the guest's admin.
fn invitation_page(
    node: &Node,
    session: &Session,
    id: &str,
    created: &InvitationCreated,
) -> Response {
    let body = html! {
        h1 { "Invitation" }
        p.lead {
            "For the instance at " strong { (created.invitation.guest_url) } ", valid until "
            (created.invitation.expires_at) ". Send it to that instance's admin, who accepts it in their console. It is shown only now."
        }
        (handover("invitation-code", "Invitation", &created.code, "ferry-invitation.txt"))
        p { a #to-collab href={ "/collabs/" (id) } { "Back to the collaboration" } }
    };
    (
        StatusCode::CREATED,
        Html(page(node, Some(session), "Invitation", body).into_string()),
    )
        .into_response()
}

pub(crate) async fn invite(
    State(node): State<Node>,
    Path(id): Path<String>,
    Checked { signed_in, fields }: Checked<InviteFields>,
) -> Response {
    let session = &signed_in.session;
    let new = NewInvitation {
        guest_url: fields.guest_url.trim().to_string(),
        access: access_of(&fields.modes)
            .into_iter()
            .filter(|(_, mode)| mode != "none")
            .collect(),
        expires_in: Some(fields.expires_in).filter(|e| !e.is_empty()),
    };
    match ferry_node::collabs::host::invite(&node, &session.caller, id.clone(), new).await {
        Ok(created) => invitation_page(&node, session, &id, &created),
        Err(e) => {
            let status = crate::status_of(e.0.code);
            render(&node, session, &id, Said::failed(&e), status).await
        }
    }
}

pub(crate) async fn refresh_invitation(
    State(node): State<Node>,
    Path((id, invitation)): Path<(String, String)>,
    Checked { signed_in, .. }: Checked<NoFields>,
) -> Response {
    let session = &signed_in.session;
    let caller = &session.caller;
    let body = RefreshInvitation::default();
    match ferry_node::collabs::host::refresh_invitation(&node, caller, id.clone(), invitation, body)
        .await
    {
        Ok(created) => invitation_page(&node, session, &id, &created),
        Err(e) => {
            let status = crate::status_of(e.0.code);
            render(&node, session, &id, Said::failed(&e), status).await
        }
    }
}

pub(crate) async fn invalidate_invitation(
    State(node): State<Node>,
    Path((id, invitation)): Path<(String, String)>,
    Checked { signed_in, .. }: Checked<NoFields>,
) -> Response {
    let session = &signed_in.session;
    let caller = &session.caller;
    let result =
        ferry_node::collabs::host::invalidate_invitation(&node, caller, id.clone(), invitation)
            .await;
    after(
        &node,
        session,
        &id,
        result,
        |_| html! { "Invitation invalidated: it can no longer be accepted." },
    )
    .await
}

#[derive(Deserialize, Default)]
pub(crate) struct ResponseFields {
    #[serde(default)]
    response: String,
}

pub(crate) async fn import_response(
    State(node): State<Node>,
    Path(id): Path<String>,
    Checked { signed_in, fields }: Checked<ResponseFields>,
) -> Response {
    let session = &signed_in.session;
    let body = GuestResponse {
        response: fields.response.trim().to_string(),
    };
    let result =
        ferry_node::collabs::host::import_response(&node, &session.caller, id.clone(), body).await;
    after(&node, session, &id, result, |changed| html! { "The guest's response is imported: it takes part now." (not_told(&changed)) }).await
}

pub(crate) async fn confirm_delete(
    State(node): State<Node>,
    Path(id): Path<String>,
    signed_in: SignedIn,
) -> Response {
    let session = &signed_in.session;
    let detail = match ferry_node::collabs::show_collab(&node, &session.caller, id.clone()).await {
        Ok(detail) => detail,
        Err(e) => return failure_page(&node, session, "Delete collaboration", &e),
    };
    let c = &detail.collaboration;
    let consequences = html! {
        li { "Every guest is told, and nothing more is sent or received in its workspaces." }
        li { "Linked spaces and their items stay, here and on every guest: only the links end." }
        li { "It cannot be undone." }
    };
    confirmation(
        &node,
        session,
        Confirmation {
            heading: format!("Delete the collaboration {}?", c.name),
            consequences,
            action: format!("/collabs/{}/delete", c.id),
            button_id: "confirm-delete",
            button: "Delete collaboration",
            cancel: format!("/collabs/{}", c.id),
        },
    )
}

pub(crate) async fn delete(
    State(node): State<Node>,
    Path(id): Path<String>,
    Checked { signed_in, .. }: Checked<NoFields>,
) -> Response {
    let session = &signed_in.session;
    match ferry_node::collabs::host::delete(&node, &session.caller, id.clone()).await {
        Ok(changed) => {
            let said = Said::notice(
                html! { "The collaboration " strong { (changed.collaboration.name) } " is deleted; linked spaces and items stay." (not_told(&changed)) },
            );
            render_list(&node, session, said, StatusCode::OK).await
        }
        Err(e) => {
            let status = crate::status_of(e.0.code);
            render(&node, session, &id, Said::failed(&e), status).await
        }
    }
}
