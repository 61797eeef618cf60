//! The node: one running instance's state, and the handle every door (REST API, federation,
//! web console, CLI tests) calls operations on.

use crate::error::{NodeError, NodeResult};
use crate::instance::Instance;
use crate::metrics::Metrics;
use ferry_store::{ChunkStore, Store};
use std::sync::Arc;
use std::time::Duration;

/// One running instance. Cheap to clone: every part is shared.
#[derive(Clone)]
pub struct Node {
    pub store: Arc<dyn Store>,
    pub chunks: ChunkStore,
    pub info: Arc<InstanceFacts>,
    pub identity: Arc<crate::instance::Identity>,
    pub(crate) federation: crate::federation::FederationClient,
    pub metrics: Arc<Metrics>,
    pub limits: Limits,
    /// Whether item-level changes poke receivers at once.
    pub realtime: bool,
    /// Whether pulls ask for compressed streams.
    pub compress_sync: bool,
    /// One sync run per link at a time.
    pub(crate) sync: Arc<crate::sync::SyncLocks>,
    /// Refused federation calls, counted so a flood of them cannot fill the audit log.
    pub(crate) refusals: Arc<crate::federation::RefusalLog>,
}

/// What the instance says about itself.
#[derive(Debug, Clone)]
pub struct InstanceFacts {
    pub instance_id: String,
    pub title: String,
    pub public_url: String,
    pub public_key: String,
    pub fingerprint: String,
}

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_body_bytes: u64,
    pub max_import_bytes: u64,
}

/// Runs blocking store work off the async threads.
pub async fn blocking<T: Send + 'static, E: Into<NodeError> + Send + 'static>(
    f: impl FnOnce() -> Result<T, E> + Send + 'static,
) -> NodeResult<T> {
    match tokio::task::spawn_blocking(f).await {
        Ok(result) => result.map_err(Into::into),
        Err(e) => Err(NodeError::internal(format!("a blocking task failed: {e}"))),
    }
}

/// How often the epoch marker is refreshed while serving.
const EPOCH_MARKER_INTERVAL: Duration = Duration::from_secs(30);

impl Node {
    /// The node of an opened instance reached at `public_url`.
    pub fn new(instance: &Instance, public_url: String) -> Node {
        let instance_id = instance.store.instance().map(|i| i.id).unwrap_or_default();
        Node {
            federation: crate::federation::FederationClient::new(
                instance.identity.clone(),
                (instance_id.clone(), instance.config.title.clone()),
                instance.store.clone(),
                crate::federation::Transport {
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
            metrics: Arc::new(Metrics::new()),
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

    /// Starts the node's own work: the sync scheduler, the audit of refused calls, and the
    /// epoch marker. It runs until [`Background::stop`].
    pub fn start(&self, instance: &Instance) -> Background {
        Background {
            node: self.clone(),
            data_dir: instance.config.data_dir.clone(),
            tasks: vec![
                tokio::spawn(crate::sync::scheduler::run(
                    self.clone(),
                    instance.config.sync_tick,
                )),
                tokio::spawn(flush_refusals(self.clone())),
                tokio::spawn(refresh_epoch_marker(
                    instance.config.data_dir.clone(),
                    self.store.clone(),
                )),
            ],
        }
    }

    /// The `/metrics` text: links that ended have no lag, so their figures go (if the links
    /// cannot be read, all stay).
    pub async fn render_metrics(&self) -> String {
        let live: Option<Vec<String>> = crate::sync::all_links(self)
            .await
            .ok()
            .map(|links| links.iter().map(|(link, _)| link.key()).collect());
        self.metrics.render(live.as_deref())
    }
}

/// The node's background work, stopped at shutdown.
pub struct Background {
    node: Node,
    data_dir: std::path::PathBuf,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Background {
    /// Stops the work, writes what is pending, and flushes the database.
    pub async fn stop(self) {
        for task in &self.tasks {
            task.abort();
        }
        crate::federation::flush_refusals(&self.node, true).await;
        if let Err(e) = crate::instance::record_epoch(&self.data_dir, self.node.store.as_ref()) {
            tracing::warn!(error = %e, "could not record the epoch marker at shutdown");
        }
        let store = self.node.store.clone();
        if let Err(e) = tokio::task::spawn_blocking(move || store.close())
            .await
            .unwrap_or(Ok(()))
        {
            tracing::warn!(error = %e, "could not flush the database at shutdown");
        }
    }
}

/// Writes the counts of refused federation calls once their minute is over.
async fn flush_refusals(node: Node) {
    let mut tick = tokio::time::interval(Duration::from_secs(20));
    loop {
        tick.tick().await;
        crate::federation::flush_refusals(&node, false).await;
    }
}

async fn refresh_epoch_marker(dir: std::path::PathBuf, store: Arc<dyn ferry_store::Store>) {
    let mut tick = tokio::time::interval(EPOCH_MARKER_INTERVAL);
    loop {
        tick.tick().await;
        let (dir, store) = (dir.clone(), store.clone());
        let _ = tokio::task::spawn_blocking(move || {
            crate::instance::record_epoch(&dir, store.as_ref())
        })
        .await;
    }
}
