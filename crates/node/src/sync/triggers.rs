//! Runs that start because something happened: a link started or widened here, or the other
//! side poked.

use super::links::{Link, Trigger, inactive, inbound, local_link, same_instance};
use super::receiver;
use crate::error::NodeResult;
use crate::node::Node;

/// A link started or widened: with realtime on, a run starts now, both ways (this side pulls,
/// the other side is asked to), so what is already there goes without waiting for a schedule.
pub(crate) async fn link_changed(node: &Node, link: Link) {
    if !node.realtime {
        return;
    }
    let key = link.key();
    if let Err(e) = receiver::submit(node, link, Trigger::LinkChanged).await {
        tracing::warn!(link = %key, error = %e.0.message, "a run for a changed link could not start");
    }
}

/// A poke (`POST /federation/v1/sync/poke`): the caller has changes for this instance; pull now, in the
/// background.
pub async fn poked(
    node: &Node,
    signed: crate::federation::SignedByPeer,
) -> NodeResult<serde_json::Value> {
    let poke: ferry_proto::Poke = crate::federation::json_body(&signed.body)?;
    let link = local_link(node, &signed.sender, &poke.link).await?;
    let (_, channels) = inbound(node, &link).await?;
    if !channels
        .iter()
        .any(|c| same_instance(&c.sender, &signed.sender))
    {
        return Err(inactive(
            "this instance takes nothing from the caller on that link",
        ));
    }
    let background = node.clone();
    tokio::spawn(async move {
        if let Err(e) = receiver::run_link(&background, &link, Trigger::Realtime).await {
            tracing::warn!(error = %e.0.message, "a realtime sync failed");
        }
    });
    Ok(serde_json::json!({"pulling": true}))
}
