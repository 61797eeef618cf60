//! Refused federation calls in the audit log, as [`super::refusals::RefusalLog`] allows: the
//! first of its source and code in a minute, and summaries of the minutes before.

use super::refusals;
use crate::node::Node;

/// Writes a refused call to the audit log, as [`RefusalLog`] allows: the first of its source and
/// code in a minute, and summaries of the minutes before.
pub(crate) async fn record_refusal(node: &Node, refusal: refusals::Refusal) {
    let minute = jiff::Timestamp::now().as_second().div_euclid(60);
    write_audit(node, node.refusals.note(refusal, minute)).await;
}

/// Writes the summaries of refusals repeated in minutes that are over (`None`: all, at
/// shutdown).
pub async fn flush_refusals(node: &Node, all: bool) {
    let minute = (!all).then(|| jiff::Timestamp::now().as_second().div_euclid(60));
    write_audit(node, node.refusals.flush(minute)).await;
}

async fn write_audit(node: &Node, entries: Vec<ferry_store::NewAuditEntry>) {
    if entries.is_empty() {
        return;
    }
    let store = node.store.clone();
    let written =
        crate::task::blocking(move || entries.iter().try_for_each(|entry| store.audit(entry)))
            .await;
    if let Err(e) = written {
        tracing::warn!(error = ?e, "could not record refused federation calls");
    }
}
