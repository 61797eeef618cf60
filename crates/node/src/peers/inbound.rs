//! What other instances ask of this one about peer connections: the acceptor's response
//! (online), a change of state or of security settings on the other side, and a policy probe.

use super::records::{save_peer, view};
use crate::error::{NodeError, NodeResult};
use crate::federation::inbound::{Incoming, SignedByPeer, json_body, signature_failure};
use crate::federation::policy::{Party, peer_flows};
use crate::ids::unix_now;
use crate::node::Node;
use crate::task::blocking;
use ferry_core::peering::{self, Event, Phase, Role};
use ferry_proto::signing::SignatureError;
use ferry_proto::ticket::PeerResponse;
use ferry_proto::{
    AcceptPeerResponse, ErrorCode, PeerConnection, PeerStateNotice, PendingSecurity, SecurityNotice,
};
use ferry_store::{NewAuditEntry, PeerIdentity, PeerRecord, StoreError};
use serde_json::json;

/// The acceptor's response, online. The sender is not pinned yet: the signed response carries its
/// key, and the request must be signed with that same key.
pub async fn peer_response(node: &Node, mut incoming: Incoming) -> NodeResult<PeerConnection> {
    // Cheap, write-free checks first (signature, then the one-time secret); nonce and ingress,
    // which write, only for a request that proved it holds a live code.
    let checked = async {
        let body: AcceptPeerResponse = json_body(&incoming.body)?;
        let response = PeerResponse::parse(&body.response)?;
        if incoming.sender() != response.acceptor.instance_id {
            return Err(signature_failure(SignatureError::BadSignature));
        }
        incoming.verify(&response.acceptor.public_key)?;
        let answer = check_response(node, &response).await?;
        let acceptor = &response.acceptor;
        let party = incoming.party(&acceptor.title, &acceptor.url);
        incoming
            .admit(node, &party, peer_flows(answer.record()))
            .await?;
        Ok((response, answer))
    };
    let (response, answer) = match checked.await {
        Ok(r) => r,
        Err(failure) => return Err(incoming.refused(node, failure).await),
    };
    let actor = format!("peer:{}", response.acceptor.instance_id);
    Ok(view(
        &apply_response(node, &response, answer, &actor).await?,
    ))
}

/// What a valid response does to its request.
pub(crate) enum ResponseCheck {
    /// First delivery: approve the request.
    Fresh(PeerRecord),
    /// The same response again (a retry whose answer was lost): nothing to do.
    Repeated(PeerRecord),
}

impl ResponseCheck {
    fn record(&self) -> &PeerRecord {
        match self {
            ResponseCheck::Fresh(r) | ResponseCheck::Repeated(r) => r,
        }
    }
}

