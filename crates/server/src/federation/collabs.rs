//! Collaboration calls between instances: a guest's response (online), the host's snapshots, a
//! guest catching up, and a guest leaving.

use super::inbound::{Incoming, SignedByPeer, json_body, signature_failure};
use crate::api::collabs::{self, guest, host};
use crate::error::{ApiFailure, ApiResult};
use crate::state::{AppState, blocking};
use axum::Json;
use axum::extract::{Request, State};
use ferry_core::collab::{CollabRole, GuestStatus};
use ferry_proto::signing::SignatureError;
use ferry_proto::{CollabRef, CollabSnapshot, ErrorCode, GuestResponse};
use ferry_store::{CollabRecord, ParticipantRecord, PeerIdentity};
use serde_json::json;

/// A guest's response, online. The guest is not pinned yet: the signed response carries its key,
/// and the request must be signed with that same key. Answers with the guest's first snapshot.
pub(crate) async fn guest_response(
    State(state): State<AppState>,
    request: Request,
) -> ApiResult<Json<CollabSnapshot>> {
    let mut incoming = Incoming::read(request).await?;
    // Write-free checks first; nonce and ingress, which write, only for a live invitation.
    let checked = async {
        let body: GuestResponse = json_body(&incoming.body)?;
        let response = host::parse_response(&body.response)?;
        if incoming.sender() != response.guest.instance_id {
            return Err(signature_failure(SignatureError::BadSignature));
        }
        incoming.verify(&response.guest.public_key)?;
        let check = host::check_response(&state, &response, &body.response).await?;
        incoming.admit(&state, &response.guest.title).await?;
        Ok((body, response, check))
    };
    let (body, response, check) = match checked.await {
        Ok(checked) => checked,
        Err(failure) => return Err(incoming.refused(&state, failure).await),
    };
    let actor = format!("peer:{}", response.guest.instance_id);
    let joined = data_encoding::HEXLOWER.encode(&response.invitation_id);
    let (saved, snapshot) =
        host::apply_response(&state, &response, &body.response, check, &actor, "online").await?;
    host::tell_others_later(&state, saved, joined);
    Ok(Json(snapshot))
}

async fn collab_of(state: &AppState, id: &str) -> ApiResult<CollabRecord> {
    let store = state.store.clone();
    let id = id.to_string();
    blocking(move || store.collab(&id)).await
}

fn same_instance(identity: &PeerIdentity, sender: &PeerIdentity) -> bool {
    identity.instance_id == sender.instance_id && identity.public_key == sender.public_key
}

/// The host pushes a snapshot; only the host of that collaboration may.
pub(crate) async fn snapshot(
    State(state): State<AppState>,
    signed: SignedByPeer,
) -> ApiResult<Json<serde_json::Value>> {
    let snapshot: CollabSnapshot = json_body(&signed.body)?;
    let record = collab_of(&state, &snapshot.collaboration_id).await?;
    if record.role == CollabRole::Host {
        return Err(ApiFailure::new(
            ErrorCode::CollabHostOnly,
            "only the host sends a collaboration's state, and this instance is its host",
        ));
    }
    if !same_instance(&record.host, &signed.sender) {
        return Err(ApiFailure::new(
            ErrorCode::CollabNotFound,
            "the caller hosts no such collaboration with this instance",
        ));
    }
    let actor = format!("peer:{}", signed.sender.instance_id);
    let saved = guest::apply_snapshot(&state, record, &snapshot, &actor).await?;
    Ok(Json(
        json!({"state": saved.state.as_str(), "revision": saved.revision}),
    ))
}

/// The calling guest's participant record in a collaboration this instance hosts.
fn calling_guest<'a>(
    record: &'a CollabRecord,
    sender: &PeerIdentity,
) -> ApiResult<&'a ParticipantRecord> {
    if record.role != CollabRole::Host {
        return Err(ApiFailure::new(
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
            ApiFailure::new(
                ErrorCode::CollabNotFound,
                "the caller takes no part in that collaboration",
            )
        })?;
    if participant.status != GuestStatus::Active.as_str() {
        return Err(ApiFailure::new(
            ErrorCode::CollabGuestRemoved,
            format!(
                "the caller is no longer a guest of collaboration '{}' ({})",
                record.name, participant.status
            ),
        ));
    }
    Ok(participant)
}

/// A guest catches up: its snapshot as of now.
pub(crate) async fn fetch(
    State(state): State<AppState>,
    signed: SignedByPeer,
) -> ApiResult<Json<CollabSnapshot>> {
    let asked: CollabRef = json_body(&signed.body)?;
    let record = collab_of(&state, &asked.collaboration_id).await?;
    let participant = calling_guest(&record, &signed.sender)?;
    Ok(Json(collabs::snapshot_for(&record, participant)))
}

/// A guest leaves: it is marked as left, loses its modes, and the other guests hear of it.
pub(crate) async fn leave(
    State(state): State<AppState>,
    signed: SignedByPeer,
) -> ApiResult<Json<serde_json::Value>> {
    let asked: CollabRef = json_body(&signed.body)?;
    let mut record = collab_of(&state, &asked.collaboration_id).await?;
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
    let saved = collabs::save(&state, record, entry).await?;
    host::tell_others_later(&state, saved, leaving);
    Ok(Json(json!({"left": true})))
}
