//! The host's side: creating a collaboration and its workspaces, inviting guests, taking their
//! responses, setting their modes, removing them, and deleting the collaboration.

use super::{
    active_guests, audit, conflict, end_workspace, ensure_not_over, expired, load, same_url, save,
    tell_guests, view, workspace_id,
};
use crate::caller::Caller;
use crate::error::{NodeError, NodeResult};
use crate::ids::{hex, hex_id, id_bytes, random, rfc3339, unix_now};
use crate::node::Node;
use crate::task::blocking;
use ferry_core::collab::{
    self, AccessMode, CollabEvent, CollabRole, CollabState, DeletePolicy, GuestStatus,
};
use ferry_core::peering;
use ferry_proto::ticket::{
    CollabInvitation, CollabResponse, Issuer, OfferedWorkspace, TICKET_VERSION,
};
use ferry_proto::{
    CollabChanged, CollabSnapshot, Collaboration, ErrorCode, GuestResponse, InvitationCreated,
    InvitationView, NewCollab, NewInvitation, NewWorkspace, OfferedAccess, RefreshInvitation,
    SetAccess, WorkspaceConfig, WorkspacePatch,
};
use ferry_store::{
    CollabRecord, InvitationRecord, LinkedSpace, ParticipantRecord, PeerIdentity, StoreError,
    StoredIdentity, WorkspaceRecord,
};
use reqwest::Method;
use serde_json::json;
use std::collections::BTreeMap;

fn host_only(record: &CollabRecord) -> NodeResult<()> {
    if record.role != CollabRole::Host {
        return Err(NodeError::new(
            ErrorCode::CollabHostOnly,
            format!(
                "only the host ('{}') can do this in collaboration '{}'",
                record.host.title, record.name
            ),
        ));
    }
    ensure_not_over(record)
}

fn check_config(config: &WorkspaceConfig) -> NodeResult<()> {
    collab::check_workspace_config(
        &config.feature_layers,
        config.max_item_bytes,
        config.two_way_editing,
    )?;
    Ok(())
}

fn invalid(message: impl Into<String>) -> NodeError {
    NodeError::new(ErrorCode::InvalidRequest, message)
}

/// The guest a reference names: participant id, instance id or title.
fn guest_id(record: &CollabRecord, reference: &str) -> NodeResult<String> {
    record
        .participants
        .iter()
        .filter(|p| p.role == "guest")
        .find(|p| {
            p.id == reference
                || p.title == reference
                || p.identity
                    .as_ref()
                    .is_some_and(|i| i.instance_id == reference)
        })
        .map(|p| p.id.clone())
        .ok_or_else(|| {
            NodeError::new(
                ErrorCode::ParticipantNotFound,
                format!(
                    "collaboration '{}' has no guest '{reference}'; `ferry collab show {}` lists them",
                    record.name, record.id
                ),
            )
        })
}

/// A guest that takes part now: only those have access modes.
fn active_guest_id(record: &CollabRecord, reference: &str) -> NodeResult<String> {
    let id = guest_id(record, reference)?;
    match record.participant(&id) {
        Some(p) if p.status == GuestStatus::Active.as_str() => Ok(id),
        Some(p) => Err(conflict(format!(
            "guest '{}' {} the collaboration; only a guest taking part has access modes",
            p.title, p.status
        ))),
        None => Err(NodeError::internal("a resolved guest has no record")),
    }
}

/// Workspace references (id or name) to access modes, checked against the collaboration.
/// `none` is allowed where `allow_none` (taking a guest out of a workspace).
fn resolve_access(
    record: &CollabRecord,
    access: &BTreeMap<String, String>,
    allow_none: bool,
) -> NodeResult<Vec<(String, Option<AccessMode>)>> {
    access
        .iter()
        .map(|(workspace, mode)| {
            let id = workspace_id(record, workspace)?;
            let mode = match mode.as_str() {
                "none" if allow_none => None,
                other => Some(AccessMode::parse(other)?),
            };
            Ok((id, mode))
        })
        .collect()
}

