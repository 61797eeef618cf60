//! Shared state of one running instance.

use crate::error::{ApiFailure, ApiResult};
use crate::metrics::Metrics;
use ferry_store::{ChunkStore, Store};
use std::sync::Arc;

#[derive(Clone)]
pub(crate) struct AppState {
    pub store: Arc<dyn Store>,
    pub chunks: ChunkStore,
    pub info: Arc<InstanceFacts>,
    pub identity: Arc<crate::instance::Identity>,
    pub federation: crate::federation::FederationClient,
    pub metrics: Arc<Metrics>,
    pub limits: Limits,
    /// Whether item-level changes poke receivers at once.
    pub realtime: bool,
    /// Whether pulls ask for compressed streams.
    pub compress_sync: bool,
    /// One sync run per link at a time.
    pub sync: Arc<crate::sync::SyncLocks>,
    /// Refused federation calls, counted so a flood of them cannot fill the audit log.
    pub refusals: Arc<crate::federation::RefusalLog>,
}

/// What the instance says about itself.
#[derive(Debug, Clone)]
pub(crate) struct InstanceFacts {
    pub instance_id: String,
    pub title: String,
    pub public_url: String,
    pub public_key: String,
    pub fingerprint: String,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub max_body_bytes: u64,
    pub max_import_bytes: u64,
}

/// Runs blocking store work off the async threads.
pub(crate) async fn blocking<T: Send + 'static, E: Into<ApiFailure> + Send + 'static>(
    f: impl FnOnce() -> Result<T, E> + Send + 'static,
) -> ApiResult<T> {
    match tokio::task::spawn_blocking(f).await {
        Ok(result) => result.map_err(Into::into),
        Err(e) => Err(ApiFailure::internal(format!("a blocking task failed: {e}"))),
    }
}
