//! `/federation/v1`: the endpoints only other Ferry instances call. Every request is signed
//! (`ferry_proto::signing`); the [`inbound::Signed`] extractor has the node check signature,
//! clock, nonce, connection state and ingress policy before any handler runs, and every answer
//! but a stream is signed on the way out.

mod collabs;
mod inbound;
mod sync;

use axum::Router;
use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::post;
use fed::{
    COLLAB_FETCH_PATH, COLLAB_LEAVE_PATH, COLLAB_RESPONSES_PATH, COLLAB_SNAPSHOT_PATH,
    IDENTITY_PATH, PROBE_PATH, RESPONSES_PATH, SECURITY_PATH, STATE_PATH, SYNC_CHUNK_PATH,
    SYNC_ITEM_PATH, SYNC_POKE_PATH, SYNC_PULL_PATH, SYNC_ROWS_PATH,
};
use ferry_node::Node;
use ferry_node::federation as fed;

/// Signs every federation answer but a successful stream, for the request it answers (its
/// nonce): `Ferry-Answer-Signature` (see `ferry_proto::signing`).
async fn sign_answers(
    State(node): State<Node>,
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
    let stream = fed::STREAM_PATHS.contains(&request.uri().path());
    let response = next.run(request).await;
    let Some(nonce) = nonce else {
        return response;
    };
    if stream && response.status().is_success() {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(body) = axum::body::to_bytes(body, fed::MAX_SIGNED_ANSWER).await else {
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
        node.identity.signing_key(),
        &node.info.instance_id,
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

pub(crate) fn routes(node: Node) -> Router<Node> {
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
        .route(SYNC_PULL_PATH, post(sync::pull))
        .route(SYNC_ITEM_PATH, post(sync::pull_item))
        .route(SYNC_CHUNK_PATH, post(sync::chunk))
        .route(SYNC_POKE_PATH, post(sync::poked))
        .route(SYNC_ROWS_PATH, post(sync::rows))
        .layer(axum::middleware::from_fn_with_state(node, sign_answers))
}

/// Who this instance is: public facts, answered to anyone.
async fn identity(State(node): State<Node>) -> axum::Json<ferry_proto::InstanceIdentity> {
    axum::Json(ferry_node::tokens::identity(&node))
}