fn new_workspace(
    record: &CollabRecord,
    new: &NewWorkspace,
) -> NodeResult<(WorkspaceRecord, String)> {
    collab::check_workspace(&new.name, &new.description)?;
    check_config(&new.config)?;
    if record.workspaces.iter().any(|w| w.name == new.name) {
        return Err(invalid(format!(
            "collaboration '{}' already has a workspace named '{}'",
            record.name, new.name
        )));
    }
    let mut modes = BTreeMap::new();
    for (guest, mode) in &new.access {
        let id = active_guest_id(record, guest)?;
        modes.insert(id, AccessMode::parse(mode)?.as_str().to_string());
    }
    Ok((
        WorkspaceRecord {
            id: hex_id(),
            name: new.name.clone(),
            description: new.description.clone(),
            config: new.config.clone(),
            modes,
        },
        new.space.clone(),
    ))
}

/// The local space a new workspace links, by name or id.
async fn linked_space(node: &Node, space: &str) -> NodeResult<LinkedSpace> {
    let store = node.store.clone();
    let space = space.to_string();
    let found = blocking(move || store.space(&space)).await?;
    Ok(LinkedSpace::from(&found))
}

/// Creates a collaboration hosted here, with its first workspaces and this instance's links.
pub async fn create(node: &Node, caller: &Caller, new: NewCollab) -> NodeResult<Collaboration> {
    caller.require(ferry_proto::Role::Admin)?;
    collab::check_collab(&new.name, &new.description)?;
    if new.workspaces.is_empty() {
        return Err(invalid("a collaboration has at least one workspace"));
    }
    let host = PeerIdentity {
        instance_id: node.info.instance_id.clone(),
        title: node.info.title.clone(),
        url: node.info.public_url.clone(),
        public_key: node.identity.public_key(),
    };
    let self_participant = hex_id();
    let mut record = CollabRecord {
        id: hex_id(),
        role: CollabRole::Host,
        name: new.name.clone(),
        description: new.description.clone(),
        state: CollabState::Active,
        host,
        self_participant: self_participant.clone(),
        revision: 1,
        delete_policy: DeletePolicy::Keep,
        security: Default::default(),
        workspaces: Vec::new(),
        participants: vec![ParticipantRecord {
            id: self_participant,
            role: "host".into(),
            title: node.info.title.clone(),
            status: GuestStatus::Active.as_str().into(),
            identity: None,
            contact: None,
            instance_id: None,
        }],
        invitations: Vec::new(),
        links: BTreeMap::new(),
        version: 0,
        created_at: rfc3339(unix_now()),
        updated_at: String::new(),
    };
    for workspace in &new.workspaces {
        let (workspace, space) = new_workspace(&record, workspace)?;
        record
            .links
            .insert(workspace.id.clone(), linked_space(node, &space).await?);
        record.workspaces.push(workspace);
    }
    let entry = audit(
        &caller.name,
        "collab.created",
        &record,
        json!({"name": record.name, "workspaces": record.workspaces.iter().map(|w| &w.name).collect::<Vec<_>>()}),
    );
    let store = node.store.clone();
    let stored = blocking(move || store.insert_collab(&record, &entry)).await?;
    Ok(view(&stored))
}

/// Saves a host-side change and tells every guest taking part (plus `also`, e.g. a guest just
/// removed).
async fn save_and_tell(
    node: &Node,
    mut record: CollabRecord,
    entry: ferry_store::NewAuditEntry,
    also: &[String],
) -> NodeResult<CollabChanged> {
    record.revision += 1;
    let saved = save(node, record, entry).await?;
    let mut guests = active_guests(&saved);
    guests.extend(also.iter().cloned());
    let not_notified = tell_guests(node, &saved, &guests).await;
    Ok(CollabChanged {
        collaboration: view(&saved),
        not_notified,
    })
}

/// Adds a workspace, links the host's space to it, and sets existing guests' modes in it.
pub async fn add_workspace(
    node: &Node,
    caller: &Caller,
    id: String,
    new: NewWorkspace,
) -> NodeResult<CollabChanged> {
    caller.require(ferry_proto::Role::Admin)?;
    let mut record = load(node, id).await?;
    host_only(&record)?;
    let (workspace, space) = new_workspace(&record, &new)?;
    let entry = audit(
        &caller.name,
        "collab.workspace_added",
        &record,
        json!({"workspace": workspace.id, "name": workspace.name, "access": workspace.modes}),
    );
    record
        .links
        .insert(workspace.id.clone(), linked_space(node, &space).await?);
    record.workspaces.push(workspace);
    save_and_tell(node, record, entry, &[]).await
}

