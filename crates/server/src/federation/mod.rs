//! `/federation/v1`: the API only other Ferry instances call, and the client this instance calls
//! them with. Every request is signed (`ferry_proto::signing`); [`inbound::SignedByPeer`] checks
//! signature, clock, nonce, connection state and ingress policy before any handler runs.

mod client;
mod collabs;
mod inbound;
pub(crate) mod policy;
mod refusals;

pub(crate) use client::{
    Callee, FederationClient, FederationError, Transport, read_bounded, transport_warning,
};
pub(crate) use inbound::{ResponseCheck, SignedByPeer, apply_response, check_response, json_body};
pub(crate) use refusals::RefusalLog;

use crate::state::AppState;
use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::post;
use ferry_core::policy::{Direction, Effect, Matcher, Rule};
use ferry_proto::{InstanceIdentity, PolicyRule};

pub(crate) const RESPONSES_PATH: &str = "/federation/v1/peer/responses";
pub(crate) const STATE_PATH: &str = "/federation/v1/peer/state";
pub(crate) const PROBE_PATH: &str = "/federation/v1/probe";
pub(crate) const SECURITY_PATH: &str = "/federation/v1/peer/security";
pub(crate) const COLLAB_RESPONSES_PATH: &str = "/federation/v1/collab/responses";
pub(crate) const COLLAB_SNAPSHOT_PATH: &str = "/federation/v1/collab/snapshot";
pub(crate) const COLLAB_FETCH_PATH: &str = "/federation/v1/collab/fetch";
pub(crate) const COLLAB_LEAVE_PATH: &str = "/federation/v1/collab/leave";
pub(crate) const IDENTITY_PATH: &str = "/federation/v1/identity";
pub(crate) const SYNC_PULL_PATH: &str = "/federation/v1/sync/pull";
pub(crate) const SYNC_ITEM_PATH: &str = "/federation/v1/sync/item";
pub(crate) const SYNC_CHUNK_PATH: &str = "/federation/v1/sync/chunk";
pub(crate) const SYNC_POKE_PATH: &str = "/federation/v1/sync/poke";
pub(crate) const SYNC_ROWS_PATH: &str = "/federation/v1/sync/rows";

/// Answers that are streams, not control answers: sync streams sign themselves batch by batch,
/// and a chunk is checked against the hash its signed file description gives.
const STREAM_PATHS: [&str; 3] = [SYNC_PULL_PATH, SYNC_ITEM_PATH, SYNC_CHUNK_PATH];

/// The largest control answer signed (and so sent): most are a few KiB, a page of reference rows
/// at most what a reader takes of one (`reference::ROWS_ANSWER_BYTES`).
const MAX_SIGNED_ANSWER: usize = 32 << 20;

