//! Collaborations: one host, guests with an access mode per workspace, each participant linking
//! its own spaces. The host's handlers are in [`host`], the guest's in [`guest`]; what both use
//! (views, links, the delete policy, telling guests) is here.
//!
//! The host tells a guest about a change by sending it a [`CollabSnapshot`]: the whole of what
//! that guest may know, with the host's revision. Snapshots are idempotent and order-proof (a
//! guest keeps the highest revision), so a guest that missed one catches up with the next, or by
//! fetching one.

pub mod guest;
pub mod host;
pub mod inbound;

use crate::caller::Caller;
use crate::error::{NodeError, NodeResult};
use crate::federation;
use crate::federation::policy::collab_flows;
use crate::ids::unix_now;
use crate::node::Node;
use crate::task::blocking;
use ferry_core::collab::{CollabRole, CollabState, DeletePolicy, GuestStatus};
use ferry_proto::{
    CollabDetail, CollabSnapshot, Collaboration, ErrorCode, GuestAccess, LinkSpace,
    ParticipantView, PeerInfo, PolicyCheck, SetCollabSecurity, SetDeletePolicy,
    SnapshotParticipant, SnapshotWorkspace, WorkspaceView,
};
use ferry_store::{
    Arrivals, CollabRecord, EndedArrivals, LinkedSpace, NewAuditEntry, ParticipantRecord,
    PeerIdentity, PeerRecord,
};
use reqwest::Method;
use serde_json::json;

pub(crate) fn identity_of(issuer: &ferry_proto::ticket::Issuer) -> PeerIdentity {
    PeerIdentity {
        instance_id: issuer.instance_id.clone(),
        title: issuer.title.clone(),
        url: issuer.url.clone(),
        public_key: issuer.public_key,
    }
}

pub(crate) fn peer_info(identity: &PeerIdentity) -> PeerInfo {
    PeerInfo {
        instance_id: identity.instance_id.clone(),
        title: identity.title.clone(),
        url: identity.url.clone(),
        fingerprint: crate::instance::fingerprint(&identity.public_key),
    }
}

/// How this instance's feature layers go over its link to a workspace, for people: `copies`
/// or `references`; a guest that follows the host's setting says so, with the setting.
pub(crate) fn share_label(record: &CollabRecord, workspace_id: &str) -> String {
    let workspace = record.workspaces.iter().find(|w| w.id == workspace_id);
    let by_workspace = match workspace {
        Some(w) if w.config.feature_layers == "reference" && !w.config.two_way_editing => {
            "references"
        }
        _ => "copies",
    };
    let share = record.links.get(workspace_id).map(|l| l.share);
    match (record.role, share) {
        (CollabRole::Guest, Some(ferry_proto::ShareMode::Copies)) => "copies".into(),
        (CollabRole::Guest, Some(ferry_proto::ShareMode::References)) => "references".into(),
        (CollabRole::Guest, _) => format!("workspace ({by_workspace})"),
        (CollabRole::Host, _) => by_workspace.into(),
    }
}

