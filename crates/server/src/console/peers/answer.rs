//! Answering a request: "Enter invite code" (the code is checked and its details shown, with
//! nothing sent), approval with a receiving space and security, online or as a response file,
//! and on the originator's side the upload of such a file.

use super::list::{after, render};
use super::shown::{SecurityFields, Shown, Typed, title_of};
use crate::console::layout::{Checked, csrf_field, failure, needs_admin, page};
use crate::console::session::SignedIn;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use ferry_node::Node;
use ferry_proto::{AcceptPeerResponse, ApprovePeer, ImportInviteCode};
use maud::{Markup, html};
use serde::Deserialize;

#[derive(Deserialize, Default)]
pub(crate) struct CodeFields {
    #[serde(default)]
    code: String,
}

fn code_form(node: &Node, signed_in: &SignedIn, typed: &str, problem: Option<Markup>) -> Markup {
    let body = html! {
        h1 { "Enter invite code" }
        p.lead { "Paste the code another instance's admin sent you. Its details appear next; nothing is sent to that instance until you approve." }
        @if let Some(problem) = problem { (problem) }
        form.stacked method="post" action="/peers/enter" {
            (csrf_field(&signed_in.session))
            label for="invite-code" { "Invite code" }
            textarea #invite-code name="code" required rows="5" { (typed) }
            button #check-code type="submit" { "Show connection details" }
        }
    };
    page(node, Some(&signed_in.session), "Enter invite code", body)
}

pub(crate) async fn enter_code_form(State(node): State<Node>, signed_in: SignedIn) -> Response {
    if let Some(refusal) = needs_admin(&node, &signed_in) {
        return refusal;
    }
    Html(code_form(&node, &signed_in, "", None).into_string()).into_response()
}

pub(crate) async fn enter_code(
    State(node): State<Node>,
    Checked { signed_in, fields }: Checked<CodeFields>,
) -> Response {
    let body = ImportInviteCode {
        code: fields.code.trim().to_string(),
    };
    match ferry_node::peers::import_code(&node, &signed_in.session.caller, body).await {
        Ok(connection) => {
            let shown = Shown::of(&connection.id).notice(html! {
                "The code is genuine: signed by the key of " strong { (title_of(&connection)) } ". Its details are on the right."
            });
            render(&node, &signed_in, shown, StatusCode::CREATED).await
        }
        Err(e) => {
            let problem = failure(&e.0.message, e.0.code.as_str());
            let page = code_form(&node, &signed_in, &fields.code, Some(problem));
            (crate::status_of(e.0.code), Html(page.into_string())).into_response()
        }
    }
}

#[derive(Deserialize, Default)]
pub(crate) struct ApproveFields {
    #[serde(default)]
    space: String,
    #[serde(default)]
    ceiling: String,
    #[serde(default)]
    mark: String,
    /// `online` (answer the originator now) or `file` (a response file to carry).
    #[serde(default)]
    delivery: String,
}

pub(crate) async fn approve(
    State(node): State<Node>,
    Path(id): Path<String>,
    Checked { signed_in, fields }: Checked<ApproveFields>,
) -> Response {
    let security = SecurityFields {
        ceiling: fields.ceiling,
        mark: fields.mark,
    };
    let by_file = fields.delivery == "file";
    let body = ApprovePeer {
        space: fields.space.clone(),
        security: security.security(),
        response_file: by_file,
    };
    let base = Shown {
        typed: Typed {
            space: fields.space,
            security: Some(security),
        },
        ..Shown::of(&id)
    };
    let caller = &signed_in.session.caller;
    let result = ferry_node::peers::approve(&node, caller, id.clone(), body).await;
    after(&node, &signed_in, base, result, |approved| {
        let title = title_of(&approved.connection).to_string();
        if by_file {
            html! {
                // The file downloads at once; the link gets it again.
                meta http-equiv="refresh" content={ "0;url=/peers/" (id) "/response-file" };
                "Approved. The response file is downloading: give it to " strong { (title) } "'s admin, who uploads it in their Peer Manager and activates."
            }
        } else {
            html! { "Approved: " strong { (title) } " was told and can now activate the connection." }
        }
    })
    .await
}

/// The response file of a connection approved for delivery by file, as a download.
pub(crate) async fn download_response_file(
    State(node): State<Node>,
    Path(id): Path<String>,
    signed_in: SignedIn,
) -> Response {
    let caller = &signed_in.session.caller;
    match ferry_node::peers::response_file(&node, caller, id.clone()).await {
        Ok(response) => {
            let name: String = id
                .chars()
                .filter(char::is_ascii_alphanumeric)
                .take(12)
                .collect();
            (
                [
                    (
                        header::CONTENT_TYPE,
                        "text/plain; charset=utf-8".to_string(),
                    ),
                    (
                        header::CONTENT_DISPOSITION,
                        format!("attachment; filename=\"ferry-response-{name}.txt\""),
                    ),
                ],
                format!("{response}\n"),
            )
                .into_response()
        }
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

#[derive(Deserialize, Default)]
pub(crate) struct ResponseFields {
    #[serde(default)]
    response: String,
}

fn response_page(
    node: &Node,
    signed_in: &SignedIn,
    typed: &str,
    problem: Option<Markup>,
) -> Markup {
    let body = html! {
        h1 { "Upload response file" }
        p.lead { "An instance with no network path to this one answers a request with a response file. Upload it here; then activate the connection." }
        @if let Some(problem) = problem { (problem) }
        form.stacked method="post" action="/peers/response" {
            (csrf_field(&signed_in.session))
            label for="response-file" { "Response file" }
            input #response-file type="file" accept=".txt,text/plain" data-into="response-text";
            label for="response-text" { "Its text (filled from the file, or paste it)" }
            textarea #response-text name="response" required rows="5" { (typed) }
            button #accept-response type="submit" { "Accept response" }
        }
    };
    page(node, Some(&signed_in.session), "Upload response file", body)
}

pub(crate) async fn response_form(State(node): State<Node>, signed_in: SignedIn) -> Response {
    if let Some(refusal) = needs_admin(&node, &signed_in) {
        return refusal;
    }
    Html(response_page(&node, &signed_in, "", None).into_string()).into_response()
}

pub(crate) async fn accept_response(
    State(node): State<Node>,
    Checked { signed_in, fields }: Checked<ResponseFields>,
) -> Response {
    let body = AcceptPeerResponse {
        response: fields.response.trim().to_string(),
    };
    match ferry_node::peers::accept_response_file(&node, &signed_in.session.caller, body).await {
        Ok(connection) => {
            let shown = Shown::of(&connection.id).notice(html! {
                "Response accepted from " strong { (title_of(&connection)) } ". Check its details, then activate."
            });
            render(&node, &signed_in, shown, StatusCode::OK).await
        }
        Err(e) => {
            let problem = failure(&e.0.message, e.0.code.as_str());
            let page = response_page(&node, &signed_in, &fields.response, Some(problem));
            (crate::status_of(e.0.code), Html(page.into_string())).into_response()
        }
    }
}
