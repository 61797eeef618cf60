//! The console's frame and the pieces every page shares.

use super::session::SignedIn;
use axum::Form;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use ferry_node::Node;
use ferry_node::sessions::Session;
use ferry_proto::Role;
use maud::{DOCTYPE, Markup, html};
use serde::Deserialize;
use serde::de::DeserializeOwned;

/// A page in the console's frame: the instance's title, id and key fingerprint always in view,
/// the navigation and who is signed in once someone is.
pub(crate) fn page(node: &Node, signed_in: Option<&Session>, title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Ferry · " (node.info.title) }
                link rel="stylesheet" href="/static/console.css";
                script src="/static/console.js" defer {}
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
                            // Spaces, collaborations and sync join
                            // as their pages are built. A page the caller may not use is not
                            // offered (and refused anyway).
                            li { a href="/" { "Overview" } }
                            li { a href="/spaces" { "Spaces" } }
                            li { a href="/sync" { "Sync" } }
                            li { a href="/conflicts" { "Conflicts" } }
                            @if signed_in.is_some_and(|s| s.caller.role == Role::Admin) {
                                li { a href="/collabs" { "Collaborations" } }
                                li { a href="/peers" { "Peer Manager" } }
                                li { a href="/policy" { "Network policy" } }
                                li { a href="/audit" { "Audit log" } }
                                li { a href="/tokens" { "Tokens" } }
                            }
                        }
                    }
                }
                main { (body) }
            }
        }
    }
}

/// A failure shown in the page: what went wrong and its stable code.
pub(crate) fn failure(message: &str, code: &str) -> Markup {
    html! {
        div.error role="alert" {
            p { (message) }
            p.code { "code: " code { (code) } }
        }
    }
}

/// Whether a form was posted from this site's own pages: a browser names the page's origin, and
/// it must be this instance's (a sign-in form cannot carry a session's CSRF token yet).
pub(crate) fn same_origin(headers: &HeaderMap) -> bool {
    let header = |name| headers.get(name).and_then(|v| v.to_str().ok());
    match (header(header::ORIGIN), header(header::HOST)) {
        (None, _) => true,
        (Some(origin), Some(host)) => origin
            .split_once("://")
            .is_some_and(|(_, rest)| rest == host),
        (Some(_), None) => false,
    }
}

/// A refused request, as a page.
pub(crate) fn refused(node: &Node, signed_in: Option<&Session>, message: &str) -> Response {
    let body = failure(message, "forbidden");
    (
        StatusCode::FORBIDDEN,
        Html(page(node, signed_in, "Refused", body).into_string()),
    )
        .into_response()
}

/// A form of a signed-in page: the fields, and the session's CSRF token.
#[derive(Deserialize)]
struct Posted<T> {
    csrf: String,
    #[serde(flatten)]
    fields: T,
}

/// A form with no field but its CSRF token (a button).
#[derive(Deserialize)]
pub(crate) struct NoFields {}

/// A form posted by a signed-in person from this session's own pages (same origin, the
/// session's CSRF token): anything else is refused before the handler runs.
pub(crate) struct Checked<T> {
    pub(crate) signed_in: SignedIn,
    pub(crate) fields: T,
}

impl<T: DeserializeOwned + Send> FromRequest<Node> for Checked<T> {
    type Rejection = Response;

    async fn from_request(request: Request, node: &Node) -> Result<Self, Response> {
        let (mut parts, body) = request.into_parts();
        let signed_in = SignedIn::from_request_parts(&mut parts, node).await?;
        let same_site = same_origin(&parts.headers);
        let request = Request::from_parts(parts, body);
        let refuse = |why: &str| refused(node, Some(&signed_in.session), why);
        let Ok(Form(posted)) = Form::<Posted<T>>::from_request(request, node).await else {
            return Err(refuse(
                "the form could not be read; reload the page and try again",
            ));
        };
        if !same_site || !signed_in.session.csrf_matches(&posted.csrf) {
            return Err(refuse("this form did not come from this session's pages"));
        }
        Ok(Checked {
            signed_in,
            fields: posted.fields,
        })
    }
}

/// A page that shows only a node's failure (its message and code).
pub(crate) fn failure_page(
    node: &Node,
    session: &Session,
    title: &str,
    error: &ferry_node::NodeError,
) -> Response {
    let body = failure(&error.0.message, error.0.code.as_str());
    let status = crate::status_of(error.0.code);
    (
        status,
        Html(page(node, Some(session), title, body).into_string()),
    )
        .into_response()
}

/// A page that needs admin, for someone who is not.
pub(crate) fn needs_admin(node: &Node, signed_in: &SignedIn) -> Option<Response> {
    (signed_in.session.caller.role != Role::Admin).then(|| {
        refused(
            node,
            Some(&signed_in.session),
            &format!(
                "'{}' has role {}; this page needs admin",
                signed_in.session.caller.name,
                signed_in.session.caller.role.as_str()
            ),
        )
    })
}

/// The hidden CSRF field every form of a signed-in page carries.
pub(crate) fn csrf_field(session: &Session) -> Markup {
    html! { input type="hidden" name="csrf" value=(session.csrf); }
}

/// Rows on one page of a list that grows (connections, tokens).
pub(crate) const PAGE_ROWS: usize = 100;

/// The rows of page `page` (from 1; past the end: the last) of `all`, and the pager that goes
/// with them: which rows these are, and links to the pages before and after (`link(n)`).
pub(crate) fn paged<T>(all: &[T], page: usize, link: impl Fn(usize) -> String) -> (&[T], Markup) {
    let (rows, pager) = page_of(all.len(), page, link);
    (&all[rows], pager)
}

/// Which of `total` rows page `page` shows (from 1; past the end: the last), and its pager:
/// for lists read a page at a time.
pub(crate) fn page_of(
    total: usize,
    page: usize,
    link: impl Fn(usize) -> String,
) -> (std::ops::Range<usize>, Markup) {
    let pages = total.div_ceil(PAGE_ROWS).max(1);
    let page = page.clamp(1, pages);
    let rows = (page - 1) * PAGE_ROWS..total.min(page * PAGE_ROWS);
    let pager = html! {
        @if pages > 1 {
            nav.pager aria-label="Pages" {
                span { "Rows " (rows.start + 1) "–" (rows.end) " of " (total) }
                @if page > 1 { a rel="prev" href=(link(page - 1)) { "‹ Previous" } }
                @if page < pages { a rel="next" href=(link(page + 1)) { "Next ›" } }
            }
        }
    };
    (rows, pager)
}

/// What a confirmation page asks: its heading, what will happen (list items), where the
/// confirming form posts, its button, and where Cancel leads.
pub(crate) struct Confirmation<'a> {
    pub(crate) heading: String,
    pub(crate) consequences: Markup,
    pub(crate) action: String,
    pub(crate) button_id: &'a str,
    pub(crate) button: &'a str,
    pub(crate) cancel: String,
}

/// A page that says what an irreversible action does before the person confirms it.
pub(crate) fn confirmation(node: &Node, session: &Session, asked: Confirmation<'_>) -> Response {
    let body = html! {
        h1 { (asked.heading) }
        ul.lead #consequences { (asked.consequences) }
        div.buttons {
            form.button method="post" action=(asked.action) {
                (csrf_field(session))
                button.danger #(asked.button_id) type="submit" { (asked.button) }
            }
            a.button.secondary href=(asked.cancel) { "Cancel" }
        }
    };
    Html(page(node, Some(session), asked.button, body).into_string()).into_response()
}