/// The admin's view of a collaboration on this instance.
pub(crate) fn view(record: &CollabRecord) -> Collaboration {
    let is_host = record.role == CollabRole::Host;
    let workspaces = record
        .workspaces
        .iter()
        .map(|w| WorkspaceView {
            id: w.id.clone(),
            name: w.name.clone(),
            description: w.description.clone(),
            config: w.config.clone(),
            my_mode: if is_host {
                "host".into()
            } else {
                w.modes
                    .get(&record.self_participant)
                    .cloned()
                    .unwrap_or_default()
            },
            linked_space: record.links.get(&w.id).map(|l| l.name.clone()),
            share: (!is_host)
                .then(|| record.links.get(&w.id).map(|l| l.share))
                .flatten(),
            // In the order guests joined, as the participant list shows them.
            guests: if is_host {
                record
                    .participants
                    .iter()
                    .filter_map(|p| {
                        Some(GuestAccess {
                            participant_id: p.id.clone(),
                            title: p.title.clone(),
                            mode: w.modes.get(&p.id)?.clone(),
                        })
                    })
                    .collect()
            } else {
                Vec::new()
            },
        })
        .collect();
    let participants = record
        .participants
        .iter()
        .map(|p| ParticipantView {
            id: p.id.clone(),
            title: p.title.clone(),
            role: p.role.clone(),
            status: p.status.clone(),
            is_self: p.id == record.self_participant,
            instance: p.identity.as_ref().map(|i| peer_info(&i.into())),
            contact: p.contact.clone(),
        })
        .collect();
    Collaboration {
        id: record.id.clone(),
        name: record.name.clone(),
        description: record.description.clone(),
        role: record.role.as_str().into(),
        state: record.state.as_str().into(),
        host: peer_info(&record.host),
        delete_policy: record.delete_policy.as_str().into(),
        security: record.security.clone(),
        workspaces,
        participants,
        revision: record.revision,
        created_at: record.created_at.clone(),
        updated_at: record.updated_at.clone(),
        warnings: std::iter::once((record.host.title.as_str(), record.host.url.as_str()))
            .chain(
                record
                    .participants
                    .iter()
                    .filter_map(|p| Some((p.title.as_str(), p.identity.as_ref()?.url.as_str()))),
            )
            .filter_map(|(title, url)| crate::federation::transport_warning(title, url))
            .collect(),
    }
}

/// What the host tells guest `participant`: its own standing and modes, the workspaces it takes
/// part in, and the other participants by title, role and status. No link ever: the host does
/// not tell even its own.
pub(crate) fn snapshot_for(
    record: &CollabRecord,
    participant: &ParticipantRecord,
) -> CollabSnapshot {
    let node = if record.state == CollabState::Deleted {
        "deleted"
    } else if participant.status == GuestStatus::Active.as_str() {
        "active"
    } else {
        "removed"
    };
    CollabSnapshot {
        collaboration_id: record.id.clone(),
        name: record.name.clone(),
        description: record.description.clone(),
        revision: record.revision,
        state: node.into(),
        participant_id: participant.id.clone(),
        workspaces: record
            .workspaces
            .iter()
            .filter_map(|w| {
                Some(SnapshotWorkspace {
                    id: w.id.clone(),
                    name: w.name.clone(),
                    description: w.description.clone(),
                    config: w.config.clone(),
                    mode: w.modes.get(&participant.id)?.clone(),
                })
            })
            .collect(),
        participants: record
            .participants
            .iter()
            .map(|p| SnapshotParticipant {
                id: p.id.clone(),
                title: p.title.clone(),
                role: p.role.clone(),
                status: p.status.clone(),
                instance_id: match p.role.as_str() {
                    "host" => Some(record.host.instance_id.clone()),
                    _ => p.instance().map(str::to_string),
                },
            })
            .collect(),
    }
}

pub(crate) fn audit(
    actor: &str,
    event: &str,
    record: &CollabRecord,
    detail: serde_json::Value,
) -> NewAuditEntry {
    NewAuditEntry {
        actor: actor.to_string(),
        event: event.to_string(),
        subject: Some(record.id.clone()),
        detail,
    }
}

pub(crate) async fn load(node: &Node, id: String) -> NodeResult<CollabRecord> {
    let store = node.store.clone();
    blocking(move || store.collab(&id)).await
}

pub(crate) async fn save(
    node: &Node,
    record: CollabRecord,
    entry: NewAuditEntry,
) -> NodeResult<CollabRecord> {
    let store = node.store.clone();
    let now_ms = jiff::Timestamp::now().as_millisecond();
    blocking(move || {
        // Edits a participant made while it could still edit go on coming in grace.
        let old = store.collab(&record.id)?;
        for (channel, types) in crate::sync::lost_edit_rights(&old, &record) {
            store.open_edit_grace(&ferry_store::EditGrace {
                channel,
                types,
                until_ms: now_ms,
            })?;
        }
        store.update_collab(&record, &entry)
    })
    .await
}