/// Changes a workspace's name, description or config.
pub async fn update_workspace(
    node: &Node,
    caller: &Caller,
    id: String,
    workspace: String,
    patch: WorkspacePatch,
) -> NodeResult<CollabChanged> {
    caller.require(ferry_proto::Role::Admin)?;
    let mut record = load(node, id).await?;
    host_only(&record)?;
    let target = workspace_id(&record, &workspace)?;
    if let Some(name) = &patch.name
        && record
            .workspaces
            .iter()
            .any(|w| &w.name == name && w.id != target)
    {
        return Err(invalid(format!(
            "a workspace named '{name}' already exists"
        )));
    }
    let w = record
        .workspaces
        .iter_mut()
        .find(|w| w.id == target)
        .expect("resolved above");
    if let Some(name) = &patch.name {
        w.name = name.clone();
    }
    if let Some(description) = &patch.description {
        w.description = description.clone();
    }
    if let Some(config) = &patch.config {
        check_config(config)?;
        w.config = config.clone();
    }
    collab::check_workspace(&w.name, &w.description)?;
    let entry = audit(
        &caller.name,
        "collab.workspace_updated",
        &record,
        json!({"workspace": target, "patch": patch}),
    );
    save_and_tell(node, record, entry, &[]).await
}

/// Deletes a workspace. Every participant's linked space and items stay; received items follow
/// each participant's delete policy.
pub async fn delete_workspace(
    node: &Node,
    caller: &Caller,
    id: String,
    workspace: String,
) -> NodeResult<CollabChanged> {
    caller.require(ferry_proto::Role::Admin)?;
    let mut record = load(node, id).await?;
    host_only(&record)?;
    let target = workspace_id(&record, &workspace)?;
    if record.workspaces.len() == 1 {
        return Err(conflict(
            "a collaboration keeps at least one workspace; delete the collaboration instead",
        ));
    }
    record.workspaces.retain(|w| w.id != target);
    let unlinked = record.links.remove(&target);
    let entry = audit(
        &caller.name,
        "collab.workspace_deleted",
        &record,
        json!({"workspace": target, "unlinked_space": unlinked.map(|l| l.name)}),
    );
    let changed = save_and_tell(node, record, entry, &[]).await?;
    let saved = load(node, changed.collaboration.id.clone()).await?;
    end_workspace(node, &saved, Some(&target)).await?;
    Ok(changed)
}

/// Sets one guest's modes: workspace to `send`, `receive`, `send_receive`, or `none`.
pub async fn set_access(
    node: &Node,
    caller: &Caller,
    id: String,
    guest: String,
    body: SetAccess,
) -> NodeResult<CollabChanged> {
    caller.require(ferry_proto::Role::Admin)?;
    let mut record = load(node, id).await?;
    host_only(&record)?;
    let guest = active_guest_id(&record, &guest)?;
    if body.access.is_empty() {
        return Err(invalid("give at least one workspace=mode"));
    }
    let changes = resolve_access(&record, &body.access, true)?;
    for (workspace, mode) in &changes {
        let w = record
            .workspaces
            .iter_mut()
            .find(|w| &w.id == workspace)
            .expect("resolved above");
        match mode {
            Some(m) => w.modes.insert(guest.clone(), m.as_str().into()),
            None => w.modes.remove(&guest),
        };
    }
    let entry = audit(
        &caller.name,
        "collab.access_changed",
        &record,
        json!({"guest": guest, "access": body.access}),
    );
    let collab_id = record.id.clone();
    let changed = save_and_tell(node, record, entry, &[]).await?;
    // The guest knows its new modes now: what they open goes at once.
    for (workspace_id, _) in changes {
        let link = crate::sync::Link::Collab {
            collab_id: collab_id.clone(),
            workspace_id,
        };
        crate::sync::link_changed(node, link).await;
    }
    Ok(changed)
}

