//! Signing in (with an API token or a one-time link) and out.

use super::layout::{Checked, NoFields, failure, page, refused, same_origin};
use super::session;
use axum::Form;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use ferry_node::Node;
use maud::{Markup, html};
use serde::Deserialize;

fn sign_in_page(node: &Node, problem: Option<Markup>) -> Markup {
    let body = html! {
        h1 { "Sign in" }
        @if let Some(problem) = problem { (problem) }
        form.sign-in method="post" action="/sign-in" {
            label for="token" { "API token" }
            input id="token" type="password" name="token" autocomplete="off" required;
            p.hint {
                "An admin's token is in the data directory (" code { "admin-token" } "); "
                code { "ferry token create NAME --role viewer|editor|admin" } " makes others."
            }
            button type="submit" id="sign-in" { "Sign in" }
        }
    };
    page(node, None, "Sign in", body)
}

pub(crate) async fn sign_in_form(State(node): State<Node>) -> Html<String> {
    Html(sign_in_page(&node, None).into_string())
}

#[derive(Deserialize)]
pub(crate) struct SignInForm {
    token: String,
}

pub(crate) async fn sign_in(
    State(node): State<Node>,
    headers: HeaderMap,
    Form(form): Form<SignInForm>,
) -> Response {
    if !same_origin(&headers) {
        return refused(&node, None, "this form was sent from another site");
    }
    match ferry_node::sessions::sign_in(&node, form.token.trim()).await {
        Ok((id, _)) => signed_in_answer(&node, &id),
        Err(e) => sign_in_refused(&node, &e),
    }
}

/// A one-time sign-in link, opened: a page with one button. Opening the link spends nothing, so
/// a mail scanner or a browser's prefetch cannot use it up; the button posts it from this site.
pub(crate) async fn sign_in_link_page(
    State(node): State<Node>,
    axum::extract::Path(secret): axum::extract::Path<String>,
) -> Html<String> {
    let body = html! {
        h1 { "Sign in" }
        p.lead { "This one-time link signs you in to " strong { (node.info.title) } ". It works once, within 15 minutes of being made." }
        form.sign-in method="post" action={ "/sign-in/link/" (secret) } {
            button type="submit" id="continue" { "Continue" }
        }
    };
    Html(page(&node, None, "Sign in", body).into_string())
}

/// The link's button: the session starts and the browser goes on to a page whose address holds
/// no secret.
pub(crate) async fn sign_in_by_link(
    State(node): State<Node>,
    headers: HeaderMap,
    axum::extract::Path(secret): axum::extract::Path<String>,
) -> Response {
    if !same_origin(&headers) {
        return refused(&node, None, "this form was sent from another site");
    }
    match ferry_node::sessions::redeem(&node, &secret).await {
        Ok((id, _)) => signed_in_answer(&node, &id),
        Err(e) => sign_in_refused(&node, &e),
    }
}

/// The sign-in page again, saying why signing in failed.
fn sign_in_refused(node: &Node, error: &ferry_node::NodeError) -> Response {
    let problem = failure(&error.0.message, error.0.code.as_str());
    (
        StatusCode::UNAUTHORIZED,
        Html(sign_in_page(node, Some(problem)).into_string()),
    )
        .into_response()
}

/// The session cookie, and on to the overview.
fn signed_in_answer(node: &Node, id: &str) -> Response {
    let cookie = session::cookie(node, id, node.session_secs);
    ([(header::SET_COOKIE, cookie)], Redirect::to("/")).into_response()
}

pub(crate) async fn sign_out(
    State(node): State<Node>,
    Checked { signed_in, .. }: Checked<NoFields>,
) -> Response {
    ferry_node::sessions::sign_out(&node, &signed_in.id);
    (
        [(header::SET_COOKIE, session::cookie(&node, "", 0))],
        Redirect::to("/sign-in"),
    )
        .into_response()
}
