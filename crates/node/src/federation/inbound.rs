//! Checks on every federation request, and the handlers behind them.
//!
//! Order of checks (each refusal has its own code and is written to the audit log): the body
//! against its digest, the signature against the sender's pinned key (or, for a response to an
//! invite code, the key the signed response carries), the clock window, nonce reuse, the state of
//! the sender's connection, and this instance's network policy (data may flow with the sender in
//! a direction their links carry; see [`super::policy`]).

use super::policy::{Audience, Party, admit_call, collab_flows, peer_flows};
use crate::error::{NodeError, NodeResult};
use crate::node::{Node, blocking};
use crate::peers::{save_peer, view};
use bytes::Bytes;
use ed25519_dalek::VerifyingKey;
use ferry_core::collab::{CollabRole, CollabState, GuestStatus};
use ferry_core::peering::{self, Event, Phase, Role};
use ferry_core::policy::Flows;
use ferry_proto::signing::{
    self, CLOCK_WINDOW_SECS, RequestTarget, SignatureError, SignatureHeader,
};
use ferry_proto::ticket::PeerResponse;
use ferry_proto::{
    AcceptPeerResponse, ErrorCode, PeerConnection, PeerStateNotice, PendingSecurity, SecurityNotice,
};
use ferry_store::{CollabRecord, NewAuditEntry, PeerIdentity, PeerRecord, StoreError};
use serde_json::json;
use std::net::IpAddr;

fn unix_now() -> i64 {
    jiff::Timestamp::now().as_second()
}

pub(super) fn signature_failure(e: SignatureError) -> NodeError {
    let code = match e {
        SignatureError::Malformed(_) | SignatureError::BadSignature => ErrorCode::SignatureInvalid,
        SignatureError::DigestMismatch => ErrorCode::DigestMismatch,
        SignatureError::Stale { .. } => ErrorCode::SignatureStale,
    };
    NodeError::new(code, e.to_string())
}

/// What a door knows of a federation request before reading its body.
#[derive(Debug, Clone)]
pub struct RequestHead {
    pub method: String,
    /// The path and query the request was sent to, as signed.
    pub path_and_query: String,
    /// The `Ferry-Signature` header, if any.
    pub signature: Option<String>,
    /// The `Content-Digest` header, if any.
    pub digest: Option<String>,
    /// Where the request came from.
    pub remote: Option<IpAddr>,
}

impl RequestHead {
    fn path(&self) -> &str {
        self.path_and_query
            .split_once('?')
            .map_or(self.path_and_query.as_str(), |(path, _)| path)
    }
}

/// A request as received, before any check.
#[derive(Debug)]
pub struct Incoming {
    head: RequestHead,
    pub(super) body: Bytes,
    remote: Option<IpAddr>,
    signature: Result<SignatureHeader, SignatureError>,
    /// Set once the signature verified: only then is the claimed sender named in the audit log.
    verified: bool,
}

impl Incoming {
    /// A request whose head arrived: if ingress policy could admit the caller at all, the door
    /// may read its body (and give it with [`Incoming::with_body`]); a refusal is audited.
    pub async fn admit_head(state: &Node, head: RequestHead) -> NodeResult<Incoming> {
        let signature = head
            .signature
            .as_deref()
            .ok_or_else(|| SignatureError::Malformed("no Ferry-Signature header".into()))
            .and_then(SignatureHeader::parse);
        let remote = head.remote.map(|ip| ip.to_canonical());
        let incoming = Incoming {
            head,
            body: Bytes::new(),
            remote,
            signature,
            verified: false,
        };
        // Before the body: a caller no rule admits gets nothing read, however slowly it sends.
        if let Err(failure) = incoming.precheck_policy(state).await {
            return Err(incoming.refused(state, failure).await);
        }
        Ok(incoming)
    }

    /// The request with its body, read by the door.
    pub fn with_body(self, body: Bytes) -> Incoming {
        Incoming { body, ..self }
    }

    pub(super) fn sender(&self) -> String {
        self.signature
            .as_ref()
            .map_or_else(|_| "unknown".to_string(), |s| s.key_id.clone())
    }

