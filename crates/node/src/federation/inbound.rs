//! Checks on every federation request, and the handlers behind them.
//!
//! Order of checks (each refusal has its own code and is written to the audit log): the body
//! against its digest, the signature against the sender's pinned key (or, for a response to an
//! invite code, the key the signed response carries), the clock window, nonce reuse, the state of
//! the sender's connection, and this instance's network policy (data may flow with the sender in
//! a direction their links carry; see [`super::policy`]).

use super::policy::{Audience, Party, admit_call, collab_flows, peer_flows};
use crate::error::{NodeError, NodeResult};
use crate::node::Node;
use crate::task::blocking;
use bytes::Bytes;
use ed25519_dalek::VerifyingKey;
use ferry_core::collab::{CollabRole, CollabState, GuestStatus};
use ferry_core::policy::Flows;
use ferry_proto::ErrorCode;
use ferry_proto::signing::{
    self, CLOCK_WINDOW_SECS, RequestTarget, SignatureError, SignatureHeader,
};
use ferry_store::{CollabRecord, PeerIdentity, PeerRecord, StoreError};
use std::net::IpAddr;

fn unix_now() -> i64 {
    jiff::Timestamp::now().as_second()
}

pub(crate) fn signature_failure(e: SignatureError) -> NodeError {
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
    pub(crate) body: Bytes,
    remote: Option<IpAddr>,
    signature: Result<SignatureHeader, SignatureError>,
    /// Set once the signature verified: only then is the claimed sender named in the audit log.
    verified: bool,
}

impl Incoming {
    /// A request whose head arrived: if ingress policy could admit the caller at all, the door
    /// may read its body (and give it with [`Incoming::with_body`]); a refusal is audited.
    pub async fn admit_head(node: &Node, head: RequestHead) -> NodeResult<Incoming> {
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
        if let Err(failure) = incoming.precheck_policy(node).await {
            return Err(incoming.refused(node, failure).await);
        }
        Ok(incoming)
    }

    /// The request with its body, read by the door.
    pub fn with_body(self, body: Bytes) -> Incoming {
        Incoming { body, ..self }
    }

    pub(crate) fn sender(&self) -> String {
        self.signature
            .as_ref()
            .map_or_else(|_| "unknown".to_string(), |s| s.key_id.clone())
    }

    /// Digest, signature and clock, with `key` as the sender's key. Writes nothing.
    pub(crate) fn verify(&mut self, key: &[u8; 32]) -> NodeResult<()> {
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
    pub(crate) async fn admit(&self, node: &Node, sender: &Party, flows: Flows) -> NodeResult<()> {
        let signature = self.signature.clone().map_err(signature_failure)?;
        let now = unix_now();
        let store = node.store.clone();
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
        let rules = super::policy::rules(&node.store).await;
        admit_call(&rules, &node.info.title, sender, flows, Audience::Caller)
    }

    /// The verified sender, as policy matches it: its address is where the request came from.
    pub(crate) fn party(&self, title: &str, url: &str) -> Party {
        Party::new(title, &self.sender(), url, self.remote)
    }

    /// Records a refusal in the audit log (as [`super::refusals::RefusalLog`] allows), then
    /// passes it on.
    pub(crate) async fn refused(&self, node: &Node, failure: NodeError) -> NodeError {
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
        super::audit::record_refusal(node, refusal).await;
        failure
    }

    /// Policy on what is known before any check: the caller's address and the instance it
    /// claims to be. A caller no rule could admit is turned away before its signature is even
    /// read, at the cost of one policy evaluation. Admitted callers are judged again once
    /// verified ([`Incoming::admit`]).
    async fn precheck_policy(&self, node: &Node) -> NodeResult<()> {
        let claimed = self.signature.as_ref().ok().map(|s| s.key_id.as_str());
        super::admission::could_admit(node, claimed.unwrap_or(""), self.remote).await
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
async fn pinned(node: &Node, instance_id: &str) -> NodeResult<(PeerIdentity, Flows)> {
    let store = node.store.clone();
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
    pub async fn check(node: &Node, mut incoming: Incoming) -> NodeResult<SignedByPeer> {
        let checked = async {
            let (sender, flows) = pinned(node, &incoming.sender()).await?;
            incoming.verify(&sender.public_key)?;
            let party = incoming.party(&sender.title, &sender.url);
            incoming.admit(node, &party, flows).await?;
            Ok(sender)
        };
        match checked.await {
            Ok(sender) => Ok(SignedByPeer {
                sender,
                remote: incoming.remote,
                nonce: incoming.signature.as_ref().map_or([0; 16], |s| s.nonce),
                body: incoming.body,
            }),
            Err(failure) => Err(incoming.refused(node, failure).await),
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
