//! Telling receivers that something changed here, so that they pull now.

use super::links::{Link, links_of_space, receivers};
use crate::node::Node;
use ferry_core::policy::Flows;

/// Something changed in a space: every instance that receives from it is asked to pull now.
/// In the background; a receiver that cannot be reached catches up at its next run.
pub fn changed(node: &Node, space_id: String) {
    if !node.realtime {
        return;
    }
    let node = node.clone();
    tokio::spawn(async move {
        let Ok(links) = links_of_space(&node, &space_id).await else {
            return;
        };
        for link in links {
            poke_receivers(&node, &link).await;
        }
    });
}

/// Asks each receiver of a link to pull now.
pub(crate) async fn poke_receivers(node: &Node, link: &Link) {
    if !node.realtime {
        return;
    }
    let Ok(receivers) = receivers(node, link).await else {
        return;
    };
    for (receiver, wire) in receivers {
        let poked: Result<serde_json::Value, _> = node
            .federation
            .call(
                crate::federation::Callee::of(&receiver, Flows::SENDS),
                reqwest::Method::POST,
                crate::federation::SYNC_POKE_PATH,
                &ferry_proto::Poke { link: wire },
            )
            .await;
        if let Err(e) = poked {
            tracing::info!(receiver = %receiver.instance_id, error = ?e, "a receiver could not be poked; it catches up at its next run");
        }
    }
}
