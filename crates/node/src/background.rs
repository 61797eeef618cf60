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