/// Signs every federation answer but a successful stream, for the request it answers (its
/// nonce): `Ferry-Answer-Signature` (see `ferry_proto::signing`).
async fn sign_answers(
    State(state): State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use ferry_proto::signing;
    let headers = request.headers();
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    // Answers are bound to the request they answer: its method, path, body digest and nonce.
    // A request with no signature to bind to gets its answer unsigned, which no Ferry client
    // accepts: this instance is no signing oracle for anyone.
    let nonce = header(signing::SIGNATURE_HEADER)
        .and_then(|v| signing::SignatureHeader::parse(v).ok())
        .map(|s| s.nonce);
    let digest = signing::claimed_digest(header(signing::DIGEST_HEADER)).unwrap_or([0; 32]);
    let method = request.method().as_str().to_string();
    let path = request.uri().path_and_query().map_or_else(
        || request.uri().path().to_string(),
        |p| p.as_str().to_string(),
    );
    let stream = STREAM_PATHS.contains(&request.uri().path());
    let response = next.run(request).await;
    let Some(nonce) = nonce else {
        return response;
    };
    if stream && response.status().is_success() {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(body) = axum::body::to_bytes(body, MAX_SIGNED_ANSWER).await else {
        return crate::error::ApiFailure::internal("an answer too large to sign").into_response();
    };
    let answered = signing::AnsweredRequest {
        target: signing::RequestTarget {
            method: &method,
            path_and_query: &path,
            body_digest: &digest,
        },
        nonce: &nonce,
    };
    let signature = signing::sign_answer(
        state.identity.signing_key(),
        &state.info.instance_id,
        &answered,
        parts.status.as_u16(),
        &body,
    );
    if let Ok(value) = axum::http::HeaderValue::from_str(&signature) {
        parts
            .headers
            .insert(ferry_proto::signing::ANSWER_SIGNATURE_HEADER, value);
    }
    axum::response::Response::from_parts(parts, axum::body::Body::from(body))
}

pub(crate) fn routes(state: AppState) -> Router<AppState> {
    Router::new()
        .route(RESPONSES_PATH, post(inbound::peer_response))
        .route(STATE_PATH, post(inbound::peer_state))
        .route(PROBE_PATH, post(inbound::probe))
        .route(SECURITY_PATH, post(inbound::peer_security))
        .route(COLLAB_RESPONSES_PATH, post(collabs::guest_response))
        .route(COLLAB_SNAPSHOT_PATH, post(collabs::snapshot))
        .route(COLLAB_FETCH_PATH, post(collabs::fetch))
        .route(COLLAB_LEAVE_PATH, post(collabs::leave))
        .route(IDENTITY_PATH, post(identity))
        .route(SYNC_PULL_PATH, post(crate::sync::sender::pull))
        .route(SYNC_ITEM_PATH, post(crate::sync::sender::pull_item))
        .route(SYNC_CHUNK_PATH, post(crate::sync::sender::chunk))
        .route(SYNC_POKE_PATH, post(crate::sync::poked))
        .route(SYNC_ROWS_PATH, post(crate::sync::reference::rows))
        .layer(axum::middleware::from_fn_with_state(state, sign_answers))
}

/// Writes a refused call to the audit log, as [`RefusalLog`] allows: the first of its source and
/// code in a minute, and summaries of the minutes before.
async fn record_refusal(state: &AppState, refusal: refusals::Refusal) {
    let minute = jiff::Timestamp::now().as_second().div_euclid(60);
    write_audit(state, state.refusals.note(refusal, minute)).await;
}

/// Writes the summaries of refusals repeated in minutes that are over (`None`: all, at
/// shutdown).
pub(crate) async fn flush_refusals(state: &AppState, all: bool) {
    let minute = (!all).then(|| jiff::Timestamp::now().as_second().div_euclid(60));
    write_audit(state, state.refusals.flush(minute)).await;
}

async fn write_audit(state: &AppState, entries: Vec<ferry_store::NewAuditEntry>) {
    if entries.is_empty() {
        return;
    }
    let store = state.store.clone();
    let written =
        crate::state::blocking(move || entries.iter().try_for_each(|entry| store.audit(entry)))
            .await;
    if let Err(e) = written {
        tracing::warn!(error = ?e, "could not record refused federation calls");
    }
}

/// Who this instance is: public facts, answered to anyone.
async fn identity(State(state): State<AppState>) -> Json<InstanceIdentity> {
    Json(InstanceIdentity {
        instance_id: state.info.instance_id.clone(),
        title: state.info.title.clone(),
        public_key: state.info.public_key.clone(),
    })
}

/// A stored policy rule as the evaluator's rule (rules are stored in canonical form).
pub(crate) fn rule_of(rule: &PolicyRule) -> Option<Rule> {
    Some(Rule {
        id: rule.id.clone(),
        direction: match rule.direction.as_str() {
            "ingress" => Direction::Ingress,
            _ => Direction::Egress,
        },
        effect: match rule.effect.as_str() {
            "deny" => Effect::Deny,
            _ => Effect::Allow,
        },
        matcher: Matcher::parse(&rule.pattern).ok()?,
    })
}
