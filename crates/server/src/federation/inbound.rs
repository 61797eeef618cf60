//! Checks on every federation request, and the handlers behind them.
//!
//! Order of checks (each refusal has its own code and is written to the audit log): the body
//! against its digest, the signature against the sender's pinned key (or, for a response to an
//! invite code, the key the signed response carries), the clock window, nonce reuse, the state of
//! the sender's connection, and this instance's ingress policy.

use crate::api::peers::{save_peer, view};
use crate::error::{ApiFailure, ApiResult};
use crate::state::{AppState, blocking};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, Request, State};
use axum::http::request::Parts;
use ed25519_dalek::VerifyingKey;
use ferry_core::peering::{self, Event, Phase, Role};
use ferry_core::policy::{Decision, Direction, PeerAddress, decide};
use ferry_proto::signing::{
    self, CLOCK_WINDOW_SECS, RequestTarget, SignatureError, SignatureHeader,
};
use ferry_proto::ticket::PeerResponse;
use ferry_proto::{
    AcceptPeerResponse, ErrorCode, PeerConnection, PeerStateNotice, PendingSecurity, SecurityNotice,
};
use ferry_store::{NewAuditEntry, PeerIdentity, PeerRecord, StoreError};
use serde_json::json;
use std::net::{IpAddr, SocketAddr};

/// Federation bodies are small control messages.
const MAX_BODY: usize = 1 << 20;

fn unix_now() -> i64 {
    jiff::Timestamp::now().as_second()
}

fn signature_failure(e: SignatureError) -> ApiFailure {
    let code = match e {
        SignatureError::Malformed(_) | SignatureError::BadSignature => ErrorCode::SignatureInvalid,
        SignatureError::DigestMismatch => ErrorCode::DigestMismatch,
        SignatureError::Stale { .. } => ErrorCode::SignatureStale,
    };
    ApiFailure::new(code, e.to_string())
}

/// A request as received, before any check.
struct Incoming {
    parts: Parts,
    body: Bytes,
    remote: Option<IpAddr>,
    signature: Result<SignatureHeader, SignatureError>,
}

impl Incoming {
    async fn read(request: Request) -> ApiResult<Incoming> {
        let (parts, body) = request.into_parts();
        let remote = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip());
        let body = axum::body::to_bytes(body, MAX_BODY).await.map_err(|_| {
            ApiFailure::new(
                ErrorCode::BodyTooLarge,
                "federation requests carry at most 1 MiB",
            )
        })?;
        let signature = parts
            .headers
            .get(signing::SIGNATURE_HEADER)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| SignatureError::Malformed("no Ferry-Signature header".into()))
            .and_then(SignatureHeader::parse);
        Ok(Incoming {
            parts,
            body,
            remote,
            signature,
        })
    }

    fn sender(&self) -> String {
        self.signature
            .as_ref()
            .map_or_else(|_| "unknown".to_string(), |s| s.key_id.clone())
    }

    /// Digest, signature, clock, nonce and ingress, with `key` as the sender's key.
    async fn check(&self, state: &AppState, key: &[u8; 32], sender_title: &str) -> ApiResult<()> {
        let signature = self.signature.clone().map_err(signature_failure)?;
        let content_digest = self
            .parts
            .headers
            .get(signing::DIGEST_HEADER)
            .and_then(|v| v.to_str().ok());
        let digest = signing::check_body(content_digest, &self.body).map_err(signature_failure)?;
        let key = VerifyingKey::from_bytes(key)
            .map_err(|_| signature_failure(SignatureError::BadSignature))?;
        let path = self
            .parts
            .uri
            .path_and_query()
            .map_or(self.parts.uri.path(), |p| p.as_str());
        let target = RequestTarget {
            method: self.parts.method.as_str(),
            path_and_query: path,
            body_digest: &digest,
        };
        let now = unix_now();
        signature
            .verify(&key, &target, now)
            .map_err(signature_failure)?;
        let store = state.store.clone();
        let (id, nonce) = (signature.key_id.clone(), signature.nonce);
        let fresh = blocking(move || {
            store.remember_nonce(&id, &nonce, signature.created + CLOCK_WINDOW_SECS, now)
        })
        .await?;
        if !fresh {
            return Err(ApiFailure::new(
                ErrorCode::RequestReplayed,
                "this signed request was already received; a replay is refused",
            ));
        }
        ingress_allowed(state, &self.sender(), self.remote, sender_title).await
    }

    /// Records a refusal in the audit log, then passes it on.
    async fn refused(&self, state: &AppState, failure: ApiFailure) -> ApiFailure {
        let entry = NewAuditEntry {
            actor: format!("peer:{}", self.sender()),
            event: "federation.refused".into(),
            subject: Some(self.parts.uri.path().to_string()),
            detail: json!({
                "code": failure.0.code, "reason": failure.0.message,
                "ip": self.remote.map(|ip| ip.to_string()),
            }),
        };
        let store = state.store.clone();
        if let Err(e) = blocking(move || store.audit(&entry)).await {
            tracing::warn!(error = ?e, "could not record a refused federation call");
        }
        failure
    }
}

