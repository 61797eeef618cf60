//! The node's own work while it serves: the sync scheduler, the audit of refused calls, and
//! the epoch marker; and the `/metrics` text.

use crate::instance::Instance;
use crate::node::Node;
use std::sync::Arc;
use std::time::Duration;

/// How often the epoch marker is refreshed while serving.
const EPOCH_MARKER_INTERVAL: Duration = Duration::from_secs(30);

impl Node {
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
                tokio::spawn(sweep_chunks(self.clone())),
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

/// How often the chunk sweep runs, the first time at start.
const CHUNK_SWEEP_INTERVAL: Duration = Duration::from_secs(6 * 3600);
/// How old an unused chunk must be before the sweep removes it: a younger one may belong to a
/// file transfer that resumes, which then fetches only the chunks it lacks.
const ORPHAN_CHUNK_AGE: Duration = Duration::from_secs(3600);

/// Removes chunks left by crashes between writing chunks and committing their item.
async fn sweep_chunks(node: Node) {
    let mut tick = tokio::time::interval(CHUNK_SWEEP_INTERVAL);
    loop {
        tick.tick().await;
        let (store, chunks) = (node.store.clone(), node.chunks.clone());
        let swept = crate::task::blocking(move || {
            ferry_store::sweep_orphans(store.as_ref(), &chunks, ORPHAN_CHUNK_AGE)
        })
        .await;
        match swept {
            Ok(0) => {}
            Ok(n) => tracing::info!(chunks = n, "removed chunks no item uses"),
            Err(e) => {
                tracing::warn!(error = %e.0.message, "the chunk sweep failed; it runs again later")
            }
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