/// Checks a response against its request without changing anything: the request exists, is
/// unanswered (or was answered by this very response), not expired, the secret matches, and the
/// acceptor's id is not pinned to another key on an established connection.
pub(crate) async fn check_response(
    node: &Node,
    response: &PeerResponse,
) -> NodeResult<ResponseCheck> {
    let request_id = data_encoding::HEXLOWER.encode(&response.request_id);
    let store = node.store.clone();
    let id = request_id.clone();
    let (record, known) = blocking(move || {
        Ok::<_, StoreError>((
            store.peer_by_request(Role::Originator, &id)?,
            store.list_peers()?,
        ))
    })
    .await?;
    let record = record.ok_or_else(|| {
        NodeError::new(
            ErrorCode::PeerNotFound,
            format!("this instance has no peer request {request_id}"),
        )
    })?;
    let acceptor = &response.acceptor;
    let secret_matches = record
        .secret
        .as_deref()
        .and_then(|s| <[u8; 32]>::try_from(s).ok())
        .map(blake3::Hash::from)
        // blake3::Hash compares in constant time.
        == Some(blake3::hash(&response.secret));
    let answered = || {
        NodeError::new(
            ErrorCode::InviteReused,
            "this invite code was already answered, refreshed or withdrawn; ask for a new code",
        )
    };
    let same_acceptor = record.peer.as_ref().is_some_and(|p| {
        p.instance_id == acceptor.instance_id && p.public_key == acceptor.public_key
    });
    match record.status.phase {
        Phase::Requested if secret_matches => {}
        Phase::Approved | Phase::Active if secret_matches && same_acceptor => {
            return Ok(ResponseCheck::Repeated(record));
        }
        _ => return Err(answered()),
    }
    if record.expires_at.is_some_and(|t| unix_now() >= t) {
        return Err(NodeError::new(
            ErrorCode::InviteExpired,
            "this invite code expired before it was answered; ask for a new one",
        ));
    }
    let conflicting = known
        .iter()
        .filter(|r| r.status.phase.is_established())
        .find_map(|r| {
            r.peer.as_ref().filter(|p| {
                p.instance_id == acceptor.instance_id && p.public_key != acceptor.public_key
            })
        });
    if let Some(pinned) = conflicting {
        return Err(NodeError::new(
            ErrorCode::InviteKeyMismatch,
            format!(
                "the response claims to come from instance {} but carries another key than the one pinned for it (fingerprint {})",
                acceptor.instance_id,
                crate::instance::fingerprint(&pinned.public_key)
            ),
        ));
    }
    Ok(ResponseCheck::Fresh(record))
}

/// Approves the request a checked response answers: pins the acceptor.
pub(crate) async fn apply_response(
    node: &Node,
    response: &PeerResponse,
    check: ResponseCheck,
    actor: &str,
) -> NodeResult<PeerRecord> {
    let mut record = match check {
        ResponseCheck::Repeated(record) => return Ok(record),
        ResponseCheck::Fresh(record) => record,
    };
    record.status = peering::apply(record.role, record.status, Event::ResponseReceived)?;
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
    save_peer(node, record, entry).await
}

/// The other side changed the connection: it activated, disabled, enabled or deleted it.
pub async fn peer_state(node: &Node, signed: SignedByPeer) -> NodeResult<PeerConnection> {
    let notice: PeerStateNotice = json_body(&signed.body)?;
    let event = match notice.event.as_str() {
        "activated" => Event::Activated,
        "disabled" => Event::RemoteDisabled,
        "enabled" => Event::RemoteEnabled,
        "deleted" => Event::RemoteDeleted,
        other => {
            return Err(NodeError::new(
                ErrorCode::InvalidRequest,
                format!("unknown peer event '{other}'"),
            ));
        }
    };
    let record = record_of_sender(node, &notice.request_id, &signed.sender).await?;
    let mut record = record;
    // A retried notice whose first answer was lost finds the change already made: not an error.
    let already = match event {
        Event::Activated => record.status.phase == Phase::Active,
        Event::RemoteDeleted => record.status.phase == Phase::Revoked,
        Event::RemoteDisabled => {
            record.status.disabled_there && record.status.phase == Phase::Active
        }
        Event::RemoteEnabled => {
            !record.status.disabled_there && record.status.phase == Phase::Active
        }
        _ => false,
    };
    if already {
        return Ok(view(&record));
    }
    record.status = peering::apply(record.role, record.status, event)?;
    // Activated or gone: a response file kept for delivery by hand is no longer needed.
    record.secret = None;
    let entry = NewAuditEntry {
        actor: format!("peer:{}", signed.sender.instance_id),
        event: format!("peer.remote_{}", notice.event),
        subject: Some(record.id.clone()),
        detail: json!({"request_id": notice.request_id}),
    };
    Ok(view(&save_peer(node, record, entry).await?))
}

