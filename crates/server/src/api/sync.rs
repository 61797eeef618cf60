//! `/api/v1/sync`: run a link now, see where every link stands, and its history.

use super::{JsonBody, QueryPairs};
use crate::auth::{AdminRole, AnyRole};
use crate::error::ApiResult;
use crate::state::{AppState, blocking};
use crate::sync::{self, Link, receiver::Trigger};
use axum::Json;
use axum::extract::{RawQuery, State};
use ferry_core::collab::CollabRole;
use ferry_proto::{ApiError, LinkSyncStatus, SyncNow, SyncRun};
use ferry_store::StoreError;

/// Runs a link now and answers with the finished run.
#[utoipa::path(post, path = "/api/v1/sync/now", tag = "sync", request_body = SyncNow,
    responses((status = 200, body = SyncRun), (status = 404, body = ApiError), (status = 409, body = ApiError)))]
pub(crate) async fn sync_now(
    State(state): State<AppState>,
    _caller: AdminRole,
    JsonBody(body): JsonBody<SyncNow>,
) -> ApiResult<Json<SyncRun>> {
    let link = sync::resolve(&state, &body.link).await?;
    Ok(Json(
        sync::receiver::run_link(&state, &link, Trigger::OnDemand).await?,
    ))
}

/// Every link of this instance: which way data flows now, and its last run.
#[utoipa::path(get, path = "/api/v1/sync/status", tag = "sync",
    responses((status = 200, body = Vec<LinkSyncStatus>)))]
pub(crate) async fn sync_status(
    State(state): State<AppState>,
    _caller: AnyRole,
) -> ApiResult<Json<Vec<LinkSyncStatus>>> {
    let store = state.store.clone();
    let (peers, collabs, runs) = blocking(move || {
        Ok::<_, StoreError>((
            store.list_peers()?,
            store.list_collabs()?,
            store.list_runs(None, 1_000)?,
        ))
    })
    .await?;
    let mut links: Vec<Link> = peers
        .iter()
        .filter(|p| p.status.phase.is_established())
        .map(|p| Link::Peer { id: p.id.clone() })
        .collect();
    for c in collabs.iter().filter(|c| !c.state.is_over()) {
        for w in &c.workspaces {
            links.push(Link::Collab {
                collab_id: c.id.clone(),
                workspace_id: w.id.clone(),
            });
        }
    }
    let mut answer = Vec::new();
    for link in links {
        let key = link.key();
        let (name, receives) = match sync::inbound(&state, &link).await {
            Ok((name, channels)) => (name, !channels.is_empty()),
            Err(e) => (e.0.message.clone(), false),
        };
        let sends = match &link {
            Link::Peer { id } => peers
                .iter()
                .find(|p| &p.id == id)
                .is_some_and(|p| p.status.carries_data() && !p.sends.is_empty()),
            Link::Collab {
                collab_id,
                workspace_id,
            } => collabs
                .iter()
                .find(|c| &c.id == collab_id)
                .is_some_and(|c| {
                    c.part_in(workspace_id, &c.self_participant)
                        .is_some_and(|p| ferry_core::collab::directions(p).sends)
                        && (c.role == CollabRole::Guest || c.participants.len() > 1)
                }),
        };
        answer.push(LinkSyncStatus {
            last_run: runs.iter().find(|r| r.link == key).cloned(),
            running: state.sync.of(&key).try_lock().is_err(),
            link: key,
            name,
            receives,
            sends,
        });
    }
    Ok(Json(answer))
}

/// The latest runs of a link (`?link=`), or of all links; newest first.
#[utoipa::path(get, path = "/api/v1/sync/history", tag = "sync",
    params(("link" = Option<String>, Query, description = "A link: peer connection id, COLLABORATION/WORKSPACE, or a link key"),
           ("limit" = Option<usize>, Query, description = "At most this many runs (default 50)")),
    responses((status = 200, body = Vec<SyncRun>), (status = 404, body = ApiError)))]
pub(crate) async fn sync_history(
    State(state): State<AppState>,
    _caller: AnyRole,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<Vec<SyncRun>>> {
    let query = QueryPairs::parse(raw.as_deref());
    let limit = query.number::<usize>("limit")?.unwrap_or(50).min(1_000);
    let link = match query.get("link") {
        Some(text) => Some(sync::resolve(&state, text).await?.key()),
        None => None,
    };
    let store = state.store.clone();
    Ok(Json(
        blocking(move || store.list_runs(link.as_deref(), limit)).await?,
    ))
}
