//! Blocking work (the store, files) off the async threads.

use crate::error::{NodeError, NodeResult};

/// Runs blocking store work off the async threads.
pub async fn blocking<T: Send + 'static, E: Into<NodeError> + Send + 'static>(
    f: impl FnOnce() -> Result<T, E> + Send + 'static,
) -> NodeResult<T> {
    match tokio::task::spawn_blocking(f).await {
        Ok(result) => result.map_err(Into::into),
        Err(e) => Err(NodeError::internal(format!("a blocking task failed: {e}"))),
    }
}
