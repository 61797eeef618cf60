//! HTTP adapter: extract, call the node, shape the answer.

use crate::auth::{AdminRole, AnyRole};
use crate::error::ApiResult;
use crate::extract::JsonBody;
use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use ferry_node::Node;
use ferry_proto::{ApiError, LinkSyncStatus, SetSchedule, SyncNow, SyncRun, SyncSchedule};

/// Every link of this instance: which way data flows now, its last run, and the last run that
/// moved data.
#[utoipa::path(get, path = "/api/v1/sync/status", tag = "sync",
    responses((status = 200, body = Vec<LinkSyncStatus>)))]
pub(crate) async fn sync_status(
    State(node): State<Node>,
    caller: AnyRole,
) -> ApiResult<Json<Vec<LinkSyncStatus>>> {
    Ok(Json(
        ferry_node::sync::status::sync_status(&node, &caller).await?,
    ))
}

/// The latest runs of a link (`?link=`), or of all links; newest first.
#[utoipa::path(get, path = "/api/v1/sync/history", tag = "sync",
    params(("link" = Option<String>, Query, description = "A link: peer connection id, COLLABORATION/WORKSPACE, or a link key"),
           ("limit" = Option<usize>, Query, description = "At most this many runs (default 50)")),
    responses((status = 200, body = Vec<SyncRun>), (status = 404, body = ApiError)))]
pub(crate) async fn sync_history(
    State(node): State<Node>,
    caller: AnyRole,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<Vec<SyncRun>>> {
    Ok(Json(
        ferry_node::sync::status::sync_history(&node, &caller, raw).await?,
    ))
}

/// When each link syncs: its interval, start, whether paused, and the next run.
#[utoipa::path(get, path = "/api/v1/sync/schedules", tag = "sync",
    responses((status = 200, body = Vec<SyncSchedule>)))]
pub(crate) async fn list_schedules(
    State(node): State<Node>,
    caller: AnyRole,
) -> ApiResult<Json<Vec<SyncSchedule>>> {
    Ok(Json(
        ferry_node::sync::status::list_schedules(&node, &caller).await?,
    ))
}

/// Sets a link's schedule: interval (1h to 24h), first run, pause or resume. A collaboration's
/// schedules belong to its guests.
#[utoipa::path(put, path = "/api/v1/sync/schedules", tag = "sync", request_body = SetSchedule,
    responses((status = 200, body = SyncSchedule), (status = 400, body = ApiError), (status = 409, body = ApiError)))]
pub(crate) async fn set_schedule(
    State(node): State<Node>,
    caller: AdminRole,
    JsonBody(body): JsonBody<SetSchedule>,
) -> ApiResult<Json<SyncSchedule>> {
    Ok(Json(
        ferry_node::sync::status::set_schedule(&node, &caller, body).await?,
    ))
}

/// Runs a link now and answers with the finished run, or (`wait: false`) with the run
/// submitted to run in the background.
#[utoipa::path(post, path = "/api/v1/sync/now", tag = "sync", request_body = SyncNow,
    responses((status = 200, body = SyncRun), (status = 202, body = SyncRun),
        (status = 404, body = ApiError), (status = 409, body = ApiError)))]
pub(crate) async fn sync_now(
    State(node): State<Node>,
    caller: AdminRole,
    JsonBody(body): JsonBody<SyncNow>,
) -> ApiResult<(StatusCode, Json<SyncRun>)> {
    let status = match body.wait {
        true => StatusCode::OK,
        false => StatusCode::ACCEPTED,
    };
    Ok((
        status,
        Json(ferry_node::sync::status::sync_now(&node, &caller, body).await?),
    ))
}
