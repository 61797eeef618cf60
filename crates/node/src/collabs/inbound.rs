//! What other instances ask of this one about collaborations: a guest's response (online), the host's snapshots, a
//! guest catching up, and a guest leaving.

use super::{guest, host};
use crate::collabs;
use crate::error::{NodeError, NodeResult};
use crate::federation::inbound::{Incoming, SignedByPeer, json_body, signature_failure};
use crate::ids::hex;
use crate::node::Node;
use crate::task::blocking;
use ferry_core::collab::{self, CollabRole, CollabState, GuestStatus};
use ferry_proto::signing::SignatureError;
use ferry_proto::{CollabRef, CollabSnapshot, ErrorCode, GuestResponse};
use ferry_store::{CollabRecord, ParticipantRecord, PeerIdentity};
use serde_json::json;

/// A guest's response, online. The guest is not pinned yet: the signed response carries its key,
/// and the request must be signed with that same key. Answers with the guest's first snapshot.
pub async fn guest_response(node: &Node, mut incoming: Incoming) -> NodeResult<CollabSnapshot> {
    // Write-free checks first; nonce and ingress, which write, only for a live invitation.
    let checked = async {
        let body: GuestResponse = json_body(&incoming.body)?;
        let response = host::parse_response(&body.response)?;
        if incoming.sender() != response.guest.instance_id {
            return Err(signature_failure(SignatureError::BadSignature));
        }
        incoming.verify(&response.guest.public_key)?;
        let check = host::check_response(node, &response, &body.response).await?;
        let flows = check.invitation_flows(&response);
        let party = incoming.party(&response.guest.title, &response.guest.url);
        incoming.admit(node, &party, flows).await?;
        if matches!(check, host::ResponseCheck::Fresh(_)) {
            host::confirm_guest(node, &response, flows).await?;
        }
        Ok((body, response, check))
    };
    let (body, response, check) = match checked.await {
        Ok(checked) => checked,
        Err(failure) => return Err(incoming.refused(node, failure).await),
    };
    let actor = format!("peer:{}", response.guest.instance_id);
    let joined = hex(&response.invitation_id);
    let repeated = matches!(check, host::ResponseCheck::Repeated(_));
    let (saved, snapshot) = host::apply_response(
        node,
        &response,
        &body.response,
        check,
        &actor,
        json!({"via": "online", "identity_confirmed": true}),
    )
    .await?;
    if !repeated {
        host::tell_others_later(node, saved, joined);
    }
    Ok(snapshot)
}

async fn collab_of(node: &Node, id: &str) -> NodeResult<CollabRecord> {
    if !collab::is_valid_id(id) {
        return Err(NodeError::new(
            ErrorCode::CollabNotFound,
            "no collaboration has that id",
        ));
    }
    let store = node.store.clone();
    let id = id.to_string();
    blocking(move || store.collab(&id)).await
}

fn same_instance(identity: &PeerIdentity, sender: &PeerIdentity) -> bool {
    identity.instance_id == sender.instance_id && identity.public_key == sender.public_key
}

/// Records a refusal a handler made after the request's checks passed, and passes it on. Store
/// messages never go back to the caller: they may name local spaces.
async fn refused(node: &Node, signed: &SignedByPeer, path: &str, failure: NodeError) -> NodeError {
    let failure =
        if failure.0.code == ErrorCode::Internal || failure.0.code == ErrorCode::SpaceNotFound {
            NodeError::new(
                ErrorCode::Internal,
                "the instance could not apply the change; its log has the details",
            )
        } else {
            failure
        };
    let peer = format!("peer:{}", signed.sender.instance_id);
    let refusal = crate::federation::refusals::Refusal {
        source: peer.clone(),
        actor: peer,
        path: path.to_string(),
        code: failure.0.code,
        reason: failure.0.message.clone(),
        claimed_sender: None,
    };
    crate::federation::record_refusal(node, refusal).await;
    failure
}

/// The host pushes a snapshot; only the host of that collaboration may.
pub async fn snapshot(node: &Node, signed: SignedByPeer) -> NodeResult<serde_json::Value> {
    match apply_pushed_snapshot(node, &signed).await {
        Ok(answer) => Ok(answer),
        Err(failure) => Err(refused(
            node,
            &signed,
            crate::federation::COLLAB_SNAPSHOT_PATH,
            failure,
        )
        .await),
    }
}

