//! The originator's side of a request: "Create a peer request" (a space, the data types each way,
//! how long the code is valid), the code shown once with a Copy button, and an open request's
//! refresh and invalidation.

use super::list::after;
use super::panel::validity_select;
use super::shown::Shown;
use crate::console::layout::{
    Checked, NoFields, csrf_field, failure, failure_page, needs_admin, page,
};
use crate::console::session::SignedIn;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use ferry_node::Node;
use ferry_proto::{NewPeerRequest, PeerRequestCreated, RefreshPeerRequest};
use maud::{Markup, html};
use serde::Deserialize;

const DATA_TYPES: [&str; 3] = ["datasets", "features", "files"];

/// The request form. Checkboxes arrive only when ticked, each under its own name.
#[derive(Deserialize, Default)]
pub(crate) struct RequestFields {
    #[serde(default)]
    space: String,
    #[serde(default)]
    expires_in: String,
    export_datasets: Option<String>,
    export_features: Option<String>,
    export_files: Option<String>,
    import_datasets: Option<String>,
    import_features: Option<String>,
    import_files: Option<String>,
}

impl RequestFields {
    fn ticked(&self, direction: &str, kind: &str) -> bool {
        let field = match (direction, kind) {
            ("export", "datasets") => &self.export_datasets,
            ("export", "features") => &self.export_features,
            ("export", "files") => &self.export_files,
            ("import", "datasets") => &self.import_datasets,
            ("import", "features") => &self.import_features,
            _ => &self.import_files,
        };
        field.is_some()
    }

    fn types(&self, direction: &str) -> Vec<String> {
        DATA_TYPES
            .iter()
            .filter(|kind| self.ticked(direction, kind))
            .map(|kind| kind.to_string())
            .collect()
    }
}

async fn request_form(
    node: &Node,
    signed_in: &SignedIn,
    typed: &RequestFields,
    problem: Option<Markup>,
    status: StatusCode,
) -> Response {
    let session = &signed_in.session;
    let spaces = match ferry_node::spaces::list_spaces(node, &session.caller).await {
        Ok(spaces) => spaces,
        Err(e) => return failure_page(node, session, "Create a peer request", &e),
    };
    let body = html! {
        h1 { "Create a peer request" }
        p.lead { "A peer request offers one of this instance's spaces to another instance. Its invite code goes to that instance's admin, who picks a space there, sets security and approves; then you activate." }
        @if let Some(problem) = problem { (problem) }
        form.stacked method="post" action="/peers/new" {
            (csrf_field(session))
            label for="request-space" { "Space" }
            @if spaces.is_empty() {
                p.hint { "This instance has no space yet: " code { "ferry space create NAME" } " makes one." }
            }
            select #request-space name="space" required {
                @for space in &spaces {
                    option value=(space.name) selected[typed.space == space.name] { (space.name) }
                }
            }
            @for (direction, legend) in [("export", "Data types we send"), ("import", "Data types we receive")] {
                fieldset {
                    legend { (legend) }
                    @for kind in DATA_TYPES {
                        label.check {
                            input type="checkbox" id={ (direction) "-" (kind) } name={ (direction) "_" (kind) }
                                checked[typed.ticked(direction, kind)];
                            " " (kind)
                        }
                    }
                }
            }
            label for="request-expiry" { "Code valid for" }
            (validity_select("request-expiry", &typed.expires_in))
            button #create-request type="submit" { "Create request" }
        }
    };
    (
        status,
        Html(page(node, Some(session), "Create a peer request", body).into_string()),
    )
        .into_response()
}

pub(crate) async fn new_request_form(State(node): State<Node>, signed_in: SignedIn) -> Response {
    if let Some(refusal) = needs_admin(&node, &signed_in) {
        return refusal;
    }
    request_form(
        &node,
        &signed_in,
        &RequestFields::default(),
        None,
        StatusCode::OK,
    )
    .await
}

pub(crate) async fn create_request(
    State(node): State<Node>,
    Checked { signed_in, fields }: Checked<RequestFields>,
) -> Response {
    let new = NewPeerRequest {
        space: fields.space.clone(),
        export: fields.types("export"),
        import: fields.types("import"),
        expires_in: Some(fields.expires_in.clone()).filter(|e| !e.is_empty()),
    };
    match ferry_node::peers::create_request(&node, &signed_in.session.caller, new).await {
        Ok(created) => code_page(&node, &signed_in, &created, StatusCode::CREATED),
        Err(e) => {
            let problem = failure(&e.0.message, e.0.code.as_str());
            request_form(
                &node,
                &signed_in,
                &fields,
                Some(problem),
                crate::status_of(e.0.code),
            )
            .await
        }
    }
}

/// The invite code, shown once, with a button that copies it.
fn code_page(
    node: &Node,
    signed_in: &SignedIn,
    created: &PeerRequestCreated,
    status: StatusCode,
) -> Response {
    let connection = &created.connection;
    let body = html! {
        h1 { "Invite code" }
        p.lead {
            "Send this code to the admin of the instance you want to peer with; they enter it in their Peer Manager. "
            "It offers " strong { (connection.offered_space) } " and is valid until "
            span #code-valid-until { (connection.expires_at.as_deref().unwrap_or("-")) } ". "
            "It is shown only now: if it is lost, refresh the request for a new one."
        }
        label for="invite-code" { "Invite code" }
        textarea #invite-code readonly rows="5" { (created.code) }
        div.buttons {
            button #copy-code type="button" data-copy="invite-code" { "Copy invite code" }
            span #invite-code-status role="status" {}
        }
        p { a #to-connection href={ "/peers?id=" (connection.id) } { "Back to Peer Manager" } }
    };
    (
        status,
        Html(page(node, Some(&signed_in.session), "Invite code", body).into_string()),
    )
        .into_response()
}

#[derive(Deserialize, Default)]
pub(crate) struct RefreshFields {
    #[serde(default)]
    expires_in: String,
}

pub(crate) async fn refresh(
    State(node): State<Node>,
    Path(id): Path<String>,
    Checked { signed_in, fields }: Checked<RefreshFields>,
) -> Response {
    let body = RefreshPeerRequest {
        expires_in: Some(fields.expires_in).filter(|e| !e.is_empty()),
    };
    let caller = &signed_in.session.caller;
    match ferry_node::peers::refresh_request(&node, caller, id.clone(), body).await {
        Ok(created) => code_page(&node, &signed_in, &created, StatusCode::OK),
        Err(e) => {
            after(
                &node,
                &signed_in,
                Shown::of(&id),
                Err::<(), _>(e),
                |_| html! {},
            )
            .await
        }
    }
}

pub(crate) async fn invalidate(
    State(node): State<Node>,
    Path(id): Path<String>,
    Checked { signed_in, .. }: Checked<NoFields>,
) -> Response {
    let caller = &signed_in.session.caller;
    let result = ferry_node::peers::invalidate_request(&node, caller, id.clone()).await;
    after(&node, &signed_in, Shown::of(&id), result, |_| {
        html! { "The request is invalidated: its code no longer works." }
    })
    .await
}
