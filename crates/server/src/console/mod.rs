//! The web console: server-rendered pages for administrators, served at `/` by the same
//! binary. Pages call node operations exactly as the REST API does; every page is behind a
//! session (`session.rs`), every form carries the session's CSRF token, and every answer
//! carries a Content-Security-Policy that allows nothing but this origin and no inline script.

mod audit;
mod auth;
mod collabs;
mod conflicts;
mod items;
mod layout;
mod links;
mod overview;
mod peers;
mod policy;
mod session;
mod spaces;
mod sync;
mod tokens;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use ferry_node::Node;

/// The console's stylesheet and its one small script, compiled into the binary: no request
/// leaves the instance.
const STYLESHEET: &str = include_str!("console.css");
const SCRIPT: &str = include_str!("console.js");

pub(crate) fn routes(node: &Node) -> Router<Node> {
    Router::new()
        .route("/", get(overview::home))
        .route("/sign-in", get(auth::sign_in_form).post(auth::sign_in))
        .route(
            "/sign-in/link/{secret}",
            get(auth::sign_in_link_page).post(auth::sign_in_by_link),
        )
        .route("/sign-out", post(auth::sign_out))
        .route("/tokens", get(tokens::list).post(tokens::create))
        .route("/tokens/{id}/revoke", post(tokens::revoke))
        .route("/policy", get(policy::list).post(policy::add))
        .route("/audit", get(audit::list))
        .route("/peers", get(peers::list))
        .route(
            "/peers/new",
            get(peers::new_request_form).post(peers::create_request),
        )
        .route(
            "/peers/enter",
            get(peers::enter_code_form).post(peers::enter_code),
        )
        .route(
            "/peers/response",
            get(peers::response_form).post(peers::accept_response),
        )
        .route("/peers/{id}/refresh", post(peers::refresh))
        .route("/peers/{id}/invalidate", post(peers::invalidate))
        .route("/peers/{id}/approve", post(peers::approve))
        .route(
            "/peers/{id}/response-file",
            get(peers::download_response_file),
        )
        .route("/peers/{id}/activate", post(peers::activate))
        .route("/peers/{id}/disable", post(peers::disable))
        .route("/peers/{id}/enable", post(peers::enable))
        .route(
            "/peers/{id}/delete",
            get(peers::confirm_delete).post(peers::delete),
        )
        .route("/peers/{id}/security", post(peers::propose_security))
        .route(
            "/peers/{id}/security/approve",
            post(peers::approve_security),
        )
        .route("/peers/{id}/security/reject", post(peers::reject_security))
        .route("/peers/{id}/sends", post(peers::narrow_sends))
        .route("/policy/{id}/remove", post(policy::remove))
        .route("/spaces", get(spaces::list).post(spaces::create))
        .route("/spaces/{name}", get(spaces::show).post(spaces::update))
        .route(
            "/spaces/{name}/delete",
            get(spaces::confirm_delete).post(spaces::delete),
        )
        .route("/spaces/{name}/upload", post(spaces::upload_item))
        .route("/collabs", get(collabs::list))
        .route(
            "/collabs/new",
            get(collabs::create_form).post(collabs::create),
        )
        .route(
            "/collabs/accept",
            get(collabs::accept_form).post(collabs::preview),
        )
        .route("/collabs/accept/confirm", post(collabs::accept))
        .route("/collabs/{id}", get(collabs::show))
        .route("/collabs/{id}/workspaces", post(collabs::add_workspace))
        .route(
            "/collabs/{id}/workspaces/{ws}/edit",
            post(collabs::update_workspace),
        )
        .route(
            "/collabs/{id}/workspaces/{ws}/delete",
            post(collabs::delete_workspace),
        )
        .route("/collabs/{id}/workspaces/{ws}/link", post(collabs::link))
        .route(
            "/collabs/{id}/workspaces/{ws}/unlink",
            post(collabs::unlink),
        )
        .route(
            "/collabs/{id}/guests/{guest}/access",
            post(collabs::set_access),
        )
        .route(
            "/collabs/{id}/guests/{guest}/remove",
            post(collabs::remove_guest),
        )
        .route("/collabs/{id}/invite", post(collabs::invite))
        .route(
            "/collabs/{id}/invitations/{inv}/refresh",
            post(collabs::refresh_invitation),
        )
        .route(
            "/collabs/{id}/invitations/{inv}/invalidate",
            post(collabs::invalidate_invitation),
        )
        .route("/collabs/{id}/response", post(collabs::import_response))
        .route(
            "/collabs/{id}/delete-policy",
            post(collabs::set_delete_policy),
        )
        .route(
            "/collabs/{id}/delete",
            get(collabs::confirm_delete).post(collabs::delete),
        )
        .route(
            "/collabs/{id}/leave",
            get(collabs::confirm_leave).post(collabs::leave),
        )
        .route("/sync", get(sync::list))
        .route("/sync/now", post(sync::sync_now))
        .route("/sync/schedule", post(sync::set_schedule))
        .route("/sync/live", get(sync::live))
        .route("/sync/history", get(sync::history))
        .route("/items/{id}", get(items::show))
        .route("/items/{id}/export", get(items::export))
        .route("/items/{id}/share", post(items::share))
        .route("/items/{id}/two-way", post(items::set_two_way))
        .route("/conflicts", get(conflicts::list))
        .route("/conflicts/{id}", get(conflicts::show))
        .route("/conflicts/{id}/resolve", post(conflicts::resolve))
        .route("/items/{id}/tiles/{z}/{x}/{y}", get(items::tile))
        .route("/static/console.css", get(stylesheet))
        .route("/static/console.js", get(script))
        .layer(axum::middleware::from_fn_with_state(
            node.clone(),
            security_headers,
        ))
}