pub(crate) fn conflict(message: impl Into<String>) -> NodeError {
    NodeError::new(ErrorCode::CollabStateConflict, message)
}

/// Refuses changes to a collaboration that is over for this instance.
pub(crate) fn ensure_not_over(record: &CollabRecord) -> NodeResult<()> {
    if record.state.is_over() {
        return Err(conflict(format!(
            "collaboration '{}' is {} here; nothing more can change in it",
            record.name,
            record.state.as_str()
        )));
    }
    Ok(())
}

/// The arrival link of items received through a workspace (`None`: through any workspace).
pub(crate) fn arrival_link(collab_id: &str, workspace_id: Option<&str>) -> String {
    match workspace_id {
        Some(w) => format!("collab:{collab_id}:{w}"),
        None => format!("collab:{collab_id}:"),
    }
}

/// A workspace (or, with `None`, the whole collaboration) ended for this instance: its items
/// stop being tied to it, and the received ones no other link brought go if the delete policy
/// says so, in one transaction with the audit entry. Own items and linked spaces are never
/// touched.
pub(crate) async fn end_workspace(
    node: &Node,
    record: &CollabRecord,
    workspace_id: Option<&str>,
) -> NodeResult<EndedArrivals> {
    end_arrivals(node, record, workspace_id, record.delete_policy).await
}

/// Like [`end_workspace`] with the policy given: unlinking keeps items whatever the policy.
async fn end_arrivals(
    node: &Node,
    record: &CollabRecord,
    workspace_id: Option<&str>,
    policy: DeletePolicy,
) -> NodeResult<EndedArrivals> {
    let store = node.store.clone();
    let link = arrival_link(&record.id, workspace_id);
    let entry = audit(
        "ferry",
        "collab.received_items_deleted",
        record,
        json!({"workspace": workspace_id}),
    );
    let whole = workspace_id.is_none();
    let ended = blocking(move || {
        let which = if whole {
            Arrivals::Under(&link)
        } else {
            Arrivals::Link(&link)
        };
        store.end_arrivals(which, policy == DeletePolicy::Delete, &entry)
    })
    .await?;
    crate::chunks::remove_chunks(node, ended.freed_chunks.clone()).await;
    Ok(ended)
}

/// Sends each named guest its snapshot; returns the titles of those that could not be told (they
/// catch up at their next contact).
pub(crate) async fn tell_guests(
    node: &Node,
    record: &CollabRecord,
    guests: &[String],
) -> Vec<String> {
    let mut not_told = Vec::new();
    for participant in record
        .participants
        .iter()
        .filter(|p| guests.contains(&p.id))
    {
        if let Err(e) = tell_guest(node, record, participant).await {
            not_told.push(participant.title.clone());
            let entry = audit(
                "ferry",
                "collab.guest_not_told",
                record,
                json!({"guest": participant.id, "title": participant.title, "revision": record.revision, "error": e}),
            );
            let store = node.store.clone();
            if let Err(e) = blocking(move || store.audit(&entry)).await {
                tracing::warn!(error = ?e, "could not record a notice that failed");
            }
        }
    }
    not_told
}

/// Sends one guest its snapshot.
async fn tell_guest(
    node: &Node,
    record: &CollabRecord,
    participant: &ParticipantRecord,
) -> Result<(), String> {
    {
        let Some(identity) = participant.identity.as_ref() else {
            return Ok(());
        };
        let sent: Result<serde_json::Value, _> = node
            .federation
            .call(
                crate::federation::Callee::of(
                    &PeerIdentity::from(identity),
                    collab_flows(record, &identity.instance_id),
                ),
                Method::POST,
                federation::COLLAB_SNAPSHOT_PATH,
                &snapshot_for(record, participant),
            )
            .await;
        sent.map(drop).map_err(|e| {
            tracing::warn!(guest = %identity.instance_id, error = ?e, "could not tell a guest of a change");
            NodeError::from(e).0.message
        })
    }
}

