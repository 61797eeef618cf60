//! Sync as people see it: run a link now, see where every link stands, and its history.

use super::links::{self, Trigger};
use crate::caller::Caller;
use crate::error::NodeError;
use crate::error::NodeResult;
use crate::node::Node;
use crate::query::QueryPairs;
use crate::task::blocking;
use ferry_proto::{ErrorCode, LinkSyncStatus, SetSchedule, SyncNow, SyncRun, SyncSchedule};

/// Runs a link now and answers with the finished run, or (`wait: false`) with the run
/// submitted to run in the background.
pub async fn sync_now(node: &Node, caller: &Caller, body: SyncNow) -> NodeResult<SyncRun> {
    caller.require(ferry_proto::Role::Admin)?;
    let link = links::resolve(node, &body.link).await?;
    if !body.wait {
        return super::receiver::submit(node, link, Trigger::OnDemand).await;
    }
    super::receiver::run_link(node, &link, Trigger::OnDemand).await
}

/// How far back `sync status` looks for the last run that moved data.
const RECENT_RUNS: usize = 200;

/// Every link of this instance: which way data flows now, its last run, and the last run that
/// moved data.
pub async fn sync_status(node: &Node, caller: &Caller) -> NodeResult<Vec<LinkSyncStatus>> {
    caller.require(ferry_proto::Role::Viewer)?;
    let mut answer = Vec::new();
    for (link, _) in links::all_links(node).await? {
        let key = link.key();
        let (name, receives) = match links::inbound(node, &link).await {
            Ok((name, channels)) => (name, !channels.is_empty()),
            Err(e) => (e.0.message.clone(), false),
        };
        let sends = !links::receivers(node, &link).await?.is_empty();
        let store = node.store.clone();
        let k = key.clone();
        let recent = blocking(move || store.list_runs(Some(&k), None, RECENT_RUNS)).await?;
        let moved = |r: &&SyncRun| {
            r.items_received + r.rows_received + r.items_retracted + r.items_sent + r.rows_sent > 0
        };
        let last_data_run = recent.iter().find(moved).cloned();
        let last_run = recent.into_iter().next();
        answer.push(LinkSyncStatus {
            last_data_run: last_data_run.filter(|d| last_run.as_ref() != Some(d)),
            last_run,
            running: node.sync.of(&key).running.try_lock().is_err(),
            link: key,
            name,
            receives,
            sends,
        });
    }
    Ok(answer)
}

/// The latest runs of a link (`?link=`), or of all links; newest first.
pub async fn sync_history(
    node: &Node,
    caller: &Caller,
    raw: Option<String>,
) -> NodeResult<Vec<SyncRun>> {
    caller.require(ferry_proto::Role::Viewer)?;
    let query = QueryPairs::parse(raw.as_deref());
    let limit = query.number::<usize>("limit")?.unwrap_or(50).min(1_000);
    let link = match query.get("link") {
        Some(text) => Some(links::resolve(node, text).await?.key()),
        None => None,
    };
    let store = node.store.clone();
    blocking(move || store.list_runs(link.as_deref(), None, limit)).await
}

fn schedule_view(
    key: String,
    schedule: ferry_core::sync::Schedule,
    last_started: Option<i64>,
    owned: bool,
) -> SyncSchedule {
    let now = jiff::Timestamp::now().as_second();
    SyncSchedule {
        link: key,
        every_secs: schedule.every_secs,
        start_at: schedule.start_at.map(crate::ids::rfc3339),
        paused: schedule.paused,
        next_run: owned
            .then(|| schedule.next_run(last_started, now))
            .flatten()
            .map(crate::ids::rfc3339),
        owned,
    }
}

/// When each link syncs: its interval, start, whether paused, and the next run.
pub async fn list_schedules(node: &Node, caller: &Caller) -> NodeResult<Vec<SyncSchedule>> {
    caller.require(ferry_proto::Role::Viewer)?;
    let store = node.store.clone();
    let schedules: std::collections::HashMap<_, _> = blocking(move || store.schedules())
        .await?
        .into_iter()
        .collect();
    let mut answer = Vec::new();
    for (link, owned) in links::all_links(node).await? {
        let key = link.key();
        let (last, _) = super::scheduler::recent_runs(node, &key).await?;
        let schedule = schedules.get(&key).copied().unwrap_or_default();
        answer.push(schedule_view(key, schedule, last, owned));
    }
    Ok(answer)
}

/// Sets a link's schedule: interval (1h to 24h), first run, pause or resume. A collaboration's
/// schedules belong to its guests.
pub async fn set_schedule(
    node: &Node,
    caller: &Caller,
    body: SetSchedule,
) -> NodeResult<SyncSchedule> {
    caller.require(ferry_proto::Role::Admin)?;
    let link = links::resolve(node, &body.link).await?;
    let key = link.key();
    let owned = links::all_links(node)
        .await?
        .into_iter()
        .find(|(l, _)| *l == link)
        .map(|(_, owned)| owned)
        .ok_or_else(|| {
            NodeError::new(
                ErrorCode::LinkNotFound,
                format!("link {key} is not active here"),
            )
        })?;
    if !owned {
        return Err(NodeError::new(
            ErrorCode::CollabHostOnly,
            "a collaboration's guests set its sync schedules; the host follows them",
        ));
    }
    let store = node.store.clone();
    let k = key.clone();
    let mut schedule = blocking(move || store.schedules())
        .await?
        .into_iter()
        .find(|(l, _)| *l == k)
        .map(|(_, s)| s)
        .unwrap_or_default();
    if let Some(every) = &body.every {
        schedule.every_secs = ferry_core::sync::parse_interval(every)?;
    }
    if let Some(start) = &body.start {
        let at: jiff::Timestamp = start.parse().map_err(|_| {
            NodeError::new(
                ErrorCode::InvalidRequest,
                format!("'{start}' is not an RFC 3339 time, e.g. 2026-11-23T06:00:00Z"),
            )
        })?;
        schedule.start_at = Some(at.as_second());
    }
    if let Some(paused) = body.paused {
        schedule.paused = paused;
    }
    let store = node.store.clone();
    let (k, s) = (key.clone(), schedule);
    let entry = ferry_store::NewAuditEntry {
        actor: caller.name.clone(),
        event: "sync.schedule_set".into(),
        subject: Some(key.clone()),
        detail: serde_json::json!({"every_secs": schedule.every_secs, "start_at": schedule.start_at, "paused": schedule.paused}),
    };
    blocking(move || {
        store.set_schedule(&k, &s)?;
        store.audit(&entry)
    })
    .await?;
    Ok(schedule_view(key, schedule, None, true))
}
