//! The console's pages. Everything shown is escaped by `maud` as it is written into the page:
//! titles and names that came from other instances are text, never markup.

use super::session::{self, SignedIn};
use axum::Form;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use ferry_node::Node;
use ferry_node::sessions::Session;
use maud::{DOCTYPE, Markup, html};
use serde::Deserialize;

/// A page in the console's frame: the instance's title, id and key fingerprint always in view,
/// the navigation and who is signed in once someone is.
fn page(node: &Node, signed_in: Option<&Session>, title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Ferry · " (node.info.title) }
                link rel="stylesheet" href="/static/console.css";
            }
            body {
                header.top {
                    div.instance {
                        strong.instance-title { (node.info.title) }
                        span.instance-id title="Instance id" { (node.info.instance_id) }
                        span.fingerprint title="Key fingerprint" { (node.info.fingerprint) }
                    }
                    @if let Some(session) = signed_in {
                        div.who {
                            span.caller { (session.caller.name) " (" (session.caller.role.as_str()) ")" }
                            form method="post" action="/sign-out" {
                                input type="hidden" name="csrf" value=(session.csrf);
                                button type="submit" id="sign-out" { "Sign out" }
                            }
                        }
                    }
                }
                @if signed_in.is_some() {
                    nav aria-label="Console" {
                        ul {
                            // Peer Manager, network policy, spaces, collaborations, sync, the
                            // audit log and tokens join as their pages are built.
                            li { a href="/" { "Overview" } }
                        }
                    }
                }
                main { (body) }
            }
        }
    }
}

/// A failure shown in the page: what went wrong and its stable code.
fn failure(message: &str, code: &str) -> Markup {
    html! {
        div.error role="alert" {
            p { (message) }
            p.code { "code: " code { (code) } }
        }
    }
}

/// The overview: who this instance is.
pub(crate) async fn home(State(node): State<Node>, signed_in: SignedIn) -> Html<String> {
    let info = &node.info;
    let body = html! {
        h1 { "Overview" }
        dl.facts {
            dt { "Title" } dd { (info.title) }
            dt { "Instance id" } dd id="instance-id" { (info.instance_id) }
            dt { "Public URL" } dd { (info.public_url) }
            dt { "Key fingerprint" } dd id="fingerprint" { (info.fingerprint) }
        }
    };
    Html(page(&node, Some(&signed_in.session), "Overview", body).into_string())
}

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

/// Whether a form was posted from this site's own pages: a browser names the page's origin, and
/// it must be this instance's (a sign-in form cannot carry a session's CSRF token yet).
fn same_origin(headers: &HeaderMap) -> bool {
    let header = |name| headers.get(name).and_then(|v| v.to_str().ok());
    match (header(header::ORIGIN), header(header::HOST)) {
        (None, _) => true,
        (Some(origin), Some(host)) => origin
            .split_once("://")
            .is_some_and(|(_, rest)| rest == host),
        (Some(_), None) => false,
    }
}

fn refused(node: &Node, message: &str) -> Response {
    let body = failure(message, "forbidden");
    (
        StatusCode::FORBIDDEN,
        Html(page(node, None, "Refused", body).into_string()),
    )
        .into_response()
}

pub(crate) async fn sign_in(
    State(node): State<Node>,
    headers: HeaderMap,
    Form(form): Form<SignInForm>,
) -> Response {
    if !same_origin(&headers) {
        return refused(&node, "this form was sent from another site");
    }
    match ferry_node::sessions::sign_in(&node, form.token.trim()).await {
        Ok((id, _)) => signed_in_answer(&node, &id),
        Err(e) => {
            let problem = failure(&e.0.message, e.0.code.as_str());
            (
                StatusCode::UNAUTHORIZED,
                Html(sign_in_page(&node, Some(problem)).into_string()),
            )
                .into_response()
        }
    }
}

/// A one-time sign-in link: the session starts and the browser goes on to a page whose address
/// holds no secret.
pub(crate) async fn sign_in_by_link(
    State(node): State<Node>,
    axum::extract::Path(secret): axum::extract::Path<String>,
) -> Response {
    match ferry_node::sessions::redeem(&node, &secret).await {
        Ok((id, _)) => signed_in_answer(&node, &id),
        Err(e) => {
            let problem = failure(&e.0.message, e.0.code.as_str());
            (
                StatusCode::UNAUTHORIZED,
                Html(sign_in_page(&node, Some(problem)).into_string()),
            )
                .into_response()
        }
    }
}

/// The session cookie, and on to the overview.
fn signed_in_answer(node: &Node, id: &str) -> Response {
    let secure = node.info.public_url.starts_with("https://");
    let cookie = session::cookie(id, node.session_secs, secure);
    ([(header::SET_COOKIE, cookie)], Redirect::to("/")).into_response()
}

#[derive(Deserialize)]
pub(crate) struct CsrfForm {
    csrf: String,
}

pub(crate) async fn sign_out(
    State(node): State<Node>,
    headers: HeaderMap,
    signed_in: SignedIn,
    Form(form): Form<CsrfForm>,
) -> Response {
    if !same_origin(&headers) || !signed_in.session.csrf_matches(&form.csrf) {
        return refused(&node, "this form did not come from this session's pages");
    }
    ferry_node::sessions::sign_out(&node, &signed_in.id);
    let secure = node.info.public_url.starts_with("https://");
    (
        [(header::SET_COOKIE, session::cookie("", 0, secure))],
        Redirect::to("/sign-in"),
    )
        .into_response()
}
