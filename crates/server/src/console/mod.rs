//! The web console: server-rendered pages for administrators, served at `/` by the same
//! binary. Pages call node operations exactly as the REST API does; every page is behind a
//! session (`session.rs`), every form carries the session's CSRF token, and every answer
//! carries a Content-Security-Policy that allows nothing but this origin and no inline script.

mod audit;
mod auth;
mod layout;
mod overview;
mod peers;
mod policy;
mod session;
mod tokens;

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use ferry_node::Node;

/// The console's stylesheet, compiled into the binary: no request leaves the instance.
const STYLESHEET: &str = include_str!("console.css");

pub(crate) fn routes() -> Router<Node> {
    Router::new()
        .route("/", get(overview::home))
        .route("/sign-in", get(auth::sign_in_form).post(auth::sign_in))
        .route("/sign-in/link/{secret}", get(auth::sign_in_by_link))
        .route("/sign-out", post(auth::sign_out))
        .route("/tokens", get(tokens::list).post(tokens::create))
        .route("/tokens/{id}/revoke", post(tokens::revoke))
        .route("/policy", get(policy::list).post(policy::add))
        .route("/audit", get(audit::list))
        .route("/peers", get(peers::list))
        .route("/policy/{id}/remove", post(policy::remove))
        .route("/static/console.css", get(stylesheet))
        .layer(axum::middleware::from_fn(security_headers))
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
/// inline script), no framing, no sniffing, referrers to this site only (a browser then names the page's
/// origin on its forms, which `layout::same_origin` checks), and no caching of pages that show
/// private data.
async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    let set = |headers: &mut axum::http::HeaderMap, name, value: &'static str| {
        headers.insert(name, HeaderValue::from_static(value));
    };
    set(
        headers,
        header::CONTENT_SECURITY_POLICY,
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         form-action 'self'; base-uri 'none'; object-src 'none'; frame-ancestors 'none'",
    );
    set(headers, header::X_FRAME_OPTIONS, "DENY");
    set(headers, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(headers, header::REFERRER_POLICY, "same-origin");
    if !headers.contains_key(header::CACHE_CONTROL) {
        set(headers, header::CACHE_CONTROL, "no-store");
    }
    response
}