/// The ids of the guests taking part now.
pub(crate) fn active_guests(record: &CollabRecord) -> Vec<String> {
    record
        .participants
        .iter()
        .filter(|p| p.role == "guest" && p.status == GuestStatus::Active.as_str())
        .map(|p| p.id.clone())
        .collect()
}

/// Every collaboration this instance hosts or joined, in every node.
pub async fn list_collabs(node: &Node, caller: &Caller) -> NodeResult<Vec<Collaboration>> {
    caller.require(ferry_proto::Role::Admin)?;
    let store = node.store.clone();
    let records = blocking(move || store.list_collabs()).await?;
    Ok(records.iter().map(view).collect())
}

pub async fn show_collab(node: &Node, caller: &Caller, id: String) -> NodeResult<CollabDetail> {
    caller.require(ferry_proto::Role::Admin)?;
    let record = load(node, id).await?;
    let store = node.store.clone();
    let subject = record.id.clone();
    let history = blocking(move || store.audit_of(&subject)).await?;
    Ok(CollabDetail {
        collaboration: view(&record),
        history,
    })
}

/// The id of the workspace a reference (id or name) names.
pub(crate) fn workspace_id(record: &CollabRecord, workspace: &str) -> NodeResult<String> {
    record
        .workspace(workspace)
        .map(|w| w.id.clone())
        .ok_or_else(|| {
            NodeError::new(
                ErrorCode::WorkspaceNotFound,
                format!(
                    "collaboration '{}' has no workspace '{workspace}' here; `ferry collab show {}` lists them",
                    record.name, record.id
                ),
            )
        })
}

/// Links one of this instance's spaces to a workspace. Only this instance ever knows which.
pub async fn link(
    node: &Node,
    caller: &Caller,
    id: String,
    workspace: String,
    body: LinkSpace,
) -> NodeResult<Collaboration> {
    caller.require(ferry_proto::Role::Admin)?;
    let mut record = load(node, id).await?;
    ensure_not_over(&record)?;
    let workspace_id = workspace_id(&record, &workspace)?;
    if let Some(linked) = record.links.get(&workspace_id) {
        return Err(NodeError::new(
            ErrorCode::WorkspaceAlreadyLinked,
            format!(
                "space '{}' is already linked to workspace '{workspace}'; a participant links one space per workspace: unlink it first",
                linked.name
            ),
        ));
    }
    check_share(&record, &workspace_id, body.share)?;
    let store = node.store.clone();
    let space_name = body.space.clone();
    let space = blocking(move || store.space(&space_name)).await?;
    let linked = LinkedSpace {
        share: body.share,
        ..LinkedSpace::from(&space)
    };
    record.links.insert(workspace_id.clone(), linked);
    let entry = audit(
        &caller.name,
        "collab.linked",
        &record,
        json!({"workspace": workspace_id, "space": space.name, "share": body.share.as_str()}),
    );
    // What the workspace already holds, both ways, goes now.
    save_and_run(node, record, entry, workspace_id).await
}

/// Saves a change of this instance's link to a workspace and runs the link at once.
async fn save_and_run(
    node: &Node,
    record: CollabRecord,
    entry: NewAuditEntry,
    workspace_id: String,
) -> NodeResult<Collaboration> {
    let collab_id = record.id.clone();
    let saved = save(node, record, entry).await?;
    crate::sync::link_changed(
        node,
        crate::sync::Link::Collab {
            collab_id,
            workspace_id,
        },
    )
    .await;
    Ok(view(&saved))
}