/// Removes a guest: it hears of it, and its key is no longer accepted for this collaboration.
pub async fn remove_guest(
    node: &Node,
    caller: &Caller,
    id: String,
    guest: String,
) -> NodeResult<CollabChanged> {
    caller.require(ferry_proto::Role::Admin)?;
    let mut record = load(node, id).await?;
    host_only(&record)?;
    let guest = guest_id(&record, &guest)?;
    let participant = record
        .participants
        .iter_mut()
        .find(|p| p.id == guest)
        .expect("resolved above");
    if participant.status != GuestStatus::Active.as_str() {
        return Err(conflict(format!(
            "guest '{}' already {}",
            participant.title, participant.status
        )));
    }
    participant.status = GuestStatus::Removed.as_str().into();
    let title = participant.title.clone();
    for w in &mut record.workspaces {
        w.modes.remove(&guest);
    }
    let entry = audit(
        &caller.name,
        "collab.guest_removed",
        &record,
        json!({"guest": guest, "title": title}),
    );
    save_and_tell(node, record, entry, &[guest]).await
}

/// Deletes the collaboration: every guest hears of it; linked spaces and items stay, received
/// items follow each participant's delete policy.
pub async fn delete(node: &Node, caller: &Caller, id: String) -> NodeResult<CollabChanged> {
    caller.require(ferry_proto::Role::Admin)?;
    let mut record = load(node, id).await?;
    host_only(&record)?;
    record.state = collab::apply(record.role, record.state, CollabEvent::Delete)
        .map_err(|e| conflict(e.to_string()))?;
    let unlinked: Vec<String> = std::mem::take(&mut record.links)
        .into_values()
        .map(|l| l.name)
        .collect();
    for invitation in &mut record.invitations {
        if invitation.state == "open" {
            invitation.state = "invalidated".into();
        }
    }
    let entry = audit(
        &caller.name,
        "collab.deleted",
        &record,
        json!({"unlinked_spaces": unlinked}),
    );
    // Every guest taking part hears; its snapshot says "deleted".
    let changed = save_and_tell(node, record, entry, &[]).await?;
    let saved = load(node, changed.collaboration.id.clone()).await?;
    end_workspace(node, &saved, None).await?;
    Ok(changed)
}

fn invitation_view(record: &CollabRecord, invitation: &InvitationRecord) -> InvitationView {
    let state = if invitation.state == "open" && expired(invitation.expires_at) {
        "expired".to_string()
    } else {
        invitation.state.clone()
    };
    InvitationView {
        id: invitation.id.clone(),
        guest_url: invitation.guest_url.clone(),
        access: invitation
            .access
            .iter()
            .map(|(workspace_id, mode)| OfferedAccess {
                workspace_id: workspace_id.clone(),
                workspace: record
                    .workspaces
                    .iter()
                    .find(|w| &w.id == workspace_id)
                    .map_or_else(|| "(deleted)".into(), |w| w.name.clone()),
                mode: mode.clone(),
            })
            .collect(),
        state,
        expires_at: rfc3339(invitation.expires_at),
        guest: invitation
            .accepted_by
            .as_ref()
            .and_then(|id| record.participant(id))
            .map(|p| p.title.clone()),
        created_at: invitation.created_at.clone(),
    }
}

/// Mints a new secret and expiry for an invitation and renders its signed code.
fn issue_invitation(
    node: &Node,
    record: &CollabRecord,
    invitation: &mut InvitationRecord,
    validity_secs: i64,
) -> String {
    let secret = random::<32>();
    invitation.secret_hash = blake3::hash(&secret).to_hex().to_string();
    invitation.expires_at = unix_now() + validity_secs;
    let workspaces = invitation
        .access
        .iter()
        .filter_map(|(workspace_id, mode)| {
            let w = record.workspaces.iter().find(|w| &w.id == workspace_id)?;
            Some(OfferedWorkspace {
                workspace_id: id_bytes(&w.id),
                name: w.name.clone(),
                description: w.description.clone(),
                mode: mode.clone(),
            })
        })
        .collect();
    CollabInvitation {
        version: TICKET_VERSION,
        invitation_id: id_bytes(&invitation.id),
        host: Issuer {
            instance_id: node.info.instance_id.clone(),
            title: node.info.title.clone(),
            url: node.info.public_url.clone(),
            public_key: node.identity.public_key(),
        },
        collaboration_id: id_bytes(&record.id),
        collaboration_name: record.name.clone(),
        guest_url: invitation.guest_url.clone(),
        workspaces,
        expires_at: invitation.expires_at,
        secret,
    }
    .issue(node.identity.signing_key())
}