async fn apply_pushed_snapshot(
    node: &Node,
    signed: &SignedByPeer,
) -> NodeResult<serde_json::Value> {
    let snapshot: CollabSnapshot = json_body(&signed.body)?;
    let record = collab_of(node, &snapshot.collaboration_id).await?;
    if record.role == CollabRole::Host {
        return Err(NodeError::new(
            ErrorCode::CollabHostOnly,
            "only the host sends a collaboration's node, and this instance is its host",
        ));
    }
    if !same_instance(&record.host, &signed.sender) {
        return Err(NodeError::new(
            ErrorCode::CollabHostOnly,
            "only the host sends a collaboration's node, and the caller is not its host",
        ));
    }
    let actor = format!("peer:{}", signed.sender.instance_id);
    let saved = guest::apply_snapshot(node, record, &snapshot, &actor).await?;
    Ok(json!({"state": saved.state.as_str(), "revision": saved.revision}))
}

/// The calling guest's participant record in a collaboration this instance hosts and has not
/// deleted.
fn calling_guest<'a>(
    record: &'a CollabRecord,
    sender: &PeerIdentity,
) -> NodeResult<&'a ParticipantRecord> {
    if record.role != CollabRole::Host {
        return Err(NodeError::new(
            ErrorCode::CollabHostOnly,
            "this instance does not host that collaboration",
        ));
    }
    let participant = record
        .participants
        .iter()
        .find(|p| {
            p.identity
                .as_ref()
                .is_some_and(|i| same_instance(&i.into(), sender))
        })
        .ok_or_else(|| {
            NodeError::new(
                ErrorCode::ParticipantNotFound,
                "the caller is not a guest of that collaboration",
            )
        })?;
    if participant.status != GuestStatus::Active.as_str() {
        return Err(NodeError::new(
            ErrorCode::CollabGuestRemoved,
            format!(
                "the caller is no longer a guest of collaboration '{}' ({})",
                record.name, participant.status
            ),
        ));
    }
    if record.state == CollabState::Deleted {
        return Err(NodeError::new(
            ErrorCode::CollabDeleted,
            format!("the host deleted collaboration '{}'", record.name),
        ));
    }
    Ok(participant)
}

/// A guest catches up: its snapshot as of now.
pub async fn fetch(node: &Node, signed: SignedByPeer) -> NodeResult<CollabSnapshot> {
    let answer = async {
        let asked: CollabRef = json_body(&signed.body)?;
        let record = collab_of(node, &asked.collaboration_id).await?;
        let participant = calling_guest(&record, &signed.sender)?;
        Ok(collabs::snapshot_for(&record, participant))
    };
    match answer.await {
        Ok(snapshot) => Ok(snapshot),
        Err(failure) => {
            Err(refused(node, &signed, crate::federation::COLLAB_FETCH_PATH, failure).await)
        }
    }
}

/// A guest leaves: it is marked as left, loses its modes, and the other guests hear of it.
pub async fn leave(node: &Node, signed: SignedByPeer) -> NodeResult<serde_json::Value> {
    match record_departure(node, &signed).await {
        Ok(()) => Ok(json!({"left": true})),
        Err(failure) => {
            Err(refused(node, &signed, crate::federation::COLLAB_LEAVE_PATH, failure).await)
        }
    }
}

async fn record_departure(node: &Node, signed: &SignedByPeer) -> NodeResult<()> {
    let asked: CollabRef = json_body(&signed.body)?;
    let mut record = collab_of(node, &asked.collaboration_id).await?;
    let leaving = calling_guest(&record, &signed.sender)?.id.clone();
    for participant in record.participants.iter_mut().filter(|p| p.id == leaving) {
        participant.status = GuestStatus::Left.as_str().into();
    }
    for workspace in &mut record.workspaces {
        workspace.modes.remove(&leaving);
    }
    record.revision += 1;
    let entry = collabs::audit(
        &format!("peer:{}", signed.sender.instance_id),
        "collab.guest_left",
        &record,
        json!({"guest": leaving, "title": signed.sender.title}),
    );
    let saved = collabs::save(node, record, entry).await?;
    host::tell_others_later(node, saved, leaving);
    Ok(())
}