/// Changes how this guest's link to a workspace sends its own feature layers. What it sent
/// before is converted at the next run of every receiver (the link's scope changed, so they
/// take a full pass: a reference becomes a copy, or a copy a reference).
pub async fn set_share(
    node: &Node,
    caller: &Caller,
    id: String,
    workspace: String,
    body: ferry_proto::SetShare,
) -> NodeResult<Collaboration> {
    caller.require(ferry_proto::Role::Admin)?;
    let mut record = load(node, id).await?;
    ensure_not_over(&record)?;
    let workspace_id = workspace_id(&record, &workspace)?;
    check_share(&record, &workspace_id, body.share)?;
    let Some(linked) = record.links.get_mut(&workspace_id) else {
        return Err(NodeError::new(
            ErrorCode::WorkspaceNotLinked,
            format!(
                "this instance has no space linked to workspace '{workspace}': `ferry collab link {workspace} --space SPACE --share {}`",
                body.share.as_str()
            ),
        ));
    };
    let from = linked.share;
    linked.share = body.share;
    let entry = audit(
        &caller.name,
        "collab.share_changed",
        &record,
        json!({"workspace": workspace_id, "from": from.as_str(), "to": body.share.as_str()}),
    );
    save_and_run(node, record, entry, workspace_id).await
}

/// A share mode is a guest's choice, and a two-way workspace takes copies only.
fn check_share(
    record: &CollabRecord,
    workspace_id: &str,
    share: ferry_proto::ShareMode,
) -> NodeResult<()> {
    if share == ferry_proto::ShareMode::Workspace {
        return Ok(());
    }
    if record.role == CollabRole::Host {
        return Err(NodeError::new(
            ErrorCode::InvalidRequest,
            "the host's feature layers follow the workspace's own setting (`ferry collab workspace update COLLAB WORKSPACE --set-config`, with or without `--reference`); a share mode is a guest's choice",
        ));
    }
    let two_way = record
        .workspaces
        .iter()
        .any(|w| w.id == workspace_id && w.config.two_way_editing);
    if two_way && share == ferry_proto::ShareMode::References {
        return Err(NodeError::new(
            ErrorCode::DeliveryRefused,
            "the workspace is two-way: it takes copies only (edits need the rows), so its layers cannot go as references",
        ));
    }
    Ok(())
}

/// Unlinks this instance's space from a workspace. The space and its items stay.
pub async fn unlink(
    node: &Node,
    caller: &Caller,
    id: String,
    workspace: String,
) -> NodeResult<Collaboration> {
    caller.require(ferry_proto::Role::Admin)?;
    let mut record = load(node, id).await?;
    let workspace_id = workspace_id(&record, &workspace)?;
    let Some(space) = record.links.remove(&workspace_id) else {
        return Err(NodeError::new(
            ErrorCode::WorkspaceNotLinked,
            format!("this instance has no space linked to workspace '{workspace}'"),
        ));
    };
    let entry = audit(
        &caller.name,
        "collab.unlinked",
        &record,
        json!({"workspace": workspace_id, "space": space.name}),
    );
    let saved = save(node, record, entry).await?;
    // What arrived stays in the space, no longer tied to the workspace.
    end_arrivals(node, &saved, Some(&workspace_id), DeletePolicy::Keep).await?;
    Ok(view(&saved))
}

/// Checks the network policies a collaboration needs, per direction its workspaces carry: on a
/// guest, between it and its host; on a host, between it and each active guest.
pub async fn check(node: &Node, caller: &Caller, id: String) -> NodeResult<PolicyCheck> {
    caller.require(ferry_proto::Role::Admin)?;
    let record = load(node, id).await?;
    let others: Vec<PeerIdentity> = match record.role {
        CollabRole::Guest => vec![record.host.clone()],
        CollabRole::Host => record
            .participants
            .iter()
            .filter(|p| p.role == "guest" && p.status == GuestStatus::Active.as_str())
            .filter_map(|p| p.identity.as_ref().map(PeerIdentity::from))
            .collect(),
    };
    let mut findings = Vec::new();
    for other in &others {
        let flows = collab_flows(&record, &other.instance_id);
        findings.extend(
            federation::admission::check_flows(
                node,
                other,
                flows,
                federation::admission::AskPeer::Yes,
            )
            .await,
        );
    }
    Ok(PolicyCheck {
        ok: findings.iter().all(|f| f.ok),
        findings,
    })
}

