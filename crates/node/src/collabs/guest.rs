//! The guest's side: reading and accepting an invitation, applying the host's snapshots, catching
//! up with the host, and leaving.

use super::{
    audit, conflict, end_workspace, ensure_not_over, expired, identity_of, load, peer_info,
    same_url, save, view,
};
use crate::caller::Caller;
use crate::error::{NodeError, NodeResult};
use crate::federation::policy::collab_flows;
use crate::federation::{self, FederationError};
use crate::ids::{hex, rfc3339, unix_now};
use crate::node::Node;
use crate::task::blocking;
use ferry_core::collab::{self, AccessMode, CollabEvent, CollabRole, CollabState, DeletePolicy};
use ferry_proto::ticket::{
    COLLAB_INVITATION_PREFIX, CollabInvitation, CollabResponse, Issuer, TICKET_VERSION, TicketError,
};
use ferry_proto::{
    AcceptInvitation, CollabChanged, CollabRef, CollabSnapshot, Collaboration, ErrorCode,
    GuestResponse, InvitationAccepted, InvitationCode, InvitationPreview, OfferedWorkspaceView,
};
use ferry_store::{CollabRecord, ParticipantRecord, StoreError, WorkspaceRecord};
use reqwest::Method;
use serde_json::json;
use std::collections::BTreeMap;

fn ticket_failure(e: TicketError) -> NodeError {
    let (code, message) = match e {
        TicketError::WrongKind => (
            ErrorCode::InviteWrongKind,
            format!(
                "this is not a collaboration invitation: it should start with '{COLLAB_INVITATION_PREFIX}'"
            ),
        ),
        TicketError::Malformed(why) => (
            ErrorCode::InviteMalformed,
            format!("the invitation is damaged or incomplete ({why}); copy it again in full"),
        ),
        TicketError::Tampered => (
            ErrorCode::InviteTampered,
            "the invitation's signature does not match its content: it was altered; ask the host for a new one".into(),
        ),
        TicketError::UnsupportedVersion(v) => (
            ErrorCode::InviteUnsupportedVersion,
            format!("the invitation uses format version {v}, which this Ferry does not read; upgrade Ferry"),
        ),
    };
    NodeError::new(code, message)
}

/// Decodes an invitation and checks everything this instance can check alone: signature, not
/// its own, meant for this instance's URL, not expired, not accepted here before, and the host's
/// key matching any key pinned for it.
async fn read_invitation(node: &Node, code: &str) -> NodeResult<CollabInvitation> {
    let invitation = CollabInvitation::parse(code).map_err(ticket_failure)?;
    let host = &invitation.host;
    if host.instance_id == node.info.instance_id || host.public_key == node.identity.public_key() {
        return Err(NodeError::new(
            ErrorCode::InviteOwn,
            "this invitation was issued by this instance; accept it on the guest instance",
        ));
    }
    if !same_url(&invitation.guest_url, &node.info.public_url) {
        return Err(NodeError::new(
            ErrorCode::InviteWrongInstance,
            format!(
                "this invitation is meant for the instance at {}, and this one is at {}; accept it there, or ask the host for one for this URL",
                invitation.guest_url, node.info.public_url
            ),
        ));
    }
    if expired(invitation.expires_at) {
        return Err(NodeError::new(
            ErrorCode::InviteExpired,
            format!(
                "this invitation expired at {}; ask the host to refresh it",
                rfc3339(invitation.expires_at)
            ),
        ));
    }
    let store = node.store.clone();
    let (peers, collabs) =
        blocking(move || Ok::<_, StoreError>((store.list_peers()?, store.list_collabs()?))).await?;
    let collab_id = hex(&invitation.collaboration_id);
    if let Some(known) = collabs.iter().find(|c| c.id == collab_id) {
        return Err(NodeError::new(
            ErrorCode::InviteReused,
            format!(
                "this instance already took part in collaboration '{}' ({}); an invitation is used once",
                known.name,
                known.state.as_str()
            ),
        ));
    }
    super::check_pinned_key(&peers, &collabs, host)?;
    Ok(invitation)
}

fn preview_of(invitation: &CollabInvitation) -> InvitationPreview {
    let host = &invitation.host;
    InvitationPreview {
        collaboration_id: hex(&invitation.collaboration_id),
        collaboration: invitation.collaboration_name.clone(),
        host: peer_info(&identity_of(host)),
        workspaces: invitation
            .workspaces
            .iter()
            .map(|w| OfferedWorkspaceView {
                id: hex(&w.workspace_id),
                name: w.name.clone(),
                description: w.description.clone(),
                mode: w.mode.clone(),
            })
            .collect(),
        expires_at: rfc3339(invitation.expires_at),
    }
}

