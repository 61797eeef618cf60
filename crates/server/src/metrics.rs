//! Request metrics: every answered request is counted and timed in the node's registry.

use axum::extract::{MatchedPath, Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use ferry_node::Node;
use std::time::Instant;

/// Counts and times every request by route template (not raw path, to bound label cardinality).
pub(crate) async fn track(State(node): State<Node>, request: Request, next: Next) -> Response {
    let method = request.method().as_str().to_string();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let started = Instant::now();
    let mut response = next.run(request).await;
    let took = started.elapsed().as_secs_f64();
    node.metrics
        .request_done(&method, &route, response.status().as_u16(), took);
    // The server's own time for the answer, as browsers' developer tools and `ferry bench
    // console` read it (a streamed body's time after its head is not in it).
    if let Ok(value) = HeaderValue::from_str(&format!("app;dur={:.3}", took * 1000.0)) {
        response.headers_mut().insert("server-timing", value);
    }
    response
}