    /// Digest, signature and clock, with `key` as the sender's key. Writes nothing.
    pub(super) fn verify(&mut self, key: &[u8; 32]) -> NodeResult<()> {
        let signature = self.signature.clone().map_err(signature_failure)?;
        let content_digest = self.head.digest.as_deref();
        let digest = signing::check_body(content_digest, &self.body).map_err(signature_failure)?;
        let key = VerifyingKey::from_bytes(key)
            .map_err(|_| signature_failure(SignatureError::BadSignature))?;
        let target = RequestTarget {
            method: &self.head.method,
            path_and_query: &self.head.path_and_query,
            body_digest: &digest,
        };
        signature
            .verify(&key, &target, unix_now())
            .map_err(signature_failure)?;
        self.verified = true;
        Ok(())
    }

    /// Nonce reuse and network policy, for a verified request from `sender`, whose links with
    /// this instance carry `flows`.
    pub(super) async fn admit(&self, state: &Node, sender: &Party, flows: Flows) -> NodeResult<()> {
        let signature = self.signature.clone().map_err(signature_failure)?;
        let now = unix_now();
        let store = state.store.clone();
        let (id, nonce) = (signature.key_id.clone(), signature.nonce);
        let fresh = blocking(move || {
            store.remember_nonce(&id, &nonce, signature.created + CLOCK_WINDOW_SECS, now)
        })
        .await?;
        if !fresh {
            return Err(NodeError::new(
                ErrorCode::RequestReplayed,
                "this signed request was already received; a replay is refused",
            ));
        }
        let rules = super::policy::rules(&state.store).await;
        admit_call(&rules, &state.info.title, sender, flows, Audience::Caller)
    }

    /// The verified sender, as policy matches it: its address is where the request came from.
    pub(super) fn party(&self, title: &str, url: &str) -> Party {
        Party::new(title, &self.sender(), url, self.remote)
    }

    /// Records a refusal in the audit log (as [`super::refusals::RefusalLog`] allows), then
    /// passes it on.
    pub(super) async fn refused(&self, state: &Node, failure: NodeError) -> NodeError {
        let ip = self
            .remote
            .map_or_else(|| "unknown address".to_string(), super::refusals::source_of);
        // An unverified header names nobody: the claim goes in the detail, not the actor.
        let (source, actor, claimed_sender) = if self.verified {
            let peer = format!("peer:{}", self.sender());
            (peer.clone(), peer, None)
        } else {
            (ip, "unverified".to_string(), Some(self.sender()))
        };
        let refusal = super::refusals::Refusal {
            source,
            actor,
            path: self.head.path().to_string(),
            code: failure.0.code,
            reason: failure.0.message.clone(),
            claimed_sender,
        };
        super::record_refusal(state, refusal).await;
        failure
    }

    /// Policy on what is known before any check: the caller's address and the instance it
    /// claims to be. A caller no rule could admit is turned away before its signature is even
    /// read, at the cost of one policy evaluation. Admitted callers are judged again once
    /// verified ([`Incoming::admit`]).
    async fn precheck_policy(&self, state: &Node) -> NodeResult<()> {
        let claimed = self.signature.as_ref().ok().map(|s| s.key_id.as_str());
        super::policy::could_admit(state, claimed.unwrap_or(""), self.remote).await
    }
}

/// How this instance knows a sender, from one peer connection or collaboration.
enum Acquaintance {
    /// A live relation pins the sender's key, and carries data in these directions.
    Live(PeerIdentity, Flows),
    /// A peer connection, or a collaboration joined as a guest, that is over.
    RelationOver,
    /// A collaboration this instance hosts removed the sender, or the sender left it.
    GuestGone,
    /// The sender was a guest of a collaboration this instance hosted and deleted.
    CollabDeleted,
}