async fn ingress_allowed(
    state: &AppState,
    instance_id: &str,
    ip: Option<IpAddr>,
    title: &str,
) -> ApiResult<()> {
    let store = state.store.clone();
    let rules: Vec<_> = blocking(move || store.list_policy_rules())
        .await?
        .iter()
        .filter_map(super::rule_of)
        .collect();
    let peer = PeerAddress {
        instance_id: Some(instance_id),
        ip,
        host: None,
    };
    let hint = format!("its admin can run `ferry policy ingress allow instance:{instance_id}`");
    match decide(&rules, Direction::Ingress, &peer) {
        Decision::Allowed(_) => Ok(()),
        Decision::Denied(rule) => Err(ApiFailure::new(
            ErrorCode::IngressDenied,
            format!(
                "instance '{}' denies ingress from '{title}' (id {instance_id}) by rule {}; {hint}",
                state.info.title, rule.id
            ),
        )),
        Decision::NoRule => Err(ApiFailure::new(
            ErrorCode::IngressDenied,
            format!(
                "instance '{}' does not permit ingress from '{title}' (id {instance_id}): {hint}",
                state.info.title
            ),
        )),
    }
}

/// The pinned identity of a signed request's sender, from a connection that is not over.
async fn pinned(state: &AppState, instance_id: &str) -> ApiResult<PeerIdentity> {
    let store = state.store.clone();
    let records = blocking(move || store.list_peers()).await?;
    let of_sender = |r: &&PeerRecord| {
        r.peer
            .as_ref()
            .is_some_and(|p| p.instance_id == instance_id)
    };
    if let Some(live) = records
        .iter()
        .filter(of_sender)
        .find(|r| !r.status.phase.is_final())
    {
        return Ok(live.peer.clone().expect("filtered on a pinned peer"));
    }
    if records.iter().any(|r| of_sender(&r)) {
        return Err(ApiFailure::new(
            ErrorCode::PeerRevoked,
            "the connection with this instance was deleted here; its key is no longer accepted",
        ));
    }
    Err(ApiFailure::new(
        ErrorCode::PeerUnknown,
        "this instance has no connection with the caller",
    ))
}

/// A request signed by a peer this instance has pinned, with every check passed.
pub(crate) struct SignedByPeer {
    pub(crate) sender: PeerIdentity,
    pub(crate) body: Bytes,
}

impl FromRequest<AppState> for SignedByPeer {
    type Rejection = ApiFailure;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, ApiFailure> {
        let incoming = Incoming::read(request).await?;
        let checked = async {
            let sender = pinned(state, &incoming.sender()).await?;
            incoming
                .check(state, &sender.public_key, &sender.title)
                .await?;
            Ok(sender)
        };
        match checked.await {
            Ok(sender) => Ok(SignedByPeer {
                sender,
                body: incoming.body,
            }),
            Err(failure) => Err(incoming.refused(state, failure).await),
        }
    }
}