fn validity(expires_in: Option<&str>) -> NodeResult<i64> {
    Ok(match expires_in {
        Some(text) => peering::parse_validity(text)?,
        None => peering::DEFAULT_VALIDITY_SECS,
    })
}

/// Invites one guest instance, by URL, with a mode per offered workspace.
pub async fn invite(
    node: &Node,
    caller: &Caller,
    id: String,
    new: NewInvitation,
) -> NodeResult<InvitationCreated> {
    caller.require(ferry_proto::Role::Admin)?;
    let validity = validity(new.expires_in.as_deref())?;
    let mut record = load(node, id).await?;
    host_only(&record)?;
    let url = reqwest::Url::parse(new.guest_url.trim())
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
        .ok_or_else(|| {
            invalid(format!(
                "'{}' is not an instance URL: give the guest's public URL, e.g. https://ferry.example.org",
                new.guest_url
            ))
        })?;
    if same_url(url.as_str(), &node.info.public_url) {
        return Err(NodeError::new(
            ErrorCode::InviteOwn,
            "this URL is this instance's own; invite another instance",
        ));
    }
    if new.access.is_empty() {
        return Err(invalid(
            "an invitation offers at least one workspace: give --access WORKSPACE=MODE",
        ));
    }
    let access = resolve_access(&record, &new.access, false)?
        .into_iter()
        .map(|(w, m)| (w, m.expect("none refused").as_str().to_string()))
        .collect();
    let mut invitation = InvitationRecord {
        id: hex_id(),
        guest_url: new.guest_url.trim().to_string(),
        access,
        secret_hash: String::new(),
        expires_at: 0,
        state: "open".into(),
        accepted_by: None,
        response_hash: None,
        refreshes: 0,
        created_at: rfc3339(unix_now()),
    };
    let code = issue_invitation(node, &record, &mut invitation, validity);
    let entry = audit(
        &caller.name,
        "collab.invited",
        &record,
        json!({"invitation": invitation.id, "guest_url": invitation.guest_url, "access": invitation.access, "expires_at": invitation.expires_at}),
    );
    record.invitations.push(invitation.clone());
    let saved = save(node, record, entry).await?;
    Ok(InvitationCreated {
        invitation: invitation_view(&saved, &invitation),
        code,
    })
}

pub async fn list_invitations(
    node: &Node,
    caller: &Caller,
    id: String,
) -> NodeResult<Vec<InvitationView>> {
    caller.require(ferry_proto::Role::Admin)?;
    let record = load(node, id).await?;
    if record.role != CollabRole::Host {
        return Err(NodeError::new(
            ErrorCode::CollabHostOnly,
            "only the host keeps invitations",
        ));
    }
    Ok(record
        .invitations
        .iter()
        .map(|i| invitation_view(&record, i))
        .collect())
}

fn open_invitation(record: &CollabRecord, id: &str) -> NodeResult<usize> {
    let index = record
        .invitations
        .iter()
        .position(|i| i.id == id)
        .ok_or_else(|| {
            NodeError::new(
                ErrorCode::InvitationNotFound,
                format!(
                    "collaboration '{}' has no invitation {id}; `ferry collab invitation list` shows them",
                    record.name
                ),
            )
        })?;
    let state = &record.invitations[index].state;
    if state != "open" {
        return Err(conflict(format!(
            "only an open invitation can change; this one is {state}"
        )));
    }
    Ok(index)
}