/// Checks an invitation and shows what it offers, changing nothing.
pub async fn preview(
    node: &Node,
    caller: &Caller,
    body: InvitationCode,
) -> NodeResult<InvitationPreview> {
    caller.require(ferry_proto::Role::Admin)?;
    Ok(preview_of(&read_invitation(node, &body.code).await?))
}

/// The guest's record of a collaboration it just accepted, before the host confirmed.
fn record_from_invitation(node: &Node, invitation: &CollabInvitation) -> CollabRecord {
    let self_participant = hex(&invitation.invitation_id);
    CollabRecord {
        id: hex(&invitation.collaboration_id),
        role: CollabRole::Guest,
        name: invitation.collaboration_name.clone(),
        description: String::new(),
        state: CollabState::AwaitingHost,
        host: identity_of(&invitation.host),
        self_participant: self_participant.clone(),
        revision: 0,
        delete_policy: DeletePolicy::Keep,
        security: Default::default(),
        workspaces: invitation
            .workspaces
            .iter()
            .map(|w| WorkspaceRecord {
                id: hex(&w.workspace_id),
                name: w.name.clone(),
                description: w.description.clone(),
                config: Default::default(),
                modes: BTreeMap::from([(self_participant.clone(), w.mode.clone())]),
            })
            .collect(),
        participants: vec![
            ParticipantRecord {
                id: "host".into(),
                role: "host".into(),
                title: invitation.host.title.clone(),
                status: "active".into(),
                identity: None,
                contact: None,
                instance_id: None,
            },
            ParticipantRecord {
                id: self_participant,
                role: "guest".into(),
                title: node.info.title.clone(),
                status: "active".into(),
                identity: None,
                contact: None,
                instance_id: None,
            },
        ],
        invitations: Vec::new(),
        links: BTreeMap::new(),
        version: 0,
        created_at: rfc3339(unix_now()),
        updated_at: String::new(),
    }
}

/// A refusal by the host, passed on with the host's own code: the admin needs to know that the
/// invitation was withdrawn or replaced, not merely that "the peer refused".
fn host_refusal(e: FederationError) -> NodeError {
    match e {
        FederationError::Refused { error, .. } => {
            NodeError::new(error.code, format!("the host refused: {}", error.message))
        }
        other => other.into(),
    }
}

/// Accepts an invitation: sends the signed response to the host, or returns it for a file.
pub async fn accept(
    node: &Node,
    caller: &Caller,
    body: AcceptInvitation,
) -> NodeResult<InvitationAccepted> {
    caller.require(ferry_proto::Role::Admin)?;
    let invitation = read_invitation(node, &body.code).await?;
    if body.contact.chars().count() > 250 {
        return Err(NodeError::new(
            ErrorCode::InvalidRequest,
            "contact details have at most 250 characters",
        ));
    }
    let response = CollabResponse {
        version: TICKET_VERSION,
        invitation_id: invitation.invitation_id,
        collaboration_id: invitation.collaboration_id,
        guest: Issuer {
            instance_id: node.info.instance_id.clone(),
            title: node.info.title.clone(),
            url: node.info.public_url.clone(),
            public_key: node.identity.public_key(),
        },
        contact: body.contact.clone(),
        secret: invitation.secret,
    }
    .issue(node.identity.signing_key());
    let mut record = record_from_invitation(node, &invitation);
    if !body.response_file {
        let snapshot: CollabSnapshot = node
            .federation
            .call(
                crate::federation::Callee::issuer(
                    &invitation.host,
                    collab_flows(&record, &invitation.host.instance_id),
                ),
                Method::POST,
                federation::COLLAB_RESPONSES_PATH,
                &GuestResponse {
                    response: response.clone(),
                },
            )
            .await
            .map_err(host_refusal)?;
        merge_snapshot(&mut record, &snapshot)?;
    }
    let entry = audit(
        &caller.name,
        "collab.accepted",
        &record,
        json!({
            "host": invitation.host.instance_id, "host_title": invitation.host.title, "contact": body.contact,
            "delivery": if body.response_file { "file" } else { "online" },
        }),
    );
    let store = node.store.clone();
    let stored = blocking(move || store.insert_collab(&record, &entry)).await?;
    Ok(InvitationAccepted {
        collaboration: view(&stored),
        response: body.response_file.then_some(response),
    })
}