fn json_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> ApiResult<T> {
    serde_json::from_slice(body).map_err(|e| {
        ApiFailure::new(
            ErrorCode::InvalidRequest,
            format!("the request body is not valid: {e}"),
        )
    })
}

/// The acceptor's response, online. The sender is not pinned yet: the signed response carries its
/// key, and the request must be signed with that same key.
pub(crate) async fn peer_response(
    State(state): State<AppState>,
    request: Request,
) -> ApiResult<Json<PeerConnection>> {
    let incoming = Incoming::read(request).await?;
    let checked = async {
        let body: AcceptPeerResponse = json_body(&incoming.body)?;
        let response = PeerResponse::parse(&body.response)?;
        if incoming.sender() != response.acceptor.instance_id {
            return Err(signature_failure(SignatureError::BadSignature));
        }
        incoming
            .check(
                &state,
                &response.acceptor.public_key,
                &response.acceptor.title,
            )
            .await?;
        Ok(response)
    };
    let response = match checked.await {
        Ok(r) => r,
        Err(failure) => return Err(incoming.refused(&state, failure).await),
    };
    let actor = format!("peer:{}", response.acceptor.instance_id);
    Ok(Json(view(
        &accept_response(&state, &response, &actor).await?,
    )))
}

/// Takes a valid response to one of this instance's requests: checks the one-time secret, pins
/// the acceptor, and moves the request to approved. Used online and for response files.
pub(crate) async fn accept_response(
    state: &AppState,
    response: &PeerResponse,
    actor: &str,
) -> ApiResult<PeerRecord> {
    let request_id = data_encoding::HEXLOWER.encode(&response.request_id);
    let store = state.store.clone();
    let id = request_id.clone();
    let mut record = blocking(move || store.peer_by_request(Role::Originator, &id))
        .await?
        .ok_or_else(|| {
            ApiFailure::new(
                ErrorCode::PeerNotFound,
                format!("this instance has no peer request {request_id}"),
            )
        })?;
    let answered = || {
        ApiFailure::new(
            ErrorCode::InviteReused,
            "this invite code was already answered, refreshed or withdrawn; ask for a new code",
        )
    };
    if record.status.phase != Phase::Requested {
        return Err(answered());
    }
    if record.expires_at.is_some_and(|t| unix_now() >= t) {
        return Err(ApiFailure::new(
            ErrorCode::InviteExpired,
            "this invite code expired before it was answered; ask for a new one",
        ));
    }
    let presented = blake3::hash(&response.secret);
    // blake3::Hash compares in constant time.
    if record
        .secret
        .as_deref()
        .and_then(|s| <[u8; 32]>::try_from(s).ok())
        .map(blake3::Hash::from)
        != Some(presented)
    {
        return Err(answered());
    }
    record.status = peering::apply(record.role, record.status, Event::ResponseReceived)?;
    record.secret = None;
    let acceptor = &response.acceptor;
    record.peer = Some(PeerIdentity {
        instance_id: acceptor.instance_id.clone(),
        title: acceptor.title.clone(),
        url: acceptor.url.clone(),
        public_key: acceptor.public_key,
    });
    let entry = NewAuditEntry {
        actor: actor.to_string(),
        event: "peer.approved".into(),
        subject: Some(record.id.clone()),
        detail: json!({"acceptor": acceptor.instance_id, "acceptor_title": acceptor.title}),
    };
    save_peer(state, record, entry).await
}

/// The other side changed the connection: it activated, disabled, enabled or deleted it.
pub(crate) async fn peer_state(
    State(state): State<AppState>,
    signed: SignedByPeer,
) -> ApiResult<Json<PeerConnection>> {
    let notice: PeerStateNotice = json_body(&signed.body)?;
    let event = match notice.event.as_str() {
        "activated" => Event::Activated,
        "disabled" => Event::RemoteDisabled,
        "enabled" => Event::RemoteEnabled,
        "deleted" => Event::RemoteDeleted,
        other => {
            return Err(ApiFailure::new(
                ErrorCode::InvalidRequest,
                format!("unknown peer event '{other}'"),
            ));
        }
    };
    let record = record_of_sender(&state, &notice.request_id, &signed.sender).await?;
    let mut record = record;
    record.status = peering::apply(record.role, record.status, event)?;
    let entry = NewAuditEntry {
        actor: format!("peer:{}", signed.sender.instance_id),
        event: format!("peer.remote_{}", notice.event),
        subject: Some(record.id.clone()),
        detail: json!({"request_id": notice.request_id}),
    };
    Ok(Json(view(&save_peer(&state, record, entry).await?)))
}