/// A new code for an open invitation, with a new expiry; the old code stops working.
pub async fn refresh_invitation(
    node: &Node,
    caller: &Caller,
    id: String,
    invitation: String,
    body: RefreshInvitation,
) -> NodeResult<InvitationCreated> {
    caller.require(ferry_proto::Role::Admin)?;
    let validity = validity(body.expires_in.as_deref())?;
    let mut record = load(node, id).await?;
    host_only(&record)?;
    let index = open_invitation(&record, &invitation)?;
    let mut refreshed = record.invitations[index].clone();
    refreshed.refreshes += 1;
    let code = issue_invitation(node, &record, &mut refreshed, validity);
    let entry = audit(
        &caller.name,
        "collab.invitation_refreshed",
        &record,
        json!({"invitation": refreshed.id, "expires_at": refreshed.expires_at}),
    );
    record.invitations[index] = refreshed.clone();
    let saved = save(node, record, entry).await?;
    Ok(InvitationCreated {
        invitation: invitation_view(&saved, &refreshed),
        code,
    })
}

/// Withdraws an open invitation; its code stops working.
pub async fn invalidate_invitation(
    node: &Node,
    caller: &Caller,
    id: String,
    invitation: String,
) -> NodeResult<InvitationView> {
    caller.require(ferry_proto::Role::Admin)?;
    let mut record = load(node, id).await?;
    host_only(&record)?;
    let index = open_invitation(&record, &invitation)?;
    record.invitations[index].state = "invalidated".into();
    record.invitations[index].secret_hash.clear();
    let entry = audit(
        &caller.name,
        "collab.invitation_invalidated",
        &record,
        json!({"invitation": invitation}),
    );
    let saved = save(node, record, entry).await?;
    Ok(invitation_view(&saved, &saved.invitations[index]))
}

/// What a valid guest response does.
pub(crate) enum ResponseCheck {
    /// First delivery: the guest joins.
    Fresh(CollabRecord),
    /// The same response again (a retry whose answer was lost): the guest is in already.
    Repeated(CollabRecord),
}

impl ResponseCheck {
    /// The directions of data the answered invitation offers, between this host and the guest.
    pub(crate) fn invitation_flows(&self, response: &CollabResponse) -> ferry_core::policy::Flows {
        let (ResponseCheck::Fresh(record) | ResponseCheck::Repeated(record)) = self;
        let id = hex(&response.invitation_id);
        record
            .invitations
            .iter()
            .find(|i| i.id == id)
            .map(|i| crate::federation::policy::invitation_flows(&i.access))
            .unwrap_or_default()
    }
}

fn response_hash(text: &str) -> String {
    blake3::hash(text.trim().as_bytes()).to_hex().to_string()
}

/// Checks a parsed response against its invitation without changing anything.
pub(crate) async fn check_response(
    node: &Node,
    response: &CollabResponse,
    text: &str,
) -> NodeResult<ResponseCheck> {
    let collab_id = hex(&response.collaboration_id);
    let store = node.store.clone();
    let (record, peers, collabs) = blocking(move || {
        Ok::<_, StoreError>((
            store.collab(&collab_id),
            store.list_peers()?,
            store.list_collabs()?,
        ))
    })
    .await?;
    let record = record?;
    if record.role != CollabRole::Host {
        return Err(NodeError::new(
            ErrorCode::CollabHostOnly,
            "this instance is not the host of that collaboration",
        ));
    }
    if record.state == CollabState::Deleted {
        return Err(NodeError::new(
            ErrorCode::CollabDeleted,
            format!("the host deleted collaboration '{}'", record.name),
        ));
    }
    let invitation_id = hex(&response.invitation_id);
    let invitation = record
        .invitations
        .iter()
        .find(|i| i.id == invitation_id)
        .ok_or_else(|| {
            NodeError::new(
                ErrorCode::InvitationNotFound,
                "the host has no such invitation; ask for a new one",
            )
        })?;
    if let Some(repeated) = check_invitation_state(&record, invitation, text)? {
        return Ok(repeated);
    }
    check_invitation_secret(invitation, response)?;
    let guest = &response.guest;
    if !same_url(&guest.url, &invitation.guest_url) {
        return Err(NodeError::new(
            ErrorCode::InviteWrongInstance,
            format!(
                "this invitation is meant for {}, not {}",
                invitation.guest_url, guest.url
            ),
        ));
    }
    // A guest joins once: one that left or was removed needs no second record.
    if let Some(known) = record.participants.iter().find(|p| {
        p.identity
            .as_ref()
            .is_some_and(|i| i.instance_id == guest.instance_id)
    }) {
        return Err(NodeError::new(
            ErrorCode::InviteReused,
            format!(
                "this instance was a guest of the collaboration already ({})",
                known.status
            ),
        ));
    }
    super::check_pinned_key(&peers, &collabs, guest)?;
    Ok(ResponseCheck::Fresh(record))
}