/// Every relation this instance has with `instance_id`: peer connections (a completed exchange
/// pins a key; a code merely imported for review does not) and collaborations (the host pins
/// each guest that joined; a guest pins its host from the signed invitation).
fn acquaintances(
    peers: &[PeerRecord],
    collabs: &[CollabRecord],
    instance_id: &str,
) -> Vec<Acquaintance> {
    let mut found = Vec::new();
    for record in peers {
        let Some(peer) = record
            .peer
            .as_ref()
            .filter(|p| p.instance_id == instance_id)
        else {
            continue;
        };
        found.push(if record.status.phase.is_established() {
            Acquaintance::Live(peer.clone(), peer_flows(record))
        } else {
            Acquaintance::RelationOver
        });
    }
    for collab in collabs {
        match collab.role {
            CollabRole::Guest if collab.host.instance_id == instance_id => {
                found.push(if collab.state.is_over() {
                    Acquaintance::RelationOver
                } else {
                    Acquaintance::Live(collab.host.clone(), collab_flows(collab, instance_id))
                });
            }
            CollabRole::Host => {
                for participant in &collab.participants {
                    let Some(identity) = participant
                        .identity
                        .as_ref()
                        .filter(|i| i.instance_id == instance_id)
                    else {
                        continue;
                    };
                    let active = participant.status == GuestStatus::Active.as_str();
                    found.push(match collab.state {
                        CollabState::Deleted if active => Acquaintance::CollabDeleted,
                        _ if active => {
                            Acquaintance::Live(identity.into(), collab_flows(collab, instance_id))
                        }
                        _ => Acquaintance::GuestGone,
                    });
                }
            }
            _ => {}
        }
    }
    found
}

/// The pinned identity of a signed request's sender, from a relation that is not over, and the
/// directions all its live relations with this instance carry.
async fn pinned(state: &Node, instance_id: &str) -> NodeResult<(PeerIdentity, Flows)> {
    let store = state.store.clone();
    let (peers, collabs) =
        blocking(move || Ok::<_, StoreError>((store.list_peers()?, store.list_collabs()?))).await?;
    let known = acquaintances(&peers, &collabs, instance_id);
    let mut live = known.iter().filter_map(|a| match a {
        Acquaintance::Live(identity, flows) => Some((identity, *flows)),
        _ => None,
    });
    if let Some((identity, flows)) = live.next() {
        let flows = live.fold(flows, |all, (_, more)| all.union(more));
        return Ok((identity.clone(), flows));
    }
    if known.iter().any(|a| matches!(a, Acquaintance::GuestGone)) {
        return Err(NodeError::new(
            ErrorCode::CollabGuestRemoved,
            "the caller is no longer a guest of this instance's collaborations; its key is no longer accepted",
        ));
    }
    if known
        .iter()
        .any(|a| matches!(a, Acquaintance::CollabDeleted))
    {
        // The code a guest that missed the deletion needs to learn of it.
        return Err(NodeError::new(
            ErrorCode::CollabDeleted,
            "the collaboration the caller took part in was deleted by this instance, its host",
        ));
    }
    if !known.is_empty() {
        return Err(NodeError::new(
            ErrorCode::PeerRevoked,
            "every connection or collaboration with the caller ended here; its key is no longer accepted",
        ));
    }
    Err(NodeError::new(
        ErrorCode::PeerUnknown,
        "this instance has no connection or collaboration with the caller",
    ))
}

/// A request signed by a peer this instance has pinned, with every check passed.
#[derive(Debug)]
pub struct SignedByPeer {
    pub sender: PeerIdentity,
    /// Where the request came from.
    pub remote: Option<IpAddr>,
    pub body: Bytes,
    /// The request's nonce: a sync stream that answers it is signed for it.
    pub nonce: [u8; 16],
}

impl SignedByPeer {
    /// Checks a request from a peer this instance pinned: signature against the pinned key,
    /// clock, nonce, the relation's state and network policy. A refusal is audited.
    pub async fn check(state: &Node, mut incoming: Incoming) -> NodeResult<SignedByPeer> {
        let checked = async {
            let (sender, flows) = pinned(state, &incoming.sender()).await?;
            incoming.verify(&sender.public_key)?;
            let party = incoming.party(&sender.title, &sender.url);
            incoming.admit(state, &party, flows).await?;
            Ok(sender)
        };
        match checked.await {
            Ok(sender) => Ok(SignedByPeer {
                sender,
                remote: incoming.remote,
                nonce: incoming.signature.as_ref().map_or([0; 16], |s| s.nonce),
                body: incoming.body,
            }),
            Err(failure) => Err(incoming.refused(state, failure).await),
        }
    }
}

