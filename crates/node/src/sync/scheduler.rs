//! Scheduled runs: every tick, each link whose schedule is due runs (in its own task; a link
//! still running records the new run as skipped). A collaboration's schedules belong to its
//! guests: a guest's run pulls from the host and asks the host to pull from it.

use super::links::Trigger;
use super::receiver;
use crate::node::Node;
use crate::task::blocking;
use ferry_core::sync::Schedule;
use std::collections::HashMap;
use std::time::Duration;

pub(crate) async fn run(node: Node, tick: Duration) {
    let mut interval = tokio::time::interval(tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        if let Err(e) = start_due(&node).await {
            tracing::warn!(error = %e.0.message, "the scheduler could not look for due links");
        }
    }
}

async fn start_due(node: &Node) -> crate::error::NodeResult<()> {
    let links = super::links::all_links(node).await?;
    let store = node.store.clone();
    let schedules: HashMap<String, Schedule> = blocking(move || store.schedules())
        .await?
        .into_iter()
        .collect();
    let now = jiff::Timestamp::now().as_second();
    for (link, owned) in links {
        if !owned {
            continue;
        }
        let key = link.key();
        let schedule = schedules.get(&key).copied().unwrap_or_default();
        let (last_started, failures) = recent_runs(node, &key).await?;
        let due = schedule.is_due(last_started, now)
            // A link whose last runs failed (a peer down) is tried again with backoff.
            || (failures > 0
                && last_started
                    .and_then(|last| schedule.retry_at(last, failures))
                    .is_some_and(|t| t <= now));
        if due {
            let node = node.clone();
            tokio::spawn(async move {
                if let Err(e) = receiver::run_link(&node, &link, Trigger::Scheduled).await {
                    tracing::warn!(link = %link.key(), error = %e.0.message, "a scheduled sync failed");
                }
            });
        }
    }
    Ok(())
}

/// When this side's last pull on a link (a receive run that was not skipped) started, and how
/// many of its latest pulls failed in a row. Send runs do not count: how often the other side
/// pulls must not move this side's schedule.
pub(crate) async fn recent_runs(
    node: &Node,
    link: &str,
) -> crate::error::NodeResult<(Option<i64>, u32)> {
    let store = node.store.clone();
    let link = link.to_string();
    let runs = blocking(move || store.list_runs(Some(&link), Some("receive"), 50)).await?;
    let mut tried = runs.iter().filter(|r| r.status != "skipped");
    let last_started = tried
        .clone()
        .next()
        .and_then(|r| r.started_at.parse::<jiff::Timestamp>().ok())
        .map(|t| t.as_second());
    // Runs come newest first: the failures at the head are the ones in a row.
    let failures = tried.by_ref().take_while(|r| r.status == "failed").count() as u32;
    Ok((last_started, failures))
}