/// What applying a snapshot did.
pub(crate) struct Merged {
    /// The audit event that names it.
    pub(crate) event: &'static str,
    /// Workspaces that ended for this guest (`None` inside: the whole collaboration).
    pub(crate) ended: Vec<Option<String>>,
}

/// Brings a guest's record up to the host's snapshot: info, workspaces and own modes,
/// participants, and standing. Links to workspaces that ended go; so do all links once the
/// collaboration is over for this guest.
pub(crate) fn merge_snapshot(
    record: &mut CollabRecord,
    snapshot: &CollabSnapshot,
) -> NodeResult<Merged> {
    check_snapshot(record, snapshot)?;
    let event = match snapshot.state.as_str() {
        "active" => CollabEvent::HostConfirmed,
        "removed" => CollabEvent::RemovedByHost,
        "deleted" => CollabEvent::Delete,
        other => {
            return Err(NodeError::new(
                ErrorCode::InvalidRequest,
                format!("unknown collaboration state '{other}' in a snapshot"),
            ));
        }
    };
    let was = record.state;
    record.state =
        collab::apply(record.role, record.state, event).map_err(|e| conflict(e.to_string()))?;
    record.name = snapshot.name.clone();
    record.description = snapshot.description.clone();
    record.revision = snapshot.revision;
    let mut workspaces = Vec::new();
    for w in &snapshot.workspaces {
        AccessMode::parse(&w.mode)?;
        workspaces.push(WorkspaceRecord {
            id: w.id.clone(),
            name: w.name.clone(),
            description: w.description.clone(),
            config: w.config.clone(),
            modes: BTreeMap::from([(snapshot.participant_id.clone(), w.mode.clone())]),
        });
    }
    let mut ended: Vec<Option<String>> = record
        .workspaces
        .iter()
        .filter(|old| !workspaces.iter().any(|w| w.id == old.id))
        .map(|old| Some(old.id.clone()))
        .collect();
    record.workspaces = workspaces;
    record.participants = snapshot
        .participants
        .iter()
        .map(|p| ParticipantRecord {
            id: p.id.clone(),
            role: p.role.clone(),
            title: p.title.clone(),
            status: p.status.clone(),
            identity: None,
            contact: None,
            instance_id: p.instance_id.clone(),
        })
        .collect();
    let current: Vec<String> = record.workspaces.iter().map(|w| w.id.clone()).collect();
    record.links.retain(|w, _| current.contains(w));
    if record.state.is_over() {
        record.links.clear();
        ended = vec![None];
    }
    let event = match record.state {
        CollabState::Removed => "collab.removed_by_host",
        CollabState::Deleted => "collab.deleted_by_host",
        _ if was == CollabState::AwaitingHost => "collab.confirmed_by_host",
        _ => "collab.updated_by_host",
    };
    Ok(Merged { event, ended })
}

/// A snapshot must be about this collaboration and this guest, with well-formed ids.
fn check_snapshot(record: &CollabRecord, snapshot: &CollabSnapshot) -> NodeResult<()> {
    let invalid =
        |what: &str| NodeError::new(ErrorCode::InvalidRequest, format!("the snapshot {what}"));
    if snapshot.collaboration_id != record.id {
        return Err(invalid("is about another collaboration"));
    }
    if snapshot.participant_id != record.self_participant {
        return Err(invalid("is meant for another guest"));
    }
    if snapshot
        .workspaces
        .iter()
        .any(|w| !collab::is_valid_id(&w.id))
    {
        return Err(invalid("names a workspace with a malformed id"));
    }
    for w in &snapshot.workspaces {
        collab::check_workspace(&w.name, &w.description)?;
    }
    Ok(())
}

/// Applies a snapshot from the host to this guest's record, unless it is older than what this
/// guest has; ends workspaces that went. Returns the record as saved.
pub(crate) async fn apply_snapshot(
    node: &Node,
    mut record: CollabRecord,
    snapshot: &CollabSnapshot,
    actor: &str,
) -> NodeResult<CollabRecord> {
    // Two snapshots may arrive together: the one that loses the race reads again and applies
    // if it is still the newer one.
    for _ in 0..3 {
        if record.state.is_over() {
            return Err(conflict(format!(
                "collaboration '{}' is {} here",
                record.name,
                record.state.as_str()
            )));
        }
        if snapshot.revision <= record.revision && record.state == CollabState::Active {
            return Ok(record);
        }
        let mut merged_record = record.clone();
        let merged = merge_snapshot(&mut merged_record, snapshot)?;
        let entry = audit(
            actor,
            merged.event,
            &merged_record,
            json!({"revision": snapshot.revision, "state": snapshot.state}),
        );
        match save(node, merged_record, entry).await {
            Ok(saved) => {
                for workspace in &merged.ended {
                    end_workspace(node, &saved, workspace.as_deref()).await?;
                }
                return Ok(saved);
            }
            Err(e) if e.0.code == ErrorCode::CollabStateConflict => {
                record = load(node, record.id.clone()).await?;
            }
            Err(e) => return Err(e),
        }
    }
    Err(conflict(
        "the collaboration kept changing while a snapshot was applied; it applies at the next contact",
    ))
}

