//! File chunks on disk: a chunk goes once no item uses it.

use crate::node::Node;
use crate::task::blocking;
use ferry_store::{ChunkStore, Store, StoreError};

/// Deletes those of `hashes` that no item references and no upload in progress holds.
pub fn remove_unused_chunks(
    store: &dyn Store,
    chunks: &ChunkStore,
    hashes: &[ferry_proto::ChunkHash],
) {
    for h in hashes {
        if let Err(e) = chunks.remove_unused(h, |h| store.chunk_in_use(h)) {
            tracing::warn!(error = %e, chunk = %h, "could not remove an unused chunk; it stays on disk");
        }
    }
}

/// [`remove_unused_chunks`] for chunks an item deletion freed.
pub(crate) async fn remove_chunks(node: &Node, hashes: Vec<ferry_proto::ChunkHash>) {
    if hashes.is_empty() {
        return;
    }
    let (store, chunks) = (node.store.clone(), node.chunks.clone());
    let _ = blocking(move || {
        remove_unused_chunks(store.as_ref(), &chunks, &hashes);
        Ok::<_, StoreError>(())
    })
    .await;
}
