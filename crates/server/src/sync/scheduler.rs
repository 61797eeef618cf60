//! Scheduled runs: every tick, each link whose schedule is due runs (in its own task; a link
//! still running records the new run as skipped). A collaboration's schedules belong to its
//! guests: a guest's run pulls from the host and asks the host to pull from it.

use super::receiver::{self, Trigger};
use crate::state::{AppState, blocking};
use ferry_core::sync::Schedule;
use std::collections::HashMap;
use std::time::Duration;

pub(crate) async fn run(state: AppState, tick: Duration) {
    let mut interval = tokio::time::interval(tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        if let Err(e) = start_due(&state).await {
            tracing::warn!(error = %e.0.message, "the scheduler could not look for due links");
        }
    }
}

async fn start_due(state: &AppState) -> crate::error::ApiResult<()> {
    let links = super::all_links(state).await?;
    let store = state.store.clone();
    let (schedules, runs) = blocking(move || {
        Ok::<_, ferry_store::StoreError>((store.schedules()?, store.list_runs(None, 10_000)?))
    })
    .await?;
    let schedules: HashMap<String, Schedule> = schedules.into_iter().collect();
    let now = jiff::Timestamp::now().as_second();
    for (link, owned) in links {
        if !owned {
            continue;
        }
        let key = link.key();
        let schedule = schedules.get(&key).copied().unwrap_or_default();
        let mut tried = runs
            .iter()
            .filter(|r| r.link == key && r.status != "skipped");
        let last_started = tried.clone().filter_map(|r| started(&r.started_at)).max();
        // Runs are newest first: count the failures at the head.
        let failures = tried.by_ref().take_while(|r| r.status == "failed").count() as u32;
        let due = match (failures, last_started) {
            (0, _) | (_, None) => schedule.is_due(last_started, now),
            // A link whose last runs failed (a peer down) is tried again with backoff.
            (n, Some(last)) => {
                schedule.is_due(last_started, now)
                    || schedule.retry_at(last, n).is_some_and(|t| t <= now)
            }
        };
        if due {
            let state = state.clone();
            tokio::spawn(async move {
                if let Err(e) = receiver::run_link(&state, &link, Trigger::Scheduled).await {
                    tracing::warn!(link = %link.key(), error = %e.0.message, "a scheduled sync failed");
                }
            });
        }
    }
    Ok(())
}

fn started(at: &str) -> Option<i64> {
    at.parse::<jiff::Timestamp>().ok().map(|t| t.as_second())
}