/// This instance's record of connection `request_id` with `sender` on the other end.
async fn record_of_sender(
    state: &AppState,
    request_id: &str,
    sender: &PeerIdentity,
) -> ApiResult<PeerRecord> {
    let store = state.store.clone();
    let request_id = request_id.to_string();
    let sender = sender.instance_id.clone();
    blocking(move || {
        let found = [Role::Originator, Role::Acceptor]
            .into_iter()
            .filter_map(|role| store.peer_by_request(role, &request_id).transpose())
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok::<_, StoreError>(
            found
                .into_iter()
                .find(|r| r.peer.as_ref().is_some_and(|p| p.instance_id == sender)),
        )
    })
    .await?
    .ok_or_else(|| {
        ApiFailure::new(
            ErrorCode::PeerNotFound,
            "no connection with the caller has this request id",
        )
    })
}

/// The other side proposed a change to its security settings, or decided on ours.
pub(crate) async fn peer_security(
    State(state): State<AppState>,
    signed: SignedByPeer,
) -> ApiResult<Json<PeerConnection>> {
    let notice: SecurityNotice = json_body(&signed.body)?;
    let mut record = record_of_sender(&state, &notice.request_id, &signed.sender).await?;
    if record.status.phase.is_final() {
        return Err(ApiFailure::new(
            ErrorCode::PeerStateConflict,
            "this connection is over",
        ));
    }
    let pending_here = record
        .pending_security
        .as_ref()
        .filter(|p| p.change_id == notice.change_id && p.proposed_by == "here")
        .cloned();
    let event = match (notice.action.as_str(), pending_here) {
        ("proposed", _) if record.pending_security.is_some() => {
            return Err(ApiFailure::new(
                ErrorCode::PeerStateConflict,
                "a security change is already waiting on this connection",
            ));
        }
        ("proposed", _) => {
            let security = notice.security.clone().ok_or_else(|| {
                ApiFailure::new(ErrorCode::InvalidRequest, "a proposal carries its settings")
            })?;
            record.pending_security = Some(PendingSecurity {
                change_id: notice.change_id.clone(),
                proposed_by: "there".into(),
                security,
            });
            "peer.security_change_received"
        }
        ("approved", Some(pending)) => {
            record.security = pending.security;
            record.pending_security = None;
            "peer.security_change_approved_by_peer"
        }
        ("rejected", Some(_)) => {
            record.pending_security = None;
            "peer.security_change_rejected_by_peer"
        }
        _ => {
            return Err(ApiFailure::new(
                ErrorCode::PeerStateConflict,
                "no such security change is waiting here",
            ));
        }
    };
    let entry = NewAuditEntry {
        actor: format!("peer:{}", signed.sender.instance_id),
        event: event.into(),
        subject: Some(record.id.clone()),
        detail: json!({"change_id": notice.change_id, "security": notice.security}),
    };
    Ok(Json(view(&save_peer(&state, record, entry).await?)))
}

/// Answers a signed probe: reaching here means this instance admits the caller; the answer adds
/// whether this instance may call the caller back.
pub(crate) async fn probe(
    State(state): State<AppState>,
    signed: SignedByPeer,
) -> ApiResult<Json<serde_json::Value>> {
    let egress = state
        .federation
        .egress_allowed(&signed.sender.url, Some(&signed.sender.instance_id))
        .await;
    Ok(Json(json!({
        "instance_id": state.info.instance_id,
        "title": state.info.title,
        "ingress_from_caller": true,
        "egress_to_caller": egress.is_ok(),
        "egress_detail": egress.err().map(|e| ApiFailure::from(e).0.message),
    })))
}