pub fn json_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> NodeResult<T> {
    serde_json::from_slice(body).map_err(|e| {
        NodeError::new(
            ErrorCode::InvalidRequest,
            format!("the request body is not valid: {e}"),
        )
    })
}

/// The acceptor's response, online. The sender is not pinned yet: the signed response carries its
/// key, and the request must be signed with that same key.
pub async fn peer_response(state: &Node, mut incoming: Incoming) -> NodeResult<PeerConnection> {
    // Cheap, write-free checks first (signature, then the one-time secret); nonce and ingress,
    // which write, only for a request that proved it holds a live code.
    let checked = async {
        let body: AcceptPeerResponse = json_body(&incoming.body)?;
        let response = PeerResponse::parse(&body.response)?;
        if incoming.sender() != response.acceptor.instance_id {
            return Err(signature_failure(SignatureError::BadSignature));
        }
        incoming.verify(&response.acceptor.public_key)?;
        let answer = check_response(state, &response).await?;
        let acceptor = &response.acceptor;
        let party = incoming.party(&acceptor.title, &acceptor.url);
        incoming
            .admit(state, &party, peer_flows(answer.record()))
            .await?;
        Ok((response, answer))
    };
    let (response, answer) = match checked.await {
        Ok(r) => r,
        Err(failure) => return Err(incoming.refused(state, failure).await),
    };
    let actor = format!("peer:{}", response.acceptor.instance_id);
    Ok(view(
        &apply_response(state, &response, answer, &actor).await?,
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
    state: &Node,
    response: &PeerResponse,
) -> NodeResult<ResponseCheck> {
    let request_id = data_encoding::HEXLOWER.encode(&response.request_id);
    let store = state.store.clone();
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
    state: &Node,
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
    save_peer(state, record, entry).await
}

/// The other side changed the connection: it activated, disabled, enabled or deleted it.
pub async fn peer_state(state: &Node, signed: SignedByPeer) -> NodeResult<PeerConnection> {
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
    let record = record_of_sender(state, &notice.request_id, &signed.sender).await?;
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
    let entry = NewAuditEntry {
        actor: format!("peer:{}", signed.sender.instance_id),
        event: format!("peer.remote_{}", notice.event),
        subject: Some(record.id.clone()),
        detail: json!({"request_id": notice.request_id}),
    };
    Ok(view(&save_peer(state, record, entry).await?))
}

/// This instance's record of connection `request_id` with `sender` on the other end.
async fn record_of_sender(
    state: &Node,
    request_id: &str,
    sender: &PeerIdentity,
) -> NodeResult<PeerRecord> {
    let store = state.store.clone();
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
pub async fn peer_security(state: &Node, signed: SignedByPeer) -> NodeResult<PeerConnection> {
    let notice: SecurityNotice = json_body(&signed.body)?;
    let mut record = record_of_sender(state, &notice.request_id, &signed.sender).await?;
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
    Ok(view(&save_peer(state, record, entry).await?))
}

/// Answers a signed probe: reaching here means this instance's rules let data flow with the
/// caller in some direction their links carry; the answer says which.
pub async fn probe(state: &Node, signed: SignedByPeer) -> NodeResult<serde_json::Value> {
    let rules = super::policy::rules(&state.store).await;
    let party = Party::of(&signed.sender, signed.remote);
    let verdict = ferry_core::policy::judge(&rules, &party.address());
    Ok(json!({
        "instance_id": state.info.instance_id,
        "title": state.info.title,
        // Yes or no only: the caller learns nothing more about this instance's rules.
        "ingress_from_caller": verdict.ingress.is_allowed(),
        "egress_to_caller": verdict.egress.is_allowed(),
    }))
}