async fn script() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        SCRIPT,
    )
}

/// Any console path no page answers: a page that says so, with the navigation when signed in.
pub(crate) async fn not_found(node: &Node, headers: &axum::http::HeaderMap) -> Response {
    let signed_in = match session::session_id(node, headers) {
        Some(id) => ferry_node::sessions::session(node, &id).await.ok(),
        None => None,
    };
    let body = maud::html! {
        h1 { "Not found" }
        (layout::failure("There is no page at this address. The navigation above leads to every page.", ferry_proto::ErrorCode::NotFound.as_str()))
        @if signed_in.is_none() { p { a href="/sign-in" { "Sign in" } } }
    };
    let page = layout::page(node, signed_in.as_ref(), "Not found", body);
    let mut response = (
        axum::http::StatusCode::NOT_FOUND,
        axum::response::Html(page.into_string()),
    )
        .into_response();
    // The router's fallback is outside the console's layers: its headers are set here.
    protect(node, &mut response);
    response
}

async fn stylesheet() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        STYLESHEET,
    )
}

/// Headers on every console answer: scripts, styles and images from this origin only (no
/// inline script; images also from the basemap's origin when one is configured), no framing, no
/// sniffing, referrers to this site only (a browser then names the page's origin on its forms,
/// which `layout::same_origin` checks), and no caching of pages that show private data.
async fn security_headers(State(node): State<Node>, request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    protect(&node, &mut response);
    response
}

fn protect(node: &Node, response: &mut Response) {
    let images = match &node.info.basemap {
        // Checked at start to hold no space, quote, comma or semicolon.
        Some(basemap) => format!("'self' data: {}", basemap.origin),
        None => "'self' data:".to_string(),
    };
    let policy = format!(
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src {images}; \
         form-action 'self'; base-uri 'none'; object-src 'none'; frame-ancestors 'none'"
    );
    let headers = response.headers_mut();
    if let Ok(policy) = HeaderValue::from_str(&policy) {
        headers.insert(header::CONTENT_SECURITY_POLICY, policy);
    }
    let set = |headers: &mut axum::http::HeaderMap, name, value: &'static str| {
        headers.insert(name, HeaderValue::from_static(value));
    };
    set(headers, header::X_FRAME_OPTIONS, "DENY");
    set(headers, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(headers, header::REFERRER_POLICY, "same-origin");
    if !headers.contains_key(header::CACHE_CONTROL) {
        set(headers, header::CACHE_CONTROL, "no-store");
    }
}
