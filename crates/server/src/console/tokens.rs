//! Tokens: create one with a role (its secret shown once), list them, revoke one. Admins only.

use super::layout::{
    Checked, NoFields, csrf_field, failure, failure_page, needs_admin, page, paged,
};
use super::session::SignedIn;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use ferry_node::Node;
use ferry_proto::{ErrorCode, NewToken, Role};
use maud::{Markup, html};
use serde::Deserialize;

#[derive(Deserialize, Default)]
pub(crate) struct NewTokenForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    role: String,
}

#[derive(Deserialize, Default)]
pub(crate) struct ListPage {
    page: Option<usize>,
}

/// What the page shows besides the list: a new secret, or a failure with what was typed.
#[derive(Default)]
struct Outcome {
    /// The page of the list, from 1.
    page: usize,
    created: Option<(String, String)>,
    problem: Option<Markup>,
    typed: NewTokenForm,
}

async fn render(
    node: &Node,
    signed_in: &SignedIn,
    outcome: Outcome,
    status: StatusCode,
) -> Response {
    let session = &signed_in.session;
    let tokens = match ferry_node::tokens::list_tokens(node, &session.caller).await {
        Ok(tokens) => tokens,
        Err(e) => return failure_page(node, session, "Tokens", &e),
    };
    let (tokens, pager) = paged(&tokens, outcome.page, |n| format!("/tokens?page={n}"));
    let body = html! {
        h1 { "Tokens" }
        @if let Some(problem) = outcome.problem { (problem) }
        @if let Some((name, secret)) = &outcome.created {
            div.notice role="status" {
                p { "The token for " strong { (name) } " is below. Copy it now: it is shown only once." }
                code #new-token { (secret) }
            }
        }
        form.inline method="post" action="/tokens" {
            (csrf_field(session))
            label for="token-name" { "Name" }
            input #token-name type="text" name="name" required value=(outcome.typed.name);
            label for="token-role" { "Role" }
            select #token-role name="role" {
                @for role in ["viewer", "editor", "admin"] {
                    option value=(role) selected[outcome.typed.role == role] { (role) }
                }
            }
            button type="submit" #create-token { "Create token" }
        }
        table.list {
            thead { tr { th { "Name" } th { "Role" } th { "Created" } th { "State" } th { span.visually-hidden { "Actions" } } } }
            tbody {
                @for token in tokens {
                    tr data-token=(token.name) {
                        td { (token.name) }
                        td { (token.role.as_str()) }
                        td { (token.created_at) }
                        td { @if let Some(at) = &token.revoked_at { "revoked " (at) } @else { "live" } }
                        td {
                            @if token.revoked_at.is_none() {
                                form method="post" action={ "/tokens/" (token.id) "/revoke" } {
                                    (csrf_field(session))
                                    button.danger type="submit" aria-label={ "Revoke " (token.name) } { "Revoke" }
                                }
                            }
                        }
                    }
                }
            }
        }
        (pager)
    };
    (
        status,
        Html(page(node, Some(session), "Tokens", body).into_string()),
    )
        .into_response()
}

pub(crate) async fn list(
    State(node): State<Node>,
    signed_in: SignedIn,
    Query(list): Query<ListPage>,
) -> Response {
    if let Some(refusal) = needs_admin(&node, &signed_in) {
        return refusal;
    }
    let outcome = Outcome {
        page: list.page.unwrap_or(1),
        ..Outcome::default()
    };
    render(&node, &signed_in, outcome, StatusCode::OK).await
}

pub(crate) async fn create(
    State(node): State<Node>,
    Checked { signed_in, fields }: Checked<NewTokenForm>,
) -> Response {
    let typed = fields;
    let Some(role) = Role::parse(&typed.role) else {
        let outcome = Outcome {
            problem: Some(failure(
                &format!(
                    "'{}' is not a role: use viewer, editor or admin",
                    typed.role
                ),
                ErrorCode::InvalidRequest.as_str(),
            )),
            typed,
            ..Outcome::default()
        };
        return render(&node, &signed_in, outcome, StatusCode::BAD_REQUEST).await;
    };
    let new = NewToken {
        name: typed.name.clone(),
        role,
    };
    match ferry_node::tokens::create_token(&node, &signed_in.session.caller, new).await {
        Ok(created) => {
            let outcome = Outcome {
                created: Some((created.info.name.clone(), created.token)),
                ..Outcome::default()
            };
            render(&node, &signed_in, outcome, StatusCode::CREATED).await
        }
        Err(e) => {
            let outcome = Outcome {
                problem: Some(failure(&e.0.message, e.0.code.as_str())),
                typed,
                ..Outcome::default()
            };
            render(&node, &signed_in, outcome, crate::status_of(e.0.code)).await
        }
    }
}

pub(crate) async fn revoke(
    State(node): State<Node>,
    Path(id): Path<String>,
    Checked { signed_in, .. }: Checked<NoFields>,
) -> Response {
    let outcome = match ferry_node::tokens::revoke_token(&node, &signed_in.session.caller, id).await
    {
        Ok(_) => Outcome::default(),
        Err(e) => Outcome {
            problem: Some(failure(&e.0.message, e.0.code.as_str())),
            ..Outcome::default()
        },
    };
    render(&node, &signed_in, outcome, StatusCode::OK).await
}
