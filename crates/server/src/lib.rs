//! The Ferry server as a library: [`Instance::open`] prepares a data directory and [`serve`] runs
//! the HTTP API on a listener until a shutdown signal. Tests start several instances in one process
//! this way, each on `127.0.0.1:0`.

mod api;
mod auth;
pub mod config;
mod error;
mod federation;
pub mod instance;
mod listen;
mod metrics;
mod state;
mod sync;
pub mod tls;

pub use auth::{hash_token, new_token_secret};
pub use config::{Config, ServeOptions};
pub use error::status_of;
pub use instance::{Instance, StartError};
pub use listen::ConnectionLimits;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::response::IntoResponse;
use axum::routing::get;
use ferry_proto::Health;
use state::{AppState, InstanceFacts, Limits};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tower_http::trace::TraceLayer;

/// How often the epoch marker is refreshed while serving.
const EPOCH_MARKER_INTERVAL: Duration = Duration::from_secs(30);

/// The OpenAPI document of `/api/v1`, as served at `/api/v1/openapi.json`.
pub fn openapi_json() -> String {
    let (_, openapi) = api::routes().split_for_parts();
    openapi.to_pretty_json().unwrap_or_default()
}

/// Builds the full router for an instance whose public URL is `public_url`.
pub fn router(instance: &Instance, public_url: String) -> Router {
    routes(app_state(instance, public_url))
}

fn app_state(instance: &Instance, public_url: String) -> AppState {
    let instance_id = instance.store.instance().map(|i| i.id).unwrap_or_default();
    AppState {
        federation: federation::FederationClient::new(
            instance.identity.clone(),
            (instance_id.clone(), instance.config.title.clone()),
            instance.store.clone(),
            federation::Transport {
                tls: instance.client_tls.clone(),
                allow_plain_http: instance.config.allow_plain_http,
            },
        ),
        store: instance.store.clone(),
        chunks: instance.chunks.clone(),
        info: Arc::new(InstanceFacts {
            instance_id,
            title: instance.config.title.clone(),
            public_url,
            public_key: instance.identity.public_key_base64(),
            fingerprint: instance.identity.fingerprint(),
        }),
        identity: instance.identity.clone(),
        metrics: Arc::new(metrics::Metrics::new()),
        sync: Default::default(),
        refusals: Default::default(),
        realtime: instance.config.realtime,
        compress_sync: instance.config.compress_sync,
        limits: Limits {
            max_body_bytes: instance.config.max_body_bytes,
            max_import_bytes: instance.config.max_import_bytes,
        },
    }
}

fn routes(state: AppState) -> Router {
    let (api, openapi) = api::routes().split_for_parts();
    let openapi = Arc::new(openapi);
    let body_limit = usize::try_from(state.limits.max_body_bytes).unwrap_or(usize::MAX);
    Router::new()
        .merge(api)
        .merge(federation::routes(state.clone()))
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
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(axum::middleware::from_fn_with_state(
            state.metrics.clone(),
            metrics::track,
        ))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// `/metrics`, for any token: its figures name links and their traffic. (Prometheus sends one
/// with `authorization: {credentials: ...}` in its scrape config.)
async fn render_metrics(
    State(state): State<AppState>,
    _caller: auth::AnyRole,
) -> impl IntoResponse {
    // Links that ended have no lag: their figures go. If the links cannot be read, all stay.
    let live: Option<Vec<String>> = sync::all_links(&state)
        .await
        .ok()
        .map(|links| links.iter().map(|(link, _)| link.key()).collect());
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(live.as_deref()),
    )
}

/// Serves `instance` on `listener` until `shutdown` completes, then finishes in-flight requests.
pub async fn serve(
    instance: Instance,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let bound = listener.local_addr()?;
    let public_url = instance.public_url(bound);
    let state = app_state(&instance, public_url);
    let scheduler = tokio::spawn(sync::scheduler::run(
        state.clone(),
        instance.config.sync_tick,
    ));
    let refusals = tokio::spawn(flush_refusals(state.clone()));
    let app = routes(state.clone());
    let marker = tokio::spawn(refresh_epoch_marker(
        instance.config.data_dir.clone(),
        instance.store.clone(),
    ));
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
    marker.abort();
    scheduler.abort();
    refusals.abort();
    federation::flush_refusals(&state, true).await;
    if let Err(e) = instance::record_epoch(&instance.config.data_dir, instance.store.as_ref()) {
        tracing::warn!(error = %e, "could not record the epoch marker at shutdown");
    }
    let store = instance.store.clone();
    if let Err(e) = tokio::task::spawn_blocking(move || store.close())
        .await
        .unwrap_or(Ok(()))
    {
        tracing::warn!(error = %e, "could not flush the database at shutdown");
    }
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

/// Writes the counts of refused federation calls once their minute is over.
async fn flush_refusals(state: AppState) {
    let mut tick = tokio::time::interval(Duration::from_secs(20));
    loop {
        tick.tick().await;
        federation::flush_refusals(&state, false).await;
    }
}

async fn refresh_epoch_marker(dir: std::path::PathBuf, store: Arc<dyn ferry_store::Store>) {
    let mut tick = tokio::time::interval(EPOCH_MARKER_INTERVAL);
    loop {
        tick.tick().await;
        let (dir, store) = (dir.clone(), store.clone());
        let _ =
            tokio::task::spawn_blocking(move || instance::record_epoch(&dir, store.as_ref())).await;
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
