//! Applying checked batches: one store transaction per batch with its cursor (or per part of a
//! whole copy), each while the next is read, and the clean-up of chunks they left unused.

use super::checker::{Checker, OWNER, batch};
use super::links::Inbound;
use crate::error::{NodeError, NodeResult};
use crate::node::Node;
use crate::task::blocking;
use ferry_proto::{RunTag, SyncRun};
use ferry_store::{BatchOutcome, ChunkRef, CopyPart, PendingCopy, SyncCursor, SyncOp};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};

/// What a run did so far: its record, the items it brought, and the items it refused (each
/// reported once, and not tried again in the same run).
pub(super) struct Tally {
    pub(super) run: SyncRun,
    pub(super) received: HashSet<String>,
    pub(super) refused: HashSet<String>,
}

impl Tally {
    /// Names this run in its requests, so the sender counts them as one send run.
    pub(super) fn tag(&self) -> RunTag {
        RunTag {
            id: self.run.id.clone(),
            trigger: self.run.trigger.clone(),
        }
    }

    pub(super) fn add(&mut self, outcome: &BatchOutcome) {
        self.run.rows_received += outcome.rows + outcome.edits;
        self.run.items_retracted += outcome.retracted;
        for (item, key, code, why) in &outcome.refused_edits {
            self.run.errors.push(ferry_proto::SyncItemError {
                origin_item: item.to_string(),
                title: String::new(),
                code: code.as_str().to_string(),
                message: format!("the edit of row {}: {why}", key.to_value()),
            });
        }
    }

    pub(super) fn absorb(&mut self, checker: Checker<'_>, bytes: i64) {
        self.run.bytes_received += bytes + checker.chunk_bytes;
        self.received.extend(checker.received);
        for error in checker.errors {
            if self.refused.insert(error.origin_item.clone()) {
                self.run.errors.push(error);
            }
        }
    }
}

/// Applies batches (or parts of a whole copy) one after the other, each while the next one is
/// read.
#[derive(Default)]
pub(super) struct Applier {
    pub(super) running: Option<tokio::task::JoinHandle<NodeResult<BatchOutcome>>>,
}

impl Applier {
    /// Waits for the batch in flight, then starts this one.
    pub(super) async fn start(
        &mut self,
        tally: &mut Tally,
        batch: impl Future<Output = NodeResult<BatchOutcome>> + Send + 'static,
    ) -> NodeResult<()> {
        self.wait(tally).await?;
        self.running = Some(tokio::spawn(batch));
        Ok(())
    }

    pub(super) async fn wait(&mut self, tally: &mut Tally) -> NodeResult<()> {
        let Some(running) = self.running.take() else {
            return Ok(());
        };
        let outcome = running
            .await
            .map_err(|e| NodeError::internal(format!("a sync batch task failed: {e}")))??;
        tally.add(&outcome);
        Ok(())
    }
}

/// Runs one store write of received data on a blocking thread, then removes the file chunks it
/// left unused.
pub(super) fn store_write(
    node: &Node,
    write: impl FnOnce(&dyn ferry_store::Store) -> ferry_store::StoreResult<BatchOutcome>
    + Send
    + 'static,
) -> impl Future<Output = NodeResult<BatchOutcome>> + Send + 'static {
    let node = node.clone();
    async move {
        let store = node.store.clone();
        let outcome = blocking(move || write(store.as_ref())).await?;
        crate::chunks::remove_chunks(&node, outcome.freed_chunks.clone()).await;
        node.metrics
            .two_way_edits
            .inc_by(outcome.edits.unsigned_abs());
        node.metrics
            .conflicts
            .inc_by(outcome.conflicts.unsigned_abs());
        Ok(outcome)
    }
}

/// `write` once the chunks its files fetched are on disk under their names (so the items it
/// commits never point at a chunk a power cut could take), then their release: until a batch
/// is applied, clean-up leaves them alone.
pub(super) fn releasing(
    node: &Node,
    fetched: Vec<ChunkRef>,
    write: impl Future<Output = NodeResult<BatchOutcome>> + Send + 'static,
) -> impl Future<Output = NodeResult<BatchOutcome>> + Send + 'static {
    let chunks = node.chunks.clone();
    async move {
        let on_disk = chunks.clone();
        let hashes: Vec<_> = fetched.iter().map(|c| c.hash).collect();
        let outcome = match blocking(move || on_disk.sync_dirs(&hashes)).await {
            Ok(()) => write.await,
            Err(e) => Err(e),
        };
        chunks.release(&fetched);
        outcome
    }
}

/// Applies one batch with its cursor.
pub(super) fn apply(
    node: &Node,
    channel: &Inbound,
    ops: Vec<SyncOp>,
    cursor: &SyncCursor,
) -> impl Future<Output = NodeResult<BatchOutcome>> + Send + 'static {
    let (channel, cursor) = (channel.clone(), cursor.clone());
    store_write(node, move |store| {
        store.apply_sync_batch(&batch(&channel, &ops, &cursor, OWNER))
    })
}

pub(super) async fn finish(
    node: &Node,
    channel: &Inbound,
    cursor: &SyncCursor,
) -> NodeResult<BatchOutcome> {
    let (channel, cursor) = (channel.clone(), cursor.clone());
    store_write(node, move |store| {
        store.finish_resync(&batch(&channel, &[], &cursor, OWNER))
    })
    .await
}

/// Operations per part of a whole-item copy.
pub(super) const COPY_PART_OPS: usize = 5_000;

/// Applies one part of a whole copy; parts run one after the other and share where the copy
/// stands.
pub(super) fn apply_copy_part(
    node: &Node,
    channel: &Inbound,
    copy: &PendingCopy,
    ops: Vec<SyncOp>,
    part: &Arc<Mutex<CopyPart>>,
    last: bool,
) -> impl Future<Output = NodeResult<BatchOutcome>> + Send + 'static {
    let cursor = SyncCursor {
        epoch: String::new(),
        scope: String::new(),
        seq: 0,
        resync: false,
    };
    let (channel, copy, part) = (channel.clone(), copy.clone(), part.clone());
    store_write(node, move |store| {
        // Parts run one at a time (the applier waits for each), so the lock is never contended.
        let mut part = part.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        part.last = last;
        store.apply_item_copy(
            &batch(&channel, &ops, &cursor, OWNER),
            &copy.origin_instance,
            &copy.origin_item,
            &mut part,
        )
    })
}
