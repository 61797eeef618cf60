//! Request metrics: every answered request is counted and timed in the node's registry.

use axum::extract::{MatchedPath, Request, State};
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
    let response = next.run(request).await;
    node.metrics.request_done(
        &method,
        &route,
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    response
}