fn guest_only(record: &CollabRecord, what: &str) -> NodeResult<()> {
    if record.role != CollabRole::Guest {
        return Err(conflict(format!(
            "this instance hosts collaboration '{}'; only a guest can {what}",
            record.name
        )));
    }
    ensure_not_over(record)
}

/// Asks the host for this guest's current view of the collaboration and applies it.
pub async fn refresh(node: &Node, caller: &Caller, id: String) -> NodeResult<Collaboration> {
    caller.require(ferry_proto::Role::Admin)?;
    let record = load(node, id).await?;
    guest_only(&record, "catch up with the host")?;
    let asked: Result<CollabSnapshot, _> = node
        .federation
        .call(
            crate::federation::Callee::of(
                &record.host,
                collab_flows(&record, &record.host.instance_id),
            ),
            Method::POST,
            federation::COLLAB_FETCH_PATH,
            &CollabRef {
                collaboration_id: record.id.clone(),
            },
        )
        .await;
    // The host's refusals that say where this guest stands are news, not failures.
    let ended = |state: &str| CollabSnapshot {
        collaboration_id: record.id.clone(),
        name: record.name.clone(),
        description: record.description.clone(),
        revision: record.revision + 1,
        state: state.into(),
        participant_id: record.self_participant.clone(),
        workspaces: Vec::new(),
        participants: Vec::new(),
    };
    // Only a guest the host confirmed can learn this way that it was removed or that the
    // collaboration was deleted: the host knows nothing of a guest still awaiting it.
    let confirmed = record.state == CollabState::Active;
    let snapshot = match asked {
        Ok(snapshot) => snapshot,
        Err(FederationError::Refused { error, .. })
            if confirmed && error.code == ErrorCode::CollabGuestRemoved =>
        {
            ended("removed")
        }
        Err(FederationError::Refused { error, .. })
            if confirmed && error.code == ErrorCode::CollabDeleted =>
        {
            ended("deleted")
        }
        Err(e) => return Err(e.into()),
    };
    let actor = format!("{} (refresh)", caller.name);
    Ok(view(
        &apply_snapshot(node, record, &snapshot, &actor).await?,
    ))
}

/// Leaves a collaboration: the host hears of it; linked spaces and items stay, received items
/// follow this instance's delete policy.
pub async fn leave(node: &Node, caller: &Caller, id: String) -> NodeResult<CollabChanged> {
    caller.require(ferry_proto::Role::Admin)?;
    let mut record = load(node, id).await?;
    guest_only(&record, "leave; the host deletes the collaboration instead")?;
    record.state = collab::apply(record.role, record.state, CollabEvent::Leave)
        .map_err(|e| conflict(e.to_string()))?;
    let unlinked: Vec<String> = std::mem::take(&mut record.links)
        .into_values()
        .map(|l| l.name)
        .collect();
    let entry = audit(
        &caller.name,
        "collab.left",
        &record,
        json!({"unlinked_spaces": unlinked}),
    );
    // Left here first: leaving stands whether or not the host can be told now.
    let saved = save(node, record, entry).await?;
    end_workspace(node, &saved, None).await?;
    let told = node
        .federation
        .call::<_, serde_json::Value>(
            crate::federation::Callee::of(
                &saved.host,
                collab_flows(&saved, &saved.host.instance_id),
            ),
            Method::POST,
            federation::COLLAB_LEAVE_PATH,
            &CollabRef {
                collaboration_id: saved.id.clone(),
            },
        )
        .await
        .map_err(|e| NodeError::from(e).0.message);
    if let Err(error) = &told {
        let entry = audit(
            "ferry",
            "collab.host_not_told",
            &saved,
            json!({ "error": error }),
        );
        let store = node.store.clone();
        blocking(move || store.audit(&entry)).await?;
    }
    Ok(CollabChanged {
        collaboration: view(&saved),
        not_notified: match told {
            Ok(_) => Vec::new(),
            Err(_) => vec![saved.host.title.clone()],
        },
    })
}