/// Refuses a response to an invitation that is no longer open; recognises the very response
/// that was accepted, as long as its guest still takes part.
fn check_invitation_state(
    record: &CollabRecord,
    invitation: &InvitationRecord,
    text: &str,
) -> NodeResult<Option<ResponseCheck>> {
    match invitation.state.as_str() {
        "invalidated" => Err(NodeError::new(
            ErrorCode::InviteInvalidated,
            "the host withdrew this invitation; ask for a new one",
        )),
        "accepted" if invitation.response_hash.as_deref() == Some(&response_hash(text)) => {
            let active = invitation
                .accepted_by
                .as_deref()
                .and_then(|id| record.participant(id))
                .is_some_and(|p| p.status == GuestStatus::Active.as_str());
            if active {
                Ok(Some(ResponseCheck::Repeated(record.clone())))
            } else {
                Err(NodeError::new(
                    ErrorCode::CollabGuestRemoved,
                    "the guest that answered this invitation no longer takes part",
                ))
            }
        }
        "accepted" => Err(NodeError::new(
            ErrorCode::InviteReused,
            "this invitation was already accepted; ask the host for a new one",
        )),
        _ => Ok(None),
    }
}

/// The response carries the current code's secret, before the code expired.
fn check_invitation_secret(
    invitation: &InvitationRecord,
    response: &CollabResponse,
) -> NodeResult<()> {
    if blake3::hash(&response.secret).to_hex().as_str() != invitation.secret_hash {
        return Err(if invitation.refreshes > 0 {
            NodeError::new(
                ErrorCode::InviteSuperseded,
                "this invitation was refreshed: a newer code replaced it; use the newest one",
            )
        } else {
            NodeError::new(
                ErrorCode::InviteTampered,
                "the response does not carry this invitation's secret",
            )
        });
    }
    if expired(invitation.expires_at) {
        return Err(NodeError::new(
            ErrorCode::InviteExpired,
            "this invitation expired before it was accepted; ask the host to refresh it",
        ));
    }
    Ok(())
}

/// Whether the instance at the invitation's URL is the one that answered: a response names its
/// own URL, so only asking that URL binds the invitation to it. `Err` when it cannot be asked.
pub(crate) async fn confirm_guest(
    node: &Node,
    response: &CollabResponse,
    flows: ferry_core::policy::Flows,
) -> Result<(), NodeError> {
    let guest = &response.guest;
    let callee = crate::federation::Callee {
        instance_id: None,
        ..crate::federation::Callee::issuer(guest, flows)
    };
    let found: ferry_proto::InstanceIdentity = match node
        .federation
        .call(
            callee,
            Method::POST,
            crate::federation::IDENTITY_PATH,
            &json!({}),
        )
        .await
    {
        Ok(found) => found,
        // Answered, but not with the key that signed the response: another instance.
        Err(crate::federation::FederationError::Unverified { .. }) => {
            return Err(wrong_instance(guest));
        }
        Err(e) => return Err(e.into()),
    };
    if found.instance_id != guest.instance_id
        || found.public_key != crate::instance::key_text(&guest.public_key)
    {
        return Err(wrong_instance(guest));
    }
    Ok(())
}

fn wrong_instance(guest: &ferry_proto::ticket::Issuer) -> NodeError {
    NodeError::new(
        ErrorCode::InviteWrongInstance,
        format!(
            "the instance at {} is not the one that answered this invitation",
            guest.url
        ),
    )
}