/// Sets what happens to the items this instance received when a workspace or the collaboration
/// ends for it.
pub async fn set_delete_policy(
    node: &Node,
    caller: &Caller,
    id: String,
    body: SetDeletePolicy,
) -> NodeResult<Collaboration> {
    caller.require(ferry_proto::Role::Admin)?;
    let policy = DeletePolicy::parse(&body.delete_policy)?;
    let mut record = load(node, id).await?;
    ensure_not_over(&record)?;
    record.delete_policy = policy;
    let entry = audit(
        &caller.name,
        "collab.delete_policy_set",
        &record,
        json!({"delete_policy": policy.as_str()}),
    );
    Ok(view(&save(node, record, entry).await?))
}

/// Sets this instance's security for a collaboration: the markings ceiling for what it sends,
/// and the markings it gives to what it receives. Its own setting: nobody else is asked or told.
pub async fn set_security(
    node: &Node,
    caller: &Caller,
    id: String,
    body: SetCollabSecurity,
) -> NodeResult<Collaboration> {
    caller.require(ferry_proto::Role::Admin)?;
    ferry_core::names::check_markings(body.security.ceiling.as_deref().unwrap_or_default())?;
    ferry_core::names::check_markings(&body.security.mark)?;
    let mut record = load(node, id).await?;
    ensure_not_over(&record)?;
    record.security = body.security.clone();
    let entry = audit(
        &caller.name,
        "collab.security_set",
        &record,
        json!({"security": body.security}),
    );
    Ok(view(&save(node, record, entry).await?))
}

/// Whether two instance URLs name the same place (scheme, host, port, path).
pub(crate) fn same_url(a: &str, b: &str) -> bool {
    let norm = |s: &str| {
        reqwest::Url::parse(s.trim()).ok().map(|u| {
            (
                u.scheme().to_string(),
                u.host_str().map(str::to_ascii_lowercase),
                u.port_or_known_default(),
                u.path().trim_end_matches('/').to_string(),
            )
        })
    };
    matches!((norm(a), norm(b)), (Some(x), Some(y)) if x == y)
}

pub(crate) fn expired(expires_at: i64) -> bool {
    unix_now() >= expires_at
}

/// Refuses an identity whose id is pinned here to another key (by a peer connection or a
/// collaboration).
pub(crate) fn check_pinned_key(
    peers: &[PeerRecord],
    collabs: &[CollabRecord],
    who: &ferry_proto::ticket::Issuer,
) -> NodeResult<()> {
    let from_peers = peers.iter().filter_map(|r| r.peer.clone());
    let from_collabs = collabs.iter().flat_map(|c| {
        c.participants
            .iter()
            .filter_map(|p| p.identity.as_ref().map(PeerIdentity::from))
            .chain(std::iter::once(c.host.clone()))
    });
    if let Some(pinned) = from_peers
        .chain(from_collabs)
        .find(|p| p.instance_id == who.instance_id && p.public_key != who.public_key)
    {
        return Err(NodeError::new(
            ErrorCode::InviteKeyMismatch,
            format!(
                "'{}' (id {}) carries another key than the one pinned for it (fingerprint {}); do not use it, and confirm with that instance's admin",
                who.title,
                who.instance_id,
                crate::instance::fingerprint(&pinned.public_key)
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::same_url;

    #[test]
    fn urls_compare_by_place() {
        assert!(same_url("http://127.0.0.1:8080", "http://127.0.0.1:8080/"));
        assert!(same_url(
            "https://Harbor.example.org",
            "https://harbor.example.org:443"
        ));
        assert!(!same_url("http://127.0.0.1:8080", "http://127.0.0.1:8081"));
        assert!(!same_url("http://a.example/x", "http://a.example/y"));
        assert!(!same_url("not a url", "not a url"));
    }
}