/// This instance's record of connection `request_id` with `sender` on the other end.
async fn record_of_sender(
    node: &Node,
    request_id: &str,
    sender: &PeerIdentity,
) -> NodeResult<PeerRecord> {
    let store = node.store.clone();
    let request_id = request_id.to_string();
    let sender = sender.clone();
    blocking(move || {
        let found = [Role::Originator, Role::Acceptor]
            .into_iter()
            .filter_map(|role| store.peer_by_request(role, &request_id).transpose())
            .collect::<Result<Vec<_>, StoreError>>()?;
        // The same instance id and the same key: an id alone proves nothing.
        Ok::<_, StoreError>(found.into_iter().find(|r| {
            r.peer.as_ref().is_some_and(|p| {
                p.instance_id == sender.instance_id && p.public_key == sender.public_key
            })
        }))
    })
    .await?
    .ok_or_else(|| {
        NodeError::new(
            ErrorCode::PeerNotFound,
            "no connection with the caller has this request id",
        )
    })
}

/// The other side proposed a change to its security settings, or decided on ours.
pub async fn peer_security(node: &Node, signed: SignedByPeer) -> NodeResult<PeerConnection> {
    let notice: SecurityNotice = json_body(&signed.body)?;
    let mut record = record_of_sender(node, &notice.request_id, &signed.sender).await?;
    if record.status.phase.is_final() {
        return Err(NodeError::new(
            ErrorCode::PeerStateConflict,
            "this connection is over",
        ));
    }
    let pending_here = record
        .pending_security
        .as_ref()
        .filter(|p| p.change_id == notice.change_id && p.proposed_by == "here")
        .cloned();
    let mut applied = None;
    let event = match (notice.action.as_str(), pending_here) {
        ("proposed", _)
            if record
                .pending_security
                .as_ref()
                .is_some_and(|p| p.change_id == notice.change_id && p.proposed_by == "there") =>
        {
            // The same proposal again (a retry): already recorded.
            return Ok(view(&record));
        }
        ("proposed", _) if record.pending_security.is_some() => {
            return Err(NodeError::new(
                ErrorCode::PeerStateConflict,
                "a security change is already waiting on this connection",
            ));
        }
        ("proposed", _) => {
            let security = notice.security.clone().ok_or_else(|| {
                NodeError::new(ErrorCode::InvalidRequest, "a proposal carries its settings")
            })?;
            record.pending_security = Some(PendingSecurity {
                change_id: notice.change_id.clone(),
                proposed_by: "there".into(),
                security,
            });
            "peer.security_change_received"
        }
        ("approved", Some(pending)) => {
            applied = Some(pending.security.clone());
            record.security = pending.security;
            record.pending_security = None;
            "peer.security_change_approved_by_peer"
        }
        ("rejected", Some(_)) => {
            record.pending_security = None;
            "peer.security_change_rejected_by_peer"
        }
        _ => {
            return Err(NodeError::new(
                ErrorCode::PeerStateConflict,
                "no such security change is waiting here",
            ));
        }
    };
    let entry = NewAuditEntry {
        actor: format!("peer:{}", signed.sender.instance_id),
        event: event.into(),
        subject: Some(record.id.clone()),
        detail: json!({"change_id": notice.change_id, "security": notice.security.or(applied)}),
    };
    Ok(view(&save_peer(node, record, entry).await?))
}

/// Answers a signed probe: reaching here means this instance's rules let data flow with the
/// caller in some direction their links carry; the answer says which.
pub async fn probe(node: &Node, signed: SignedByPeer) -> NodeResult<serde_json::Value> {
    let rules = crate::federation::policy::rules(&node.store).await;
    let party = Party::of(&signed.sender, signed.remote);
    let verdict = ferry_core::policy::judge(&rules, &party.address());
    Ok(json!({
        "instance_id": node.info.instance_id,
        "title": node.info.title,
        // Yes or no only: the caller learns nothing more about this instance's rules.
        "ingress_from_caller": verdict.ingress.is_allowed(),
        "egress_to_caller": verdict.egress.is_allowed(),
    }))
}
