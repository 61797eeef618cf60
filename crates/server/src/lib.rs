//! The Ferry server as a library: the HTTP doors over a [`ferry_node::Node`]. [`Instance::open`]
//! prepares a data directory and [`serve`] runs the REST API and the federation endpoints on a
//! listener until a shutdown signal. Tests start several instances in one process this way, each
//! on `127.0.0.1:0`.

mod api;
mod auth;
mod console;
mod error;
mod extract;
mod federation;
mod listen;
mod metrics;
mod transfers;

pub use error::status_of;
pub use ferry_node::caller::{hash_token, new_token_secret};
pub use ferry_node::{Config, Instance, ServeOptions, StartError, config, instance, tls};
pub use listen::ConnectionLimits;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::response::IntoResponse;
use axum::routing::get;
use ferry_node::Node;
use ferry_proto::Health;
use std::future::Future;
use std::sync::Arc;
use tokio::net::TcpListener;
use tower_http::trace::TraceLayer;

/// The OpenAPI document of `/api/v1`, as served at `/api/v1/openapi.json`.
pub fn openapi_json() -> String {
    let (_, openapi) = api::routes().split_for_parts();
    openapi.to_pretty_json().unwrap_or_default()
}

/// Builds the full router for an instance whose public URL is `public_url`.
pub fn router(instance: &Instance, public_url: String) -> Router {
    routes(Node::new(instance, public_url))
}

fn routes(node: Node) -> Router {
    let (api, openapi) = api::routes().split_for_parts();
    let openapi = Arc::new(openapi);
    let body_limit = usize::try_from(node.limits.max_body_bytes).unwrap_or(usize::MAX);
    Router::new()
        .merge(api)
        .merge(federation::routes(node.clone()))
        .merge(console::routes(&node))
        .route(
            "/api/v1/openapi.json",
            get(move || {
                let doc = openapi.clone();
                async move { axum::Json(doc.as_ref().clone()) }
            }),
        )
        .route(
            "/healthz",
            get(|| async {
                axum::Json(Health {
                    status: "ok".into(),
                })
            }),
        )
        .route("/metrics", get(render_metrics))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(axum::middleware::from_fn_with_state(
            node.clone(),
            metrics::track,
        ))
        .layer(TraceLayer::new_for_http())
        .with_state(node)
}

/// A path no route answers: a JSON error with a stable code for API and federation clients, a
/// console page for people.
async fn not_found(
    State(node): State<Node>,
    request: axum::extract::Request,
) -> axum::response::Response {
    let path = request.uri().path();
    if path.starts_with("/api/") || path.starts_with("/federation/") {
        let error = ferry_node::NodeError::new(
            ferry_proto::ErrorCode::NotFound,
            format!("no endpoint at {path}; /api/v1/openapi.json lists them"),
        );
        return error::ApiFailure(error).into_response();
    }
    console::not_found(&node, request.headers()).await
}

/// `/metrics`, for any token: its figures name links and their traffic. (Prometheus sends one
/// with `authorization: {credentials: ...}` in its scrape config.)
async fn render_metrics(State(node): State<Node>, _caller: auth::AnyRole) -> impl IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        node.render_metrics().await,
    )
}

/// Serves `instance` on `listener` until `shutdown` completes, then finishes in-flight requests.
pub async fn serve(
    instance: Instance,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(instance, listener, shutdown, |_| async {}).await
}

/// [`serve`], with `started` run once the node is up (the CLI prints a console sign-in link
/// there at first start).
pub async fn serve_with<F: Future<Output = ()> + Send + 'static>(
    instance: Instance,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
    started: impl FnOnce(Node) -> F,
) -> std::io::Result<()> {
    let bound = listener.local_addr()?;
    let node = Node::new(&instance, instance.public_url(bound));
    let background = node.start(&instance);
    tokio::spawn(started(node.clone()));
    let app = routes(node);
    let tls = match &instance.config.tls {
        Some((cert, key)) => Some(Arc::new(
            tls::ServerTls::load(cert, key).map_err(std::io::Error::other)?,
        )),
        None => None,
    };
    let reloads = tls.clone().map(|tls| tokio::spawn(reload_on_hangup(tls)));
    let served = listen::serve(listener, app, instance.config.connections, tls, shutdown).await;
    if let Some(reloads) = reloads {
        reloads.abort();
    }
    background.stop().await;
    served
}

/// Reads the certificate and key again on every SIGHUP: a renewed certificate is served from
/// the next connection on, with no restart. A file that does not read leaves the old one.
async fn reload_on_hangup(tls: Arc<tls::ServerTls>) {
    let Ok(mut hangups) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
    else {
        tracing::warn!("cannot listen for SIGHUP; the TLS certificate is read at start only");
        return;
    };
    while hangups.recv().await.is_some() {
        match tls.reload() {
            Ok(()) => tracing::info!("TLS certificate reloaded"),
            Err(e) => tracing::warn!(error = %e, "TLS certificate not reloaded; the old one stays"),
        }
    }
}

#[cfg(test)]
mod tests {
    /// The committed `docs/openapi.json` matches the code, so API changes show up in review.
    /// Refresh it with `UPDATE_OPENAPI=1 cargo nextest run -p ferry-server`.
    #[test]
    fn committed_openapi_document_is_current() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json");
        let generated = super::openapi_json();
        if std::env::var_os("UPDATE_OPENAPI").is_some() {
            std::fs::write(&path, &generated).unwrap();
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == generated,
            "docs/openapi.json is out of date; run UPDATE_OPENAPI=1 cargo nextest run -p ferry-server"
        );
    }
}