/// Lets the guest of a checked response in: pins it, gives it the invitation's modes.
pub(crate) async fn apply_response(
    node: &Node,
    response: &CollabResponse,
    text: &str,
    check: ResponseCheck,
    actor: &str,
    delivery: serde_json::Value,
) -> NodeResult<(CollabRecord, CollabSnapshot)> {
    let mut record = match check {
        ResponseCheck::Repeated(record) => {
            let snapshot = snapshot_of_invitation(&record, &response.invitation_id)?;
            return Ok((record, snapshot));
        }
        ResponseCheck::Fresh(record) => record,
    };
    let invitation_id = hex(&response.invitation_id);
    let guest = &response.guest;
    let invitation = record
        .invitations
        .iter_mut()
        .find(|i| i.id == invitation_id)
        .ok_or_else(|| NodeError::internal("a checked invitation is gone"))?;
    invitation.state = "accepted".into();
    invitation.accepted_by = Some(invitation_id.clone());
    invitation.response_hash = Some(response_hash(text));
    let access = invitation.access.clone();
    // The participant id is the invitation's: the guest knows it before the host answers.
    record.participants.push(ParticipantRecord {
        id: invitation_id.clone(),
        role: "guest".into(),
        title: guest.title.clone(),
        status: GuestStatus::Active.as_str().into(),
        identity: Some(StoredIdentity::from(&super::identity_of(guest))),
        contact: Some(response.contact.clone()),
        instance_id: None,
    });
    for w in &mut record.workspaces {
        if let Some(mode) = access.get(&w.id) {
            w.modes.insert(invitation_id.clone(), mode.clone());
        }
    }
    record.revision += 1;
    let entry = audit(
        actor,
        "collab.guest_joined",
        &record,
        json!({"guest": guest.instance_id, "title": guest.title, "contact": response.contact, "invitation": invitation_id, "delivery": delivery}),
    );
    let saved = save(node, record, entry).await?;
    let snapshot = snapshot_of_invitation(&saved, &response.invitation_id)?;
    Ok((saved, snapshot))
}

fn snapshot_of_invitation(
    record: &CollabRecord,
    invitation_id: &[u8; 16],
) -> NodeResult<CollabSnapshot> {
    let id = hex(invitation_id);
    let participant = record
        .participant(&id)
        .ok_or_else(|| NodeError::internal("an accepted invitation has no participant"))?;
    Ok(super::snapshot_for(record, participant))
}

/// Tells every guest but `joined` that someone joined, in the background: the joining call does
/// not wait on other guests.
pub(crate) fn tell_others_later(node: &Node, record: CollabRecord, joined: String) {
    let node = node.clone();
    tokio::spawn(async move {
        let others: Vec<String> = active_guests(&record)
            .into_iter()
            .filter(|g| *g != joined)
            .collect();
        tell_guests(&node, &record, &others).await;
    });
}

/// Imports a guest's response file: the guest joins; it hears so online when it can be reached.
pub async fn import_response(
    node: &Node,
    caller: &Caller,
    id: String,
    body: GuestResponse,
) -> NodeResult<CollabChanged> {
    caller.require(ferry_proto::Role::Admin)?;
    let response = parse_response(&body.response)?;
    if hex(&response.collaboration_id) != id {
        let record = load(node, id).await?;
        return Err(NodeError::new(
            ErrorCode::InvalidRequest,
            format!(
                "this response answers another collaboration than '{}'",
                record.name
            ),
        ));
    }
    let check = check_response(node, &response, &body.response).await?;
    if matches!(check, ResponseCheck::Repeated(_)) {
        return Err(NodeError::new(
            ErrorCode::InviteReused,
            "this response was already accepted",
        ));
    }
    // Where the guest can be reached, ask it who it is; an air-gapped guest cannot be asked,
    // and its admin's delivery of the file is the trust then.
    let flows = check.invitation_flows(&response);
    let confirmed = match confirm_guest(node, &response, flows).await {
        Ok(()) => true,
        Err(e) if e.0.code == ErrorCode::InviteWrongInstance => return Err(e),
        Err(_) => false,
    };
    let (saved, _) = apply_response(
        node,
        &response,
        &body.response,
        check,
        &caller.name,
        json!({"via": "file", "identity_confirmed": confirmed}),
    )
    .await?;
    let not_notified = tell_guests(node, &saved, &active_guests(&saved)).await;
    Ok(CollabChanged {
        collaboration: view(&saved),
        not_notified,
    })
}

/// Decodes a guest response, with errors that name responses.
pub(crate) fn parse_response(text: &str) -> NodeResult<CollabResponse> {
    CollabResponse::parse(text).map_err(|e| {
        crate::error::response_error(e, ferry_proto::ticket::COLLAB_RESPONSE_PREFIX, "the guest")
    })
}
